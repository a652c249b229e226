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

/**
 * What one attempt's Assign may carry, so it always fits in one message (framing.ts allows 16 MiB;
 * a larger one ends the agent's whole stream, every tenant's attempts and sessions on it with it).
 * The secrets: at most 16, adding up to what one Secret may hold (they are stored as one, agent/
 * attempt/secrets.ts). The template: sent once per replica, so its size times the replicas.
 */
export const MAX_ATTEMPT_SECRETS = 16;
export const MAX_ATTEMPT_SECRET_BYTES = 1024 * 1024 - 4096;
export const MAX_ASSIGN_TEMPLATE_BYTES = 8 * 1024 * 1024;

/**
 * At most this many ResyncPart messages make one Resync: up to 256 MiB an agent gathers in memory,
 * far more than any provider's attempts need. The hub sends no more; an agent ignores a Resync in
 * more (applying only its tail as the desired set would delete the attempts of the parts before).
 */
export const MAX_RESYNC_PARTS = 16;

/** Bytes the secrets' keys and values add up to, as both ends count them. */
export function secretBytes(secrets: readonly { data: Record<string, Uint8Array> }[]): number {
  let bytes = 0;
  for (const s of secrets) for (const [key, value] of Object.entries(s.data)) bytes += key.length + 4 + value.length;
  return bytes;
}
