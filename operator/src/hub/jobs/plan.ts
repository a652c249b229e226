import { JobConditions } from '../../api/constants.js';
import type { Condition, GpuJob, GpuJobStatus, JobAttempt } from '../../api/types.js';
import { attributeFault, classifyEviction, hurtsProvider, startBlockerOf, type AttemptEnd, type FaultAttribution } from '../../core/fault.js';
import { attemptSeenGpuSeconds, billableGpuSeconds, budgetStopAtMs, coveredGpuSeconds, minimumRunShortfall } from '../../core/budget.js';
import { escrowRunwayGpuSeconds } from '../../core/escrow-lifetime.js';
import { costOfGpuSeconds, formatMoney, parseMoney } from '../../core/money.js';
import type { Decision, JobRequest, ScheduleResult } from '../../core/types.js';
import { setCondition } from '../../runtime/conditions.js';
import { egressOf } from './market-view.js';
import { replicaAsk, type BoundPodSpec } from '../../core/isolation/share.js';
import { MAX_ASSIGN_TEMPLATE_BYTES } from '../../protocol/limits.js';

// What a GpuJob should look like next, decided from one snapshot of the world: no I/O. The
// reconciler reads the job, the market and the latest attempt report, calls planJob, then carries
// out the plan: write the status first (so a crash never loses an assignment), then send.

export type ReportPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Reclaimed' | 'Cancelled';

/** The agent's latest report for the job's current epoch. */
export interface AttemptReport {
  epoch: number;
  phase: ReportPhase;
  gpuSeconds: number;
  exitCode?: number;
  reason?: string;
  message?: string;
  /** When the hub received the first Running (or Succeeded) report of this epoch (its clock, ms). */
  firstRunningAt?: number;
}

export interface PlanInputs {
  now: number;
  /** Providers that are lost (Ready=False after providerLostAfter) or gone. */
  isProviderLost: (provider: string) => boolean;
  /** Whether a lost provider answers for its attempts (false: lost with many at once, HubLostContact); default true. */
  isLossBlamed?: (provider: string) => boolean;
  report?: AttemptReport;
  /** Runs the scheduler for this job; called only when the job needs a placement. */
  schedule: (request: JobRequest) => ScheduleResult;
  /** Why the job cannot be placed yet although GPUs may fit (e.g. the consumer cannot cover it). */
  blockedBy?: string;
  /** Token units the next attempt may spend (its escrow, or maxTotal less what earlier attempts used); undefined: no limit. */
  budgetLeft?: bigint;
  /** The hub's minimum run: a placement whose budget covers fewer GPU-seconds at the placed price waits (default 60). */
  minimumRunGpuSeconds?: number;
  /** A start timeout shorter than this is nobody's fault (default MIN_BLAMED_START_SECONDS, core/fault.ts). */
  startBlameAfterSeconds?: number;
  /**
   * Until when a start timeout with no report from the agent waits for one: a new leader (or a
   * restarted hub) has no reports in memory until agents reconnect and send their state, and what
   * the pods wait for decides whose fault the timeout is. Judged without it, a job stuck on its own
   * bad image would be blamed on (and slashed from) its provider whenever a failover came first.
   */
  awaitReportUntilMs?: number;
  /**
   * Whether the reclaim an agent reports was announced: a cordon it streamed on one of the attempt's
   * nodes, or its declared lending window closed, since `sinceMs`. Absent: every reclaim is believed.
   */
  /** The hub runs without a settlement chain: the job carries Settled=False, NoChain. */
  noChain?: boolean;
  reclaimAnnounced?: (provider: string, cause: 'window-ended' | 'owner-cordon', nodes: readonly string[], sinceMs: number) => boolean;
  /** Condition reason for blockedBy (default InsufficientFunds), e.g. WaitingForSecrets, WaitingForEscrow. */
  blockedReason?: string;
  /**
   * The escrow of the next attempt is open on chain and pays `provider` only, and the job has waited
   * unplaced on it for `waitedMs` (the hub's memory: a restart starts the wait again);
   * `specChanged`: the job's spec changed since the escrow opened (its generation).
   */
  pinnedEscrow?: { epoch: number; provider: string; waitedMs: number; specChanged?: boolean };
  /** How long a job may wait unplaced on its pinned escrow before the escrow is given back (default 2 min). */
  unplacedEscrowTimeoutMs?: number;
  /**
   * How long the next attempt's open escrow stays open before its settle window: the attempt gets
   * no more GPU-seconds than it can use, with its start and its grace, before then (the consumer
   * may reclaim the escrow at its expiry). Absent: no escrow bounds it.
   */
  escrowSecondsLeft?: number;
}

export interface PlannedEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface Plan {
  status: GpuJobStatus;
  /** coveredGpuSeconds: what the attempt's budget covers at the placed price (0: no limit). */
  assign?: { provider: string; epoch: number; decision: Decision; coveredGpuSeconds: number };
  cancel: { provider: string; epoch: number; reason: string }[];
  events: PlannedEvent[];
  requeueAfterMs?: number;
}

