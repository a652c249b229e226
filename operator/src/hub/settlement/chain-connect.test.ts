import { describe, expect, it } from 'vitest';
import { ChainConfigError, connectWithRetry, retryDelayMs } from './chain-connect.js';

describe('connectWithRetry', () => {
  it('retries an outage with growing, capped waits until the chain answers', async () => {
    const waits: number[] = [];
    let calls = 0;
    const value = await connectWithRetry(
      async () => {
        calls++;
        if (calls < 4) throw new Error('connect ECONNREFUSED 127.0.0.1:8545');
        return 'connected';
      },
      new AbortController().signal,
      { minDelayMs: 1, maxDelayMs: 4, onRetry: (_err, _n, next) => waits.push(next) },
    );
    expect(value).toBe('connected');
    expect(calls).toBe(4);
    expect(waits).toEqual([1, 2, 4]);
  });

  it('never retries a configuration error', async () => {
    let calls = 0;
    const failing = connectWithRetry(
      async () => {
        calls++;
        throw new ChainConfigError('the endpoint is chain 1, the hub is configured for chain 31337');
      },
      new AbortController().signal,
      { minDelayMs: 1 },
    );
    await expect(failing).rejects.toThrow(ChainConfigError);
    expect(calls).toBe(1);
  });

  it('counts a try that never answers as an outage', async () => {
    let calls = 0;
    const value = await connectWithRetry(
      () => (++calls === 1 ? new Promise<string>(() => undefined) : Promise.resolve('late')),
      new AbortController().signal,
      { minDelayMs: 1, attemptTimeoutMs: 20 },
    );
    expect(value).toBe('late');
    expect(calls).toBe(2);
  });

  it('stops when its signal aborts', async () => {
    const stop = new AbortController();
    const failing = connectWithRetry(() => Promise.reject(new Error('down')), stop.signal, { minDelayMs: 60_000, onRetry: () => stop.abort(new Error('hub stopping')) });
    await expect(failing).rejects.toThrow('hub stopping');
  });

  it('backs off from 1 s to 30 s by default', () => {
    expect([1, 2, 3, 5, 6, 50].map((n) => retryDelayMs(n))).toEqual([1_000, 2_000, 4_000, 16_000, 30_000, 30_000]);
  });
});
