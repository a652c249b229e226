import { describe, expect, it } from 'vitest';
import { TokenBucket } from './rate-limit.js';

describe('TokenBucket', () => {
  it('allows a burst of capacity, then refills at the configured rate', () => {
    let now = 0;
    const bucket = new TokenBucket({ capacity: 5, refillPerSecond: 2, now: () => now });
    for (let i = 0; i < 5; i++) expect(bucket.tryTake()).toBe(true);
    expect(bucket.tryTake()).toBe(false);
    now += 499;
    expect(bucket.tryTake()).toBe(false);
    now += 1;
    expect(bucket.tryTake()).toBe(true);
    expect(bucket.tryTake()).toBe(false);
    now += 60_000;
    expect(bucket.available).toBe(5); // never above capacity
  });

  it('charges multi-token costs all or nothing', () => {
    const bucket = new TokenBucket({ capacity: 3, refillPerSecond: 0, now: () => 0 });
    expect(bucket.tryTake(4)).toBe(false);
    expect(bucket.available).toBe(3);
    expect(bucket.tryTake(3)).toBe(true);
    expect(bucket.tryTake(1)).toBe(false);
  });

  it('ignores a clock that steps backwards', () => {
    let now = 1000;
    const bucket = new TokenBucket({ capacity: 1, refillPerSecond: 1, now: () => now });
    expect(bucket.tryTake()).toBe(true);
    now = 0;
    expect(bucket.tryTake()).toBe(false);
    now = 1000;
    expect(bucket.tryTake()).toBe(true);
  });

  it('keeps granted tokens above capacity until spent, bounded by the ceiling', () => {
    let now = 0;
    const bucket = new TokenBucket({ capacity: 2, refillPerSecond: 1, now: () => now });
    bucket.grant(10, 8);
    expect(bucket.available).toBe(8); // 2 + 10 capped at the ceiling
    now += 5_000;
    expect(bucket.available).toBe(8); // refill does not add above capacity, nor take grants away
    for (let i = 0; i < 8; i++) expect(bucket.tryTake()).toBe(true);
    expect(bucket.tryTake()).toBe(false);
    bucket.grant(-3, 100);
    expect(bucket.available).toBe(0); // nothing granted for a nonsense count
    now += 1_000;
    expect(bucket.available).toBe(1); // back to the plain refill
  });

  it('refuses nonsense configuration', () => {
    expect(() => new TokenBucket({ capacity: 0, refillPerSecond: 1 })).toThrow();
    expect(() => new TokenBucket({ capacity: 1, refillPerSecond: Number.NaN })).toThrow();
  });
});
