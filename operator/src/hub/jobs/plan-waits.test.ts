import { describe, expect, it } from 'vitest';
import type { GpuJobStatus } from '../../api/types.js';
import type { ScheduleResult } from '../../core/types.js';
import { MAX_NEVER_PLACED, NEVER_PLACED, planJob, type PlanInputs } from './plan.js';
import { decision, gpuJob, t0 } from './testing/fixtures.js';

// What a job that has no live attempt says while it waits: its Running condition, and the escrow
// pinned to a provider that cannot take it (found by the chaos soak, docs/reliability.md).

const job = gpuJob;

const nothingFits: ScheduleResult = { kind: 'unschedulable', reasons: { NotStaked: 1 }, message: '0/1 providers fit: 1 not staked' };

function inputs(over: Partial<PlanInputs> & { place?: string; lost?: string[] } = {}): PlanInputs {
  return {
    now: t0 + 60_000,
    isProviderLost: (p) => (over.lost ?? []).includes(p),
    schedule: () => (over.place ? decision(over.place) : nothingFits),
    ...over,
  };
}

const condition = (status: GpuJobStatus, type: string) => status.conditions?.find((c) => c.type === type);

/** A job placed on `a` at t0+60s and seen Running at t0+61s. */
function runningOnA(): GpuJobStatus {
  const scheduled = planJob(job(), inputs({ place: 'a' })).status;
  return planJob(job(scheduled), inputs({ now: t0 + 61_000, report: { epoch: 1, phase: 'Running', gpuSeconds: 0 } })).status;
}

describe('planJob: Running after the attempt ends', () => {
  it('turns Running False when the attempt is lost and nothing can take the job', () => {
    const running = runningOnA();
    expect(condition(running, 'Running')).toMatchObject({ status: 'True', reason: 'PodsRunning' });
    const waiting = planJob(job(running), inputs({ now: t0 + 90_000, lost: ['a'] })).status;
    expect(waiting.phase).toBe('Pending');
    expect(condition(waiting, 'Running')).toMatchObject({ status: 'False', reason: 'AttemptEnded' });
    expect(condition(waiting, 'Running')?.message).toBe('attempt 1 on a ended Lost (ProviderLost)');
  });

  it('turns Running False when the job is placed again, and True again once the new attempt runs', () => {
    const rescheduled = planJob(job(runningOnA()), inputs({ now: t0 + 90_000, lost: ['a'], place: 'b' })).status;
    expect(rescheduled.phase).toBe('Scheduled');
    expect(condition(rescheduled, 'Running')).toMatchObject({ status: 'False', reason: 'AttemptEnded' });
    const again = planJob(job(rescheduled), inputs({ now: t0 + 95_000, report: { epoch: 2, phase: 'Running', gpuSeconds: 0 } })).status;
    expect(condition(again, 'Running')).toMatchObject({ status: 'True', reason: 'PodsRunning' });
  });

  it('leaves a job that never ran without a Running condition', () => {
    const waiting = planJob(job(), inputs()).status;
    expect(condition(waiting, 'Running')).toBeUndefined();
  });
});

