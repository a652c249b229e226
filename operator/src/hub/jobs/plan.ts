import { JobConditions } from '../../api/constants.js';
import type { Condition, GpuJob, GpuJobStatus, JobAttempt } from '../../api/types.js';
import { attributeFault, type AttemptEnd, type FaultAttribution } from '../../core/fault.js';
import { costOfGpuSeconds, formatMoney, parseMoney } from '../../core/money.js';
import type { Decision, JobRequest, ScheduleResult } from '../../core/types.js';
import { setCondition } from '../../runtime/conditions.js';
import { egressOf } from './market-view.js';

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
}

export interface PlanInputs {
  now: number;
  /** Providers that are lost (Ready=False after providerLostAfter) or gone. */
  isProviderLost: (provider: string) => boolean;
  report?: AttemptReport;
  /** Runs the scheduler for this job; called only when the job needs a placement. */
  schedule: (request: JobRequest) => ScheduleResult;
  /** Why the job cannot be placed yet although GPUs may fit (e.g. the consumer cannot cover it). */
  blockedBy?: string;
  /** Condition reason for blockedBy (default InsufficientFunds), e.g. WaitingForSecrets. */
  blockedReason?: string;
}

export interface PlannedEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface Plan {
  status: GpuJobStatus;
  assign?: { provider: string; epoch: number; decision: Decision };
  cancel: { provider: string; epoch: number; reason: string }[];
  events: PlannedEvent[];
  requeueAfterMs?: number;
}

const PENDING_RETRY_MS = 5_000;
const TERMINAL = new Set(['Succeeded', 'Failed']);
const iso = (ms: number) => new Date(ms).toISOString();

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
    excludeProviders: exclude,
  };
}

/** Attempts that billed GPU time: delivered work is paid, provider-fault and fenced attempts are not. */
export function isPaid(a: JobAttempt): boolean {
  if (a.outcome === 'Succeeded' || a.outcome === 'Reclaimed') return true;
  return a.outcome === 'Failed' && a.faultOf === 'user';
}

