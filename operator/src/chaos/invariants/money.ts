import type { JobAttempt } from '../../api/types.js';
import { attemptEscrowId } from '../../chain/attempt-escrow.js';
import { parseCredits } from '../../chain/credits.js';
import { usageAmount } from '../../chain/receipt.js';
import { isPaid } from '../../hub/jobs/plan.js';
import type { ChainEvent, ChaosHistory, Holdings, JobRecord } from '../history.js';
import { attemptViolation, attemptWindow, faultsNear, jobOf, jobViolation, type Violation } from './violation.js';

// Promises about money (DESIGN §7), read from the chain's events against the jobs' attempts: each
// escrow closed exactly once; paid = the provider's signed receipt, bounded by the agreed price,
// the escrow and the attempt's wall time; nothing paid for an attempt that did not run; every
// provider-fault attempt slashed exactly once and nothing else; tokens conserved.

/** Slack on metered time against the attempt's wall-clock window (clock skew, report cadence). */
const METER_SLACK_S = 5;

interface AttemptRef {
  record: JobRecord;
  attempt: JobAttempt;
}

function attemptsByEscrow(h: ChaosHistory): Map<string, AttemptRef> {
  const map = new Map<string, AttemptRef>();
  for (const record of h.jobs) {
    const job = jobOf(record);
    const uid = record.uid ?? job?.metadata.uid;
    if (!uid) continue;
    for (const attempt of job?.status?.attempts ?? []) map.set(attemptEscrowId(uid, attempt.epoch).toLowerCase(), { record, attempt });
  }
  return map;
}

function eventsByEscrow(h: ChaosHistory): Map<string, ChainEvent[]> {
  const map = new Map<string, ChainEvent[]>();
  for (const e of h.chain.events) {
    const key = e.escrowId.toLowerCase();
    map.set(key, [...(map.get(key) ?? []), e]);
  }
  return map;
}

const count = (events: readonly ChainEvent[], name: ChainEvent['name']) => events.filter((e) => e.name === name).length;

function chainViolation(h: ChaosHistory, invariant: string, ref: AttemptRef | undefined, escrowId: string, message: string): Violation {
  if (ref) return attemptViolation(h, invariant, ref.record, ref.attempt, message);
  return { invariant, message: `escrow ${escrowId}: ${message}`, faults: faultsNear(h, h.startedAt, h.endedAt).filter((f) => f.target === 'chain') };
}

/** Each escrow opened at most once and closed (settled or refunded) exactly once. */
export function escrowsClosedOnce(h: ChaosHistory): Violation[] {
  const out: Violation[] = [];
  const attempts = attemptsByEscrow(h);
  for (const [id, events] of eventsByEscrow(h)) {
    const opened = count(events, 'EscrowOpened');
    const closed = count(events, 'Settled') + count(events, 'Refunded');
    const ref = attempts.get(id);
    if (opened > 1) out.push(chainViolation(h, 'escrow-once', ref, id, `opened ${opened} times`));
    if (opened === 0 && closed > 0) out.push(chainViolation(h, 'escrow-once', ref, id, `closed ${closed} times but never opened`));
    if (opened >= 1 && closed !== 1) out.push(chainViolation(h, 'escrow-once', ref, id, closed === 0 ? 'still open at the end' : `closed ${closed} times (${events.map((e) => e.name).join(', ')})`));
  }
  return out;
}

