import { describe, expect, it } from 'vitest';
import { parseCredits } from '../../chain/credits.js';
import { type ChainEscrow, planSettlement, type SettlementConfig } from './plan.js';
import { T0, attempt, ended, iso, openRecord, receiptFor, settlementJob } from './testing/fixtures.js';

const config: SettlementConfig = { receiptTimeoutMs: 600_000, deletedReceiptWaitMs: 30_000, slashAmount: parseCredits('5') };
const open = (credits = '10'): ChainEscrow => ({ state: 'Open', amount: parseCredits(credits), slashed: false });
const closed = (state: 'Settled' | 'Refunded', slashed = false): ChainEscrow => ({ state, amount: 0n, slashed });
const chain = (entries: Record<number, ChainEscrow>) => new Map(Object.entries(entries).map(([k, v]) => [Number(k), v]));
const NOW = T0 + 3_600_000;
const succeeded = { phase: 'Succeeded' as const };

describe('planSettlement', () => {
  it('keeps the escrow of a running attempt open and says so', () => {
    const job = settlementJob({ status: { phase: 'Running', attempts: [attempt(1)], settlement: { attempts: [openRecord(1)] } } });
    const plan = planSettlement(job, chain({ 1: open() }), NOW, config);
    expect(plan.actions).toEqual([]);
    expect(plan.closed).toBe(false);
    expect(plan.condition).toMatchObject({ status: 'False', reason: 'EscrowOpen', message: 'escrow of 10 credits open for attempt 1' });
  });

  it('settles a succeeded attempt from its receipt', () => {
    const receipt = receiptFor('0.04', 60);
    const job = settlementJob({ status: { ...succeeded, attempts: [ended(1, 'Succeeded', 'none')], settlement: { attempts: [openRecord(1, '10', { receipt })] } } });
    const plan = planSettlement(job, chain({ 1: open() }), NOW, config);
    expect(plan.actions).toEqual([{ kind: 'settle', epoch: 1, provider: 'gp-1', receipt }]);
    expect(plan.condition).toMatchObject({ status: 'False', reason: 'SettlementPending' });
    expect(plan.condition?.message).toContain('settling attempt 1: 0.04 credits to gp-1');
  });

  it('waits for the receipt, then refunds after the receipt timeout', () => {
    const status = { ...succeeded, attempts: [ended(1, 'Succeeded', 'none')], settlement: { attempts: [openRecord(1)] } };
    const endedAt = Date.parse(status.attempts[0]!.endTime!);
    const waiting = planSettlement(settlementJob({ status }), chain({ 1: open() }), endedAt + 1_000, config);
    expect(waiting.actions).toEqual([]);
    expect(waiting.waiting).toEqual(["waiting for gp-1's usage receipt for attempt 1"]);
    expect(waiting.requeueAfterMs).toBe(599_000);
    const late = planSettlement(settlementJob({ status }), chain({ 1: open() }), endedAt + 600_000, config);
    expect(late.actions).toEqual([{ kind: 'refund', epoch: 1, why: "waiting for gp-1's usage receipt for attempt 1; gave up after 600s" }]);
  });

  it('counts the receipt wait from when this hub began to listen, if later (the attack on providers: a hub away past the timeout refunds at once)', () => {
    const status = { ...succeeded, attempts: [ended(1, 'Succeeded', 'none')], settlement: { attempts: [openRecord(1)] } };
    const endedAt = Date.parse(status.attempts[0]!.endTime!);
    // The leader took over 20 minutes after the attempt ended; its agent has not reconnected yet.
    const leaderAt = endedAt + 1_200_000;
    const fresh = planSettlement(settlementJob({ status }), chain({ 1: open() }), leaderAt + 5_000, { ...config, listeningSinceMs: leaderAt });
    expect(fresh.actions).toEqual([]);
    expect(fresh.requeueAfterMs).toBe(595_000);
    const late = planSettlement(settlementJob({ status }), chain({ 1: open() }), leaderAt + 600_000, { ...config, listeningSinceMs: leaderAt });
    expect(late.actions).toEqual([{ kind: 'refund', epoch: 1, why: "waiting for gp-1's usage receipt for attempt 1; gave up after 600s" }]);
  });

  it('slashes a lost provider once and refunds its escrow; the next attempt is paid', () => {
    const receipt = receiptFor('0.02', 30);
    const status = {
      ...succeeded,
      attempts: [ended(1, 'Lost', 'provider', { reason: 'ProviderLost' }), ended(2, 'Succeeded', 'none')],
      settlement: { attempts: [openRecord(1), openRecord(2, '10', { receipt })] },
    };
    const plan = planSettlement(settlementJob({ status }), chain({ 1: open(), 2: open() }), NOW, config);
    expect(plan.actions).toEqual([
      { kind: 'slash', epoch: 1, provider: 'gp-1', reason: 'ProviderLost' },
      { kind: 'refund', epoch: 1, why: 'attempt 1 ended Lost (ProviderLost): not paid' },
      { kind: 'settle', epoch: 2, provider: 'gp-2', receipt },
    ]);
    // Once slashed, never again, even with the escrow still open.
    const again = planSettlement(settlementJob({ status }), chain({ 1: { ...open(), slashed: true }, 2: closed('Settled') }), NOW, config);
    expect(again.actions).toEqual([{ kind: 'refund', epoch: 1, why: 'attempt 1 ended Lost (ProviderLost): not paid' }]);
  });

  it("closes but never slashes an escrow this hub's old key opened (GpuMarket lets only the opener slash), so the job can finish", () => {
    // After a key rotation the old key is revoked: a slash would revert on every reconcile, and a
    // deleted job's finalizer would never come off.
    const status = { ...succeeded, attempts: [ended(1, 'Lost', 'provider', { reason: 'ProviderLost' }), ended(2, 'Succeeded', 'none')], settlement: { attempts: [openRecord(1), openRecord(2)] } };
    const plan = planSettlement(settlementJob({ status }), chain({ 1: { ...open(), slashable: false }, 2: closed('Settled') }), NOW, config);
    expect(plan.actions).toEqual([{ kind: 'refund', epoch: 1, why: 'attempt 1 ended Lost (ProviderLost): not paid' }]);
    const done = planSettlement(settlementJob({ status }), chain({ 1: { ...closed('Refunded'), slashable: false }, 2: closed('Settled') }), NOW, config);
    expect(done.actions).toEqual([]);
    expect(done.closed).toBe(true);
  });

  it('slashes a provider at most once per job, and never for an unattributed end', () => {
    const status = {
      phase: 'Failed' as const,
      attempts: [
        ended(1, 'Failed', 'provider', { provider: 'gp-x', reason: 'StartTimeout' }),
        ended(2, 'Failed', 'unattributed', { provider: 'gp-y', reason: 'Evicted' }),
        ended(3, 'Failed', 'provider', { provider: 'gp-x', reason: 'PodsDeleted' }),
      ],
    };
    const plan = planSettlement(settlementJob({ status }), chain({ 1: closed('Refunded'), 2: closed('Settled'), 3: closed('Refunded') }), NOW, config);
    expect(plan.actions).toEqual([{ kind: 'slash', epoch: 1, provider: 'gp-x', reason: 'StartTimeout' }]);
  });

  it('does not slash when slashing is off or for faults that are not the provider\'s', () => {
    const status = { ...succeeded, attempts: [ended(1, 'Lost', 'provider'), ended(2, 'Reclaimed', 'owner-reclaim')] };
    const plan = planSettlement(settlementJob({ status }), chain({ 1: closed('Refunded'), 2: closed('Settled') }), NOW, { ...config, slashAmount: 0n });
    expect(plan.actions).toEqual([]);
  });

  it('refunds an escrow opened for a placement that never came once the job is over', () => {
    const status = { phase: 'Failed' as const, attempts: [ended(1, 'Failed', 'user')], settlement: { attempts: [openRecord(1, '10', { state: 'Settled', paid: '1', refunded: '9' }), openRecord(2, '9')] } };
    const plan = planSettlement(settlementJob({ status }), chain({ 1: closed('Settled'), 2: open('9') }), NOW, config);
    expect(plan.actions).toEqual([{ kind: 'refund', epoch: 2, why: 'no attempt 2 was placed' }]);
    // While the job still waits for a placement, the escrow stays.
    const pending = planSettlement(settlementJob({ status: { ...status, phase: 'Pending' } }), chain({ 1: closed('Settled'), 2: open('9') }), NOW, config);
    expect(pending.actions).toEqual([]);
  });

  it('pays the running attempt of a deleted job from its receipt, waiting the whole receipt timeout for it; one never seen running only the short wait', () => {
    const deletedAt = T0 + 120_000;
    const status = { phase: 'Running' as const, attempts: [attempt(1)], settlement: { attempts: [openRecord(1)] } };
    const noReceipt = planSettlement(settlementJob({ status, deletedAt }), chain({ 1: open() }), deletedAt + 1_000, config);
    expect(noReceipt.actions).toEqual([]);
    expect(noReceipt.condition).toMatchObject({ status: 'False', reason: 'SettlementPending' });
    // Deleted while the hub or the agent was away: the Cancel, and so the receipt, come after a
    // reconnect. The short wait would refund work the provider did.
    const afterShortWait = planSettlement(settlementJob({ status, deletedAt }), chain({ 1: open() }), deletedAt + 30_000, config);
    expect(afterShortWait.actions).toEqual([]);
    const late = planSettlement(settlementJob({ status, deletedAt }), chain({ 1: open() }), deletedAt + config.receiptTimeoutMs, config);
    expect(late.actions.map((a) => a.kind)).toEqual(['refund']);
    const neverRan = { ...status, attempts: [attempt(1, { runningTime: undefined })] };
    expect(planSettlement(settlementJob({ status: neverRan, deletedAt }), chain({ 1: open() }), deletedAt + 29_000, config).actions).toEqual([]);
    expect(planSettlement(settlementJob({ status: neverRan, deletedAt }), chain({ 1: open() }), deletedAt + 30_000, config).actions.map((a) => a.kind)).toEqual(['refund']);
    const receipt = receiptFor('0.1');
    const withReceipt = { ...status, settlement: { attempts: [openRecord(1, '10', { receipt })] } };
    const paid = planSettlement(settlementJob({ status: withReceipt, deletedAt }), chain({ 1: open() }), deletedAt + 1_000, config);
    expect(paid.actions).toEqual([{ kind: 'settle', epoch: 1, provider: 'gp-1', receipt }]);
  });

  it('re-opens the missing escrow of a running attempt (drift) and flags it', () => {
    const job = settlementJob({ status: { phase: 'Running', attempts: [attempt(1)] } });
    const plan = planSettlement(job, chain({}), NOW, config);
    expect(plan.actions).toEqual([{ kind: 'reopen', epoch: 1 }]);
    expect(plan.condition).toMatchObject({ status: 'False', reason: 'EscrowMissing' });
  });

  it('settles a receipt that asks more than the escrow holds: the market pays what the escrow covers', () => {
    const status = { ...succeeded, attempts: [ended(1, 'Succeeded', 'none', { endTime: iso(NOW - 1_000) })], settlement: { attempts: [openRecord(1, '1', { receipt: receiptFor('2') })] } };
    const plan = planSettlement(settlementJob({ status }), chain({ 1: open('1') }), NOW, config);
    expect(plan.actions).toMatchObject([{ kind: 'settle', epoch: 1, receipt: { amount: '2' } }]);
    expect(plan.waiting).toEqual([]);
  });

  it('is closed and True once every escrow is closed: Settled when something was paid, Refunded otherwise', () => {
    const paid = {
      ...succeeded,
      attempts: [ended(1, 'Lost', 'provider'), ended(2, 'Succeeded', 'none')],
      settlement: {
        attempts: [
          openRecord(1, '10', { state: 'Refunded', paid: '0', refunded: '10', slashed: '5', slashTxHash: '0x1' }),
          openRecord(2, '10', { state: 'Settled', paid: '0.04', refunded: '9.96' }),
        ],
      },
    };
    const plan = planSettlement(settlementJob({ status: paid }), chain({ 1: closed('Refunded', true), 2: closed('Settled') }), NOW, config);
    expect(plan.closed).toBe(true);
    expect(plan.condition).toEqual({
      status: 'True',
      reason: 'Settled',
      message: 'paid 0.04 credits (attempt 2: 0.04); refunded 19.96; slashed 5 from providers at fault',
    });
    const refunded = { phase: 'Failed' as const, attempts: [ended(1, 'Lost', 'provider')], settlement: { attempts: [openRecord(1, '10', { state: 'Refunded', paid: '0', refunded: '10' })] } };
    expect(planSettlement(settlementJob({ status: refunded }), chain({ 1: closed('Refunded', true) }), NOW, config).condition).toMatchObject({ status: 'True', reason: 'Refunded' });
    expect(planSettlement(settlementJob({ status: { phase: 'Failed' } }), chain({}), NOW, config).condition).toMatchObject({ status: 'True', reason: 'NoEscrow' });
  });

  it('refunds, never slashes, the escrow of an epoch retired unplaced, and keeps the next epoch\'s open while it waits', () => {
    const neverPlaced = ended(1, 'Cancelled', 'none', { reason: 'NeverPlaced', runningTime: undefined, gpuSeconds: 0 });
    const job = settlementJob({ status: { phase: 'Pending', attempts: [neverPlaced], settlement: { attempts: [openRecord(1), openRecord(2)] } } });
    const plan = planSettlement(job, chain({ 1: open(), 2: open() }), NOW, config);
    expect(plan.actions).toEqual([{ kind: 'refund', epoch: 1, why: 'attempt 1 ended Cancelled (NeverPlaced): not paid' }]);
    // Once refunded, nothing more for it; the next epoch's escrow waits for its placement.
    const after = planSettlement(job, chain({ 1: closed('Refunded'), 2: open() }), NOW, config);
    expect(after.actions).toEqual([]);
    expect(after.closed).toBe(false);
  });
});
