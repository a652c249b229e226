import { getHeapStatistics } from 'node:v8';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../testbed/wait.js';
import { defaultIdleCollectionPolicy, type IdleCollection, nextInterval, shouldCollect, startIdleCollector, type HeapSample } from './idle-gc.js';

const MiB = 2 ** 20;
// The hub at rest after placing 10,000 GpuJobs: 183 MiB committed, 106 once collected.
const quietAfterBurst: HeapSample = { committedBytes: 183 * MiB, baselineBytes: 80 * MiB, busyFraction: 0.12, sinceLastCollectionMs: Infinity, minIntervalMs: 60_000 };

describe('shouldCollect', () => {
  it('collects a quiet process whose heap grew well past what it needed when quiet', () => {
    expect(shouldCollect(quietAfterBurst)).toBe(true);
  });

  it('leaves a busy process to V8, however much its heap grew', () => {
    expect(shouldCollect({ ...quietAfterBurst, busyFraction: 0.31 })).toBe(false);
  });

  it('needs the growth to be large in bytes and against the baseline', () => {
    expect(shouldCollect({ ...quietAfterBurst, committedBytes: 80 * MiB + 31 * MiB })).toBe(false);
    // 40 MiB over a 200 MiB baseline is 20 %: not worth a pause.
    expect(shouldCollect({ ...quietAfterBurst, committedBytes: 240 * MiB, baselineBytes: 200 * MiB })).toBe(false);
    expect(shouldCollect({ ...quietAfterBurst, committedBytes: 250 * MiB, baselineBytes: 200 * MiB })).toBe(true);
  });

  it('collects at most once per interval', () => {
    expect(shouldCollect({ ...quietAfterBurst, sinceLastCollectionMs: 59_999 })).toBe(false);
    expect(shouldCollect({ ...quietAfterBurst, sinceLastCollectionMs: 60_000 })).toBe(true);
  });
});

describe('nextInterval', () => {
  it('waits twice as long after a collection that freed little, up to the cap, and resets after one that paid', () => {
    const { minIntervalMs, maxIntervalMs, minGrowthBytes } = defaultIdleCollectionPolicy;
    expect(nextInterval(minIntervalMs, minGrowthBytes - 1)).toBe(2 * minIntervalMs);
    expect(nextInterval(maxIntervalMs, 0)).toBe(maxIntervalMs);
    expect(nextInterval(8 * minIntervalMs, 78 * MiB)).toBe(minIntervalMs);
  });
});

describe('startIdleCollector', () => {
  it('hands back the heap a burst grew, once the process is quiet, and says so', { timeout: 40_000 }, async () => {
    const lines: { msg: string; oldGenerationMiB: number; afterMiB: number }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const collections: IdleCollection[] = [];
    const collector = startIdleCollector({ logger, windowMs: 100, onCollection: (c) => collections.push(c) });
    try {
      // A burst whose survivors are spread thin: every 20th object lives on, on pages otherwise
      // empty, as a hub's cached objects do among a burst's garbage. V8's own collections free the
      // garbage without compacting all of it; the memory-reducing one hands the pages back.
      let burst: { i: number; s: string }[] | undefined = [];
      for (let i = 0; i < 2_000_000; i++) burst.push({ i, s: `x${i}` });
      const survivors = burst.filter((_, i) => i % 20 === 0);
      burst = undefined;
      const grown = getHeapStatistics().total_heap_size;
      const line = await waitFor('the idle collection', () => lines.find((l) => l.msg.startsWith('idle: compacted')), { timeoutMs: 30_000, intervalMs: 50 });
      expect(line.afterMiB).toBeLessThan(line.oldGenerationMiB - 32);
      // What the metrics are told: one collection, its pause, and what it freed (the log's figure).
      expect(collections).toHaveLength(1);
      expect(collections[0]!.outcome).toBe('compacted');
      expect(collections[0]!.pauseMs).toBeGreaterThan(0);
      expect(Math.abs(collections[0]!.freedBytes / MiB - (line.oldGenerationMiB - line.afterMiB))).toBeLessThanOrEqual(1);
      expect(getHeapStatistics().total_heap_size).toBeLessThan(grown - 32 * MiB);
      expect(survivors).toHaveLength(100_000);
    } finally {
      collector.stop();
    }
  });
});
