// Builders for the job planning tests (plan, plan-waits, fence): one GpuJob and one placement
// decision that each test adjusts, so the tests state only what they are about.

import type { GpuJob, GpuJobStatus } from '../../../api/types.js';
import type { Decision } from '../../../core/types.js';

/** The jobs' creation time; tests count from it. */
export const t0 = Date.parse('2026-11-25T12:00:00Z');

/** A one-container GpuJob "ml/j" created at t0, with `spec` over the defaults and `status` when given. */
export function gpuJob(status?: GpuJobStatus, spec: Partial<GpuJob['spec']> = {}): GpuJob {
  return {
    apiVersion: 'fedgpu.io/v1alpha1',
    kind: 'GpuJob',
    metadata: { name: 'j', namespace: 'ml', uid: 'uid-1', generation: 1, creationTimestamp: new Date(t0) },
    spec: { template: { spec: { containers: [{ name: 'c', image: 'x' }] } }, budget: { maxPricePerGpuHour: '3' }, ...spec },
    ...(status ? { status } : {}),
  };
}

/** The scheduler places the job on `provider`: one GPU of an H100 on node n0, unless `over` says otherwise. */
export function decision(provider: string, over: Partial<Omit<Decision, 'kind' | 'provider'>> = {}): Decision {
  return {
    kind: 'decision',
    provider,
    gpuProduct: 'H100',
    memoryMiB: 81559,
    cudaDriverMajor: 12,
    gpusPerReplica: 1,
    assignments: [{ replica: 0, node: 'n0' }],
    pricePerGpuHour: '3.6',
    estimatedTimeToStartSeconds: 0,
    score: { total: 0.8, parts: { reputation: 0.5, latency: 0.9, price: 0.7, timeToStart: 1, fragmentation: 1 } },
    ...over,
  };
}
