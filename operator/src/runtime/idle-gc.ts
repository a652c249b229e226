// A compacting garbage collection when the process has gone quiet with a heap grown larger than it
// needs, again only after it has grown again.
//
// Why: after a burst (10,000 GpuJobs placed), V8 keeps the heap it grew to. Its committed pages
// beyond the live heap stay until a memory-reducing collection, which V8's memory reducer starts
// only once allocation is low; a hub with a thousand agents heartbeating never allocates that
// little, and held 172–194 MiB of heap for about 100 MiB used at rest (docs/benchmarks.md, "An
// idle collection after a burst"). A plain full collection (V8's gc()) does not help: it leaves a
// fragmented old space as it is (198 → 197 MiB measured). What does is the collection V8 runs under
// memory pressure, which compacts and hands pages back; the heap profiler's collectGarbage runs
// exactly that, through an in-process inspector session (no port is opened). One pause of a few
// hundred ms, when nothing waits on the event loop.
//
// Only the old generation is weighed: the young one regrows to its semi-space size within seconds
// of any collection, and counting it would make every quiet minute look like growth.
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import type { Logger } from 'pino';

export interface HeapSample {
  /** The V8 old generation's committed size now. */
  committedBytes: number;
  /**
   * Its committed size after this module's last collection (or when it first looked), moved down
   * when V8 shrinks it by itself: what the process needed when quiet. Not the used size, which
   * counts garbage.
   */
  baselineBytes: number;
  /** Share of the last window the event loop was busy, 0..1 (event loop utilization). */
  busyFraction: number;
  /** Since the last collection this module ran; Infinity before the first. */
  sinceLastCollectionMs: number;
  /** The least time between two collections now: longer after one that freed little. */
  minIntervalMs: number;
}

export interface IdleCollectionPolicy {
  /** Growth of the committed old generation over the baseline worth a collection, in bytes… */
  minGrowthBytes: number;
  /** …and as a share of the baseline, so a large heap is not collected for small change. */
  minGrowthOfBaseline: number;
  /** Busier than this, the process is working: leave the heap to V8. */
  maxBusyFraction: number;
  /** Least time between two collections; doubled (up to maxIntervalMs) after one that freed little. */
  minIntervalMs: number;
  maxIntervalMs: number;
}

export const defaultIdleCollectionPolicy: IdleCollectionPolicy = {
  minGrowthBytes: 32 * 2 ** 20,
  minGrowthOfBaseline: 0.25,
  maxBusyFraction: 0.3,
  minIntervalMs: 60_000,
  maxIntervalMs: 30 * 60_000,
};

/** Whether a quiet process whose heap grew this much should collect now. */
export function shouldCollect(sample: HeapSample, policy: IdleCollectionPolicy = defaultIdleCollectionPolicy): boolean {
  const growth = sample.committedBytes - sample.baselineBytes;
  return (
    sample.busyFraction <= policy.maxBusyFraction &&
    sample.sinceLastCollectionMs >= sample.minIntervalMs &&
    growth >= policy.minGrowthBytes &&
    growth >= policy.minGrowthOfBaseline * sample.baselineBytes
  );
}

/** The least interval after a collection that freed `freedBytes`: doubled when it freed little. */
export function nextInterval(currentMs: number, freedBytes: number, policy: IdleCollectionPolicy = defaultIdleCollectionPolicy): number {
  return freedBytes < policy.minGrowthBytes ? Math.min(policy.maxIntervalMs, currentMs * 2) : policy.minIntervalMs;
}

const youngSpaces = new Set(['new_space', 'new_large_object_space']);

function oldGenerationCommitted(): number {
  return getHeapSpaceStatistics().reduce((sum, space) => (youngSpaces.has(space.space_name) ? sum : sum + space.space_size), 0);
}

/**
 * V8's memory-reducing collection (what HeapProfiler.collectGarbage runs), on this thread. Resolves
 * to its pause: from the call to the reply, which an in-process session delivers from inside the
 * call once the collection is done (so neither loading the inspector nor the I/O that waited
 * behind the pause is counted).
 */
