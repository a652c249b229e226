import type { AttemptSettlement, GpuJob, JobAttempt } from '../../api/types.js';
import { parseCredits } from '../../chain/credits.js';
import { isPaid } from '../jobs/plan.js';

// Which attempts are billed, and what a job has committed so far: the small rules the funding check,
// the receipt check and the settlement plan share.

/**
 * Whether the provider is paid its signed usage for an attempt. Delivered work is paid (isPaid:
 * succeeded, reclaimed, failed by the user's code), and so is work the user stopped: a job that
 * ran into its own deadline, or was deleted while the attempt ran. Provider faults and fenced
 * attempts are never paid.
 */
export function isBillable(attempt: JobAttempt, jobDeleted: boolean): boolean {
  if (!attempt.endTime) return jobDeleted;
  if (isPaid(attempt)) return true;
  return attempt.outcome === 'Cancelled' && attempt.faultOf === 'user';
}

export const isDeleted = (job: GpuJob): boolean => job.metadata.deletionTimestamp != null;
export const isFinished = (job: GpuJob): boolean => job.status?.phase === 'Succeeded' || job.status?.phase === 'Failed';

/** The epoch the next attempt will get: the planner's rule (one past the newest). */
export function nextEpoch(job: GpuJob): number {
  return Math.max(0, ...(job.status?.attempts ?? []).map((a) => a.epoch)) + 1;
}

/** Every epoch that may have an escrow: each attempt, the one the job may be placed with next, and any recorded. */
export function escrowEpochs(job: GpuJob): number[] {
  const epochs = new Set<number>();
  for (let e = 1; e <= nextEpoch(job); e++) epochs.add(e);
  for (const r of job.status?.settlement?.attempts ?? []) epochs.add(r.epoch);
  return [...epochs].sort((a, b) => a - b);
}

/**
 * Credits an earlier attempt has taken or may still take from the job's budget: what was paid once
 * settled, nothing once refunded or when it is not billable, the signed amount when a receipt is in,
 * and otherwise the whole escrow (its usage is not known yet).
 */
export function committedBy(record: AttemptSettlement | undefined, attempt: JobAttempt | undefined, jobDeleted: boolean): bigint {
  if (!record) return 0n;
  if (record.state === 'Settled') return parseCredits(record.paid ?? '0');
  if (record.state === 'Refunded') return 0n;
  if (attempt?.endTime && !isBillable(attempt, jobDeleted)) return 0n;
  if (record.receipt) return parseCredits(record.receipt.amount);
  return parseCredits(record.escrowAmount ?? '0');
}
