// A full, compacting garbage collection when the process has gone quiet with a heap grown larger
// than it needs.
//
// Why: after a burst (10,000 GpuJobs placed), V8 keeps the heap it grew to. Its committed pages
// beyond the live heap stay until a memory-reducing collection, which V8's memory reducer starts
// only once allocation is low; a hub with a thousand agents heartbeating never allocates that
// little, and held 172–194 MiB of heap for about 100 MiB used at rest (docs/benchmarks.md, "An
// idle collection after a burst"). A plain full collection (V8's gc()) does not help: it leaves a
// fragmented old space as it is (198 → 197 MiB measured). What does is the collection V8 runs under
// memory pressure, which compacts and hands pages back; the heap profiler's collectGarbage runs
// exactly that, through an in-process inspector session (no port is opened). Once, while quiet,
// at the price of one pause of a few hundred ms when nothing waits on the event loop.
import { Session } from 'node:inspector';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import type { Logger } from 'pino';

export interface HeapSample {
  /** The V8 heap's committed size now. */
  committedBytes: number;
  /**
   * Its committed size when this module last looked back on a collection it ran (or first
   * looked): what the process needed when quiet. Not the used size, which counts garbage.
   */
  baselineBytes: number;
  /** Share of the last window the event loop was busy, 0..1 (event loop utilization). */
  busyFraction: number;
  /** Since the last collection this module ran; Infinity before the first. */
  sinceLastCollectionMs: number;
}

export interface IdleCollectionPolicy {
  /** Growth of the committed heap over the baseline worth a collection, in bytes… */
  minGrowthBytes: number;
  /** …and as a share of the baseline, so a large heap is not collected for small change. */
  minGrowthOfBaseline: number;
  /** Busier than this, the process is working: leave the heap to V8. */
  maxBusyFraction: number;
  /** At most one collection per this long, whatever the heap does. */
  minIntervalMs: number;
}

export const defaultIdleCollectionPolicy: IdleCollectionPolicy = {
  minGrowthBytes: 32 * 2 ** 20,
  minGrowthOfBaseline: 0.25,
  maxBusyFraction: 0.3,
  minIntervalMs: 60_000,
};

/** Whether a quiet process whose heap grew this much should collect now. */
export function shouldCollect(sample: HeapSample, policy: IdleCollectionPolicy = defaultIdleCollectionPolicy): boolean {
  const growth = sample.committedBytes - sample.baselineBytes;
  return (
    sample.busyFraction <= policy.maxBusyFraction &&
    sample.sinceLastCollectionMs >= policy.minIntervalMs &&
    growth >= policy.minGrowthBytes &&
    growth >= policy.minGrowthOfBaseline * sample.baselineBytes
  );
}

/** V8's memory-reducing collection (what HeapProfiler.collectGarbage runs), on this thread. */
function compactingCollection(): Promise<void> {
  const session = new Session();
  session.connect();
  // Disconnected after the reply's callback has returned: from inside it, the thread hangs.
  return new Promise<void>((resolve) =>
    session.post('HeapProfiler.collectGarbage', () =>
      setImmediate(() => {
        session.disconnect();
        resolve();
      }),
    ),
  );
}

export interface IdleCollector {
  stop(): void;
}

/**
 * Looks every `windowMs` (default 30 s) and collects when shouldCollect says so. The baseline is
 * the committed heap at start, then after each collection; it also moves down when V8 shrinks the
 * heap by itself, so only growth since the smallest quiet size counts.
 */
export function startIdleCollector(opts: { logger: Logger; windowMs?: number; policy?: IdleCollectionPolicy }): IdleCollector {
  const windowMs = opts.windowMs ?? 30_000;
  let lastWindow: EventLoopUtilization = performance.eventLoopUtilization();
  let lastCollectionAt = Number.NEGATIVE_INFINITY;
  let baselineBytes = getHeapStatistics().total_heap_size;
  let collecting = false;
  const timer = setInterval(() => {
    if (collecting) return;
    const now = performance.eventLoopUtilization();
    const window = performance.eventLoopUtilization(now, lastWindow);
    lastWindow = now;
    const committedBytes = getHeapStatistics().total_heap_size;
    baselineBytes = Math.min(baselineBytes, committedBytes);
    const sample = { committedBytes, baselineBytes, busyFraction: window.utilization, sinceLastCollectionMs: performance.now() - lastCollectionAt };
    if (!shouldCollect(sample, opts.policy)) return;
    const started = performance.now();
    collecting = true;
    void compactingCollection()
      .catch((err: unknown) => opts.logger.warn({ err }, 'idle: the collection failed'))
      .finally(() => {
        collecting = false;
        lastCollectionAt = performance.now();
        baselineBytes = getHeapStatistics().total_heap_size;
        opts.logger.info(
          { pauseMs: Math.round(lastCollectionAt - started), busyFraction: Number(window.utilization.toFixed(2)), committedMiB: mib(committedBytes), afterMiB: mib(baselineBytes) },
          'idle: collected the heap grown in a busier time',
        );
      });
  }, windowMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

const mib = (bytes: number): number => Math.round(bytes / 2 ** 20);