export function planJob(job: GpuJob, inputs: PlanInputs): Plan {
  const { now } = inputs;
  const status: GpuJobStatus = structuredClone(job.status ?? {});
  const plan: Plan = { status, cancel: [], events: [] };
  const replicas = job.spec.replicas ?? 1;
  status.gpus = replicas * (job.spec.gpusPerReplica ?? 1);
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

  if (status.phase && TERMINAL.has(status.phase)) return withCost(plan);
  status.phase ??= 'Pending';

  const current = attempts.find((a) => a.epoch === status.currentEpoch && !a.endTime);

  // 1. The whole job has a wall-clock limit, across attempts.
  const deadline = job.spec.activeDeadlineSeconds;
  const created = Date.parse(String(job.metadata.creationTimestamp ?? iso(now)));
  if (deadline !== undefined && now - created > deadline * 1000) {
    if (current) {
      endAttempt(current, 'Cancelled', attributeFault({ kind: 'deadline-exceeded' }), `activeDeadlineSeconds ${deadline} passed`, inputs.report?.gpuSeconds);
      plan.cancel.push({ provider: current.provider, epoch: current.epoch, reason: 'DeadlineExceeded' });
    }
    finish('Failed', 'DeadlineExceeded', `the job ran past activeDeadlineSeconds (${deadline}s)`);
    return withCost(plan);
  }

  // 2. A live attempt: follow its provider and its report.
  if (current) {
    const report = inputs.report?.epoch === current.epoch ? inputs.report : undefined;
    if (report?.gpuSeconds !== undefined) current.gpuSeconds = report.gpuSeconds;
    if (inputs.isProviderLost(current.provider)) {
      const why = `provider ${current.provider} stopped sending heartbeats`;
      endAttempt(current, 'Lost', attributeFault({ kind: 'agent-lost' }), why);
      // Fencing: should the provider come back, its agent is told to delete these pods.
      plan.cancel.push({ provider: current.provider, epoch: current.epoch, reason: 'ProviderLost' });
      plan.events.push({ type: 'Warning', reason: 'ProviderLost', message: `attempt ${current.epoch} lost: ${why}; rescheduling` });
    } else if (report?.phase === 'Succeeded') {
      endAttempt(current, 'Succeeded', attributeFault({ kind: 'succeeded' }), 'every replica succeeded', report.gpuSeconds);
      finish('Succeeded', 'Succeeded', `all ${replicas} replica(s) succeeded on ${current.provider}`);
      return withCost(plan);
    } else if (report?.phase === 'Failed') {
      const attribution = attributeFault(failureOf(report));
      const message = report.message || report.reason || 'the attempt failed';
      endAttempt(current, 'Failed', attribution, message, report.gpuSeconds);
      if (report.exitCode) current.exitCode = report.exitCode;
      if (!attribution.retryable) {
        finish('Failed', attribution.reason, `attempt ${current.epoch} on ${current.provider} failed: ${message}`);
        return withCost(plan);
      }
      plan.events.push({ type: 'Warning', reason: attribution.reason, message: `attempt ${current.epoch} failed (${attribution.faultOf}): ${message}; rescheduling` });
    } else if (report?.phase === 'Reclaimed') {
      const cause: AttemptEnd = report.reason === 'AvailabilityWindowEnded' ? { kind: 'window-ended' } : { kind: 'owner-cordon' };
      endAttempt(current, 'Reclaimed', attributeFault(cause), report.message || 'the owner took the GPUs back', report.gpuSeconds);
      plan.events.push({ type: 'Normal', reason: 'OwnerReclaim', message: `attempt ${current.epoch}: ${current.message}; resuming elsewhere from the checkpoint` });
    } else {
      if (report?.phase === 'Running' && status.phase !== 'Running') {
        status.phase = 'Running';
        status.startTime ??= iso(now);
        status.message = `running on ${current.provider}`;
        setCond(JobConditions.Running, 'True', 'PodsRunning', `all ${replicas} replica(s) running on ${current.provider}`);
        plan.events.push({ type: 'Normal', reason: 'Running', message: `attempt ${current.epoch} running on ${current.provider}` });
      }
      return withCost(plan);
    }
  }

  // 3. No live attempt: place the job (again), unless it has used up its attempts.
  const maxAttempts = job.spec.faultTolerance?.maxAttempts ?? 3;
  if (attempts.length >= maxAttempts) {
    finish('Failed', 'MaxAttemptsReached', `${attempts.length} of ${maxAttempts} attempts used; the last ended: ${attempts.at(-1)?.reason ?? 'unknown'}`);
    return withCost(plan);
  }
  const exclude = [...new Set(attempts.filter((a) => a.faultOf === 'provider' || a.faultOf === 'owner-reclaim').map((a) => a.provider))];
  const result = inputs.schedule(jobRequest(job, exclude));
  const waitingPhase = attempts.length ? 'Pending' : status.phase === 'Scheduled' ? 'Pending' : status.phase;
  if (result.kind === 'unschedulable' || inputs.blockedBy) {
    const message = result.kind === 'unschedulable' ? result.message : (inputs.blockedBy ?? '');
    status.phase = waitingPhase === 'Running' ? 'Pending' : (waitingPhase ?? 'Pending');
    // A job waiting again has no placement; its attempts keep the history.
    if (!attempts.some((a) => !a.endTime)) delete status.placement;
    if (status.message !== message) plan.events.push({ type: 'Normal', reason: 'Unschedulable', message });
    status.message = message;
    setCond(JobConditions.Scheduled, 'False', result.kind === 'unschedulable' ? 'Unschedulable' : (inputs.blockedReason ?? 'InsufficientFunds'), message);
    plan.requeueAfterMs = PENDING_RETRY_MS;
    return withCost(plan);
  }
  const epoch = Math.max(0, ...attempts.map((a) => a.epoch)) + 1;
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
  plan.assign = { provider: result.provider, epoch, decision: result };
  return withCost(plan);
}

function failureOf(report: AttemptReport): AttemptEnd {
  switch (report.reason) {
    case 'Evicted':
      return { kind: 'evicted' };
    case 'NodeLost':
    case 'NodeShutdown':
    case 'Terminated':
      return { kind: 'node-lost' };
    case 'PodSecurityRefused':
    case 'InvalidAssignment':
      return { kind: 'container-exit', exitCode: 1 };
    default:
      return { kind: 'container-exit', exitCode: report.exitCode || 1 };
  }
}

/** Roll-ups shown in `kubectl get gj`: attempts and cost so far. */
function withCost(plan: Plan): Plan {
  const status = plan.status;
  const attempts = status.attempts ?? [];
  status.attemptCount = attempts.length;
  let gpuSeconds = 0;
  let amount = 0n;
  for (const a of attempts.filter(isPaid)) {
    gpuSeconds += a.gpuSeconds ?? 0;
    amount += costOfGpuSeconds(parseMoney(a.pricePerGpuHour ?? '0'), Math.floor(a.gpuSeconds ?? 0));
  }
  status.cost = { gpuSeconds: Math.round(gpuSeconds * 1000) / 1000, amount: formatMoney(amount, { maxFractionDigits: 6, rounding: 'ceil' }) };
  return plan;
}

function scoreSummary(d: Decision): string {
  const p = d.score.parts;
  return `score ${d.score.total.toFixed(2)}: reputation ${p.reputation.toFixed(2)}, latency ${p.latency.toFixed(2)}, price ${p.price.toFixed(2)} at ${d.pricePerGpuHour}/GPU-h, time-to-start ${p.timeToStart.toFixed(2)}, fit ${p.fragmentation.toFixed(2)}`;
}

const round = (n: number) => Math.round(n * 1000) / 1000;
const mapValues = <T extends object>(o: T, f: (n: number) => number) =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v as number)])) as T;