const PENDING_RETRY_MS = 5_000;
export const DEFAULT_UNPLACED_ESCROW_TIMEOUT_MS = 120_000;
/** Reason of the attempt record that retires an escrow never placed (not an attempt at running). */
export const NEVER_PLACED = 'NeverPlaced';
/**
 * Why a provider is ruled out that waiting does not change: the job's own spec (product, memory,
 * driver, runtime class, price and budget caps, egress, access, regions, audited attributes) against
 * what the provider offers. Capacity, the CPU and memory a GPU brings (the owner's pods move it), readiness, stake, lending windows, RTT and reputation move by
 * themselves; a pinned escrow waits out its bound on those.
 */
const LASTING_REASONS: ReadonlySet<string> = new Set([
  'NoMatchingProduct', 'InsufficientMemory', 'DriverTooOld', 'RuntimeClassMismatch', 'InvalidPrice', 'PriceAboveBudget',
  'TotalAboveBudget', 'EgressNotOffered', 'AccessNotOffered', 'RegionNotAllowed', 'MissingAuditedAttribute', 'Excluded',
]);
/** At most this many escrows a job gives back unplaced; after that it waits on the last one. */
export const MAX_NEVER_PLACED = 16;
export const DEFAULT_START_TIMEOUT_SECONDS = 600;

/** What bounds an attempt's run besides its budget, defaults filled in: its GPUs, start timeout and checkpoint grace. */
export function attemptLimits(job: GpuJob): { gpus: number; startTimeoutSeconds: number; gracePeriodSeconds: number } {
  return {
    gpus: (job.spec.replicas ?? 1) * (job.spec.gpusPerReplica ?? 1),
    startTimeoutSeconds: job.spec.faultTolerance?.startTimeoutSeconds ?? DEFAULT_START_TIMEOUT_SECONDS,
    gracePeriodSeconds: job.spec.faultTolerance?.checkpoint?.gracePeriodSeconds ?? 30,
  };
}
export const DEFAULT_MINIMUM_RUN_GPU_SECONDS = 60;
const TERMINAL = new Set(['Succeeded', 'Failed']);
const iso = (ms: number) => new Date(ms).toISOString();

const hostOf = ({ cpuMilli, memoryMiB, problems }: ReturnType<typeof replicaAsk>): Pick<JobRequest, 'hostPerReplica' | 'hostProblems'> =>
  ({ hostPerReplica: { cpuMilli, memoryMiB }, ...(problems.length > 0 ? { hostProblems: problems } : {}) });

/** The scheduler's request for a job, excluding providers it already failed on. */
export function jobRequest(job: GpuJob, exclude: string[]): JobRequest {
  const s = job.spec;
  return {
    replicas: s.replicas ?? 1,
    gpusPerReplica: s.gpusPerReplica ?? 1,
    gpu: s.gpu,
    placement: s.placement,
    data: s.data,
    budget: s.budget,
    activeDeadlineSeconds: s.activeDeadlineSeconds,
    ...(s.network?.egress ? { network: { egress: egressOf(s.network.egress) } } : {}),
    ...(s.access?.exec || s.access?.portForward ? { access: { exec: s.access.exec === true, portForward: s.access.portForward === true } } : {}),
    excludeProviders: exclude,
    // The agent bounds each replica to its GPUs' share of the node: pools whose share is smaller are not chosen.
    ...(s.template?.spec?.containers ? withTemplateSize(hostOf(replicaAsk(s.template.spec as BoundPodSpec)), s.template, s.replicas ?? 1) : {}),
  };
}

/**
 * The Assign carries the template once per replica: past MAX_ASSIGN_TEMPLATE_BYTES it could not be
 * sent in one message, and sent anyway it would end the provider's stream (every tenant's attempts
 * there losing their agent, and the attempt blamed on the provider when it never starts). Invalid.
 */
function withTemplateSize(host: Pick<JobRequest, 'hostPerReplica' | 'hostProblems'>, template: unknown, replicas: number): Pick<JobRequest, 'hostPerReplica' | 'hostProblems'> {
  const each = Buffer.byteLength(JSON.stringify(template));
  const bytes = each * replicas;
  if (bytes <= MAX_ASSIGN_TEMPLATE_BYTES) return host;
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  const problem = `spec.template is sent to the provider once per replica: ${replicas} × ${each} bytes = ${mib(bytes)}, more than the ${mib(MAX_ASSIGN_TEMPLATE_BYTES)} one assignment may carry`;
  return { ...host, hostProblems: [...(host.hostProblems ?? []), problem] };
}

/**
 * Attempts that billed GPU time: delivered work is paid (success, announced reclaim, the user's own
 * failure, and what nobody can be blamed for), provider-fault and fenced attempts are not.
 */
