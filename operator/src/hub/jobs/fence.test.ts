import { describe, expect, it } from 'vitest';
import type { GpuJob } from '../../api/types.js';
import type { ScheduleResult } from '../../core/types.js';
import { desiredAttempts, judgeReport } from './fence.js';
import { planJob } from './plan.js';
import { decision, gpuJob, t0 } from './testing/fixtures.js';

const job = (): GpuJob => gpuJob();
const placeOn = (provider: string) => (): ScheduleResult => decision(provider, { pricePerGpuHour: '2' });

/** A job placed on `a`, then moved to `b` after `a` was declared lost: the zombie setting. */
function movedJob(): GpuJob {
  let j = job();
  j = { ...j, status: planJob(j, { now: t0 + 1_000, isProviderLost: () => false, schedule: placeOn('a') }).status };
  j = { ...j, status: planJob(j, { now: t0 + 2_000, isProviderLost: (p) => p === 'a', schedule: placeOn('b') }).status };
  return j;
}

describe('judgeReport: the stale-report fence', () => {
  it('sets up the zombie case through the pure plan: attempt 1 Lost on a, attempt 2 live on b', () => {
    const j = movedJob();
    expect(j.status?.currentEpoch).toBe(2);
    expect(j.status?.attempts?.map((a) => [a.epoch, a.provider, a.outcome])).toEqual([[1, 'a', 'Lost'], [2, 'b', 'Running']]);
  });

  it('cancels a report from an older epoch (the zombie on the lost provider)', () => {
    expect(judgeReport(movedJob(), 'a', 1)).toEqual({ kind: 'fence', why: 'stale_epoch' });
  });

  it('cancels a report for the current epoch from another provider (a provider cannot claim another\'s attempt)', () => {
    expect(judgeReport(movedJob(), 'a', 2)).toEqual({ kind: 'fence', why: 'other_provider' });
  });

  it('cancels a report for an epoch the hub never assigned (a future epoch)', () => {
    expect(judgeReport(movedJob(), 'b', 3)).toEqual({ kind: 'fence', why: 'stale_epoch' });
  });

  it('cancels a report for a job the hub does not know', () => {
    expect(judgeReport(undefined, 'a', 1)).toEqual({ kind: 'fence', why: 'unknown_job' });
  });

  it('accepts the live attempt\'s own report', () => {
    expect(judgeReport(movedJob(), 'b', 2)).toEqual({ kind: 'accept' });
  });

  it('cancels a report from the current attempt once the hub ended it (e.g. past the deadline)', () => {
    const j = movedJob();
    j.status!.attempts![1] = { ...j.status!.attempts![1]!, endTime: new Date(t0 + 3_000).toISOString(), outcome: 'Cancelled' };
    expect(judgeReport(j, 'b', 2)).toEqual({ kind: 'fence', why: 'ended_attempt' });
  });

  it('ignores a late duplicate of a success: nothing to cancel, nothing to record', () => {
    const j = movedJob();
    j.status!.attempts![1] = { ...j.status!.attempts![1]!, endTime: new Date(t0 + 3_000).toISOString(), outcome: 'Succeeded' };
    expect(judgeReport(j, 'b', 2)).toEqual({ kind: 'ignore' });
  });
});

describe('desiredAttempts: the resync path', () => {
  it('leaves the zombie out of the lost provider\'s desired set and lists the live attempt for its successor', () => {
    const j = movedJob();
    expect(desiredAttempts([j], 'a')).toEqual([]);
    expect(desiredAttempts([j], 'b').map((d) => d.attempt.epoch)).toEqual([2]);
  });

  it('drops a job being deleted and a finished attempt', () => {
    const deleting = { ...movedJob(), metadata: { ...movedJob().metadata, deletionTimestamp: new Date(t0 + 5_000) } };
    const finished = movedJob();
    finished.status!.attempts![1]!.endTime = new Date(t0 + 3_000).toISOString();
    expect(desiredAttempts([deleting, finished], 'b')).toEqual([]);
  });
});
