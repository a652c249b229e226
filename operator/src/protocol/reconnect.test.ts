import { describe, expect, it } from 'vitest';
import { backoffDelay, defaultBackoff } from './reconnect.js';

describe('backoffDelay', () => {
  const noJitter = { ...defaultBackoff, jitter: 0 };

  it('grows exponentially up to the cap', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, noJitter))).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    expect(backoffDelay(10_000, noJitter)).toBe(30_000);
    expect(backoffDelay(-3, noJitter)).toBe(500);
  });

  it('jitters within [(1 - jitter) * d, d]', () => {
    expect(backoffDelay(2, defaultBackoff, () => 0)).toBe(2000);
    expect(backoffDelay(2, defaultBackoff, () => 0.999999)).toBe(1000);
    expect(backoffDelay(2, defaultBackoff, () => 0.5)).toBe(1500);
    // A broken random source cannot push the delay outside the bounds.
    expect(backoffDelay(2, defaultBackoff, () => 7)).toBe(1000);
    expect(backoffDelay(2, defaultBackoff, () => Number.NaN)).toBe(2000);
  });
});
