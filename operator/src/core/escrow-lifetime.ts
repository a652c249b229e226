import { BILLING_SLACK_SECONDS_PER_GPU } from './budget.js';

// How long an attempt's escrow stays open (docs/settlement.md "Escrow lifetime"). The consumer may
// take an escrow back once it expires (GpuMarket.reclaimExpired), so it must outlast everything
// the attempt it pays can still do, and leave the hub a window to settle after that; otherwise a
// consumer waits out the expiry while the pods run and takes the provider's pay back. An escrow
// opened with a long enough expiry, and an attempt never given more GPU-seconds than fit before
// that window, make the two bounds meet. Pure arithmetic in seconds.

export interface AttemptRunBound {
  /** GPU-seconds the attempt's escrow covers at its price (coveredGpuSeconds; MAX_SAFE_INTEGER for a free price). */
  coveredGpuSeconds: number;
  gpus: number;
  /** How long a job may wait unplaced on its open escrow before the escrow is given back. */
  placeWithinSeconds: number;
  /** spec.faultTolerance.startTimeoutSeconds: assignment to Running at most. */
  startTimeoutSeconds: number;
  /** The checkpoint grace the pods get after the budget stop. */
  gracePeriodSeconds: number;
  /** spec.activeDeadlineSeconds: the job ends by then whatever its budget. */
  deadlineSeconds?: number;
}

/**
 * The longest an attempt holds its escrow from the moment it opens: placed, started, run through
 * what it covers, then stopped with its grace and the hub's billing slack; or, when that comes
 * sooner, the job's deadline (it counts from the job's creation, before the escrow) and the same
 * grace and slack for the stop it brings.
 */
export function attemptRunBoundSeconds(input: AttemptRunBound): number {
  const gpus = Math.max(1, input.gpus);
  const stop = input.gracePeriodSeconds + BILLING_SLACK_SECONDS_PER_GPU;
  const bound = input.placeWithinSeconds + input.startTimeoutSeconds + Math.ceil(input.coveredGpuSeconds / gpus) + stop;
  return input.deadlineSeconds !== undefined ? Math.min(bound, input.deadlineSeconds + stop + DEADLINE_MARGIN_SECONDS) : bound;
}

/**
 * Room for the roundings between the expiry and the check at placement (a creationTimestamp in
 * whole seconds, seconds left rounded down), so an escrow opened for a deadline job always leaves
 * the placement its whole deadline.
 */
export const DEADLINE_MARGIN_SECONDS = 60;

/** Seconds from opening to expiry: the run bound plus the settle window, within the chain's maximum. */
export function escrowOpenSeconds(runBoundSeconds: number, settleWindowSeconds: number, maxSeconds: number): number {
  return Math.max(1, Math.min(maxSeconds, runBoundSeconds + settleWindowSeconds));
}

/**
 * The most GPU-seconds an attempt placed now may be given on an escrow whose settle window begins
 * in `secondsLeft`: it must start, run, and stop with its grace before then. Infinity when the
 * job's deadline (`deadlineLeftSeconds` from now) stops it in time anyway. Binds only when the
 * escrow was opened for a higher price than the placement's, or when the run its budget covers is
 * longer than one escrow may last; then the attempt ends on its budget stop sooner, and the
 * provider is still paid for every second it ran.
 */
export function escrowRunwayGpuSeconds(input: {
  secondsLeft: number;
  gpus: number;
  startTimeoutSeconds: number;
  gracePeriodSeconds: number;
  deadlineLeftSeconds?: number;
}): number {
  const stop = input.gracePeriodSeconds + BILLING_SLACK_SECONDS_PER_GPU;
  if (input.deadlineLeftSeconds !== undefined && input.deadlineLeftSeconds + stop <= input.secondsLeft) return Number.POSITIVE_INFINITY;
  const seconds = input.secondsLeft - input.startTimeoutSeconds - stop;
  return Math.max(0, Math.floor(seconds) * Math.max(1, input.gpus));
}
