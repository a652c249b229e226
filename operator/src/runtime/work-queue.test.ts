import { describe, expect, it } from 'vitest';
import { FakeClock } from './testing/fake-clock.js';
import { WorkQueue } from './work-queue.js';
import { MAX_TIMER_MS, systemClock, timerDelayMs } from './clock.js';

function setup(backoff = { baseMs: 100, maxMs: 1_000 }) {
  const clock = new FakeClock();
  return { clock, queue: new WorkQueue({ clock, backoff }) };
}

/** Takes every key that is ready right now, without waiting. */
async function takeReady(queue: WorkQueue): Promise<string[]> {
  const keys: string[] = [];
  while (queue.len() > 0) keys.push((await queue.get())!);
  return keys;
}

describe('WorkQueue: deduplication', () => {
  it('queues a key once however often it is added', async () => {
    const { queue } = setup();
    queue.add('a');
    queue.add('b');
    queue.add('a');
    queue.add('a');
    expect(queue.len()).toBe(2);
    expect(await takeReady(queue)).toEqual(['a', 'b']);
  });

  it('never hands out a key that is in flight; re-adds during processing queue it once after done', async () => {
    const { queue } = setup();
    queue.add('a');
    const first = await queue.get();
    expect(first).toBe('a');
    queue.add('a');
    queue.add('a');
    expect(queue.len()).toBe(0); // not handed to a second worker while the first holds it
    queue.add('b');
    expect(await queue.get()).toBe('b');
    queue.done('b');
    queue.done('a');
    expect(queue.len()).toBe(1);
    expect(await queue.get()).toBe('a');
    queue.done('a');
    expect(queue.len()).toBe(0);
  });

  it('hands a key straight to a waiting worker', async () => {
    const { queue } = setup();
    const waiting = queue.get();
    queue.add('x');
    expect(await waiting).toBe('x');
  });

  it('with several concurrent workers, no key is ever processed twice at once', async () => {
    const { queue } = setup();
    const inFlight = new Set<string>();
    let overlaps = 0;
    let processed = 0;
    const worker = async () => {
      for (;;) {
        const key = await queue.get();
        if (key === undefined) return;
        if (inFlight.has(key)) overlaps++;
        inFlight.add(key);
        await new Promise((r) => setTimeout(r, 1));
        if (processed < 40) queue.add(key); // keeps re-adding itself while in flight
        inFlight.delete(key);
        processed++;
        queue.done(key);
      }
    };
    for (const k of ['a', 'b', 'c']) queue.add(k);
    const workers = [worker(), worker(), worker(), worker()];
    // Until the self-adding key has run its 40 rounds (bounded: 10 s), then shut down.
    for (let waited = 0; processed < 40 && waited < 10_000; waited += 5) await new Promise((r) => setTimeout(r, 5));
    await queue.shutDown();
    await Promise.all(workers);
    expect(overlaps).toBe(0);
    expect(processed).toBeGreaterThanOrEqual(40);
  });
});

describe('WorkQueue: delayed adds', () => {
  it('releases delayed keys in due order', async () => {
    const { queue, clock } = setup();
    queue.addAfter('late', 300);
    queue.addAfter('early', 100);
    queue.addAfter('middle', 200);
    clock.advance(99);
    expect(queue.len()).toBe(0);
    clock.advance(1);
    expect(await takeReady(queue)).toEqual(['early']);
    clock.advance(250);
    expect(await takeReady(queue)).toEqual(['middle', 'late']);
  });

  it('keeps the earliest due time when a key is delayed twice', async () => {
    const { queue, clock } = setup();
    queue.addAfter('k', 500);
    queue.addAfter('k', 100); // earlier: wins
    queue.addAfter('k', 900); // later: ignored
    clock.advance(100);
    expect(await takeReady(queue)).toEqual(['k']);
    queue.done('k');
    clock.advance(1_000);
    expect(queue.len()).toBe(0); // the later duplicates did not fire
    expect(clock.pendingTimers()).toBe(0);
  });

  it('an immediate add supersedes a pending delayed add', async () => {
    const { queue, clock } = setup();
    queue.addAfter('k', 500);
    queue.add('k');
    expect(await takeReady(queue)).toEqual(['k']);
    queue.done('k');
    clock.advance(600);
    expect(queue.len()).toBe(0);
  });

  it('ignores a delayed add for a key that is already queued', async () => {
    const { queue, clock } = setup();
    queue.add('k');
    queue.addAfter('k', 100);
    expect(queue.delayedLen()).toBe(0);
    expect(await takeReady(queue)).toEqual(['k']);
    queue.done('k');
    clock.advance(200);
    expect(queue.len()).toBe(0);
  });

  it('a key delayed while in flight is queued when due, not before done', async () => {
    const { queue, clock } = setup();
    queue.add('k');
    await queue.get();
    queue.addAfter('k', 100);
    clock.advance(100);
    expect(queue.len()).toBe(0); // in flight: waits for done
    queue.done('k');
    expect(await takeReady(queue)).toEqual(['k']);
  });
});

