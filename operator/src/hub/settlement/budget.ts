import type { GpuJob } from '../../api/types.js';
import { formatCredits, parseCredits } from '../../chain/credits.js';
import { committedBy, isDeleted } from './billing.js';

// How much of the consumer's deposit a job holds. The job's budget is spec.budget.maxTotal; without
// it, the most the job can cost within its deadline (price cap × GPUs × activeDeadlineSeconds);
// without a deadline either, the hub's default hold. Each attempt escrows what is left of the budget
// after the attempts before it, so all attempts together never pay more than the budget.

export interface BudgetHold {
  /** Token units (18 decimals). */
  amount: bigint;
  /** Where the number comes from, for messages: "spec.budget.maxTotal". */
  source: string;
}

export function jobBudget(job: GpuJob, defaultHold: bigint): BudgetHold {
  const budget = job.spec.budget;
  if (budget?.maxTotal) return { amount: parseCredits(budget.maxTotal), source: 'spec.budget.maxTotal' };
  const deadline = job.spec.activeDeadlineSeconds;
  if (budget?.maxPricePerGpuHour && deadline) {
    const gpus = BigInt((job.spec.replicas ?? 1) * (job.spec.gpusPerReplica ?? 1));
    const amount = (parseCredits(budget.maxPricePerGpuHour) * gpus * BigInt(deadline) + 3599n) / 3600n;
    return { amount, source: `maxPricePerGpuHour × ${gpus} GPU(s) × activeDeadlineSeconds ${deadline}` };
  }
  return { amount: defaultHold, source: 'the hub default hold (no maxTotal or activeDeadlineSeconds)' };
}

export interface AttemptHold extends BudgetHold {
  /** Credits earlier attempts took or may still take. */
  committed: bigint;
  budget: bigint;
}

/** What the escrow of attempt `epoch` locks: the budget less what earlier attempts committed. */
export function attemptHold(job: GpuJob, epoch: number, defaultHold: bigint): AttemptHold {
  const budget = jobBudget(job, defaultHold);
  const deleted = isDeleted(job);
  let committed = 0n;
  for (const record of job.status?.settlement?.attempts ?? []) {
    if (record.epoch >= epoch) continue;
    committed += committedBy(record, job.status?.attempts?.find((a) => a.epoch === record.epoch), deleted);
  }
  const left = budget.amount > committed ? budget.amount - committed : 0n;
  const source = committed > 0n ? `${budget.source} less ${formatCredits(committed)} committed by earlier attempts` : budget.source;
  return { amount: left, source, committed, budget: budget.amount };
}
