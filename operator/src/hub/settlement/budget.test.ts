import { describe, expect, it } from 'vitest';
import { parseCredits } from '../../chain/credits.js';
import { escrowEpochs, isBillable, nextEpoch } from './billing.js';
import { attemptHold, jobBudget } from './budget.js';
import { attempt, ended, openRecord, receiptFor, settlementJob } from './testing/fixtures.js';

const DEFAULT_HOLD = parseCredits('25');

describe('jobBudget', () => {
  it.each([
    [{ budget: { maxPricePerGpuHour: '3', maxTotal: '10' } }, '10', 'spec.budget.maxTotal'],
    // 3 credits/GPU-h × 2 GPUs × 600 s = 1 credit.
    [{ budget: { maxPricePerGpuHour: '3' }, activeDeadlineSeconds: 600 }, '1', 'activeDeadlineSeconds 600'],
    [{ budget: { maxPricePerGpuHour: '3' } }, '25', 'default hold'],
  ])('%j holds %s credits (%s)', (spec, credits, source) => {
    const hold = jobBudget(settlementJob({ spec }), DEFAULT_HOLD);
    expect(hold.amount).toBe(parseCredits(credits));
    expect(hold.source).toContain(source);
  });

  it('rounds a deadline-derived hold up to a whole token unit', () => {
    const hold = jobBudget(settlementJob({ spec: { budget: { maxPricePerGpuHour: '0.000000000000000001' }, activeDeadlineSeconds: 1, gpusPerReplica: 1 } }), DEFAULT_HOLD);
    expect(hold.amount).toBe(1n);
  });
});

describe('attemptHold', () => {
  it('locks the whole budget for the first attempt', () => {
    expect(attemptHold(settlementJob(), 1, DEFAULT_HOLD)).toMatchObject({ amount: parseCredits('10'), committed: 0n });
  });

  it('locks what earlier attempts left: paid when settled, nothing when refunded or unpaid, the receipt or the whole escrow while open', () => {
    const status = {
      attempts: [ended(1, 'Reclaimed', 'owner-reclaim'), ended(2, 'Lost', 'provider'), ended(3, 'Reclaimed', 'owner-reclaim'), ended(4, 'Reclaimed', 'owner-reclaim'), attempt(5)],
      settlement: {
        attempts: [
          openRecord(1, '10', { state: 'Settled', paid: '1.5', refunded: '8.5' }),
          openRecord(2, '8.5'), // lost: will be refunded, commits nothing
          openRecord(3, '8.5', { receipt: receiptFor('0.5') }),
          openRecord(4, '8'), // no receipt yet: all of it may still go
        ],
      },
    };
    const hold = attemptHold(settlementJob({ status }), 5, DEFAULT_HOLD);
    expect(hold.committed).toBe(parseCredits('10')); // 1.5 + 0 + 0.5 + 8
    expect(hold.amount).toBe(0n);
    expect(attemptHold(settlementJob({ status }), 4, DEFAULT_HOLD).amount).toBe(parseCredits('8'));
  });
});

describe('billing rules', () => {
  it('pays delivered and user-stopped work, never provider faults or fenced attempts', () => {
    expect(isBillable(ended(1, 'Succeeded', 'none'), false)).toBe(true);
    expect(isBillable(ended(1, 'Reclaimed', 'owner-reclaim'), false)).toBe(true);
    expect(isBillable(ended(1, 'Failed', 'user'), false)).toBe(true);
    expect(isBillable(ended(1, 'Cancelled', 'user', { reason: 'DeadlineExceeded' }), false)).toBe(true);
    expect(isBillable(ended(1, 'Lost', 'provider'), false)).toBe(false);
    expect(isBillable(ended(1, 'Failed', 'provider'), false)).toBe(false);
    expect(isBillable(ended(1, 'Fenced', 'none'), true)).toBe(false);
    expect(isBillable(attempt(1), false)).toBe(false);
    expect(isBillable(attempt(1), true)).toBe(true);
  });

  it('knows every epoch that may hold an escrow', () => {
    const job = settlementJob({ status: { attempts: [ended(1, 'Lost', 'provider'), attempt(2)], settlement: { attempts: [openRecord(7)] } } });
    expect(nextEpoch(job)).toBe(3);
    expect(escrowEpochs(job)).toEqual([1, 2, 3, 7]);
    expect(escrowEpochs(settlementJob())).toEqual([1]);
  });
});