export function isPaid(a: JobAttempt): boolean {
  if (a.outcome === 'Succeeded') return true;
  if (a.outcome === 'Reclaimed') return a.faultOf !== 'provider';
  if (a.outcome !== 'Failed') return false;
  if (a.faultOf === 'user') return true;
  if (a.faultOf !== 'unattributed' || NEVER_STARTED.has(a.reason ?? '')) return false;
  // A start that never happened (pods left waiting on their image, init containers or the kubelet,
  // or a timeout too short to blame anyone) delivered nothing, whoever caused it: its escrow goes
  // back at once, and no receipt is paid. Part of a gang that ran meanwhile delivered what it used:
  // paid, or a gang held back by its own init containers ran replica 0 for free, attempt after attempt.
  if (startBlockerOf(a.reason) !== undefined || a.reason === 'StartTimeout') return a.firstUsageTime !== undefined && (a.gpuSeconds ?? 0) > 0;
  return true;
}

const msOf = (at: string | undefined) => (at ? Date.parse(at) : undefined);

/**
 * GPU-seconds the hub saw an attempt of a job with `gpus` GPUs use until `untilMs`: every GPU from the
 * whole gang Running, all but one replica's from part of it using GPUs before (core/budget.ts).
 */
export function attemptSeen(a: JobAttempt, untilMs: number, gpus: number, gpusPerReplica: number): number {
  return attemptSeenGpuSeconds({ firstUsageMs: msOf(a.firstUsageTime), runningSinceMs: msOf(a.runningTime), untilMs, gpus, gpusPerReplica });
}

/** Refusals before any pod existed: nothing was delivered, nothing is paid. */
const NEVER_STARTED = new Set(['AdmissionRefused', 'PlacementRefused']);
/** What agents report for those refusals (failureOf maps the last two to PlacementRefused). */
const NEVER_STARTED_REPORTS = new Set([...NEVER_STARTED, 'EgressNotOffered', 'SecretsUnavailable']);
/** Attempts that ended on what that provider would refuse again: the job goes elsewhere next. */
const REFUSED_THERE = new Set(['AdmissionRefused', 'PlacementRefused', 'InsufficientResources']);

/** An attempt record that only retired an escrow no placement used: it never ran anywhere. */
export const isNeverPlaced = (a: JobAttempt): boolean => a.reason === NEVER_PLACED && a.outcome === 'Cancelled';

/** The attempts that count against spec.faultTolerance.maxAttempts: those placed on a provider. */
export const placedAttempts = (attempts: readonly JobAttempt[]): JobAttempt[] => attempts.filter((a) => !isNeverPlaced(a));

