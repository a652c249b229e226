import { describe, expect, it } from 'vitest';
import { chainProviderStatus } from '../hub/providers/chain-status.js';
import { bondShare, outcomesToEvents, publishedReputation, reputationAt, type OutcomeLog } from './market-events.js';

const P = '0x' + 'aa'.repeat(20);
const C = '0x' + 'cc'.repeat(20);
const log = (outcome: OutcomeLog['outcome'], amount: bigint, over: Partial<OutcomeLog> = {}): OutcomeLog =>
  ({ provider: P, outcome, amount, consumer: C, block: 10, logIndex: 0, time: 1_000, ...over });

describe('outcomesToEvents: what counts toward reputation', () => {
  it('counts a settle as the share of the bond it paid and a slash as the share of the bond it took', () => {
    expect(outcomesToEvents([log('success', 5n), log('failure', 50n)], 10, 100n)).toEqual([
      { time: 1_000, provider: P, outcome: 'success', weight: 0.05 },
      { time: 1_000, provider: P, outcome: 'failure', weight: 0.5 },
    ]);
  });

  it('counts every event whole on a market without a bond', () => {
    expect(outcomesToEvents([log('success', 5n), log('failure', 50n)], 10, 0n)).toEqual([
      { time: 1_000, provider: P, outcome: 'success' },
      { time: 1_000, provider: P, outcome: 'failure' },
    ]);
  });

  it('counts no settle that paid nothing, nor one the provider paid itself (the attack: farming successes with 0-GPU-second receipts)', () => {
    expect(outcomesToEvents([log('success', 0n), log('success', 7n, { consumer: P }), log('failure', 0n)], 10, 100n)).toEqual([]);
    expect(outcomesToEvents([log('success', 0n), log('success', 7n, { consumer: P }), log('failure', 0n)], 10, 0n)).toEqual([]);
    // A slash of a self-dealt escrow still counts against it.
    expect(outcomesToEvents([log('failure', 100n, { consumer: P })], 10, 100n)).toEqual([{ time: 1_000, provider: P, outcome: 'failure', weight: 1 }]);
  });

  it('leaves out events after the block asked for', () => {
    expect(outcomesToEvents([log('success', 5n, { block: 11 })], 10)).toEqual([]);
  });
});

describe('bondShare', () => {
  it.each([
    [0n, 100n, 0],
    [1n, 10n ** 19n, 0], // 1 wei of a 10-credit bond: below the sixth decimal
    [1n, 100n, 0.01],
    [50n, 100n, 0.5],
    [99n, 100n, 0.99],
    [100n, 100n, 1],
    [10n ** 30n, 100n, 1],
    [1n, 3n, 0.333333], // rounded down, the same on every path
    [2n, 3n, 0.666666],
  ])('%s of a bond of %s is %s', (amount, bond, share) => {
    expect(bondShare(amount, bond)).toBe(share);
  });

  it('refuses a bond of 0 (a market without a bond counts events whole instead)', () => {
    expect(() => bondShare(1n, 0n)).toThrow(RangeError);
  });
});

