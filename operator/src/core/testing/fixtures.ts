// Builders for scheduler tests: a provider that fits everything unless a test says otherwise.

import type { JobRequest, PoolSnapshot, ProviderSnapshot } from '../types.js';

export const H100 = 'NVIDIA-H100-80GB-HBM3';
export const A100 = 'NVIDIA-A100-SXM4-80GB';
export const RTX4090 = 'NVIDIA-GeForce-RTX-4090';

export const MEMORY_MIB: Record<string, number> = { [H100]: 81559, [A100]: 81920, [RTX4090]: 24564 };

/** A pool of `product` with one node per idle count: pool(H100, [8, 4]) → nodes n0 (8 idle), n1 (4 idle). */
export function pool(gpuProduct: string, idle: number[], price = '2', extra: Partial<PoolSnapshot> = {}): PoolSnapshot {
  return {
    gpuProduct,
    memoryMiB: MEMORY_MIB[gpuProduct] ?? 16384,
    cudaDriverMajor: 535,
    pricePerGpuHour: price,
    nodes: idle.map((idleGpus, i) => ({ name: `n${i}`, idleGpus, totalGpus: Math.max(8, idleGpus) })),
    ...extra,
  };
}

/** A healthy, staked, well-reputed provider in us-east with the given pools. */
export function provider(name: string, pools: PoolSnapshot[], extra: Partial<ProviderSnapshot> = {}): ProviderSnapshot {
  return {
    name,
    wallet: `0x${name.padEnd(40, '0').slice(0, 40).replace(/[^0-9a-f]/g, '0')}`,
    region: 'us-east',
    ready: true,
    heartbeatAgeMs: 1000,
    staked: true,
    stakeAmount: '1000',
    reputation: { score: 0.9, successes: 100, failures: 2 },
    rttMs: 20,
    bandwidthMbps: 10_000,
    auditedAttributes: {},
    pools,
    ...extra,
  };
}

/** A job for `replicas` × `gpusPerReplica` GPUs of `products` with a generous budget. */
export function job(replicas: number, gpusPerReplica: number, extra: Partial<JobRequest> = {}, products: string[] = [H100]): JobRequest {
  return {
    replicas,
    gpusPerReplica,
    gpu: { products },
    budget: { maxPricePerGpuHour: '10' },
    ...extra,
  };
}
