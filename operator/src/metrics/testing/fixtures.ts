// Small GpuProvider and GpuJob objects for the metrics tests.
import type { GpuJob, GpuProvider, GpuProviderStatus, GpuJobStatus } from '../../api/types.js';

export function provider(name: string, status: GpuProviderStatus = {}): GpuProvider {
  return { apiVersion: 'fedgpu.io/v1alpha1', kind: 'GpuProvider', metadata: { name }, spec: { wallet: '0x0000000000000000000000000000000000000001' }, status };
}

export function job(name: string, status?: GpuJobStatus, createdAt = '2026-01-01T00:00:00Z'): GpuJob {
  return {
    apiVersion: 'fedgpu.io/v1alpha1',
    kind: 'GpuJob',
    metadata: { name, namespace: 'ml', uid: `uid-${name}`, creationTimestamp: new Date(createdAt) },
    spec: { template: { spec: { containers: [{ name: 'main', image: 'x' }] } }, budget: { maxPricePerGpuHour: '1' } },
    ...(status ? { status } : {}),
  } as GpuJob;
}

export const ready = (status: 'True' | 'False') => ({
  type: 'Ready',
  status,
  reason: status === 'True' ? 'HeartbeatReceived' : 'HeartbeatMissed',
  message: '',
  lastTransitionTime: '2026-01-01T00:00:00Z',
});
