// How the hub reaches its settlement chain at start-up. An endpoint that does not answer is an
// outage: the hub starts anyway, says settlement is degraded, and keeps trying with a capped
// back-off (as a running hub rides out an outage). An endpoint that answers with another chain, no
// market at the address, or a key without the settler role is a configuration error: refused.

/** The chain answered, and what it said is not what the hub was configured for: never retried. */
export class ChainConfigError extends Error {
  override readonly name = 'ChainConfigError';
}

export const isChainConfigError = (err: unknown): err is ChainConfigError => err instanceof ChainConfigError;

export interface ChainRetryOptions {
  /** First wait after a failure (default 1 s); doubles per failure up to maxDelayMs. */
  minDelayMs?: number;
  /** Longest wait between tries (default 30 s). */
  maxDelayMs?: number;
  /** Longest single try before it counts as an outage (default 15 s). */
  attemptTimeoutMs?: number;
  /** Called after each failed try, with how long until the next. */
  onRetry?: (err: unknown, failures: number, nextInMs: number) => void;
}

/** The wait before the next try after `failures` failed ones: exponential, capped. */
export function retryDelayMs(failures: number, minDelayMs = 1_000, maxDelayMs = 30_000): number {
  return Math.min(maxDelayMs, minDelayMs * 2 ** Math.min(Math.max(failures - 1, 0), 20));
}

/** One try, bounded in time: a blackholed endpoint fails it like a refused one. */
export function withTimeout<T>(attempt: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${Math.round(ms / 1000)}s`)), ms);
  });
  return Promise.race([attempt, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Tries `connect` until it succeeds, it fails with a configuration error (thrown), or `signal`
 * aborts (rejects with the signal's reason). Waits grow from minDelayMs to maxDelayMs.
 */
export async function connectWithRetry<T>(connect: () => Promise<T>, signal: AbortSignal, opts: ChainRetryOptions = {}): Promise<T> {
  for (let failures = 0; ; ) {
    signal.throwIfAborted();
    try {
      return await withTimeout(connect(), opts.attemptTimeoutMs ?? 15_000, 'the settlement chain');
    } catch (err) {
      if (isChainConfigError(err)) throw err;
      failures++;
      const wait = retryDelayMs(failures, opts.minDelayMs, opts.maxDelayMs);
      opts.onRetry?.(err, failures, wait);
      await sleep(wait, signal);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const done = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => (signal.removeEventListener('abort', done), resolve()), ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