/** Every Settled event pays the attempt's own provider what it signed for, within every bound. */
export function paidAsSigned(h: ChaosHistory): Violation[] {
  const out: Violation[] = [];
  const attempts = attemptsByEscrow(h);
  const events = eventsByEscrow(h);
  const paidPerJob = new Map<JobRecord, bigint>();
  for (const e of h.chain.events.filter((x) => x.name === 'Settled')) {
    const id = e.escrowId.toLowerCase();
    const ref = attempts.get(id);
    const v = (message: string) => out.push(chainViolation(h, 'paid-as-signed', ref, id, message));
    if (!ref) {
      v(`paid ${e.amount} for an escrow that is no job's attempt`);
      continue;
    }
    const { record, attempt } = ref;
    const amount = BigInt(e.amount);
    paidPerJob.set(record, (paidPerJob.get(record) ?? 0n) + amount);
    const wallet = h.providers[attempt.provider]?.wallet;
    if (wallet && e.provider !== wallet) v(`paid ${e.provider}, not the attempt's provider ${wallet}`);
    // Nothing paid for an attempt that was not running (lost, fenced, never started).
    if (amount > 0n && (attempt.outcome === 'Lost' || attempt.outcome === 'Fenced' || attempt.faultOf === 'provider')) v(`paid ${amount} for an attempt that ended ${attempt.outcome} (${attempt.faultOf})`);
    const ran = h.pods.some((p) => p.jobUid === (record.uid ?? jobOf(record)?.metadata.uid) && p.epoch === attempt.epoch) || (attempt.gpuSeconds ?? 0) > 0;
    if (amount > 0n && !ran) v(`paid ${amount} for an attempt never seen running and with no metered time`);
    const receipt = jobOf(record)?.status?.settlement?.attempts?.find((s) => s.epoch === attempt.epoch)?.receipt;
    if (!receipt) {
      if (amount > 0n) v(`paid ${amount} with no signed receipt recorded`);
    } else {
      if (e.gpuSeconds !== undefined && e.gpuSeconds !== receipt.gpuSeconds) v(`paid for ${e.gpuSeconds} GPU-s but the provider signed ${receipt.gpuSeconds}`);
      const signed = parseCredits(receipt.amount);
      if (attempt.pricePerGpuHour && signed !== usageAmount(receipt.gpuSeconds, attempt.pricePerGpuHour)) v(`receipt amount ${receipt.amount} is not ${receipt.gpuSeconds} GPU-s at the agreed ${attempt.pricePerGpuHour}/GPU-h`);
      const escrowed = BigInt(events.get(id)?.find((x) => x.name === 'EscrowOpened')?.amount ?? '0');
      const expected = signed < escrowed ? signed : escrowed;
      if (amount !== expected) v(`paid ${amount}, expected min(signed ${signed}, escrow ${escrowed}) = ${expected}`);
    }
    // Bounded by wall time: no more GPU-seconds than GPUs × how long the attempt existed.
    const gpus = record.plan.replicas * record.plan.gpusPerReplica;
    const [from, to] = attemptWindow(h, attempt);
    const bound = gpus * ((to - from) / 1000 + METER_SLACK_S);
    if (e.gpuSeconds !== undefined && e.gpuSeconds > bound) v(`paid for ${e.gpuSeconds} GPU-s; ${gpus} GPU(s) over the attempt's ${((to - from) / 1000).toFixed(1)} s allow at most ${bound.toFixed(0)}`);
  }
  for (const [record, paid] of paidPerJob) {
    if (record.plan.maxTotal !== undefined && paid > parseCredits(record.plan.maxTotal)) {
      out.push(jobViolation(h, 'paid-as-signed', record, `paid ${paid} in total, more than budget.maxTotal ${record.plan.maxTotal}`));
    }
  }
  return out;
}

/** Delivered work is paid: an attempt the hub bills (isPaid) with a signed receipt for time is settled, not refunded. */
export function deliveredWorkPaid(h: ChaosHistory): Violation[] {
  const out: Violation[] = [];
  const events = eventsByEscrow(h);
  for (const [id, ref] of attemptsByEscrow(h)) {
    if (!isPaid(ref.attempt)) continue;
    const receipt = jobOf(ref.record)?.status?.settlement?.attempts?.find((s) => s.epoch === ref.attempt.epoch)?.receipt;
    const evs = events.get(id) ?? [];
    if (!receipt || receipt.gpuSeconds <= 0 || !count(evs, 'EscrowOpened')) continue;
    if (count(evs, 'Refunded') && !count(evs, 'Settled')) out.push(chainViolation(h, 'paid-as-signed', ref, id, `a ${ref.attempt.outcome} attempt with a signed receipt for ${receipt.gpuSeconds} GPU-s was refunded in full: the provider was not paid for delivered work`));
  }
  return out;
}

