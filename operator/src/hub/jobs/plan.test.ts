import { describe, expect, it } from 'vitest';
import type { GpuJob, GpuJobStatus } from '../../api/types.js';
import type { Decision, JobRequest, ScheduleResult } from '../../core/types.js';
import { prepareJob } from '../../core/job.js';
import { DEFAULT_SCHEDULER_CONFIG } from '../../core/scheduling/config.js';
import { type AttemptReport, isPaid, jobRequest, planJob, type PlanInputs } from './plan.js';
import { decision as placement, gpuJob, t0 } from './testing/fixtures.js';

/** A 2-replica job of 4 GPUs each. */
const job = (status?: GpuJobStatus, spec: Partial<GpuJob['spec']> = {}): GpuJob => gpuJob(status, { replicas: 2, gpusPerReplica: 4, ...spec });
const decision = (provider: string): Decision =>
  placement(provider, { gpusPerReplica: 4, assignments: [{ replica: 0, node: 'n0' }, { replica: 1, node: 'n1' }] });

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

/** Placed at t0+60s, seen Running by the hub at t0+61s, then `report` arrives `ranMs` later. */
const ranFor = (ranMs: number, report: AttemptReport, over: Parameters<typeof inputs>[0] = {}, spec: Partial<GpuJob['spec']> = {}) => {
  const scheduled = planJob(job(undefined, spec), inputs({ place: 'a', ...(over.budgetLeft !== undefined ? { budgetLeft: over.budgetLeft } : {}) })).status;
  const seen = planJob(job(scheduled, spec), inputs({ now: t0 + 61_000, report: { epoch: 1, phase: 'Running', gpuSeconds: 0 } })).status;
  return planJob(job(seen, spec), inputs({ now: t0 + 61_000 + ranMs, ...over, report }));
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
    // The Event says why as the condition does, not "Unschedulable" for a job that fits.
    expect(plan.events).toEqual([{ type: 'Normal', reason: 'InsufficientFunds', message: 'waiting for funds: consumer has 1 credit free' }]);
    const secrets = planJob(job(), inputs({ place: 'a', blockedBy: 'waiting for Secret ml/hf-token (spec.secrets names it)', blockedReason: 'WaitingForSecrets' }));
    expect(secrets.events.map((e) => e.reason)).toEqual(['WaitingForSecrets']);
    expect(secrets.status.conditions?.find((c) => c.type === 'Scheduled')?.reason).toBe('WaitingForSecrets');
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
    const plan = ranFor(450_000, { epoch: 1, phase: 'Succeeded', gpuSeconds: 3600 });
    expect(plan.status.phase).toBe('Succeeded');
    expect(plan.status.attempts?.[0]).toMatchObject({ outcome: 'Succeeded', faultOf: 'none' });
    expect(plan.status.cost).toEqual({ gpuSeconds: 3600, amount: '3.6' });
    expect(plan.status.conditions?.find((c) => c.type === 'Finished')).toMatchObject({ status: 'True', reason: 'Succeeded' });
  });

  it('moves the attempts of a provider lost with many others at once (the hub lost contact) without blaming it', () => {
    const plan = running(undefined, { lost: ['a'], place: 'b', isLossBlamed: (p) => p !== 'a' });
    expect(plan.status.attempts?.[0]).toMatchObject({ outcome: 'Lost', faultOf: 'unattributed', reason: 'ProviderUnreachable' });
    expect(plan.status.attempts?.[0]?.message).toContain('with many others at once');
    // Not paid either: the hub cannot tell when it stopped, and three colluding providers could
    // stage a mass silence to be paid for time nobody saw (a second review found it).
    expect(isPaid(plan.status.attempts![0]!)).toBe(false);
    expect(plan.cancel).toEqual([{ provider: 'a', epoch: 1, reason: 'ProviderLost' }]);
    expect(plan.assign).toMatchObject({ provider: 'b', epoch: 2 });
  });

  it('fails for good on the user\'s exit code, and still bills the delivered time', () => {
    const plan = ranFor(225_000, { epoch: 1, phase: 'Failed', gpuSeconds: 1800, exitCode: 2, reason: 'ContainerFailed', message: 'exit 2' });
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

// Market integrity (docs/settlement.md): providers do not grade themselves, the budget is a hard
// limit, and faults follow the table so no one profits from blaming another.
describe('planJob: market integrity', () => {
  const evicted = (message: string): AttemptReport => ({ epoch: 1, phase: 'Failed', gpuSeconds: 80, reason: 'Evicted', message: `pod j-0: ${message}` });

  it('bills no more than the hub saw running: an agent billing the attempt lifetime gets the running interval', () => {
    // 8 GPUs; placed at t0+60s, Running seen at t0+61s, Succeeded 60 s later, but the agent claims 11 minutes.
    const plan = ranFor(60_000, { epoch: 1, phase: 'Succeeded', gpuSeconds: 8 * 660 });
    expect(plan.status.attempts?.[0]?.gpuSeconds).toBe(8 * 60 + 8 * 5);
    expect(plan.status.attempts?.[0]?.runningTime).toBe(new Date(t0 + 61_000).toISOString());
  });

  it('bills nothing for an attempt the hub never saw running, and fails it as the provider\'s fault after the start timeout', () => {
    const spec = { faultTolerance: { startTimeoutSeconds: 300 } };
    const scheduled = planJob(job(undefined, spec), inputs({ place: 'a' })).status;
    const early = planJob(job(scheduled, spec), inputs({ now: t0 + 60_000 + 299_000, report: { epoch: 1, phase: 'Pending', gpuSeconds: 900 } }));
    // GPU time claimed before the gang runs is held to the hub's clock from when it first heard of
    // it: nothing yet (and then at most all but one replica's GPUs).
    expect(early.status.attempts?.[0]).toMatchObject({ outcome: 'Running', gpuSeconds: 0, firstUsageTime: new Date(t0 + 359_000).toISOString() });
    expect(early.requeueAfterMs).toBeGreaterThanOrEqual(1_000);
    expect(early.requeueAfterMs).toBeLessThanOrEqual(2_000);
    const late = planJob(job(early.status, spec), inputs({ now: t0 + 60_000 + 300_000, place: 'b', report: { epoch: 1, phase: 'Pending', gpuSeconds: 900 } }));
    expect(late.status.attempts?.[0]).toMatchObject({ outcome: 'Failed', faultOf: 'provider', reason: 'StartTimeout', gpuSeconds: 0 });
    expect(late.cancel).toEqual([{ provider: 'a', epoch: 1, reason: 'StartTimeout' }]);
    expect(late.assign).toMatchObject({ provider: 'b', epoch: 2 });
    expect(isPaid(late.status.attempts![0]!)).toBe(false);
    expect(late.status.cost?.amount).toBe('0');
  });

  it('bills the replicas that ran when the gang never all starts: a gang held back by its own init containers is not free compute', () => {
    // The attack: replica 0 computes on its 4 GPUs while replica 1's init container sleeps until
    // the start timeout; the attempt ended unpaid and was retried, up to maxAttempts, all free.
    const spec = { faultTolerance: { startTimeoutSeconds: 600 } };
    const scheduled = planJob(job(undefined, spec), inputs({ place: 'a' })).status;
    const pending = (at: number, gpuSeconds: number) =>
      ({ epoch: 1, phase: 'Pending' as const, gpuSeconds, reason: 'InitContainersNotDone', message: 'pod j-1 init container wait: running' });
    const first = planJob(job(scheduled, spec), inputs({ now: t0 + 60_000 + 10_000, report: pending(10, 40) }));
    expect(first.status.attempts?.[0]?.firstUsageTime).toBe(new Date(t0 + 70_000).toISOString());
    expect(first.status.attempts?.[0]?.runningTime).toBeUndefined();
    const timedOut = planJob(job(first.status, spec), inputs({ now: t0 + 60_000 + 600_000, place: 'b', report: pending(600, 4 * 600) }));
    const ended = timedOut.status.attempts![0]!;
    // Nobody's fault (the job's init containers), but 4 GPUs ran from the hub's first word of them:
    // at most all but one replica's GPUs (4 of 8) since then, plus the slack.
    expect(ended).toMatchObject({ outcome: 'Failed', faultOf: 'unattributed', reason: 'InitContainersNotDone' });
    expect(ended.gpuSeconds).toBe(Math.min(4 * 600, 4 * 590 + 8 * 5));
    // Claiming the whole gang's GPUs gets no more.
    const greedy = planJob(job(first.status, spec), inputs({ now: t0 + 60_000 + 600_000, place: 'b', report: pending(600, 8 * 600) }));
    expect(greedy.status.attempts![0]!.gpuSeconds).toBe(4 * 590 + 8 * 5);
    expect(isPaid(ended)).toBe(true);
    expect(timedOut.status.cost?.amount).not.toBe('0');
    // A gang that never used a GPU before its timeout still pays nothing.
    const idle = planJob(job(scheduled, spec), inputs({ now: t0 + 60_000 + 600_000, place: 'b', report: { epoch: 1, phase: 'Pending', gpuSeconds: 0, reason: 'InitContainersNotDone' } }));
    expect(idle.status.attempts?.[0]).toMatchObject({ faultOf: 'unattributed', gpuSeconds: 0 });
    expect(isPaid(idle.status.attempts![0]!)).toBe(false);
  });

  it('pays nothing for a one-replica start that never happened, whatever GPU time its agent claims, and does not place the job there again after a paid part-start', () => {
    // The attack: assigned, the agent creates nothing and reports Pending, ImagePullFailed, with GPU
    // time; the start timeout ended it nobody's fault and paid the claim for the whole timeout, and
    // the job could go to the same provider again, paid again.
    const spec = { replicas: 1, faultTolerance: { startTimeoutSeconds: 600 } };
    const scheduled = planJob(job(undefined, spec), inputs({ place: 'a' })).status;
    const lie = (now: number) => inputs({ now, place: 'a', report: { epoch: 1, phase: 'Pending', gpuSeconds: 1, reason: 'ImagePullFailed', message: 'pod j-0 container main: ErrImagePull' } });
    const said = planJob(job(scheduled, spec), lie(t0 + 61_000));
    expect(said.status.attempts?.[0]?.firstUsageTime).toBeUndefined();
    const over = planJob(job(said.status, spec), { ...lie(t0 + 60_000 + 600_000), report: { epoch: 1, phase: 'Pending', gpuSeconds: 4 * 600, reason: 'ImagePullFailed' } });
    expect(over.status.attempts?.[0]).toMatchObject({ outcome: 'Failed', faultOf: 'unattributed', gpuSeconds: 0 });
    expect(isPaid(over.status.attempts![0]!)).toBe(false);
    // A gang paid for its part-start is placed elsewhere next.
    const gang = { faultTolerance: { startTimeoutSeconds: 600 } };
    const placed = planJob(job(undefined, gang), inputs({ place: 'a' })).status;
    const part = planJob(job(placed, gang), inputs({ now: t0 + 70_000, report: { epoch: 1, phase: 'Pending', gpuSeconds: 40, reason: 'ImagePullFailed' } })).status;
    const retried = inputs({ now: t0 + 60_000 + 600_000, place: 'b', report: { epoch: 1, phase: 'Pending', gpuSeconds: 4 * 590, reason: 'ImagePullFailed' } });
    const next = planJob(job(part, gang), retried);
    expect(isPaid(next.status.attempts![0]!)).toBe(true);
    expect(retried.requests.at(-1)?.excludeProviders).toEqual(['a']);
    expect(next.assign?.provider).toBe('b');
    // An image that never pulled anywhere, nothing paid: the provider is not excluded for it.
    const unpaid = inputs({ now: t0 + 60_000 + 600_000, place: 'b', report: { epoch: 1, phase: 'Pending', gpuSeconds: 0, reason: 'ImagePullFailed' } });
    planJob(job(placed, gang), unpaid);
    expect(unpaid.requests.at(-1)?.excludeProviders).toEqual([]);
  });

  it("does not let the job's own image, init containers or short timeout make a start timeout the provider's fault", () => {
    const at = (seconds: number, hub: { startBlameAfterSeconds?: number } = {}) => {
      const spec = { faultTolerance: { startTimeoutSeconds: seconds } };
      const scheduled = planJob(job(undefined, spec), inputs({ place: 'a' })).status;
      return (report: { reason?: string; message?: string }) =>
        planJob(job(scheduled, spec), { ...inputs({ now: t0 + 60_000 + seconds * 1000, place: 'b', report: { epoch: 1, phase: 'Pending', gpuSeconds: 0, ...report } }), ...hub });
    };
    // An image that cannot be pulled, even at a 5 s timeout: nobody's fault, retried elsewhere.
    const pull = at(5)({ reason: 'ImagePullFailed', message: 'pod j-0 container main: ErrImagePull: not found' });
    expect(pull.status.attempts?.[0]).toMatchObject({ outcome: 'Failed', faultOf: 'unattributed', reason: 'ImagePullFailed', gpuSeconds: 0 });
    expect(pull.status.attempts?.[0]?.message).toContain('ErrImagePull: not found');
    expect(pull.cancel).toEqual([{ provider: 'a', epoch: 1, reason: 'StartTimeout' }]);
    expect(pull.assign).toMatchObject({ provider: 'b', epoch: 2 });
    // Not paid, whoever caused it (a receipt for it is refused, the escrow refunded at once).
    expect(isPaid(pull.status.attempts![0]!)).toBe(false);
    expect(at(5)({ reason: 'InitContainersNotDone' }).status.attempts?.[0]).toMatchObject({ faultOf: 'unattributed', reason: 'InitContainersNotDone' });
    expect(at(5)({ reason: 'ContainerConfigError' }).status.attempts?.[0]).toMatchObject({ faultOf: 'unattributed', reason: 'ContainerConfigError' });
    // Pods the kubelet is still creating: not the provider's within a timeout the job made short...
    expect(at(60)({ reason: 'ContainersNotStarted' }).status.attempts?.[0]).toMatchObject({ faultOf: 'unattributed', reason: 'ContainersNotStarted' });
    // ... but after five minutes they are, as are pods never bound or a reason the hub does not know.
    expect(at(300)({ reason: 'ContainersNotStarted' }).status.attempts?.[0]).toMatchObject({ faultOf: 'provider', reason: 'StartTimeout' });
    expect(at(300)({}).status.attempts?.[0]).toMatchObject({ faultOf: 'provider', reason: 'StartTimeout' });
    expect(at(300)({ reason: 'ContainerFailed' }).status.attempts?.[0]).toMatchObject({ faultOf: 'provider', reason: 'StartTimeout' });
    // The attack: a burst of jobs with a 5 s start timeout aimed at one provider, whose agent is
    // still making namespaces and binding gangs: each attempt ended as the provider's fault, and
    // each was slashed. A timeout shorter than the hub's bound blames no one, whatever the pods wait on.
    expect(at(5)({}).status.attempts?.[0]).toMatchObject({ outcome: 'Failed', faultOf: 'unattributed', reason: 'StartTimeout' });
    expect(at(5)({ reason: 'ContainerFailed' }).status.attempts?.[0]).toMatchObject({ faultOf: 'unattributed', reason: 'StartTimeout' });
    expect(at(299)({}).status.attempts?.[0]).toMatchObject({ faultOf: 'unattributed', reason: 'StartTimeout' });
    // A hub that holds its providers to a faster start says so (fedgpu hub --start-blame-after).
    expect(at(5, { startBlameAfterSeconds: 5 })({}).status.attempts?.[0]).toMatchObject({ faultOf: 'provider', reason: 'StartTimeout' });
    // Pods no node can take for the cpu or memory the template asks for (100000 CPUs): the job's
    // choice, never a slash, and not paid.
    const huge = at(5)({ reason: 'InsufficientResources', message: 'pod j-0 cannot be scheduled: 0/1 nodes are available: 1 Insufficient cpu.' });
    expect(huge.status.attempts?.[0]).toMatchObject({ outcome: 'Failed', faultOf: 'unattributed', reason: 'InsufficientResources' });
    expect(isPaid(huge.status.attempts![0]!)).toBe(false);
  });

  it("does not let a template the provider's admission refuses make the provider answer for it", () => {
    // The attack: 1Ti of ephemeral-storage against the agent's 200Gi LimitRange draws a 403 on
    // every provider; taken as the provider's refusal, each would be slashed and lose reputation.
    const scheduled = planJob(job(), inputs({ place: 'a' })).status;
    const refused = (reason: string, message: string) =>
      planJob(job(scheduled), inputs({ now: t0 + 61_000, place: 'b', report: { epoch: 1, phase: 'Failed', gpuSeconds: 0, reason, message } }));
    const limit = refused('AdmissionRefused', 'AdmissionRefused: pods "fj-x" is forbidden: maximum ephemeral-storage usage per Container is 200Gi, but limit is 1Ti');
    expect(limit.status.attempts?.[0]).toMatchObject({ outcome: 'Failed', faultOf: 'unattributed', reason: 'AdmissionRefused' });
    expect(isPaid(limit.status.attempts![0]!)).toBe(false);
    expect(limit.assign).toMatchObject({ provider: 'b', epoch: 2 });
    // An agent from before AdmissionRefused calls the same refusal ProviderRefused: still nobody's.
    for (const message of [
      'ProviderRefused: pods "fj-x" is forbidden: maximum ephemeral-storage usage per Container is 200Gi, but limit is 1Ti',
      'ProviderRefused: pods "fj-x" is forbidden: exceeded quota: fedgpu-attempts, requested: pods=2, used: pods=1, limited: pods=1',
      'ProviderRefused: admission webhook "images.example.com" denied the request: registry not allowed',
    ]) {
      expect(refused('ProviderRefused', message).status.attempts?.[0], message).toMatchObject({ faultOf: 'unattributed', reason: 'AdmissionRefused' });
    }
    // The agent's own rights, and a namespace the provider loosened, stay the provider's.
    expect(refused('ProviderRefused', 'ProviderRefused: pods is forbidden: User "system:serviceaccount:p:agent" cannot create resource "pods" in API group "" in the namespace "t"').status.attempts?.[0])
      .toMatchObject({ faultOf: 'provider', reason: 'ProviderPreempted' });
    expect(refused('TenantNamespaceNotRestricted', 'the namespace does not enforce restricted').status.attempts?.[0]).toMatchObject({ faultOf: 'provider' });
    // A placement the agent refused before making anything (its node cordoned since): nobody's, not paid, elsewhere.
    const moved = refused('PlacementRefused', 'PlacementRefused: node gpu-0 is cordoned: its owner has taken it back');
    expect(moved.status.attempts?.[0]).toMatchObject({ outcome: 'Failed', faultOf: 'unattributed', reason: 'PlacementRefused' });
    expect(isPaid(moved.status.attempts![0]!)).toBe(false);
    expect(moved.assign).toMatchObject({ provider: 'b', epoch: 2 });
    // An egress profile the owner stopped offering after the market saw it: the same, not the
    // consumer's failed container (which would end the job for good).
    const egress = refused('EgressNotOffered', 'EgressNotOffered: node gpu-0: pool does not offer egress internet');
    expect(egress.status.attempts?.[0]).toMatchObject({ outcome: 'Failed', faultOf: 'unattributed', reason: 'PlacementRefused' });
    expect(isPaid(egress.status.attempts![0]!)).toBe(false);
    expect(egress.assign).toMatchObject({ provider: 'b', epoch: 2 });
    // An attempt a Resync re-sent without its Secrets, refused by an agent that had not started it.
    const unsecret = refused('SecretsUnavailable', 'SecretsUnavailable: the hub sent this attempt without the Secrets its job names (it could not read them); nothing was started');
    expect(unsecret.status.attempts?.[0]).toMatchObject({ outcome: 'Failed', faultOf: 'unattributed', reason: 'PlacementRefused' });
    expect(isPaid(unsecret.status.attempts![0]!)).toBe(false);
    expect(unsecret.assign).toMatchObject({ epoch: 2 });
  });

  it('places a job refused by a provider elsewhere next, so the refusals do not use up its attempts there', () => {
    for (const reason of ['AdmissionRefused', 'PlacementRefused']) {
      const scheduled = planJob(job(), inputs({ place: 'a' })).status;
      const next = inputs({ now: t0 + 61_000, place: 'b', report: { epoch: 1, phase: 'Failed', gpuSeconds: 0, reason, message: `${reason}: no` } });
      planJob(job(scheduled), next);
      expect(next.requests.at(-1)?.excludeProviders, reason).toEqual(['a']);
    }
    const scheduled = planJob(job(), inputs({ place: 'a' })).status;
    const timedOut = inputs({ now: t0 + 60_000 + 5_000, place: 'b', report: { epoch: 1, phase: 'Pending', gpuSeconds: 0, reason: 'InsufficientResources', message: 'pod j-0 cannot be scheduled: 1 Insufficient cpu' } });
    const plan = planJob(job(scheduled, { faultTolerance: { startTimeoutSeconds: 5 } }), timedOut);
    expect(plan.status.attempts?.[0]?.reason).toBe('InsufficientResources');
    expect(timedOut.requests.at(-1)?.excludeProviders).toEqual(['a']);
  });

  it('judges a "never started" refusal of an attempt it saw Running as the reclaim it is', () => {
    // The agent restarted after the owner drained a node since cordoned: the resync finds no pods
    // and refuses the placement. The attempt ran; nothing about it was never started.
    const refusal = { epoch: 1, phase: 'Failed' as const, gpuSeconds: 120, reason: 'PlacementRefused', message: 'PlacementRefused: node gpu-0 is cordoned: its owner has taken it back' };
    const announced = ranFor(120_000, refusal, { reclaimAnnounced: () => true });
    expect(announced.status.attempts?.[0]).toMatchObject({ outcome: 'Reclaimed', faultOf: 'owner-reclaim' });
    expect(isPaid(announced.status.attempts![0]!)).toBe(true);
    const unannounced = ranFor(120_000, refusal, { reclaimAnnounced: () => false });
    expect(unannounced.status.attempts?.[0]).toMatchObject({ outcome: 'Failed', faultOf: 'provider', reason: 'ReclaimWithoutNotice' });
    // The other "nothing was started" refusals too: an agent (or its owner, narrowing the pool's
    // egress and restarting it) cannot end a running attempt unblamed by naming one of them.
    for (const reason of ['EgressNotOffered', 'SecretsUnavailable']) {
      const ended = ranFor(120_000, { ...refusal, reason, message: `${reason}: no` }, { reclaimAnnounced: () => false });
      expect(ended.status.attempts?.[0], reason).toMatchObject({ outcome: 'Failed', faultOf: 'provider', reason: 'ReclaimWithoutNotice' });
    }
  });

  it('defaults the start timeout to 10 minutes', () => {
    const scheduled = planJob(job(), inputs({ place: 'a' })).status;
    expect(planJob(job(scheduled), inputs({ now: t0 + 60_000 + 599_000 })).status.attempts?.[0]?.outcome).toBe('Running');
    expect(planJob(job(scheduled), inputs({ now: t0 + 60_000 + 600_000 })).status.attempts?.[0]?.reason).toBe('StartTimeout');
  });

  it('records on the attempt the names of the Secrets it is sent with (exec and port-forward check them, whatever the spec says later)', () => {
    const withSecrets = planJob(job(undefined, { secrets: [{ name: 'hf-token', env: [{ name: 'HF_TOKEN', key: 'token' }] }, { name: 'wandb', mountPath: '/w' }] }), inputs({ place: 'a' }));
    expect(withSecrets.status.attempts?.[0]?.secretNames).toEqual(['hf-token', 'wandb']);
    expect(planJob(job(), inputs({ place: 'a' })).status.attempts?.[0]?.secretNames).toBeUndefined();
  });

  it('puts what the budget covers at the placed price on the attempt and the Assign', () => {
    const plan = planJob(job(), inputs({ place: 'a', budgetLeft: 360_000_000_000_000_000n })); // 0.36 credits at 3.6/GPU-h
    expect(plan.assign?.coveredGpuSeconds).toBe(360);
    expect(plan.status.attempts?.[0]?.coveredGpuSeconds).toBe(360);
  });

  it('gives the attempt no more GPU-seconds than fit before its escrow\'s settle window, and waits on an escrow about to expire', () => {
    // 0.36 credits cover 360 GPU-seconds; an escrow whose settle window begins in 675 s leaves
    // that less the 10 min start timeout, 30 s grace and 5 s slack: 40 s × 8 GPUs (at least the
    // minimum run, 60, plus 30 s of grace on 8 GPUs).
    const capped = planJob(job(), inputs({ place: 'a', budgetLeft: 360_000_000_000_000_000n, escrowSecondsLeft: 675 }));
    expect(capped.assign?.coveredGpuSeconds).toBe(40 * 8);
    expect(capped.status.attempts?.[0]?.coveredGpuSeconds).toBe(40 * 8);
    const roomy = planJob(job(), inputs({ place: 'a', budgetLeft: 360_000_000_000_000_000n, escrowSecondsLeft: 30 * 24 * 3600 }));
    expect(roomy.assign?.coveredGpuSeconds).toBe(360);
    const expiring = planJob(job(), inputs({ place: 'a', budgetLeft: 360_000_000_000_000_000n, escrowSecondsLeft: 600 }));
    expect(expiring.assign).toBeUndefined();
    expect(expiring.status.conditions?.find((c) => c.type === 'Scheduled')).toMatchObject({ status: 'False', reason: 'EscrowExpiring' });
    expect(expiring.status.message).toMatch(/^waiting: the escrow of attempt 1 expires too soon to pay the hub's minimum run of 60 GPU-seconds plus 30 s of checkpoint grace on 8 GPU\(s\), 300 GPU-seconds/);
  });

  it('leaves a job with a deadline its budget while the deadline stops it before the escrow\'s settle window', () => {
    // Created at t0, placed at t0+60s with a 1-hour deadline; the escrow's window begins in 1 h 10 min.
    const spec = { activeDeadlineSeconds: 3600 };
    // 36 credits cover 36,000 GPU-seconds, more than the 1 h 10 min less the start timeout × 8 GPUs.
    const plan = planJob(job(undefined, spec), inputs({ place: 'a', budgetLeft: 36_000_000_000_000_000_000n, escrowSecondsLeft: 4200 }));
    expect(plan.assign?.coveredGpuSeconds).toBe(36_000);
    // 40 s of deadline left, shorter than the start timeout: placed too.
    const short = planJob(job(undefined, { activeDeadlineSeconds: 100 }), inputs({ place: 'a', budgetLeft: 360_000_000_000_000_000n, escrowSecondsLeft: 200 }));
    expect(short.assign?.coveredGpuSeconds).toBe(360);
  });

  it('never turns an escrow with no time left into an attempt without a limit, whatever the minimum run', () => {
    const plan = planJob(job(), inputs({ place: 'a', budgetLeft: 360_000_000_000_000_000n, escrowSecondsLeft: 0, minimumRunGpuSeconds: 0 }));
    expect(plan.assign).toBeUndefined();
    expect(plan.status.attempts ?? []).toEqual([]);
    expect(plan.status.conditions?.find((c) => c.type === 'Scheduled')).toMatchObject({ status: 'False', reason: 'EscrowExpiring' });
  });

  it('waits, saying why, when the budget cannot cover the minimum run at the placed price', () => {
    const plan = planJob(job(), inputs({ place: 'a', budgetLeft: 1_000_000_000_000n, minimumRunGpuSeconds: 60 })); // 0.000001 credits
    expect(plan.assign).toBeUndefined();
    expect(plan.status.phase).toBe('Pending');
    expect(plan.status.message).toMatch(/^waiting for budget: the 0.000001 credits left for attempt 1 cover 0 GPU-seconds at 3.6\/GPU-hour on a, less than the hub's minimum run of 60 GPU-seconds plus 30 s of checkpoint grace on 8 GPU\(s\), 300 GPU-seconds \(0.3 credits\)/);
    expect(plan.status.conditions?.find((c) => c.type === 'Scheduled')).toMatchObject({ status: 'False', reason: 'BudgetBelowMinimumRun' });
  });

  it('waits until the budget covers the checkpoint grace of every GPU too (the attack: a budget of 60 GPU-seconds and an hour of grace on 8 GPUs, unpaid)', () => {
    const spec = { faultTolerance: { checkpoint: { gracePeriodSeconds: 3600 } } };
    // 3.6 credits/GPU-hour: 0.06 credits = 60 GPU-seconds, the minimum run alone.
    const short = planJob(job(undefined, spec), inputs({ place: 'a', budgetLeft: 60_000_000_000_000_000n }));
    expect(short.assign).toBeUndefined();
    expect(short.status.message).toContain('less than the hub\'s minimum run of 60 GPU-seconds plus 3600 s of checkpoint grace on 8 GPU(s), 28860 GPU-seconds (28.86 credits)');
    // Enough for both: placed, and the agent's stop leaves the grace inside what is covered.
    const enough = planJob(job(undefined, spec), inputs({ place: 'a', budgetLeft: 28_860_000_000_000_000_000n }));
    expect(enough.assign?.coveredGpuSeconds).toBe(28_860);
  });

  it('ends the job as the consumer\'s when the agent stops it for budget, and bills at most the covered GPU-seconds', () => {
    const plan = ranFor(60_000, { epoch: 1, phase: 'Failed', gpuSeconds: 400, reason: 'BudgetExhausted', message: 'the escrow covers 360 GPU-seconds' }, { budgetLeft: 360_000_000_000_000_000n });
    expect(plan.status.phase).toBe('Failed');
    expect(plan.status.attempts?.[0]).toMatchObject({ outcome: 'Failed', faultOf: 'user', reason: 'BudgetExhausted', gpuSeconds: 360 });
    expect(plan.status.conditions?.find((c) => c.type === 'Finished')?.reason).toBe('BudgetExhausted');
    expect(plan.status.cost?.amount).toBe('0.36');
    expect(plan.assign).toBeUndefined();
  });

  it('stops a running attempt itself when its clock says the budget is spent and the agent is silent', () => {
    // 360 GPU-seconds over 8 GPUs = 45 s, + 30 s grace + 5 s slack = 80 s after Running was seen.
    const scheduled = planJob(job(), inputs({ place: 'a', budgetLeft: 360_000_000_000_000_000n })).status;
    const seen = planJob(job(scheduled), inputs({ now: t0 + 61_000, report: { epoch: 1, phase: 'Running', gpuSeconds: 0 } }));
    expect(seen.requeueAfterMs).toBe(80_500);
    expect(seen.status.budget).toMatchObject({ used: '0', attemptLeftGpuSeconds: 360 });
    const before = planJob(job(seen.status), inputs({ now: t0 + 61_000 + 79_000, report: { epoch: 1, phase: 'Running', gpuSeconds: 100 } }));
    expect(before.status.attempts?.[0]?.outcome).toBe('Running');
    expect(before.status.budget).toMatchObject({ used: '0.1', attemptLeftGpuSeconds: 260 });
    const after = planJob(job(before.status), inputs({ now: t0 + 61_000 + 80_000, report: { epoch: 1, phase: 'Running', gpuSeconds: 100 } }));
    expect(after.status.attempts?.[0]).toMatchObject({ outcome: 'Failed', faultOf: 'user', reason: 'BudgetExhausted' });
    expect(after.status.phase).toBe('Failed');
    expect(after.cancel).toEqual([{ provider: 'a', epoch: 1, reason: 'BudgetExhausted' }]);
  });

  it('shows the budget limit, used and left from spec.budget.maxTotal', () => {
    const spec = { budget: { maxPricePerGpuHour: '3.6', maxTotal: '1' } };
    const plan = ranFor(30_000, { epoch: 1, phase: 'Running', gpuSeconds: 200 }, {}, spec);
    expect(plan.status.budget).toMatchObject({ limit: '1', used: '0.2', left: '0.8' });
  });

  it('an eviction for exceeding the pod\'s own limits is the consumer\'s: no retry, no provider fault, delivered time paid', () => {
    const plan = ranFor(10_000, evicted('Usage of EmptyDir volume "scratch" exceeds the limit "1Gi". '), { place: 'b' });
    expect(plan.status.attempts?.[0]).toMatchObject({ outcome: 'Failed', faultOf: 'user', reason: 'EvictedOverLimit', gpuSeconds: 80 });
    expect(plan.status.phase).toBe('Failed');
    expect(plan.assign).toBeUndefined();
  });

  it('a node-pressure eviction is unattributed: retried (the same provider is allowed), never the provider\'s fault', () => {
    const i = inputs({ place: 'b' });
    const scheduled = planJob(job(), inputs({ place: 'a' })).status;
    const seen = planJob(job(scheduled), inputs({ now: t0 + 61_000, report: { epoch: 1, phase: 'Running', gpuSeconds: 0 } })).status;
    const plan = planJob(job(seen), { ...i, now: t0 + 71_000, report: evicted('The node was low on resource: memory. ') });
    expect(plan.status.attempts?.[0]).toMatchObject({ outcome: 'Failed', faultOf: 'unattributed', reason: 'Evicted' });
    expect(i.requests[0]?.excludeProviders).toEqual([]);
    expect(plan.assign?.epoch).toBe(2);
  });

  it('pods deleted by someone other than the agent are the provider\'s fault', () => {
    const plan = ranFor(10_000, { epoch: 1, phase: 'Failed', gpuSeconds: 80, reason: 'PodsDeleted', message: 'pod(s) j-0 deleted by someone other than the agent' }, { place: 'b' });
    expect(plan.status.attempts?.[0]).toMatchObject({ outcome: 'Failed', faultOf: 'provider', reason: 'PodsDeleted' });
    expect(plan.assign).toMatchObject({ provider: 'b', epoch: 2 });
    expect(plan.status.cost?.amount).toBe('0');
  });

  it('a reclaim the hub saw announced is the owner\'s; one it did not is the provider\'s fault, unpaid', () => {
    const reclaim: AttemptReport = { epoch: 1, phase: 'Reclaimed', gpuSeconds: 80, reason: 'OwnerReclaim', message: 'the owner cordoned node n0' };
    const announced = ranFor(10_000, reclaim, { place: 'b', reclaimAnnounced: (p, cause, nodes, since) => p === 'a' && cause === 'owner-cordon' && nodes.includes('n0') && since === t0 + 60_000 });
    expect(announced.status.attempts?.[0]).toMatchObject({ outcome: 'Reclaimed', faultOf: 'owner-reclaim', reason: 'OwnerReclaim' });
    expect(announced.status.cost?.amount).toBe('0.08');
    const relabelled = ranFor(10_000, reclaim, { place: 'b', reclaimAnnounced: () => false });
    expect(relabelled.status.attempts?.[0]).toMatchObject({ outcome: 'Failed', faultOf: 'provider', reason: 'ReclaimWithoutNotice' });
    expect(relabelled.status.attempts?.[0]?.message).toMatch(/no node of the attempt \(n0, n1\) was cordoned/);
    expect(relabelled.status.cost?.amount).toBe('0');
    expect(relabelled.events.map((e) => e.reason)).toContain('ReclaimWithoutNotice');
  });
});

describe('planJob: a hub without a chain', () => {
  it('says so on every job, running or finished: Settled=False, NoChain', () => {
    const pending = planJob(job(), inputs({ noChain: true }));
    expect(pending.status.conditions?.find((c) => c.type === 'Settled')).toMatchObject({ status: 'False', reason: 'NoChain' });
    const done = running({ epoch: 1, phase: 'Succeeded', gpuSeconds: 10 }).status;
    const finished = planJob(job(done), inputs({ noChain: true }));
    expect(finished.status.conditions?.find((c) => c.type === 'Settled')).toMatchObject({ status: 'False', reason: 'NoChain' });
    expect(planJob(job(), inputs()).status.conditions?.find((c) => c.type === 'Settled')).toBeUndefined();
  });
});

describe('planJob: the hub-seen interval starts when the report arrived', () => {
  it('uses the arrival time of the first Running report, not the (later) reconcile', () => {
    const scheduled = planJob(job(), inputs({ place: 'a' })).status;
    const plan = planJob(job(scheduled), inputs({ now: t0 + 90_000, report: { epoch: 1, phase: 'Running', gpuSeconds: 0, firstRunningAt: t0 + 70_000 } }));
    expect(plan.status.attempts?.[0]?.runningTime).toBe(new Date(t0 + 70_000).toISOString());
  });
});

describe('jobRequest: what one assignment may carry', () => {
  it('finds a template sent once per replica past what an Assign may carry invalid, saying the sizes (the attack: an Assign over 16 MiB ends the provider stream)', () => {
    const big = { spec: { containers: [{ name: 'main', image: 'train', args: ['x'.repeat(1024 * 1024)] }] } };
    const request = jobRequest(job(undefined, { replicas: 12, template: big as never }), []);
    expect(request.hostProblems).toEqual([expect.stringMatching(/^spec\.template is sent to the provider once per replica: 12 × \d+ bytes = 12\.0 MiB, more than the 8\.0 MiB one assignment may carry$/)]);
    const prepared = prepareJob(request, DEFAULT_SCHEDULER_CONFIG);
    expect(prepared).toEqual({ invalid: request.hostProblems![0] });
    expect(jobRequest(job(undefined, { replicas: 4, template: big as never }), []).hostProblems).toBeUndefined();
  });
});

describe('planJob: a start timeout judged just after a take-over', () => {
  it('waits for the agent report before judging it (the bad image is the job\'s; judged blind, the provider was blamed and slashed)', () => {
    const spec = { faultTolerance: { startTimeoutSeconds: 600 } };
    const scheduled = planJob(job(undefined, spec), inputs({ place: 'a' })).status;
    const at = t0 + 60_000 + 600_000;
    // A new leader: no report in memory yet, within its grace.
    const blind = planJob(job(scheduled, spec), { ...inputs({ now: at, place: 'b' }), awaitReportUntilMs: at + 20_000 });
    expect(blind.status.attempts?.[0]?.outcome).toBe('Running');
    expect(blind.assign).toBeUndefined();
    // The agent's report arrives: judged on it, nobody's fault.
    const told = planJob(job(scheduled, spec), { ...inputs({ now: at + 2_000, place: 'b', report: { epoch: 1, phase: 'Pending', gpuSeconds: 0, reason: 'ImagePullFailed', message: 'ErrImagePull' } }), awaitReportUntilMs: at + 20_000 });
    expect(told.status.attempts?.[0]).toMatchObject({ outcome: 'Failed', faultOf: 'unattributed', reason: 'ImagePullFailed' });
    // No report by the end of the grace: judged as before (the provider's).
    const silent = planJob(job(scheduled, spec), { ...inputs({ now: at + 20_000, place: 'b' }), awaitReportUntilMs: at + 20_000 });
    expect(silent.status.attempts?.[0]).toMatchObject({ outcome: 'Failed', faultOf: 'provider', reason: 'StartTimeout' });
  });
});
