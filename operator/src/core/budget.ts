import { costOfGpuSeconds, type Money } from './money.js';

// The budget is a hard limit while a job runs (docs/settlement.md "Budget and billing bounds"):
// what an attempt's escrow covers in GPU-seconds at its placed price, when the hub's own clock says
// that is spent, and how many GPU-seconds may be billed at most given what the hub itself saw.
// Pure arithmetic: money as bigint token units (18 decimals), times in epoch ms.

/** Seconds per GPU the hub allows for clock skew and report latency between agent and hub. */
export const BILLING_SLACK_SECONDS_PER_GPU = 5;

/**
 * Whole GPU-seconds `amount` pays for at `pricePerGpuHour`: the largest n with
 * floor(n × price / 3600) ≤ amount, the rounding the contract charges. A free price covers anything.
 */
export function coveredGpuSeconds(amount: Money, pricePerGpuHour: Money): number {
  if (amount <= 0n) return 0;
  if (pricePerGpuHour <= 0n) return Number.MAX_SAFE_INTEGER;
  // floor(n × p / 3600) ≤ a  ⇔  n × p < (a + 1) × 3600  ⇔  n ≤ ((a + 1) × 3600 − 1) / p
  const n = ((amount + 1n) * 3600n - 1n) / pricePerGpuHour;
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
}

/** Why an attempt with `amount` to spend cannot be placed at this price, or undefined when it can. */
export function minimumRunShortfall(amount: Money, pricePerGpuHour: Money, minimumGpuSeconds: number): { covered: number; needed: Money } | undefined {
  const covered = coveredGpuSeconds(amount, pricePerGpuHour);
  if (covered >= minimumGpuSeconds) return undefined;
  return { covered, needed: costOfGpuSeconds(pricePerGpuHour, minimumGpuSeconds, 'ceil') };
}

/** GPU-seconds the hub itself saw an attempt running: first Running report to its end (or now) × GPUs. */
export function hubSeenGpuSeconds(runningSinceMs: number | undefined, untilMs: number, gpus: number): number {
  if (runningSinceMs === undefined || !Number.isFinite(runningSinceMs)) return 0;
  return (gpus * Math.max(0, untilMs - runningSinceMs)) / 1000;
}

/**
 * GPU-seconds the hub itself saw an attempt use, in two parts. From the first Running report (the
 * whole gang running) to its end, every GPU. Before that, from the first report of GPU time while the
 * attempt was still Pending (part of a gang running), at most every GPU but one replica's: a gang not
 * all Running has at least one replica waiting, so a one-replica job's wait uses nothing, whatever
 * its agent says. A gang whose replicas start apart is bounded by both parts together.
 */
export function attemptSeenGpuSeconds(input: { firstUsageMs?: number; runningSinceMs?: number; untilMs: number; gpus: number; gpusPerReplica: number }): number {
  const valid = (ms: number | undefined) => (ms !== undefined && Number.isFinite(ms) ? ms : undefined);
  const running = valid(input.runningSinceMs);
  const first = valid(input.firstUsageMs);
  const partialGpus = Math.max(0, input.gpus - input.gpusPerReplica);
  const partialUntil = running ?? input.untilMs;
  const partial = first !== undefined && first < partialUntil ? (partialGpus * Math.max(0, Math.min(partialUntil, input.untilMs) - first)) / 1000 : 0;
  return partial + hubSeenGpuSeconds(running, input.untilMs, input.gpus);
}

/**
 * The most GPU-seconds the hub bills for an attempt: what the agent measured, never more than the
 * hub saw it use (attemptSeenGpuSeconds, plus slack per GPU for report latency), never more than the
 * escrow covers. Nothing before the hub saw any of it use a GPU.
 */
export function billableGpuSeconds(input: {
  reported: number;
  runningSinceMs: number | undefined;
  /** The first report of GPU time while the attempt was Pending (part of a gang running). */
  firstUsageMs?: number;
  untilMs: number;
  gpus: number;
  /** Default: gpus (one replica), so nothing is billed before the whole attempt ran. */
  gpusPerReplica?: number;
  coveredGpuSeconds?: number;
  slackSecondsPerGpu?: number;
}): number {
  if (input.runningSinceMs === undefined && input.firstUsageMs === undefined) return 0;
  const seen = attemptSeenGpuSeconds({ firstUsageMs: input.firstUsageMs, runningSinceMs: input.runningSinceMs, untilMs: input.untilMs, gpus: input.gpus, gpusPerReplica: input.gpusPerReplica ?? input.gpus });
  if (input.runningSinceMs === undefined && seen <= 0) return 0;
  const bound = seen + input.gpus * (input.slackSecondsPerGpu ?? BILLING_SLACK_SECONDS_PER_GPU);
  const reported = Number.isFinite(input.reported) ? Math.max(0, input.reported) : 0;
  return Math.min(reported, bound, input.coveredGpuSeconds ?? Infinity);
}

/**
 * When the hub stops an attempt itself if its agent has not: the covered GPU-seconds spent by the
 * hub's clock, plus the checkpoint grace and the billing slack (the agent stops first when honest).
 */
export function budgetStopAtMs(input: {
  runningSinceMs: number;
  gpus: number;
  coveredGpuSeconds: number;
  gracePeriodSeconds: number;
  slackSecondsPerGpu?: number;
}): number {
  const gpus = Math.max(1, input.gpus);
  const seconds = input.coveredGpuSeconds / gpus + input.gracePeriodSeconds + (input.slackSecondsPerGpu ?? BILLING_SLACK_SECONDS_PER_GPU);
  return input.runningSinceMs + seconds * 1000;
}

/** The agent's side: stop the pods once measured usage reaches what the escrow covers. */
export function budgetSpent(measuredGpuSeconds: number, coveredGpuSeconds: number | undefined): boolean {
  return coveredGpuSeconds !== undefined && coveredGpuSeconds > 0 && measuredGpuSeconds >= coveredGpuSeconds;
}
