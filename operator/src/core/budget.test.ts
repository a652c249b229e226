import { describe, expect, it } from 'vitest';
import { billableGpuSeconds, budgetSpent, budgetStopAtMs, coveredGpuSeconds, hubSeenGpuSeconds, minimumRunShortfall } from './budget.js';
import { costOfGpuSeconds, parseMoney } from './money.js';

const credits = parseMoney;

describe('coveredGpuSeconds', () => {
  it.each<[string, string, number]>([
    ['3.6', '3.6', 3600],
    ['1', '3.6', 1000],
    ['0.000001', '2.5', 0], // the free-compute attack: a millionth of a credit buys no whole GPU-second
    ['0.001', '3.6', 1],
    ['0', '3.6', 0],
  ])('%s credits at %s/GPU-h', (amount, price, seconds) => {
    expect(coveredGpuSeconds(credits(amount), credits(price))).toBe(seconds);
  });

  it('is the largest whole count whose floor-rounded cost fits the amount (the contract rounding)', () => {
    for (const [amount, price] of [['0.0417', '2.5'], ['7.123456789', '3.333333333333333333'], ['100', '0.07']] as const) {
      const a = credits(amount);
      const p = credits(price);
      const n = coveredGpuSeconds(a, p);
      expect(costOfGpuSeconds(p, n)).toBeLessThanOrEqual(a);
      expect(costOfGpuSeconds(p, n + 1)).toBeGreaterThan(a);
    }
  });

  it('treats a free price as covering anything', () => {
    expect(coveredGpuSeconds(credits('1'), 0n)).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe('minimumRunShortfall', () => {
  it('says what a minimum run costs when the amount cannot cover it', () => {
    expect(minimumRunShortfall(credits('0.000001'), credits('2.5'), 60)).toEqual({ covered: 0, needed: credits('0.041666666666666667') });
    expect(minimumRunShortfall(credits('0.05'), credits('2.5'), 60)).toBeUndefined();
  });
});

describe('billing bounds', () => {
  const t0 = 1_000_000;
  it('bills nothing the hub never saw running', () => {
    expect(hubSeenGpuSeconds(undefined, t0 + 60_000, 8)).toBe(0);
    expect(billableGpuSeconds({ reported: 3600, runningSinceMs: undefined, untilMs: t0 + 60_000, gpus: 8 })).toBe(0);
  });

  it('bounds what the agent reports by the interval the hub saw × GPUs, plus slack per GPU', () => {
    expect(hubSeenGpuSeconds(t0, t0 + 60_000, 8)).toBe(480);
    // An agent billing the attempt's whole lifetime (10 min pending, 1 min running) gets 1 min.
    expect(billableGpuSeconds({ reported: 8 * 660, runningSinceMs: t0, untilMs: t0 + 60_000, gpus: 8 })).toBe(480 + 8 * 5);
    // An honest report below the bound is billed as reported.
    expect(billableGpuSeconds({ reported: 470, runningSinceMs: t0, untilMs: t0 + 60_000, gpus: 8 })).toBe(470);
  });

  it('never bills more than the escrow covers, nor a negative or non-number report', () => {
    expect(billableGpuSeconds({ reported: 480, runningSinceMs: t0, untilMs: t0 + 60_000, gpus: 8, coveredGpuSeconds: 100 })).toBe(100);
    expect(billableGpuSeconds({ reported: -5, runningSinceMs: t0, untilMs: t0 + 60_000, gpus: 8 })).toBe(0);
    expect(billableGpuSeconds({ reported: Number.NaN, runningSinceMs: t0, untilMs: t0 + 60_000, gpus: 8 })).toBe(0);
  });
});

describe('budget stop', () => {
  it('the agent stops at the covered GPU-seconds; no limit when none was given', () => {
    expect(budgetSpent(99.9, 100)).toBe(false);
    expect(budgetSpent(100, 100)).toBe(true);
    expect(budgetSpent(1e9, undefined)).toBe(false);
    expect(budgetSpent(1e9, 0)).toBe(false);
  });

  it('the hub stops a silent agent after the covered time, the checkpoint grace and the slack', () => {
    // 800 GPU-seconds over 8 GPUs is 100 s of wall time, + 30 s grace + 5 s slack.
    expect(budgetStopAtMs({ runningSinceMs: 0, gpus: 8, coveredGpuSeconds: 800, gracePeriodSeconds: 30 })).toBe(135_000);
  });
});
