import type { AttemptSettlement, JobSettlement } from '../../api/types.js';
import { formatCredits, parseCredits } from '../../chain/credits.js';
import type { ParsedMarketLog } from '../../chain/market-events.js';

// status.settlement is a record of facts read from the chain: every field comes from a confirmed
// GpuMarket event (EscrowOpened, Settled, Refunded, Slashed), whether the hub just sent the
// transaction or finds it in the log after a restart. The same function applies both.

/** Applies one confirmed market event of the job to its per-attempt records. */
export function applyMarketLog(records: readonly AttemptSettlement[], epoch: number, log: ParsedMarketLog): AttemptSettlement[] {
  const out = records.map((r) => ({ ...r }));
  let record = out.find((r) => r.epoch === epoch);
  if (!record) {
    record = { epoch };
    out.push(record);
    out.sort((a, b) => a.epoch - b.epoch);
  }
  const args = log.args;
  switch (log.name) {
    case 'EscrowOpened':
      record.escrowId = String(args.jobId);
      record.escrowAmount = formatCredits(BigInt(args.amount));
      record.escrowTxHash = log.txHash;
      record.escrowBlock = log.block;
      record.state ??= 'Open';
      break;
    case 'Settled':
      record.escrowId ??= String(args.jobId);
      record.state = 'Settled';
      record.paid = formatCredits(BigInt(args.amount));
      record.refunded = formatCredits(BigInt(args.refunded));
      record.txHash = log.txHash;
      record.block = log.block;
      break;
    case 'Refunded':
      record.escrowId ??= String(args.jobId);
      record.state = 'Refunded';
      record.paid = '0';
      record.refunded = formatCredits(BigInt(args.amount));
      record.txHash = log.txHash;
      record.block = log.block;
      break;
    case 'Slashed':
      record.slashed = formatCredits(BigInt(args.amount));
      record.slashTxHash = log.txHash;
      record.slashBlock = log.block;
      break;
  }
  return out;
}

export interface SettlementTotals {
  paid: bigint;
  refunded: bigint;
  slashed: bigint;
}

export function settlementTotals(records: readonly AttemptSettlement[]): SettlementTotals {
  const sum = (pick: (r: AttemptSettlement) => string | undefined) => records.reduce((n, r) => n + parseCredits(pick(r) ?? '0'), 0n);
  return { paid: sum((r) => r.paid), refunded: sum((r) => r.refunded), slashed: sum((r) => r.slashed) };
}

/** The job-level summary fields from the per-attempt records. */
export function summarize(consumer: string | undefined, records: readonly AttemptSettlement[]): JobSettlement {
  const sorted = [...records].sort((a, b) => a.epoch - b.epoch);
  const totals = settlementTotals(sorted);
  const opened = sorted.filter((r) => r.escrowTxHash).at(-1);
  const closed = [...sorted].filter((r) => r.txHash).sort((a, b) => (a.block ?? 0) - (b.block ?? 0)).at(-1);
  const settlement: JobSettlement = { attempts: sorted };
  if (consumer) settlement.consumer = consumer;
  if (opened?.escrowTxHash) settlement.escrowTxHash = opened.escrowTxHash;
  if (opened?.escrowAmount) settlement.escrowAmount = opened.escrowAmount;
  if (closed?.txHash) {
    settlement.txHash = closed.txHash;
    if (closed.block !== undefined) settlement.block = closed.block;
  }
  settlement.paid = formatCredits(totals.paid);
  settlement.refunded = formatCredits(totals.refunded);
  settlement.slashed = formatCredits(totals.slashed);
  return settlement;
}

/** A record is final once its escrow is closed on chain and any slash it needs is recorded. */
export function isFinalRecord(record: AttemptSettlement | undefined, needsSlash: boolean): boolean {
  if (!record || (record.state !== 'Settled' && record.state !== 'Refunded')) return false;
  return !needsSlash || record.slashTxHash !== undefined;
}
