import { describe, expect, it } from 'vitest';
import type { GpuJob, GpuJobStatus } from '../../api/types.js';
import type { Decision, JobRequest, ScheduleResult } from '../../core/types.js';
import { type AttemptReport, planJob, type PlanInputs } from './plan.js';

const t0 = Date.parse('2026-11-25T12:00:00Z');

function job(status?: GpuJobStatus, spec: Partial<GpuJob['spec']> = {}): GpuJob {
  return {
    apiVersion: 'fedgpu.io/v1alpha1',
    kind: 'GpuJob',
    metadata: { name: 'j', namespace: 'ml', uid: 'uid-1', generation: 1, creationTimestamp: new Date(t0) },
    spec: { template: { spec: { containers: [{ name: 'c', image: 'x' }] } }, budget: { maxPricePerGpuHour: '3' }, replicas: 2, gpusPerReplica: 4, ...spec },
    status,
  };
}

const decision = (provider: string): Decision => ({
  kind: 'decision',
  provider,
  gpuProduct: 'H100',
  memoryMiB: 81559,
  cudaDriverMajor: 12,
  gpusPerReplica: 4,
  assignments: [{ replica: 0, node: 'n0' }, { replica: 1, node: 'n1' }],
  pricePerGpuHour: '3.6',
  estimatedTimeToStartSeconds: 0,
  score: { total: 0.8, parts: { reputation: 0.5, latency: 0.9, price: 0.7, timeToStart: 1, fragmentation: 1 } },
});

function inputs(over: Partial<PlanInputs> & { place?: string; lost?: string[] } = {}): PlanInputs & { requests: JobRequest[] } {
  const requests: JobRequest[] = [];
  return {
    now: t0 + 60_000,
    isProviderLost: (p) => (over.lost ?? []).includes(p),
    schedule: (r): ScheduleResult => {
      requests.push(r);
      return over.place ? decision(over.place) : { kind: 'unschedulable', reasons: { InsufficientIdle: 2 }, message: '0/2 providers fit: 2 insufficient idle H100' };
    },
    requests,
    ...over,
  };
}

/** Runs the plan for a job whose current attempt (epoch 1) is on provider `a`. */
const running = (report?: AttemptReport, over: Parameters<typeof inputs>[0] = {}) => {
  const scheduled = planJob(job(), inputs({ place: 'a' })).status;
  return planJob(job(scheduled), inputs({ ...over, report }));
};

