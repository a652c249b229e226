import { describe, expect, it } from 'vitest';
import type { Assign, AttemptStatus } from '../gen/proto/fedgpu/v1/market.js';
import { ReclaimedAttempts } from './reclaimed.js';

const status = (jobUid: string, epoch = 1): AttemptStatus =>
  ({ jobUid, epoch, phase: 5, gpuSeconds: 120, exitCode: 0, reason: 'AvailabilityWindowEnded', message: 'the lending window closed', podStates: [] }) as unknown as AttemptStatus;
const assign = (jobUid: string, epoch = 1) => ({ jobUid, epoch }) as Assign;

describe('ReclaimedAttempts', () => {
  it('keeps a reclaimed attempt off the cluster while the hub still lists it, and says Reclaimed again (the report lost with the old leader)', () => {
    const reclaimed = new ReclaimedAttempts();
    reclaimed.record(status('a'));
    // The new leader's Resync still lists it: not run again (its receipt covers the first run only),
    // not refused as a new assignment (a reclaim without notice, slashed): reported again.
    const { run, resend } = reclaimed.resync([assign('a'), assign('b')]);
    expect(run.map((a) => a.jobUid)).toEqual(['b']);
    expect(resend).toEqual([status('a')]);
    expect(reclaimed.has('a', 1)).toBe(true);
    expect(reclaimed.reportOf('a', 1)).toEqual(status('a'));
    expect(reclaimed.reportOf('b', 1)).toBeUndefined();
  });

  it('forgets it once a Resync no longer lists it, and stays bounded', () => {
    const reclaimed = new ReclaimedAttempts(2);
    reclaimed.record(status('a'));
    expect(reclaimed.resync([assign('b')]).resend).toEqual([]);
    expect(reclaimed.has('a', 1)).toBe(false);
    const held = () => ['x', 'y', 'z'].filter((j) => reclaimed.has(j, 1));
    for (const j of ['x', 'y', 'z']) reclaimed.record(status(j));
    expect(held()).toEqual(['y', 'z']);
    reclaimed.forget('y', 1); // cancelled by the hub
    expect(held()).toEqual(['z']);
  });
});
