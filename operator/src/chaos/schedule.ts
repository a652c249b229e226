import { seededRandom, type Random } from './random.js';

// The chaos schedule, a pure function of its configuration: which jobs are submitted when, and
// which faults strike what, when and for how long. `make chaos SEED=n` replays the same schedule;
// only the machine's timing differs between runs. Faults never overlap on the same target (a
// provider, the hub, the chain), so each one's effect can be told apart in the history.

export type JobKind = 'single' | 'gang' | 'tight-budget' | 'deadline' | 'delete-mid-run' | 'user-exit';

export interface JobPlan {
  name: string;
  kind: JobKind;
  /** Submission time, ms after the start of the run. */
  atMs: number;
  replicas: number;
  gpusPerReplica: number;
  /** Simulated work (kwok completes the pod after it). */
  runForS: number;
  /** Non-zero: the pod fails with this code (the user's fault). */
  exitCode?: number;
  /** budget.maxTotal in credits, when the plan sets one. */
  maxTotal?: string;
  activeDeadlineSeconds?: number;
  /** Deleted this long after submission. */
  deleteAfterMs?: number;
}

export type FaultKind =
  | 'agent-kill' // SIGKILL, restarted after the duration
  | 'agent-pause' // SIGSTOP, SIGCONT after the duration
  | 'partition' // the provider's links to every hub replica blackholed or delayed
  | 'hub-leader-kill' // SIGKILL, restarted after the duration
  | 'hub-leader-term' // SIGTERM (graceful hand-over), restarted after the duration
  | 'hub-leader-pause' // SIGSTOP past its lease: a stale leader that wakes up
  | 'apiserver-restart' // the provider's kube-apiserver stopped, started again after the duration
  | 'node-notready' // a node under a running pod goes NotReady (kwok), back after the duration
  | 'owner-cordon' // the owner cordons a node (reclaim with notice), uncordons after the duration
  | 'rpc-outage' // the hub's chain RPC refuses connections
  | 'rpc-slow' // the hub's chain RPC answers late
  | 'chain-reorg'; // anvil snapshot, some blocks, revert: transactions in them vanish

export const FAULT_KINDS: readonly FaultKind[] = [
  'agent-kill', 'agent-pause', 'partition', 'hub-leader-kill', 'hub-leader-term', 'hub-leader-pause',
  'apiserver-restart', 'node-notready', 'owner-cordon', 'rpc-outage', 'rpc-slow', 'chain-reorg',
];

export type Target = 'hub' | 'chain' | `provider:${string}`;

export interface FaultPlan {
  kind: FaultKind;
  target: Target;
  atMs: number;
  durationMs: number;
  /** partition: which way traffic is cut or delayed. */
  direction?: 'both' | 'to-hub' | 'from-hub';
  /** partition and rpc-slow: delay per chunk instead of a blackhole. */
  delayMs?: number;
}

export interface ChaosSchedule {
  seed: number;
  durationMs: number;
  jobs: JobPlan[];
  faults: FaultPlan[];
}

export interface ScheduleConfig {
  seed: number;
  jobs: number;
  minutes: number;
  /** Provider cluster names. */
  providers: readonly string[];
  /** Providers' lost-after, so blips are drawn both shorter and longer than it. */
  providerLostAfterMs: number;
  /** Hub lease duration, so a paused leader sleeps past it. */
  leaseDurationMs: number;
  /** Faults per minute on average (default 3). */
  faultRate?: number;
  /** Restrict to these kinds (default all). */
  kinds?: readonly FaultKind[];
}

const JOB_MIX: readonly (readonly [JobKind, number])[] = [
  ['single', 35], ['gang', 15], ['tight-budget', 10], ['deadline', 10], ['delete-mid-run', 15], ['user-exit', 15],
];

const FAULT_WEIGHTS: Record<FaultKind, number> = {
  'agent-kill': 3, 'agent-pause': 2, partition: 3, 'hub-leader-kill': 1, 'hub-leader-term': 1, 'hub-leader-pause': 1,
  'apiserver-restart': 1, 'node-notready': 2, 'owner-cordon': 2, 'rpc-outage': 2, 'rpc-slow': 1, 'chain-reorg': 1,
};

const targetOf = (kind: FaultKind, provider: string): Target =>
  kind.startsWith('hub-') ? 'hub' : kind.startsWith('rpc-') || kind === 'chain-reorg' ? 'chain' : `provider:${provider}`;

