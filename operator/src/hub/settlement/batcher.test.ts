import { describe, expect, it } from 'vitest';
import type { SignedReceipt } from '../../chain/receipt.js';
import { SettleBatcher } from './batcher.js';

const item = (n: number): SignedReceipt => ({
  receipt: { jobId: `0x${String(n).padStart(64, '0')}`, epoch: 1, gpuSeconds: 1n, pricePerGpuHour: 1n, amount: 0n, provider: '0x' + '11'.repeat(20), usageHash: '0x' + '00'.repeat(32) },
  v: 27,
  r: '0x' + '00'.repeat(32),
  s: '0x' + '00'.repeat(32),
});

class Culprit extends Error {
  constructor(readonly jobId: string) {
    super(`bad ${jobId}`);
  }
}

describe('SettleBatcher', () => {
  it('gathers settles that arrive within the window into one batch', async () => {
    const batches: number[] = [];
    const batcher = new SettleBatcher<string>({ send: async (items) => (batches.push(items.length), `tx${batches.length}`), culprit: () => undefined, windowMs: 20, maxItems: 10 });
    const outcomes = await Promise.all([1, 2, 3].map((n) => batcher.settle(item(n))));
    expect(batches).toEqual([3]);
    expect(outcomes.map((o) => o.size)).toEqual([3, 3, 3]);
    expect(outcomes[0]?.result).toBe('tx1');
  });

  it('sends at maxItems without waiting for the window, in batches of at most maxItems', async () => {
    const batches: number[] = [];
    const batcher = new SettleBatcher<void>({ send: async (items) => void batches.push(items.length), culprit: () => undefined, windowMs: 60_000, maxItems: 2 });
    await Promise.all([1, 2, 3, 4].map((n) => batcher.settle(item(n))));
    expect(batches).toEqual([2, 2]);
  });

  it('fails the item a revert names and resends the rest', async () => {
    const sent: number[][] = [];
    const bad = item(2).receipt.jobId;
    const batcher = new SettleBatcher<void>({
      send: async (items) => {
        sent.push(items.map((i) => Number(BigInt(i.receipt.jobId))));
        if (items.some((i) => i.receipt.jobId === bad)) throw new Culprit(bad);
      },
      culprit: (err) => (err instanceof Culprit ? err.jobId : undefined),
      windowMs: 5,
      maxItems: 10,
    });
    const results = await Promise.allSettled([1, 2, 3].map((n) => batcher.settle(item(n))));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(sent).toEqual([[1, 2, 3], [1, 3]]);
  });

  it('fails the whole batch on an error that names no item (e.g. the RPC endpoint is down)', async () => {
    const batcher = new SettleBatcher<void>({ send: async () => Promise.reject(new Error('ECONNREFUSED')), culprit: () => undefined, windowMs: 5, maxItems: 10 });
    const results = await Promise.allSettled([1, 2].map((n) => batcher.settle(item(n))));
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });
});