export function planJob(job: GpuJob, inputs: PlanInputs): Plan {
  const { now } = inputs;
  const status: GpuJobStatus = structuredClone(job.status ?? {});
  const plan: Plan = { status, cancel: [], events: [] };
  const replicas = job.spec.replicas ?? 1;
  const limits = attemptLimits(job);
  status.gpus = limits.gpus;
  status.observedGeneration = job.metadata.generation;
  status.attempts ??= [];
  const attempts = status.attempts;
  const setCond = (type: string, s: Condition['status'], reason: string, message: string) => {
    status.conditions = setCondition(status.conditions, { type, status: s, reason, message, observedGeneration: job.metadata.generation }, new Date(now)).conditions;
  };
  const finish = (phase: 'Succeeded' | 'Failed', reason: string, message: string) => {
    status.phase = phase;
    status.completionTime ??= iso(now);
    status.message = message;
    setCond(JobConditions.Finished, 'True', reason, message);
    setCond(JobConditions.Running, 'False', reason, message);
    plan.events.push({ type: phase === 'Succeeded' ? 'Normal' : 'Warning', reason, message });
  };
  const endAttempt = (a: JobAttempt, outcome: JobAttempt['outcome'], attribution: FaultAttribution, message: string, gpuSeconds?: number) => {
    a.outcome = outcome;
    a.endTime = iso(now);
    a.faultOf = attribution.faultOf;
    a.reason = attribution.reason;
    a.message = message;
    if (gpuSeconds !== undefined) a.gpuSeconds = gpuSeconds;
  };

  if (inputs.noChain) {
    setCond(JobConditions.Settled, 'False', 'NoChain', 'this hub runs without a settlement chain: nothing is escrowed, paid or slashed for this job');
  }
  if (status.phase && TERMINAL.has(status.phase)) return withCost(plan, job);
  status.phase ??= 'Pending';

  const current = attempts.find((a) => a.epoch === status.currentEpoch && !a.endTime);

  // 1. The whole job has a wall-clock limit, across attempts.
  const deadline = job.spec.activeDeadlineSeconds;
  const created = Date.parse(String(job.metadata.creationTimestamp ?? iso(now)));
  if (deadline !== undefined && now - created > deadline * 1000) {
    if (current) {
      const reported = inputs.report?.epoch === current.epoch ? inputs.report.gpuSeconds : (current.gpuSeconds ?? 0);
      const bounded = billableGpuSeconds({
        reported,
        runningSinceMs: msOf(current.runningTime),
        firstUsageMs: msOf(current.firstUsageTime),
        untilMs: now,
        gpus: status.gpus,
        gpusPerReplica: job.spec.gpusPerReplica ?? 1,
        ...(current.coveredGpuSeconds ? { coveredGpuSeconds: current.coveredGpuSeconds } : {}),
      });
      endAttempt(current, 'Cancelled', attributeFault({ kind: 'deadline-exceeded' }), `activeDeadlineSeconds ${deadline} passed`, bounded);
      plan.cancel.push({ provider: current.provider, epoch: current.epoch, reason: 'DeadlineExceeded' });
    }
    finish('Failed', 'DeadlineExceeded', `the job ran past activeDeadlineSeconds (${deadline}s)`);
    return withCost(plan, job);
  }

  // 2. A live attempt: follow its provider and its report. What the agent says is checked against
  //    what the hub saw itself: billing runs from the hub's first Running report, never past what
  //    the escrow covers, and an attempt that never starts is the provider's fault.
  if (current) {
    const received = inputs.report?.epoch === current.epoch ? inputs.report : undefined;
    // A refusal "before anything was made" of an attempt the hub saw Running cannot be one: its
    // agent restarted after the pods were taken from a node since cordoned, say. Judged as the
    // reclaim it is: the owner's if the cordon was announced, else the provider's.
    const report = received && current.runningTime && received.phase === 'Failed' && NEVER_STARTED_REPORTS.has(received.reason ?? '')
      ? { ...received, phase: 'Reclaimed' as const, reason: 'OwnerReclaim', message: `the agent would not run the attempt again (${received.message ?? received.reason})` }
      : received;
    const gpus = status.gpus;
    if (report && !current.runningTime && (report.phase === 'Running' || report.phase === 'Succeeded')) current.runningTime = iso(Math.min(now, report.firstRunningAt ?? now));
    // Part of the gang runs (a replica's GPU time grows) while the rest waits: billing may start
    // here, at the hub's clock, though the budget clock below waits for the whole gang.
    // (Only a gang: a one-replica attempt not Running has nothing running.)
    if (report?.phase === 'Pending' && replicas > 1 && !current.runningTime && !current.firstUsageTime && report.gpuSeconds > 0) current.firstUsageTime = iso(now);
    const runningSince = msOf(current.runningTime);
    const billed = (reported: number) =>
      billableGpuSeconds({
        reported,
        runningSinceMs: runningSince,
        firstUsageMs: msOf(current.firstUsageTime),
        untilMs: now,
        gpus,
        gpusPerReplica: job.spec.gpusPerReplica ?? 1,
        ...(current.coveredGpuSeconds ? { coveredGpuSeconds: current.coveredGpuSeconds } : {}),
      });
    if (report?.gpuSeconds !== undefined) current.gpuSeconds = billed(report.gpuSeconds);
    const startTimeoutMs = limits.startTimeoutSeconds * 1000;
    const assignedAt = Date.parse(current.startTime ?? iso(now));
    const grace = limits.gracePeriodSeconds;
    const budgetStopAt = runningSince !== undefined && current.coveredGpuSeconds
      ? budgetStopAtMs({ runningSinceMs: runningSince, gpus, coveredGpuSeconds: current.coveredGpuSeconds, gracePeriodSeconds: grace })
      : undefined;
    const ending = report && (report.phase === 'Succeeded' || report.phase === 'Failed' || report.phase === 'Reclaimed');
    if (inputs.isProviderLost(current.provider)) {
      const blamed = inputs.isLossBlamed?.(current.provider) ?? true;
      const why = blamed
        ? `provider ${current.provider} stopped sending heartbeats`
        : `provider ${current.provider} stopped sending heartbeats with many others at once (the hub more likely lost contact; not the provider's fault)`;
      endAttempt(current, 'Lost', attributeFault({ kind: blamed ? 'agent-lost' : 'agent-unreachable' }), why);
      // Fencing: should the provider come back, its agent is told to delete these pods.
      plan.cancel.push({ provider: current.provider, epoch: current.epoch, reason: 'ProviderLost' });
      plan.events.push({ type: 'Warning', reason: 'ProviderLost', message: `attempt ${current.epoch} lost: ${why}; rescheduling` });
    } else if (report?.phase === 'Succeeded') {
      endAttempt(current, 'Succeeded', attributeFault({ kind: 'succeeded' }), 'every replica succeeded', billed(report.gpuSeconds));
      finish('Succeeded', 'Succeeded', `all ${replicas} replica(s) succeeded on ${current.provider}`);
      return withCost(plan, job);
    } else if (report?.phase === 'Failed') {
      const attribution = attributeFault(failureOf(report));
      const message = report.message || report.reason || 'the attempt failed';
      endAttempt(current, 'Failed', attribution, message, billed(report.gpuSeconds));
      if (report.exitCode) current.exitCode = report.exitCode;
      if (!attribution.retryable) {
        finish('Failed', attribution.reason, `attempt ${current.epoch} on ${current.provider} failed: ${message}`);
        return withCost(plan, job);
      }
      plan.events.push({ type: 'Warning', reason: attribution.reason, message: `attempt ${current.epoch} failed (${attribution.faultOf}): ${message}; rescheduling` });
    } else if (report?.phase === 'Reclaimed') {
      const cause = report.reason === 'AvailabilityWindowEnded' ? ('window-ended' as const) : ('owner-cordon' as const);
      const announced = inputs.reclaimAnnounced?.(current.provider, cause, current.nodes ?? [], assignedAt) ?? true;
      if (announced) {
        endAttempt(current, 'Reclaimed', attributeFault({ kind: cause }), report.message || 'the owner took the GPUs back', billed(report.gpuSeconds));
        plan.events.push({ type: 'Normal', reason: 'OwnerReclaim', message: `attempt ${current.epoch}: ${current.message}; resuming elsewhere from the checkpoint` });
      } else {
        const what = cause === 'window-ended' ? 'its declared lending windows were open' : `no node of the attempt (${(current.nodes ?? []).join(', ')}) was cordoned in its inventory`;
        const message = `${current.provider} reported a reclaim (${report.reason || 'no reason'}) but ${what}: treated as the provider's fault`;
        endAttempt(current, 'Failed', attributeFault({ kind: 'reclaim-without-notice' }), message, billed(report.gpuSeconds));
        plan.events.push({ type: 'Warning', reason: 'ReclaimWithoutNotice', message: `attempt ${current.epoch}: ${message}; rescheduling` });
      }
    } else if (!ending && runningSince === undefined && now - assignedAt >= startTimeoutMs && !report && inputs.awaitReportUntilMs !== undefined && now < inputs.awaitReportUntilMs) {
      // Just took over: the agent's word on what the pods wait for has not come yet.
      plan.requeueAfterMs = Math.max(500, inputs.awaitReportUntilMs - now);
      return withCost(plan, job);
    } else if (!ending && runningSince === undefined && now - assignedAt >= startTimeoutMs) {
      // What the agent last saw the bound pods wait for decides whose fault it is (core/fault.ts).
      const stuckOn = report?.phase === 'Pending' ? startBlockerOf(report.reason) : undefined;
      const blameAfter = inputs.startBlameAfterSeconds !== undefined ? { blameAfterSeconds: inputs.startBlameAfterSeconds } : {};
      const attribution = attributeFault({ kind: 'start-timeout', ...(stuckOn ? { stuckOn } : {}), waitedSeconds: startTimeoutMs / 1000, ...blameAfter });
      const waited = stuckOn && report?.message ? ` (${report.message})` : '';
      const message = `attempt ${current.epoch} was not Running within ${startTimeoutMs / 1000}s of its assignment (faultTolerance.startTimeoutSeconds)${waited}`;
      // Replicas that ran meanwhile used GPUs: billed, unless the provider is at fault (unpaid).
      const used = current.firstUsageTime === undefined || hurtsProvider(attribution) ? 0 : billed(report?.gpuSeconds ?? current.gpuSeconds ?? 0);
      endAttempt(current, 'Failed', attribution, message, used);
      plan.cancel.push({ provider: current.provider, epoch: current.epoch, reason: 'StartTimeout' });
      plan.events.push({ type: 'Warning', reason: 'StartTimeout', message: `${message} on ${current.provider}; rescheduling` });
    } else if (!ending && budgetStopAt !== undefined && now >= budgetStopAt) {
      // The agent should have stopped the pods itself; the hub's clock says the escrow is spent.
      const message = `the budget of attempt ${current.epoch} covers ${current.coveredGpuSeconds} GPU-seconds; by the hub's clock they are used and ${current.provider} did not stop it`;
      endAttempt(current, 'Failed', attributeFault({ kind: 'budget-exhausted' }), message, billed(report?.gpuSeconds ?? current.gpuSeconds ?? 0));
      plan.cancel.push({ provider: current.provider, epoch: current.epoch, reason: 'BudgetExhausted' });
      finish('Failed', 'BudgetExhausted', `attempt ${current.epoch} on ${current.provider} stopped: ${message}`);
      return withCost(plan, job);
    } else {
      if (report?.phase === 'Running' && status.phase !== 'Running') {
        status.phase = 'Running';
        status.startTime ??= iso(now);
        status.message = `running on ${current.provider}`;
        setCond(JobConditions.Running, 'True', 'PodsRunning', `all ${replicas} replica(s) running on ${current.provider}`);
        plan.events.push({ type: 'Normal', reason: 'Running', message: `attempt ${current.epoch} running on ${current.provider}` });
      }
      // Look again when the start timeout or the hub's budget clock runs out.
      const wakeAt = runningSince === undefined ? assignedAt + startTimeoutMs : budgetStopAt;
      if (wakeAt !== undefined) plan.requeueAfterMs = Math.max(1_000, wakeAt - now + 500);
      return withCost(plan, job);
    }
  }

  // 3. No live attempt: place the job (again), unless it has used up its attempts. An attempt that
  //    ended leaves the job not running, whatever it said before.
  const last = attempts.at(-1);
  if (last && status.conditions?.some((c) => c.type === JobConditions.Running && c.status === 'True')) {
    setCond(JobConditions.Running, 'False', 'AttemptEnded', `attempt ${last.epoch} on ${last.provider} ended ${last.outcome ?? ''} (${last.reason ?? 'no reason'})`);
  }
  const maxAttempts = job.spec.faultTolerance?.maxAttempts ?? 3;
  const placed = placedAttempts(attempts);
  if (placed.length >= maxAttempts) {
    finish('Failed', 'MaxAttemptsReached', `${placed.length} of ${maxAttempts} attempts used; the last ended: ${placed.at(-1)?.reason ?? 'unknown'}`);
    return withCost(plan, job);
  }
  const epoch = Math.max(0, ...attempts.map((a) => a.epoch)) + 1;
  // A job that waits on an escrow pinned to one provider (GpuMarket pays one provider per escrow)
  // gives it back after a bound, so no escrow stays locked for a placement that may never come (a
  // provider slashed below its stake, say): the epoch is retired with a record that is not an
  // attempt at running (never paid, never slashed: the settlement refunds it), and the next epoch
  // gets a fresh escrow for wherever the job fits then. The status write decides: a placement of
  // this epoch and its retirement cannot both land.
  // `settled`: waiting cannot help (the job's own spec, or the provider's offer, rules the provider
  // out; the escrow is about to expire), so the escrow goes back at once: a consumer who edits
  // spec.placement after its escrow opened no longer keeps that provider's bond locked for the bound.
  // `expiring`: the escrow has lived its whole lifetime, which bounds how often that comes, so it is
  // given back even past MAX_NEVER_PLACED (else the job would wait on it forever).
  const retirePinned = (why: string, settled = false, expiring = false): boolean => {
    const pin = inputs.pinnedEscrow;
    if (!pin || pin.epoch !== epoch) return false;
    const limit = inputs.unplacedEscrowTimeoutMs ?? DEFAULT_UNPLACED_ESCROW_TIMEOUT_MS;
    if ((!settled && pin.waitedMs < limit) || (!expiring && attempts.filter(isNeverPlaced).length >= MAX_NEVER_PLACED)) return false;
    const how = settled ? 'which cannot take the job as it is' : `which could not take the job for ${Math.round(pin.waitedMs / 1000)}s`;
    const message = `never placed: its escrow pays ${pin.provider} only, ${how} (${why}); the escrow is refunded and the job placed afresh`;
    attempts.push({ epoch, provider: pin.provider, startTime: iso(now), endTime: iso(now), outcome: 'Cancelled', reason: NEVER_PLACED, faultOf: 'none', message, gpuSeconds: 0 });
    plan.events.push({ type: 'Warning', reason: 'EscrowReleased', message: `attempt ${epoch} ${message}` });
    return true;
  };
  // Not again where it failed through the provider, the owner's reclaim, or a refusal of the
  // placement there (its admission, its view of the node, pods its nodes cannot hold): nobody's
  // fault, but trying the same provider again would only use up the job's attempts.
  // Not again where a gang never all started but was paid for the part said to run (its word alone:
  // a provider lying about it would otherwise win the job again and be paid again, up to maxAttempts).
  const paidUnstarted = (a: JobAttempt) =>
    a.outcome === 'Failed' && a.faultOf === 'unattributed' && a.firstUsageTime !== undefined && a.runningTime === undefined && (a.gpuSeconds ?? 0) > 0
    && (startBlockerOf(a.reason) !== undefined || a.reason === 'StartTimeout');
  const exclude = [...new Set(attempts.filter((a) => a.faultOf === 'provider' || a.faultOf === 'owner-reclaim' || REFUSED_THERE.has(a.reason ?? '') || paidUnstarted(a)).map((a) => a.provider))];
  const result = inputs.schedule(jobRequest(job, exclude));
  const waitingPhase = attempts.length ? 'Pending' : status.phase === 'Scheduled' ? 'Pending' : status.phase;
  if (result.kind === 'unschedulable' || inputs.blockedBy) {
    const message = result.kind === 'unschedulable' ? result.message : (inputs.blockedBy ?? '');
    status.phase = waitingPhase === 'Running' ? 'Pending' : (waitingPhase ?? 'Pending');
    // A job waiting again has no placement; its attempts keep the history.
    if (!attempts.some((a) => !a.endTime)) delete status.placement;
    // The Event names the same cause as the condition: WaitingForSecrets, WaitingForEscrow, ...
    const reason = result.kind === 'unschedulable' ? 'Unschedulable' : (inputs.blockedReason ?? 'InsufficientFunds');
    if (status.message !== message) plan.events.push({ type: 'Normal', reason, message });
    status.message = message;
    setCond(JobConditions.Scheduled, 'False', reason, message);
    // Only the consumer's own edit since the escrow opened counts: a provider's offer can look
    // lasting for a moment (a pool gone while its device plugin restarts reads NoMatchingProduct).
    const settled = inputs.pinnedEscrow?.specChanged === true && result.kind === 'unschedulable' && !inputs.blockedBy
      && Object.keys(result.reasons).length > 0 && Object.keys(result.reasons).every((r) => LASTING_REASONS.has(r));
    plan.requeueAfterMs = retirePinned(message, settled) ? 1_000 : PENDING_RETRY_MS;
    return withCost(plan, job);
  }
  // The budget left must cover the hub's minimum run at the placed price, or the job waits. Never
  // below one GPU-second: 0 covered GPU-seconds means "no limit" to the agent and the hub. On top,
  // the checkpoint grace of every GPU: the agent stops the pods that long before the covered time
  // runs out, and a budget short of it would have them stopped at once and run the whole grace
  // unpaid (3,600 s on 8 GPUs for the price of 60 GPU-seconds, job after job).
  const minimumRun = Math.max(1, inputs.minimumRunGpuSeconds ?? DEFAULT_MINIMUM_RUN_GPU_SECONDS);
  const { gpus: jobGpus, gracePeriodSeconds: grace } = limits;
  const minimum = minimumRun + jobGpus * grace;
  const minimumText = grace > 0
    ? `the hub's minimum run of ${minimumRun} GPU-seconds plus ${grace} s of checkpoint grace on ${jobGpus} GPU(s), ${minimum} GPU-seconds`
    : `the hub's minimum run of ${minimumRun} GPU-seconds`;
  let covered = 0;
  if (inputs.budgetLeft !== undefined) {
    const price = parseMoney(result.pricePerGpuHour);
    const shortfall = minimumRunShortfall(inputs.budgetLeft, price, minimum);
    if (shortfall) {
      const message =
        `waiting for budget: the ${formatMoney(inputs.budgetLeft)} credits left for attempt ${epoch} cover ${shortfall.covered} GPU-seconds at ` +
        `${result.pricePerGpuHour}/GPU-hour on ${result.provider}, less than ${minimumText} ` +
        `(${formatMoney(shortfall.needed, { maxFractionDigits: 6, rounding: 'ceil' })} credits); raise spec.budget.maxTotal`;
      status.phase = waitingPhase === 'Running' ? 'Pending' : (waitingPhase ?? 'Pending');
      if (!attempts.some((a) => !a.endTime)) delete status.placement;
      if (status.message !== message) plan.events.push({ type: 'Warning', reason: 'BudgetBelowMinimumRun', message });
      status.message = message;
      setCond(JobConditions.Scheduled, 'False', 'BudgetBelowMinimumRun', message);
      plan.requeueAfterMs = retirePinned('its budget is below the minimum run') ? 1_000 : PENDING_RETRY_MS;
      return withCost(plan, job);
    }
    covered = coveredGpuSeconds(inputs.budgetLeft, price);
  }
  if (inputs.escrowSecondsLeft !== undefined) {
    const runway = escrowRunwayGpuSeconds({
      secondsLeft: inputs.escrowSecondsLeft,
      ...limits,
      ...(deadline !== undefined ? { deadlineLeftSeconds: Math.max(0, (created + deadline * 1000 - now) / 1000) } : {}),
    });
    if (runway < minimum) {
      // An escrow this close to its expiry pays no run worth starting: it is given back (retirePinned)
      // and the next epoch gets a fresh one.
      const message = `waiting: the escrow of attempt ${epoch} expires too soon to pay ${minimumText}; it will be refunded and the job placed on a new one`;
      status.phase = waitingPhase === 'Running' ? 'Pending' : (waitingPhase ?? 'Pending');
      if (!attempts.some((a) => !a.endTime)) delete status.placement;
      status.message = message;
      setCond(JobConditions.Scheduled, 'False', 'EscrowExpiring', message);
      plan.requeueAfterMs = retirePinned('its escrow expires too soon', true, true) ? 1_000 : PENDING_RETRY_MS;
      return withCost(plan, job);
    }
    if (Number.isFinite(runway)) covered = covered ? Math.min(covered, runway) : runway;
  }
  const nodes = result.assignments.map((a) => a.node);
  attempts.push({
    epoch,
    provider: result.provider,
    nodes,
    startTime: iso(now),
    outcome: 'Running',
    gpuProduct: result.gpuProduct,
    pricePerGpuHour: result.pricePerGpuHour,
    gpuSeconds: 0,
    ...(covered ? { coveredGpuSeconds: covered } : {}),
    // What its processes will hold, whatever spec.secrets says later: exec and port-forward into
    // the attempt need get on each (hub/access/server.ts).
    ...(job.spec.secrets?.length ? { secretNames: job.spec.secrets.map((s) => s.name) } : {}),
  });
  status.currentEpoch = epoch;
  status.phase = 'Scheduled';
  status.placement = {
    provider: result.provider,
    gpuProduct: result.gpuProduct,
    nodes,
    pricePerGpuHour: result.pricePerGpuHour,
    score: { total: round(result.score.total), ...mapValues(result.score.parts, round) },
  };
  const why = scoreSummary(result);
  status.message = `scheduled on ${result.provider} (${why})`;
  setCond(JobConditions.Scheduled, 'True', 'Placed', `attempt ${epoch} on ${result.provider}: ${why}`);
  plan.events.push({ type: 'Normal', reason: 'Scheduled', message: `attempt ${epoch} on ${result.provider} ${nodes.join(',')}: ${why}` });
  plan.assign = { provider: result.provider, epoch, decision: result, coveredGpuSeconds: covered };
  return withCost(plan, job);
}