describe('planJob: an escrow pinned to a provider that cannot take the job', () => {
  const pinned = (waitedMs: number, epoch = 1) => ({ pinnedEscrow: { epoch, provider: 'a', waitedMs } });

  it('waits on it within the bound', () => {
    const plan = planJob(job(), inputs({ ...pinned(119_000) }));
    expect(plan.status.attempts).toEqual([]);
    expect(plan.status.phase).toBe('Pending');
    expect(plan.assign).toBeUndefined();
  });

  it('past the bound, retires its epoch with a record the settlement refunds, and the next placement takes the next epoch', () => {
    const plan = planJob(job(), inputs({ ...pinned(120_000) }));
    expect(plan.status.attempts).toEqual([
      expect.objectContaining({ epoch: 1, provider: 'a', outcome: 'Cancelled', reason: NEVER_PLACED, faultOf: 'none', gpuSeconds: 0 }),
    ]);
    expect(plan.status.attempts?.[0]?.endTime).toBeDefined();
    expect(plan.status.attempts?.[0]?.message).toContain('its escrow pays a only, which could not take the job for 120s (0/1 providers fit: 1 not staked)');
    expect(plan.events.map((e) => e.reason)).toContain('EscrowReleased');
    expect(plan.status.attemptCount).toBe(0);
    expect(plan.requeueAfterMs).toBe(1_000);
    // Not an attempt at running: no provider is excluded, and it costs nothing.
    const next = planJob(job(plan.status), inputs({ now: t0 + 61_000, place: 'a' }));
    expect(next.assign).toMatchObject({ provider: 'a', epoch: 2 });
    expect(next.status.cost?.amount).toBe('0');
  });

  it('gives the escrow back at once when the job as it is now rules the provider out (a consumer who edits spec.placement cannot keep a bond locked)', () => {
    const regionEdited: ScheduleResult = { kind: 'unschedulable', reasons: { RegionNotAllowed: 1 }, message: '0/1 providers fit: 1 region eu-west not allowed' };
    const edited = (waitedMs: number, epoch = 1) => ({ pinnedEscrow: { epoch, provider: 'a', waitedMs, specChanged: true } });
    const plan = planJob(job(), inputs({ ...edited(1_000), schedule: () => regionEdited }));
    expect(plan.status.attempts).toEqual([expect.objectContaining({ epoch: 1, provider: 'a', outcome: 'Cancelled', reason: NEVER_PLACED, faultOf: 'none' })]);
    expect(plan.status.attempts?.[0]?.message).toBe(
      'never placed: its escrow pays a only, which cannot take the job as it is (0/1 providers fit: 1 region eu-west not allowed); the escrow is refunded and the job placed afresh',
    );
    expect(plan.requeueAfterMs).toBe(1_000);
    // A reason that passes by itself, alone or beside a lasting one, still waits out the bound.
    for (const reasons of [{ InsufficientIdle: 1 }, { RegionNotAllowed: 1, NotReady: 1 }] as Record<string, number>[]) {
      const waiting = planJob(job(), inputs({ ...edited(1_000), schedule: () => ({ kind: 'unschedulable', reasons, message: 'busy' }) }));
      expect(waiting.status.attempts).toEqual([]);
    }
    // Without an edit of the job, a lasting-looking reason is the provider's offer of the moment
    // (a pool gone while its device plugin restarts): the bound is waited out.
    expect(planJob(job(), inputs({ ...pinned(1_000), schedule: () => regionEdited })).status.attempts).toEqual([]);
    // Never more than MAX_NEVER_PLACED of them per job, however often the spec is edited.
    let status: GpuJobStatus | undefined;
    for (let i = 0; i < MAX_NEVER_PLACED + 3; i++) status = planJob(job(status), inputs({ ...edited(0, (status?.attempts?.length ?? 0) + 1), schedule: () => regionEdited })).status;
    expect(status?.attempts).toHaveLength(MAX_NEVER_PLACED);
  });

  it('ignores a pin for another epoch (a stale read) and any pin while an attempt runs', () => {
    expect(planJob(job(), inputs({ ...pinned(600_000, 2) })).status.attempts).toEqual([]);
    const running = runningOnA();
    const plan = planJob(job(running), inputs({ now: t0 + 70_000, ...pinned(600_000, 2) }));
    expect(plan.status.attempts?.map((a) => a.outcome)).toEqual(['Running']);
  });

  it('does the same for a job waiting for a budget below the minimum run on the pinned provider', () => {
    const plan = planJob(job(), inputs({ place: 'a', budgetLeft: 1n, ...pinned(120_000) }));
    expect(plan.assign).toBeUndefined();
    expect(plan.status.attempts?.[0]).toMatchObject({ epoch: 1, reason: NEVER_PLACED });
    expect(plan.status.attempts?.[0]?.message).toContain('its budget is below the minimum run');
  });

  it('does not count retired epochs against maxAttempts', () => {
    const spec = { faultTolerance: { maxAttempts: 1 } };
    const retired = planJob(job(undefined, spec), inputs({ ...pinned(120_000) })).status;
    const plan = planJob(job(retired, spec), inputs({ place: 'b' }));
    expect(plan.status.phase).toBe('Scheduled');
    expect(plan.assign).toMatchObject({ provider: 'b', epoch: 2 });
    const lost = planJob(job(plan.status, spec), inputs({ lost: ['b'], place: 'c' })).status;
    expect(lost.phase).toBe('Failed');
    expect(condition(lost, 'Finished')?.message).toBe('1 of 1 attempts used; the last ended: ProviderLost');
  });

  it('gives back an escrow that expires too soon even past MAX_NEVER_PLACED (the job would wait on it forever)', () => {
    let status: GpuJobStatus | undefined;
    for (let i = 0; i < MAX_NEVER_PLACED; i++) status = planJob(job(status), inputs({ ...pinned(120_000, i + 1) })).status;
    const last = MAX_NEVER_PLACED + 1;
    const plan = planJob(job(status), inputs({ place: 'a', budgetLeft: 360_000_000_000_000_000n, escrowSecondsLeft: 0, ...pinned(0, last) }));
    expect(plan.status.attempts).toHaveLength(MAX_NEVER_PLACED + 1);
    expect(plan.status.attempts?.at(-1)).toMatchObject({ epoch: last, reason: NEVER_PLACED });
    expect(plan.status.attempts?.at(-1)?.message).toContain('its escrow expires too soon');
  });

  it('retires at most MAX_NEVER_PLACED escrows per job, then waits on the last', () => {
    let status: GpuJobStatus | undefined;
    for (let i = 0; i < MAX_NEVER_PLACED; i++) status = planJob(job(status), inputs({ ...pinned(120_000, i + 1) })).status;
    expect(status?.attempts).toHaveLength(MAX_NEVER_PLACED);
    const plan = planJob(job(status), inputs({ ...pinned(600_000, MAX_NEVER_PLACED + 1) }));
    expect(plan.status.attempts).toHaveLength(MAX_NEVER_PLACED);
    expect(plan.status.phase).toBe('Pending');
  });
});
