import { describe, expect, it } from 'vitest';
import { outcomesToEvents, type OutcomeLog } from './market-events.js';

const P = '0x' + 'aa'.repeat(20);
const C = '0x' + 'cc'.repeat(20);
const log = (outcome: OutcomeLog['outcome'], amount: bigint, over: Partial<OutcomeLog> = {}): OutcomeLog =>
  ({ provider: P, outcome, amount, consumer: C, block: 10, logIndex: 0, time: 1_000, ...over });

describe('outcomesToEvents: what counts toward reputation', () => {
  it('counts a paid settle as a success and a slash as the share of the bond it took', () => {
    expect(outcomesToEvents([log('success', 5n), log('failure', 50n)], 10, 100n)).toEqual([
      { time: 1_000, provider: P, outcome: 'success' },
      { time: 1_000, provider: P, outcome: 'failure', weight: 0.5 },
    ]);
  });

  it('counts no settle that paid nothing, nor one the provider paid itself (the attack: farming successes with 0-GPU-second receipts)', () => {
    expect(outcomesToEvents([log('success', 0n), log('success', 7n, { consumer: P }), log('failure', 0n)], 10, 100n)).toEqual([]);
    // A slash of a self-dealt escrow still counts against it.
    expect(outcomesToEvents([log('failure', 100n, { consumer: P })], 10, 100n)).toEqual([{ time: 1_000, provider: P, outcome: 'failure', weight: 1 }]);
  });

  it('leaves out events after the block asked for', () => {
    expect(outcomesToEvents([log('success', 5n, { block: 11 })], 10)).toEqual([]);
  });
});
