// Bounds enforced on every agent message. Generous for a real provider cluster, small enough that
// one message can never make the hub allocate much or write much to the apiserver.
export interface EdgeLimits {
  /** Protocol versions this hub speaks. */
  supportedProtocolVersions: readonly number[];
  maxPools: number;
  maxNodesPerPool: number;
  maxNodesTotal: number;
  maxGpusPerNode: number;
  maxGpusPerPool: number;
  maxMemoryMiB: number;
  maxCudaDriverMajor: number;
  /** CPU (millicores) and host memory (MiB) one GPU may be said to bring: 1,000 CPU and 64 TiB. */
  maxCpuMilliPerGpu: number;
  maxHostMemoryMiBPerGpu: number;
  maxPodStates: number;
  maxRestartCount: number;
  /** One attempt may not claim more than this many GPU-seconds (about 31 GPU-years per GPU x 1000). */
  maxGpuSeconds: number;
  maxMessageChars: number;
  maxReasonChars: number;
  maxAgentVersionChars: number;
  maxProbeResults: number;
  maxProbePayloadBytes: number;
  maxProbeElapsedMs: number;
  /** Tenant namespaces one inventory may report as refused (not restricted). */
  maxUnisolatedNamespaces: number;
  /** Relayed provider pod Events in one PodEvents message. */
  maxPodEventsPerMessage: number;
}

export const defaultEdgeLimits: Readonly<EdgeLimits> = Object.freeze({
  supportedProtocolVersions: Object.freeze([1]),
  maxPools: 32,
  maxNodesPerPool: 1024,
  maxNodesTotal: 4096,
  maxGpusPerNode: 64,
  maxGpusPerPool: 65_536,
  maxMemoryMiB: 4 * 1024 * 1024,
  maxCudaDriverMajor: 999,
  maxCpuMilliPerGpu: 1_000_000,
  maxHostMemoryMiBPerGpu: 64 * 1024 * 1024,
  maxPodStates: 256,
  maxRestartCount: 1_000_000,
  maxGpuSeconds: 1e12,
  maxMessageChars: 1024,
  maxReasonChars: 128,
  maxAgentVersionChars: 64,
  maxProbeResults: 8,
  maxProbePayloadBytes: 256 * 1024,
  maxProbeElapsedMs: 600_000,
  maxUnisolatedNamespaces: 64,
  maxPodEventsPerMessage: 32,
});

export function edgeLimits(overrides: Partial<EdgeLimits> = {}): Readonly<EdgeLimits> {
  return Object.freeze({ ...defaultEdgeLimits, ...overrides });
}
