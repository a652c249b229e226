import type { GpuJob, JobAttempt, SettlementReceipt } from '../../api/types.js';
import { formatCredits, parseCredits } from '../../chain/credits.js';
import { escrowEpochs, isBillable, isDeleted, isFinished } from './billing.js';
import { settlementTotals } from './records.js';

// What settlement a job needs next, decided from one snapshot: the job (attempts, recorded receipts
// and settlement records) and the state of each of its escrows on chain. No I/O. The controller
// reads the chain, calls planSettlement, sends the actions, and records the resulting events.
//
// One escrow per attempt (key keccak256("<uid>:<epoch>")), because GpuMarket pays one provider
// once per key. For each escrow, in order:
//   1. None on chain: nothing to do, unless it belongs to a live attempt (drift: re-open it).
//   2. The attempt ended by the provider's fault and the escrow was never slashed: slash once.
//   3. Open, and no attempt was ever placed with it: refund once the job is finished or deleted.
//   4. Open, the attempt runs and the job is not deleted: keep it open.
//   5. Open, the attempt is not billable (provider fault, fenced): refund.
//   6. Open and billable: settle from the provider's receipt; without one, wait up to the receipt
//      timeout, then refund (a provider that never signs is not paid).

export type EscrowStateName = 'None' | 'Open' | 'Settled' | 'Refunded';

export interface ChainEscrow {
  state: EscrowStateName;
  /** Token units locked while Open. */
  amount: bigint;
  /** Whether GpuMarket.isSlashed(escrowId, epoch). */
  slashed: boolean;
  /**
   * False when another key opened it (this hub's old key, rotated out and revoked): GpuMarket lets
   * only the opener slash, so this hub closes it but never slashes it. Absent: this hub's own.
   */
  slashable?: boolean;
  /** The provider wallet the escrow pays (its terms), when it was read from the chain. */
  provider?: string;
}

export interface SettlementConfig {
  /** How long after an attempt ended its provider may take to deliver the usage receipt. */
  receiptTimeoutMs: number;
  /** The same for the running attempt of a deleted job (its agent signs when it gets the Cancel). */
  deletedReceiptWaitMs: number;
  /** Token units slashed per provider fault; 0 disables slashing. */
  slashAmount: bigint;
  /**
   * Since when this hub could hear agents (its leadership began): the receipt waits count from
   * here at the earliest. A hub (or leader) away for longer than the receipt timeout would otherwise
   * refund, on its first reconcile, every attempt whose agent had not yet reconnected to send its
   * receipt again: providers unpaid for work done while nobody listened.
   */
  listeningSinceMs?: number;
}

export type SettlementAction =
  | { kind: 'settle'; epoch: number; provider: string; receipt: SettlementReceipt }
  | { kind: 'refund'; epoch: number; why: string }
  | { kind: 'slash'; epoch: number; provider: string; reason: string }
  | { kind: 'reopen'; epoch: number };

export interface SettledCondition {
  status: 'True' | 'False';
  reason: string;
  message: string;
}

export interface SettlementPlan {
  actions: SettlementAction[];
  /** Why escrows stay open for now (human-readable). */
  waiting: string[];
  /** Finished or deleted, and every escrow is closed with its slash done: nothing more to do. */
  closed: boolean;
  condition?: SettledCondition;
  requeueAfterMs?: number;
}

const NONE: ChainEscrow = { state: 'None', amount: 0n, slashed: false };

