import { describe, expect, it } from 'vitest';
import { Ewma, echoBandwidthMbps } from './latency.js';

describe('Ewma', () => {
  it('seeds with the first sample and then smooths', () => {
    const ewma = new Ewma(0.5);
    expect(ewma.value).toBeUndefined();
    expect(ewma.update(10)).toBe(10);
    expect(ewma.update(20)).toBe(15);
    expect(ewma.update(Number.NaN)).toBe(15);
    expect(ewma.update(-1)).toBe(15);
  });

  it('refuses an alpha outside (0, 1]', () => {
    expect(() => new Ewma(0)).toThrow();
    expect(() => new Ewma(1.5)).toThrow();
  });
});

describe('echoBandwidthMbps', () => {
  it('counts both directions and subtracts the RTT', () => {
    // 1 MB each way in 1 s of transfer after a 100 ms RTT: 16 Mbit/s.
    expect(echoBandwidthMbps(1_000_000, 1100, 100)).toBeCloseTo(16, 6);
    expect(echoBandwidthMbps(1_000_000, 1000, undefined)).toBeCloseTo(16, 6);
  });

  it('never divides by (almost) nothing', () => {
    expect(echoBandwidthMbps(1000, 10, 50)).toBeCloseTo((2 * 1000 * 8) / 0.001 / 1e6, 6);
    expect(echoBandwidthMbps(0, 10, 1)).toBeUndefined();
    expect(echoBandwidthMbps(1000, 0, 1)).toBeUndefined();
  });
});