describe('WorkQueue: failure backoff', () => {
  it('doubles per failure up to the cap, and forget() resets it', () => {
    const { queue } = setup({ baseMs: 100, maxMs: 1_000 });
    const delays = Array.from({ length: 6 }, () => queue.addRateLimited('k'));
    expect(delays).toEqual([100, 200, 400, 800, 1_000, 1_000]);
    expect(queue.numRequeues('k')).toBe(6);
    queue.forget('k');
    expect(queue.numRequeues('k')).toBe(0);
    expect(queue.addRateLimited('k')).toBe(100);
  });

  it('tracks backoff per key', () => {
    const { queue } = setup({ baseMs: 10, maxMs: 1_000 });
    queue.addRateLimited('a');
    queue.addRateLimited('a');
    expect(queue.addRateLimited('b')).toBe(10);
    expect(queue.addRateLimited('a')).toBe(40);
  });

  it('a rate-limited key comes back after its delay', async () => {
    const { queue, clock } = setup({ baseMs: 100, maxMs: 1_000 });
    queue.add('k');
    await queue.get();
    queue.addRateLimited('k');
    queue.done('k');
    clock.advance(99);
    expect(queue.len()).toBe(0);
    clock.advance(1);
    expect(await takeReady(queue)).toEqual(['k']);
  });
});

describe('WorkQueue: shutdown', () => {
  it('drains queued and in-flight keys, refuses new ones, and releases idle workers', async () => {
    const { queue, clock } = setup();
    queue.add('a');
    queue.add('b');
    queue.addAfter('later', 100);
    const held = await queue.get(); // 'a' in flight
    let drained = false;
    const shutdown = queue.shutDown().then(() => (drained = true));
    queue.add('c'); // refused
    expect(queue.delayedLen()).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
    expect(await queue.get()).toBe('b'); // queued keys are still handed out
    queue.done('b');
    await Promise.resolve();
    expect(drained).toBe(false); // 'a' still in flight
    queue.done(held!);
    await shutdown;
    expect(drained).toBe(true);
    expect(await queue.get()).toBeUndefined();
  });

  it('with drain: false drops keys not yet started', async () => {
    const { queue } = setup();
    queue.add('a');
    queue.add('b');
    await queue.get();
    queue.add('a'); // re-added in flight: dropped too
    const shutdown = queue.shutDown({ drain: false });
    expect(queue.len()).toBe(0);
    queue.done('a');
    await shutdown;
    expect(await queue.get()).toBeUndefined();
  });

  it('wakes workers blocked in get()', async () => {
    const { queue } = setup();
    const waiting = [queue.get(), queue.get()];
    await queue.shutDown();
    expect(await Promise.all(waiting)).toEqual([undefined, undefined]);
  });
});

describe('WorkQueue: a delay longer than a timer keeps', () => {
  // Node fires a setTimeout longer than 2^31 − 1 ms after 1 ms. A clock that does the same, given
  // what systemClock gives setTimeout (timerDelayMs): the queue must not spin on a far due time.
  class NodeLikeClock extends FakeClock {
    timersSet = 0;
    override setTimer(fn: () => void, ms: number) {
      this.timersSet++;
      const given = timerDelayMs(ms);
      return super.setTimer(fn, given > MAX_TIMER_MS ? 1 : given);
    }
  }

  it('waits out a due time 60 days away with a few timers, then releases the key', async () => {
    const clock = new NodeLikeClock();
    const queue = new WorkQueue({ clock });
    const day = 24 * 3600 * 1000;
    queue.addAfter('far', 60 * day);
    clock.advance(59 * day);
    expect(queue.len()).toBe(0);
    expect(clock.timersSet).toBeLessThanOrEqual(4);
    clock.advance(day);
    expect(await takeReady(queue)).toEqual(['far']);
  });

  it('hands setTimeout no more than it keeps', () => {
    expect(timerDelayMs(2 ** 40)).toBe(MAX_TIMER_MS);
    expect(timerDelayMs(-5)).toBe(0);
    const handle = systemClock.setTimer(() => undefined, 2 ** 40) as { _idleTimeout?: number };
    // Node records the delay it will use; without the bound it is 1 ms.
    const used = handle._idleTimeout;
    systemClock.clearTimer(handle);
    expect(used).toBe(MAX_TIMER_MS);
  });
});
