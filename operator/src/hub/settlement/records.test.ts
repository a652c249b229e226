import { describe, expect, it } from 'vitest';
import { parseCredits } from '../../chain/credits.js';
import type { ParsedMarketLog } from '../../chain/market-events.js';
import { applyMarketLog, isFinalRecord, summarize } from './records.js';

const ID = '0x' + 'aa'.repeat(32);
const log = (name: string, args: Record<string, unknown>, block: number): ParsedMarketLog =>
  ({ name, args: args as unknown as ParsedMarketLog['args'], txHash: `0x${String(block).padStart(64, '0')}`, block, logIndex: 0 });

describe('settlement records', () => {
  it('records open, slash and settle from events, and sums them', () => {
    let records = applyMarketLog([], 1, log('EscrowOpened', { jobId: ID, amount: parseCredits('10') }, 5));
    expect(records).toEqual([{ epoch: 1, escrowId: ID, escrowAmount: '10', escrowTxHash: log('', {}, 5).txHash, escrowBlock: 5, state: 'Open' }]);
    records = applyMarketLog(records, 1, log('Slashed', { amount: parseCredits('2') }, 6));
    records = applyMarketLog(records, 1, log('Refunded', { jobId: ID, amount: parseCredits('10') }, 7));
    records = applyMarketLog(records, 2, log('EscrowOpened', { jobId: ID, amount: parseCredits('10') }, 8));
    records = applyMarketLog(records, 2, log('Settled', { jobId: ID, amount: parseCredits('0.04'), refunded: parseCredits('9.96') }, 9));
    expect(records.map((r) => [r.epoch, r.state, r.paid, r.refunded, r.slashed])).toEqual([
      [1, 'Refunded', '0', '10', '2'],
      [2, 'Settled', '0.04', '9.96', undefined],
    ]);
    expect(isFinalRecord(records[0], true)).toBe(true);
    expect(isFinalRecord(records[1], false)).toBe(true);
    expect(isFinalRecord(records[1], true)).toBe(false);
    expect(summarize('0xc0', records)).toMatchObject({ consumer: '0xc0', paid: '0.04', refunded: '19.96', slashed: '2', block: 9, escrowAmount: '10', escrowTxHash: log('', {}, 8).txHash });
  });

  it('is idempotent: applying the same event twice changes nothing', () => {
    const once = applyMarketLog([], 1, log('Settled', { jobId: ID, amount: 5n, refunded: 1n }, 3));
    expect(applyMarketLog(once, 1, log('Settled', { jobId: ID, amount: 5n, refunded: 1n }, 3))).toEqual(once);
  });
});
