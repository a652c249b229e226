// Time as the runtime sees it. Everything that waits takes a Clock so unit tests can drive time
// by hand instead of sleeping.

export type TimerHandle = unknown;

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimer(fn: () => void, ms: number): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

/** The longest delay setTimeout keeps (2^31 − 1 ms, about 24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A delay setTimeout keeps as given: Node fires a longer one after 1 ms instead, so a timer re-armed
 * for a far deadline (a budget stop months away) would spin. A timer set to the bound fires early,
 * and its owner looks again and re-arms (WorkQueue does).
 */
export function timerDelayMs(ms: number): number {
  return Math.min(MAX_TIMER_MS, Math.max(0, ms));
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => setTimeout(fn, timerDelayMs(ms)),
  clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * Resolves after `ms`, or at once when `signal` aborts; never rejects, so an aborted wait needs no
 * try/catch and leaves no timer behind.
 */
export function sleep(ms: number, signal?: AbortSignal, clock: Clock = systemClock): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = () => {
      clock.clearTimer(handle);
      resolve();
    };
    const handle = clock.setTimer(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A delay spread uniformly over [ms, ms * (1 + factor)], so many clients do not retry in step. */
export function jittered(ms: number, factor: number, random: () => number = Math.random): number {
  return ms * (1 + factor * random());
}