/** Admission refusals in an apiserver's words: LimitRanger, ResourceQuota, webhooks, policies. */
const ADMISSION_REFUSAL = /usage per (Container|Pod) is|exceeded quota|admission webhook|ValidatingAdmissionPolicy|denied the request|must be (less|greater) than or equal to/;

function failureOf(report: AttemptReport): AttemptEnd {
  switch (report.reason) {
    case 'Evicted':
      return { kind: 'evicted', cause: classifyEviction(report.message) };
    case 'PodsDeleted':
      return { kind: 'pods-deleted' };
    case 'BudgetExhausted':
      return { kind: 'budget-exhausted' };
    case 'NodeLost':
    case 'NodeShutdown':
    case 'Terminated':
      return { kind: 'node-lost' };
    case 'PodSecurityRefused':
    case 'InvalidTemplate':
    case 'InvalidAssignment':
      return { kind: 'container-exit', exitCode: 1 };
    // The provider's cluster refused for its own reasons (a tenant namespace without PodSecurity
    // restricted, the agent's RBAC): not the consumer's template.
    case 'TenantNamespaceNotRestricted':
      return { kind: 'provider-preempted' };
    case 'ProviderRefused':
      // Agents before AdmissionRefused reported every 403 so, the LimitRange's and quotas' too,
      // which a template can draw on purpose: those are nobody's fault whichever agent says so.
      return ADMISSION_REFUSAL.test(report.message ?? '') ? { kind: 'admission-refused' } : { kind: 'provider-preempted' };
    // Admission (a LimitRange, a quota, a webhook or policy) refused what the template asked for.
    case 'AdmissionRefused':
      return { kind: 'admission-refused' };
    // The agent judged the placement out of date or out of bounds (a node cordoned, or not offered,
    // since; an egress profile its owner no longer offers there): nobody's fault, the job goes elsewhere.
    case 'PlacementRefused':
    case 'EgressNotOffered':
    // Re-sent by a Resync without its Secrets (the hub could not read them then) to an agent that
    // had not started it: nothing ran; placed again, the hub reads them first.
    case 'SecretsUnavailable':
      return { kind: 'placement-refused' };
    default:
      return { kind: 'container-exit', exitCode: report.exitCode || 1 };
  }
}