export function planSettlement(job: GpuJob, chain: ReadonlyMap<number, ChainEscrow>, now: number, config: SettlementConfig): SettlementPlan {
  const deleted = isDeleted(job);
  const over = deleted || isFinished(job);
  const attempts = job.status?.attempts ?? [];
  const records = job.status?.settlement?.attempts ?? [];
  const plan: SettlementPlan = { actions: [], waiting: [], closed: false };
  const open: { epoch: number; amount: bigint }[] = [];
  const missing: number[] = [];
  const wakeAt = (ms: number) => (plan.requeueAfterMs = Math.max(1, Math.min(plan.requeueAfterMs ?? Infinity, ms)));

  for (const epoch of escrowEpochs(job)) {
    const escrow = chain.get(epoch) ?? NONE;
    const attempt = attempts.find((a) => a.epoch === epoch);
    const record = records.find((r) => r.epoch === epoch);
    // 1. No escrow: only a live attempt must have one.
    if (escrow.state === 'None') {
      if (attempt && !attempt.endTime && !over) {
        missing.push(epoch);
        plan.actions.push({ kind: 'reopen', epoch });
      }
      continue;
    }
    // 2. Provider fault: slash once per (escrow, epoch), whatever the escrow's state, and only for
    //    the first provider-fault attempt of each provider in this job: at most once per (job, provider).
    if (attempt?.endTime && attempt.faultOf === 'provider' && !escrow.slashed && escrow.slashable !== false && config.slashAmount > 0n && firstFaultOf(attempts, attempt)) {
      plan.actions.push({ kind: 'slash', epoch, provider: attempt.provider, reason: attempt.reason ?? 'ProviderFault' });
    }
    if (escrow.state !== 'Open') continue;
    open.push({ epoch, amount: escrow.amount });
    // 3. Opened for a placement that never happened.
    if (!attempt) {
      if (over) plan.actions.push({ kind: 'refund', epoch, why: `no attempt ${epoch} was placed` });
      continue;
    }
    // 4. Running: the escrow stays open until the attempt ends or the job is deleted.
    if (!attempt.endTime && !deleted) continue;
    // 5. Not billable: the consumer gets it all back.
    if (!isBillable(attempt, deleted)) {
      plan.actions.push({ kind: 'refund', epoch, why: `attempt ${epoch} ended ${attempt.outcome ?? 'unpaid'} (${attempt.reason ?? 'no reason'}): not paid` });
      continue;
    }
    // 6. Billable: pay what the provider signed for; a receipt above the escrow is paid what the
    //    escrow covers (GpuMarket pays min(receipt, escrow)), so no escrow is left unsettleable.
    const receipt = record?.receipt;
    if (receipt) {
      plan.actions.push({ kind: 'settle', epoch, provider: attempt.provider, receipt });
      continue;
    }
    const since = Math.max(Date.parse(attempt.endTime ?? String(job.metadata.deletionTimestamp)), config.listeningSinceMs ?? -Infinity);
    // A deleted job's live attempt that the hub saw running did work its provider is owed. The
    // agent signs for it once it has the Cancel and has stopped the pods, which after a hub restart
    // or a dropped stream takes a reconnect: it gets the whole receipt timeout, or deleting running
    // jobs while the hub or the agent is away would refund them unpaid. One never seen running is
    // owed nothing beyond what its receipt may still claim within the short wait.
    const limit = attempt.endTime ? config.receiptTimeoutMs
      : attempt.runningTime ? Math.max(config.receiptTimeoutMs, config.deletedReceiptWaitMs)
      : config.deletedReceiptWaitMs;
    const why = `waiting for ${attempt.provider}'s usage receipt for attempt ${epoch}`;
    if (now - since >= limit) {
      plan.actions.push({ kind: 'refund', epoch, why: `${why}; gave up after ${Math.round(limit / 1000)}s` });
    } else {
      plan.waiting.push(why);
      wakeAt(since + limit - now);
    }
  }

  plan.closed = over && open.length === 0 && plan.actions.length === 0;
  const condition = settledCondition(job, plan, open, missing, over);
  if (condition) plan.condition = condition;
  return plan;
}

function firstFaultOf(attempts: readonly JobAttempt[], attempt: JobAttempt): boolean {
  return !attempts.some((a) => a.epoch < attempt.epoch && a.provider === attempt.provider && a.endTime && a.faultOf === 'provider');
}

function settledCondition(
  job: GpuJob,
  plan: SettlementPlan,
  open: { epoch: number; amount: bigint }[],
  missing: number[],
  over: boolean,
): SettledCondition | undefined {
  const records = job.status?.settlement?.attempts ?? [];
  const totals = settlementTotals(records);
  const slashed = totals.slashed > 0n ? `; slashed ${formatCredits(totals.slashed)} from providers at fault` : '';
  if (plan.closed) {
    if (records.length === 0) return { status: 'True', reason: 'NoEscrow', message: 'no escrow was opened for this job' };
    if (totals.paid > 0n) {
      const paid = records.filter((r) => r.state === 'Settled').map((r) => `attempt ${r.epoch}: ${r.paid}`).join(', ');
      return { status: 'True', reason: 'Settled', message: `paid ${formatCredits(totals.paid)} credits (${paid}); refunded ${formatCredits(totals.refunded)}${slashed}` };
    }
    return { status: 'True', reason: 'Refunded', message: `refunded ${formatCredits(totals.refunded)} credits; nothing was paid${slashed}` };
  }
  const pending = [...plan.actions.map(describe), ...plan.waiting];
  if (over) return { status: 'False', reason: 'SettlementPending', message: pending.join('; ') || 'settling' };
  if (missing.length) {
    return { status: 'False', reason: 'EscrowMissing', message: `attempt ${missing.join(', ')} runs without an open escrow on chain; re-opening it` };
  }
  if (pending.length) return { status: 'False', reason: 'SettlementPending', message: pending.join('; ') };
  const current = open.at(-1);
  if (current) {
    return { status: 'False', reason: 'EscrowOpen', message: `escrow of ${formatCredits(current.amount)} credits open for attempt ${current.epoch}` };
  }
  return undefined;
}

function describe(action: SettlementAction): string {
  switch (action.kind) {
    case 'settle':
      return `settling attempt ${action.epoch}: ${action.receipt.amount} credits to ${action.provider}`;
    case 'refund':
      return `refunding attempt ${action.epoch}: ${action.why}`;
    case 'slash':
      return `slashing ${action.provider} for attempt ${action.epoch} (${action.reason})`;
    case 'reopen':
      return `re-opening the escrow of attempt ${action.epoch}`;
  }
}