describe('reputationAt: paid-weighted successes (the 1-wei settle farm)', () => {
  const BOND = 10n * 10n ** 18n; // 10 credits
  const T = 1_800_000_000; // block timestamp, s
  const block = { number: 500, timestamp: T };
  // Events 1 s apart ending at the block: decay over a few minutes of a 7-day half-life is < 1e-3.
  const settles = (amounts: bigint[], over: Partial<OutcomeLog> = {}): OutcomeLog[] =>
    amounts.map((amount, i) => log('success', amount, { block: 100 + i, logIndex: i, time: (T - amounts.length + i) * 1000, ...over }));
  const slashes = (amounts: bigint[]): OutcomeLog[] =>
    amounts.map((amount, i) => log('failure', amount, { block: 300 + i, logIndex: i, time: (T - amounts.length + i) * 1000 }));
  const rep = (logs: OutcomeLog[], bond = BOND) => reputationAt(P, logs, block, bond);
  const many = (n: number, amount: bigint): bigint[] => Array.from({ length: n }, () => amount);

  it.each<[string, OutcomeLog[], { successes: number; failures: number }]>([
    ['nothing', [], { successes: 0, failures: 0 }],
    ['100 settles of 1 wei', settles(many(100, 1n)), { successes: 0, failures: 0 }],
    ['100 settles of 1 gwei', settles(many(100, 10n ** 9n)), { successes: 0, failures: 0 }],
    ['one settle of exactly the bond', settles([BOND]), { successes: 1, failures: 0 }],
    ['one settle of ten bonds (still one success)', settles([10n * BOND]), { successes: 1, failures: 0 }],
    ['one settle of half the bond', settles([BOND / 2n]), { successes: 0.5, failures: 0 }],
    ['ten settles of a tenth of the bond', settles(many(10, BOND / 10n)), { successes: 1, failures: 0 }],
    ['a settle the provider paid itself, of ten bonds', settles([10n * BOND], { consumer: P }), { successes: 0, failures: 0 }],
    ['a full slash', slashes([BOND]), { successes: 0, failures: 1 }],
    ['a half slash', slashes([BOND / 2n]), { successes: 0, failures: 0.5 }],
    ['100 slashes of 1 wei', slashes(many(100, 1n)), { successes: 0, failures: 0 }],
    ['a full slash hidden under 100 settles of 1 wei', [...settles(many(100, 1n)), ...slashes([BOND])], { successes: 0, failures: 1 }],
  ])('%s', (_, logs, want) => {
    const r = rep(logs);
    expect(r.successes).toBeCloseTo(want.successes, 3);
    expect(r.failures).toBeCloseTo(want.failures, 3);
  });

  it('gives a 1-wei farm the score of no history at all, and a paid history a higher one', () => {
    const none = rep([]).score;
    expect(rep(settles(many(1000, 1n))).score).toBe(none);
    expect(rep(settles(many(10, BOND))).score).toBeGreaterThan(none);
  });

  it('leaves slashes as they were: the bond share they took', () => {
    // What a slash counted before this change: taken / bond, at most 1; a market without a bond: 1.
    for (const [taken, weight] of [[BOND, 1], [BOND / 4n, 0.25], [3n * BOND, 1]] as const) {
      expect(outcomesToEvents(slashes([taken]), 500, BOND)).toEqual([expect.objectContaining({ outcome: 'failure', weight })]);
      expect(outcomesToEvents(slashes([taken]), 500, 0n)[0]).not.toHaveProperty('weight');
    }
  });

  it('without a bond counts each paid settle whole, as before', () => {
    expect(rep(settles(many(3, 1n)), 0n).successes).toBeCloseTo(3, 3);
  });

  it('gives the hub (GpuProvider status) and `fedgpu reputation --from-chain` the same numbers for the same logs', () => {
    // Both read GpuMarket.slashBond and every Settled/Slashed log of the market (other providers'
    // too); the hub through chainProviderStatus, the CLI through reputationAt + publishedReputation.
    const other = '0x' + 'bb'.repeat(20);
    const logs = [
      ...settles([1n, BOND / 3n, 2n * BOND, ...many(50, 1n)]),
      ...settles([BOND], { consumer: P }),
      ...slashes([BOND / 7n, 1n]),
      log('success', BOND, { provider: other, block: 400, time: (T - 1) * 1000 }),
      log('success', BOND, { block: 501, time: T * 1000 }), // after the block: neither counts it
    ];
    for (const bond of [BOND, 0n]) {
      const hub = chainProviderStatus(P, { active: BOND, unbonding: 0n }, 0n, logs, block, bond).reputation;
      const cli = publishedReputation(reputationAt(P, logs, block, bond));
      expect(hub).toEqual(cli);
      // Log order does not matter (a replay may list them differently).
      expect(publishedReputation(reputationAt(P, [...logs].reverse(), block, bond))).toEqual(cli);
    }
    const weighted = publishedReputation(reputationAt(P, logs, block, BOND));
    expect(weighted.successes).toBeCloseTo(1 / 3 + 1, 3);
    expect(weighted.failures).toBeCloseTo(1 / 7, 3);
  });
});
