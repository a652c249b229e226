import type { GpuJob } from '../../api/types.js';
import { parseMoney } from '../../core/money.js';
import { nextEpoch } from '../settlement/billing.js';
import { attemptHold } from '../settlement/budget.js';

// What the next attempt of a job may spend, which the planner turns into covered GPU-seconds at the
// placed price (every Assign carries them; the agent stops the pods when they are used).
//   - With a chain: the attempt's escrow, i.e. the budget less what earlier attempts committed
//     (settlement/budget.ts), and never more than the escrow recorded for that epoch.
//   - Without a chain: spec.budget.maxTotal less what earlier attempts cost; no limit without it.

export function budgetLeftOnChain(job: GpuJob, defaultHold: bigint): bigint {
  const epoch = nextEpoch(job);
  const hold = attemptHold(job, epoch, defaultHold).amount;
  const recorded = job.status?.settlement?.attempts?.find((r) => r.epoch === epoch)?.escrowAmount;
  if (!recorded) return hold;
  const escrow = parseMoney(recorded);
  return escrow < hold ? escrow : hold;
}

export function budgetLeftWithoutChain(job: GpuJob): bigint | undefined {
  const max = job.spec.budget?.maxTotal;
  if (!max) return undefined;
  const spent = parseMoney(job.status?.cost?.amount ?? '0');
  const limit = parseMoney(max);
  return limit > spent ? limit - spent : 0n;
}