export function generateSchedule(config: ScheduleConfig): ChaosSchedule {
  if (!Number.isInteger(config.jobs) || config.jobs < 1) throw new RangeError(`JOBS must be a positive integer, got ${config.jobs}`);
  if (!(config.minutes > 0)) throw new RangeError(`MINUTES must be positive, got ${config.minutes}`);
  if (config.providers.length < 2) throw new RangeError('chaos needs at least two providers, so a job can move');
  const random = seededRandom(config.seed);
  const durationMs = Math.round(config.minutes * 60_000);
  // Jobs arrive over the first 70% of the run, so the last ones can finish inside it.
  const arrivalSpan = durationMs * 0.7;
  const jobs = Array.from({ length: config.jobs }, (_, i) => jobPlan(random, i, Math.round((arrivalSpan * (i + random.next())) / config.jobs)));
  const faults = faultPlans(random, config, durationMs);
  return { seed: config.seed, durationMs, jobs, faults };
}

function jobPlan(random: Random, index: number, atMs: number): JobPlan {
  const kind = random.weighted(JOB_MIX);
  const base: JobPlan = { name: `chaos-${String(index).padStart(3, '0')}-${kind}`, kind, atMs, replicas: 1, gpusPerReplica: 1, runForS: random.int(4, 20) };
  switch (kind) {
    case 'gang':
      return { ...base, replicas: random.int(2, 3), gpusPerReplica: random.int(1, 2) };
    case 'tight-budget':
      // Covers about a third of the work at the highest chaos price (3 credits per GPU-hour).
      return { ...base, runForS: random.int(20, 40), maxTotal: (0.001 * random.int(5, 10)).toFixed(3) };
    case 'deadline':
      return { ...base, runForS: random.int(10, 30), activeDeadlineSeconds: random.int(8, 40) };
    case 'delete-mid-run':
      return { ...base, runForS: random.int(20, 40), deleteAfterMs: random.int(3_000, 15_000) };
    case 'user-exit':
      return { ...base, runForS: random.int(2, 8), exitCode: random.weighted([[1, 3], [2, 1], [137, 1]] as const) };
    default:
      return base;
  }
}

function faultPlans(random: Random, config: ScheduleConfig, durationMs: number): FaultPlan[] {
  const kinds = config.kinds ?? FAULT_KINDS;
  const rate = config.faultRate ?? 3;
  const count = Math.max(1, Math.round(rate * config.minutes));
  // Faults strike between 5% and 80% of the run; the rest is for recovery before the check.
  const from = durationMs * 0.05;
  const to = durationMs * 0.8;
  const faults: FaultPlan[] = [];
  for (let i = 0; i < count * 4 && faults.length < count; i++) {
    const kind = random.weighted(kinds.map((k) => [k, FAULT_WEIGHTS[k]] as const));
    const provider = config.providers[random.int(0, config.providers.length - 1)]!;
    const target = targetOf(kind, provider);
    const atMs = Math.round(from + random.next() * (to - from));
    const fault: FaultPlan = { kind, target, atMs, durationMs: durationOf(random, kind, config) };
    if (kind === 'partition') {
      fault.direction = random.weighted([['both', 2], ['to-hub', 1], ['from-hub', 1]] as const);
      if (random.chance(0.4)) fault.delayMs = random.int(100, 1_500);
    }
    if (kind === 'rpc-slow') fault.delayMs = random.int(300, 3_000);
    // One fault at a time per target, with a gap for the system to settle between them.
    const overlaps = faults.some((f) => f.target === target && f.atMs < atMs + fault.durationMs + 5_000 && atMs < f.atMs + f.durationMs + 5_000);
    if (overlaps) continue;
    faults.push(fault);
  }
  return faults.sort((a, b) => a.atMs - b.atMs);
}

function durationOf(random: Random, kind: FaultKind, config: ScheduleConfig): number {
  const lost = config.providerLostAfterMs;
  switch (kind) {
    case 'agent-kill':
    case 'agent-pause':
    case 'partition':
      // Half are blips shorter than providerLostAfter (nothing may move), half real losses.
      return random.chance(0.5) ? random.int(500, Math.round(lost * 0.5)) : random.int(Math.round(lost * 1.5), lost * 3);
    case 'hub-leader-pause':
      return random.int(Math.round(config.leaseDurationMs * 1.5), config.leaseDurationMs * 3);
    case 'hub-leader-kill':
    case 'hub-leader-term':
      return random.int(1_000, 10_000);
    case 'apiserver-restart':
      return random.int(2_000, 15_000);
    case 'node-notready':
    case 'owner-cordon':
      return random.int(5_000, 30_000);
    case 'rpc-outage':
    case 'rpc-slow':
      return random.int(3_000, 30_000);
    case 'chain-reorg':
      // Short: the revert must stay shallower than the hub's confirmation depth (1 block a second).
      return random.int(300, 1_500);
  }
}