describe('planJob', () => {
  it('waits with the scheduler\'s explanation when nothing fits', () => {
    const plan = planJob(job(), inputs());
    expect(plan.status.phase).toBe('Pending');
    expect(plan.status.message).toBe('0/2 providers fit: 2 insufficient idle H100');
    expect(plan.status.conditions?.find((c) => c.type === 'Scheduled')).toMatchObject({ status: 'False', reason: 'Unschedulable' });
    expect(plan.assign).toBeUndefined();
    expect(plan.requeueAfterMs).toBeGreaterThan(0);
    expect(plan.status.gpus).toBe(8);
  });

  it('records the attempt and placement, then asks for the assignment to be sent', () => {
    const plan = planJob(job(), inputs({ place: 'a' }));
    expect(plan.status).toMatchObject({ phase: 'Scheduled', currentEpoch: 1, attemptCount: 1 });
    expect(plan.status.attempts?.[0]).toMatchObject({ epoch: 1, provider: 'a', nodes: ['n0', 'n1'], pricePerGpuHour: '3.6', outcome: 'Running' });
    expect(plan.status.placement).toMatchObject({ provider: 'a', score: { total: 0.8, latency: 0.9 } });
    expect(plan.assign).toMatchObject({ provider: 'a', epoch: 1 });
    expect(plan.events[0]?.reason).toBe('Scheduled');
  });

  it('keeps a job that is still waiting for funds pending, with the reason', () => {
    const plan = planJob(job(), inputs({ place: 'a', blockedBy: 'waiting for funds: consumer has 1 credit free' }));
    expect(plan.status.phase).toBe('Pending');
    expect(plan.status.message).toBe('waiting for funds: consumer has 1 credit free');
    expect(plan.assign).toBeUndefined();
  });

  it('moves to Running on the agent\'s report', () => {
    const plan = running({ epoch: 1, phase: 'Running', gpuSeconds: 16 });
    expect(plan.status.phase).toBe('Running');
    expect(plan.status.conditions?.find((c) => c.type === 'Running')?.status).toBe('True');
  });

  it('ignores a report for another epoch (fencing)', () => {
    const plan = running({ epoch: 7, phase: 'Succeeded', gpuSeconds: 100 });
    expect(plan.status.phase).toBe('Scheduled');
  });

  it('succeeds and bills GPU-seconds × price', () => {
    const plan = running({ epoch: 1, phase: 'Succeeded', gpuSeconds: 3600 });
    expect(plan.status.phase).toBe('Succeeded');
    expect(plan.status.attempts?.[0]).toMatchObject({ outcome: 'Succeeded', faultOf: 'none' });
    expect(plan.status.cost).toEqual({ gpuSeconds: 3600, amount: '3.6' });
    expect(plan.status.conditions?.find((c) => c.type === 'Finished')).toMatchObject({ status: 'True', reason: 'Succeeded' });
  });

  it('fails for good on the user\'s exit code, and still bills the delivered time', () => {
    const plan = running({ epoch: 1, phase: 'Failed', gpuSeconds: 1800, exitCode: 2, reason: 'ContainerFailed', message: 'exit 2' });
    expect(plan.status.phase).toBe('Failed');
    expect(plan.status.attempts?.[0]).toMatchObject({ outcome: 'Failed', faultOf: 'user', exitCode: 2 });
    expect(plan.assign).toBeUndefined();
    expect(plan.status.cost?.amount).toBe('1.8');
  });

  it('reschedules away from a lost provider, unbilled, and fences the old attempt', () => {
    const plan = running(undefined, { lost: ['a'], place: 'b' });
    expect(plan.status.attempts?.[0]).toMatchObject({ outcome: 'Lost', faultOf: 'provider', reason: 'ProviderLost' });
    expect(plan.cancel).toEqual([{ provider: 'a', epoch: 1, reason: 'ProviderLost' }]);
    expect(plan.assign).toMatchObject({ provider: 'b', epoch: 2 });
    expect(plan.status.cost?.amount).toBe('0');
  });

  it('excludes providers the job already failed on', () => {
    const scheduled = planJob(job(), inputs({ place: 'a' })).status;
    const i = inputs({ lost: ['a'], place: 'b' });
    planJob(job(scheduled), i);
    expect(i.requests[0]?.excludeProviders).toEqual(['a']);
  });

  it('resumes elsewhere after an owner reclaim, without blaming the provider', () => {
    const plan = running({ epoch: 1, phase: 'Reclaimed', gpuSeconds: 60, reason: 'AvailabilityWindowEnded', message: 'window closed' }, { place: 'b' });
    expect(plan.status.attempts?.[0]).toMatchObject({ outcome: 'Reclaimed', faultOf: 'owner-reclaim', reason: 'AvailabilityWindowEnded' });
    expect(plan.assign?.epoch).toBe(2);
  });

  it('gives up after maxAttempts', () => {
    let status = planJob(job(undefined, { faultTolerance: { maxAttempts: 2 } }), inputs({ place: 'a' })).status;
    status = planJob(job(status, { faultTolerance: { maxAttempts: 2 } }), inputs({ lost: ['a'], place: 'b' })).status;
    const plan = planJob(job(status, { faultTolerance: { maxAttempts: 2 } }), inputs({ lost: ['b'], place: 'c' }));
    expect(plan.status.phase).toBe('Failed');
    expect(plan.status.conditions?.find((c) => c.type === 'Finished')?.reason).toBe('MaxAttemptsReached');
    expect(plan.assign).toBeUndefined();
  });

  it('fails a job past activeDeadlineSeconds and cancels its attempt', () => {
    const scheduled = planJob(job(undefined, { activeDeadlineSeconds: 30 }), inputs({ place: 'a', now: t0 + 1_000 })).status;
    const plan = planJob(job(scheduled, { activeDeadlineSeconds: 30 }), inputs({ now: t0 + 31_000 }));
    expect(plan.status.phase).toBe('Failed');
    expect(plan.status.conditions?.find((c) => c.type === 'Finished')?.reason).toBe('DeadlineExceeded');
    expect(plan.cancel).toEqual([{ provider: 'a', epoch: 1, reason: 'DeadlineExceeded' }]);
  });

  it('changes nothing once finished', () => {
    const done = running({ epoch: 1, phase: 'Succeeded', gpuSeconds: 10 }).status;
    const plan = planJob(job(done), inputs({ lost: ['a'], place: 'b' }));
    expect(plan.status).toEqual(done);
    expect(plan.assign).toBeUndefined();
    expect(plan.cancel).toEqual([]);
  });
});
