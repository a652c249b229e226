import type { AttemptSettlement, GpuJob, GpuJobStatus, JobAttempt } from '../../../api/types.js';

// Small builders for the settlement unit tests (not shipped logic).

export const T0 = Date.parse('2026-11-25T12:00:00Z');
export const iso = (ms: number) => new Date(ms).toISOString();

export function settlementJob(over: { status?: GpuJobStatus; spec?: Partial<GpuJob['spec']>; deletedAt?: number } = {}): GpuJob {
  return {
    apiVersion: 'fedgpu.io/v1alpha1',
    kind: 'GpuJob',
    metadata: {
      name: 'train',
      namespace: 'ml',
      uid: '0b7c3c1e-2c1a-4c7e-9d54-5b6f0e1b2a3c',
      creationTimestamp: new Date(T0),
      ...(over.deletedAt !== undefined ? { deletionTimestamp: new Date(over.deletedAt) } : {}),
    },
    spec: {
      template: { spec: { containers: [{ name: 'main', image: 'x' }] } },
      budget: { maxPricePerGpuHour: '3', maxTotal: '10' },
      replicas: 1,
      gpusPerReplica: 2,
      ...over.spec,
    },
    ...(over.status ? { status: over.status } : {}),
  };
}

export function attempt(epoch: number, over: Partial<JobAttempt> = {}): JobAttempt {
  // The hub saw it Running from its assignment (billing bounds start there).
  return { epoch, provider: `gp-${epoch}`, startTime: iso(T0 + epoch * 60_000), runningTime: iso(T0 + epoch * 60_000), outcome: 'Running', pricePerGpuHour: '2.4', gpuSeconds: 0, ...over };
}

export const ended = (epoch: number, outcome: JobAttempt['outcome'], faultOf: JobAttempt['faultOf'], over: Partial<JobAttempt> = {}) =>
  attempt(epoch, { outcome, faultOf, endTime: iso(T0 + epoch * 60_000 + 30_000), gpuSeconds: 60, ...over });

export const openRecord = (epoch: number, escrowAmount = '10', over: Partial<AttemptSettlement> = {}): AttemptSettlement => ({
  epoch,
  escrowId: `0x${String(epoch).padStart(64, '0')}`,
  escrowAmount,
  escrowTxHash: `0x${'ab'.repeat(32)}`,
  escrowBlock: 10 + epoch,
  state: 'Open',
  ...over,
});

export const receiptFor = (amount: string, gpuSeconds = 60) => ({
  gpuSeconds,
  amount,
  usageHash: `0x${'11'.repeat(32)}`,
  signature: `0x${'22'.repeat(65)}`,
  wallet: `0x${'33'.repeat(20)}`,
});
