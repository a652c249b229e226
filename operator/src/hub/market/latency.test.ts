import { describe, expect, it } from 'vitest';
import { Ewma, probeBandwidthMbps } from './latency.js';

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

describe('probeBandwidthMbps', () => {
  it('counts the bytes once, the way to the agent, and subtracts the RTT', () => {
    // 1 MB in 1 s of transfer after a 100 ms RTT: 8 Mbit/s.
    expect(probeBandwidthMbps(1_000_000, 1100, 100)).toBeCloseTo(8, 6);
    expect(probeBandwidthMbps(1_000_000, 1000, undefined)).toBeCloseTo(8, 6);
  });

  it('never divides by (almost) nothing', () => {
    expect(probeBandwidthMbps(1000, 10, 50)).toBeCloseTo((1000 * 8) / 0.001 / 1e6, 6);
    expect(probeBandwidthMbps(0, 10, 1)).toBeUndefined();
    expect(probeBandwidthMbps(1000, 0, 1)).toBeUndefined();
  });
});