/** Roll-ups shown in `kubectl get gj`: attempts and cost so far; the budget used and left while it runs. */
function withCost(plan: Plan, job: GpuJob): Plan {
  const status = plan.status;
  const attempts = status.attempts ?? [];
  status.attemptCount = placedAttempts(attempts).length;
  let gpuSeconds = 0;
  let amount = 0n;
  const live = attempts.find((a) => !a.endTime);
  for (const a of attempts.filter((x) => isPaid(x) || x === live)) {
    gpuSeconds += a.gpuSeconds ?? 0;
    amount += costOfGpuSeconds(parseMoney(a.pricePerGpuHour ?? '0'), Math.floor(a.gpuSeconds ?? 0));
  }
  status.cost = { gpuSeconds: Math.round(gpuSeconds * 1000) / 1000, amount: formatMoney(amount, { maxFractionDigits: 6, rounding: 'ceil' }) };
  const limit = job.spec.budget?.maxTotal;
  const budget: NonNullable<GpuJobStatus['budget']> = { used: status.cost.amount };
  if (limit) {
    const max = parseMoney(limit);
    budget.limit = limit;
    budget.left = formatMoney(max > amount ? max - amount : 0n, { maxFractionDigits: 6, rounding: 'floor' });
  }
  if (live?.coveredGpuSeconds) budget.attemptLeftGpuSeconds = Math.max(0, Math.round((live.coveredGpuSeconds - (live.gpuSeconds ?? 0)) * 1000) / 1000);
  status.budget = budget;
  return plan;
}

function scoreSummary(d: Decision): string {
  const p = d.score.parts;
  return `score ${d.score.total.toFixed(2)}: reputation ${p.reputation.toFixed(2)}, latency ${p.latency.toFixed(2)}, price ${p.price.toFixed(2)} at ${d.pricePerGpuHour}/GPU-h, time-to-start ${p.timeToStart.toFixed(2)}, fit ${p.fragmentation.toFixed(2)}`;
}

const round = (n: number) => Math.round(n * 1000) / 1000;
const mapValues = <T extends object>(o: T, f: (n: number) => number) =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v as number)])) as T;