async function compactingCollection(timeoutMs: number): Promise<number> {
  const { Session } = await import('node:inspector');
  const session = new Session();
  session.connect();
  try {
    return await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer from the heap profiler in ${timeoutMs} ms`)), timeoutMs);
      const calledAt = performance.now();
      // The reply is sent while V8 holds a lock that disconnecting takes too: settled from inside
      // the callback, the finally below would hang the thread. setImmediate leaves the callback first.
      session.post('HeapProfiler.collectGarbage', (err) => {
        const pauseMs = performance.now() - calledAt;
        setImmediate(() => {
          clearTimeout(timer);
          if (err) reject(err);
          else resolve(pauseMs);
        });
      });
    });
  } finally {
    session.disconnect();
  }
}

export interface IdleCollector {
  stop(): void;
}

/** One collection this module ran, for metrics. */
export interface IdleCollection {
  outcome: 'compacted' | 'failed';
  pauseMs: number;
  /** Old-generation committed bytes handed back (0 when it failed). */
  freedBytes: number;
}

/** What runs when no collection should: nothing to stop. */
export const noIdleCollector: IdleCollector = { stop: () => undefined };

/** Looks every `windowMs` (default 30 s) and collects when shouldCollect says so. */
export function startIdleCollector(opts: {
  logger: Logger;
  windowMs?: number;
  policy?: IdleCollectionPolicy;
  onCollection?: (collection: IdleCollection) => void;
}): IdleCollector {
  if (!process.features.inspector) {
    opts.logger.info('idle: this node has no inspector, so no compacting collection when quiet');
    return noIdleCollector;
  }
  const policy = opts.policy ?? defaultIdleCollectionPolicy;
  const windowMs = opts.windowMs ?? 30_000;
  let lastElu: EventLoopUtilization = performance.eventLoopUtilization();
  let lastCollectionAt = Number.NEGATIVE_INFINITY;
  let minIntervalMs = policy.minIntervalMs;
  let baselineBytes = oldGenerationCommitted();
  let collecting = false;
  // A throwing metrics hook must not become an unhandled rejection (which ends the process).
  const report = (collection: IdleCollection) => {
    try {
      opts.onCollection?.(collection);
    } catch (err) {
      opts.logger.warn({ err }, 'idle: recording the collection failed');
    }
  };
  const timer = setInterval(() => {
    if (collecting) return;
    const elu = performance.eventLoopUtilization();
    const busyFraction = performance.eventLoopUtilization(elu, lastElu).utilization;
    lastElu = elu;
    const committedBytes = oldGenerationCommitted();
    baselineBytes = Math.min(baselineBytes, committedBytes);
    if (!shouldCollect({ committedBytes, baselineBytes, busyFraction, sinceLastCollectionMs: performance.now() - lastCollectionAt, minIntervalMs }, policy)) return;
    collecting = true;
    compactingCollection(10_000).then(
      (pauseMs) => {
        lastCollectionAt = performance.now();
        baselineBytes = oldGenerationCommitted();
        const freedBytes = committedBytes - baselineBytes;
        minIntervalMs = nextInterval(minIntervalMs, freedBytes, policy);
        collecting = false;
        report({ outcome: 'compacted', pauseMs, freedBytes: Math.max(0, freedBytes) });
        opts.logger.info(
          { pauseMs: Math.round(pauseMs), busyFraction: Number(busyFraction.toFixed(2)), oldGenerationMiB: mib(committedBytes), afterMiB: mib(baselineBytes), nextAfterMs: minIntervalMs },
          'idle: compacted the heap grown in a busier time',
        );
      },
      (err: unknown) => {
        // Not tried again soon: whatever failed is likely to fail again.
        lastCollectionAt = performance.now();
        minIntervalMs = policy.maxIntervalMs;
        collecting = false;
        report({ outcome: 'failed', pauseMs: 0, freedBytes: 0 });
        opts.logger.warn({ err }, 'idle: the compacting collection failed');
      },
    );
  }, windowMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

const mib = (bytes: number): number => Math.round(bytes / 2 ** 20);