/** Each provider-fault attempt with an escrow is slashed exactly once, its own provider; nothing else is. */
export function slashedExactlyOnce(h: ChaosHistory): Violation[] {
  const out: Violation[] = [];
  const attempts = attemptsByEscrow(h);
  const events = eventsByEscrow(h);
  for (const [id, ref] of attempts) {
    const evs = events.get(id) ?? [];
    const slashes = evs.filter((e) => e.name === 'Slashed');
    const providerFault = ref.attempt.faultOf === 'provider';
    if (providerFault && count(evs, 'EscrowOpened') > 0 && slashes.length !== 1) out.push(chainViolation(h, 'slash-once', ref, id, `provider-fault attempt slashed ${slashes.length} times`));
    if (!providerFault && slashes.length) out.push(chainViolation(h, 'slash-once', ref, id, `slashed ${slashes.length} time(s) although the attempt's fault is ${ref.attempt.faultOf ?? 'none'} (${ref.attempt.outcome})`));
    const wallet = h.providers[ref.attempt.provider]?.wallet;
    for (const s of slashes) {
      if (wallet && s.provider !== wallet) out.push(chainViolation(h, 'slash-once', ref, id, `slashed ${s.provider}, not the attempt's provider ${wallet}`));
      if (s.requested !== undefined && BigInt(s.amount) > BigInt(s.requested)) out.push(chainViolation(h, 'slash-once', ref, id, `slashed ${s.amount}, more than requested ${s.requested}`));
    }
  }
  for (const e of h.chain.events.filter((x) => x.name === 'Slashed' && !attempts.has(x.escrowId.toLowerCase()))) {
    out.push(chainViolation(h, 'slash-once', undefined, e.escrowId, `slash of ${e.provider} for an escrow that is no job's attempt`));
  }
  return out;
}

const sum = (r: Record<string, string>) => Object.values(r).reduce((n, v) => n + BigInt(v), 0n);

function balanced(label: string, x: Holdings): string | undefined {
  // GpuMarket's own identity: what it holds is what it owes, plus what slashes burned.
  const held = sum(x.consumerFree) + sum(x.providerStake) + sum(x.providerEarnings) + BigInt(x.openEscrowed) + BigInt(x.burned ?? '0');
  return BigInt(x.marketBalance) === held ? undefined : `${label} (block ${x.block}): the market holds ${x.marketBalance} but accounts sum to ${held}`;
}

/** Tokens are neither made nor lost: the market's balance is what it owes, and the run's flows add up. */
export function tokensConserved(h: ChaosHistory): Violation[] {
  const { before, after, events, consumer } = h.chain;
  const problems: string[] = [];
  if (before.totalSupply !== after.totalSupply) problems.push(`total supply moved from ${before.totalSupply} to ${after.totalSupply}`);
  for (const [label, x] of [['before', before], ['after', after]] as const) {
    const p = balanced(label, x);
    if (p) problems.push(p);
  }
  const settled = events.filter((e) => e.name === 'Settled').reduce((n, e) => n + BigInt(e.amount), 0n);
  const slashes = events.filter((e) => e.name === 'Slashed');
  const slashed = slashes.reduce((n, e) => n + BigInt(e.amount), 0n);
  // A slash pays the consumer at most what the attempt cost it (DESIGN §5); the rest is burned.
  const compensated = slashes.reduce((n, e) => n + BigInt(e.compensated ?? e.amount), 0n);
  const d = (a: Record<string, string>, b: Record<string, string>) => sum(b) - sum(a);
  const consumerDelta = BigInt(after.consumerFree[consumer] ?? '0') + BigInt(after.openEscrowed) - BigInt(before.consumerFree[consumer] ?? '0') - BigInt(before.openEscrowed);
  if (consumerDelta !== compensated - settled) problems.push(`the consumer's funds moved by ${consumerDelta}; slash compensation (${compensated}) minus payments (${settled}) is ${compensated - settled}`);
  if (before.burned !== undefined && after.burned !== undefined && BigInt(after.burned) - BigInt(before.burned) !== slashed - compensated) {
    problems.push(`the market burned ${BigInt(after.burned) - BigInt(before.burned)}; slashes taken (${slashed}) minus compensation (${compensated}) is ${slashed - compensated}`);
  }
  for (const e of slashes) {
    if (e.compensated !== undefined && BigInt(e.compensated) > BigInt(e.amount)) problems.push(`slash of escrow ${e.escrowId} compensated ${e.compensated}, more than the ${e.amount} taken`);
  }
  if (d(before.providerEarnings, after.providerEarnings) !== settled) problems.push(`providers' earnings grew by ${d(before.providerEarnings, after.providerEarnings)}, payments were ${settled}`);
  if (d(before.providerStake, after.providerStake) !== -slashed) problems.push(`stakes moved by ${d(before.providerStake, after.providerStake)}, slashes were ${slashed}`);
  return problems.map((message) => ({ invariant: 'token-conservation', message, faults: [] }));
}
