import { describe, expect, it } from 'vitest';
import {
  computeReputation,
  computeReputations,
  decayWeight,
  DEFAULT_REPUTATION_CONFIG,
  formatHalfLife,
  type OutcomeEvent,
  performanceRatio,
} from './reputation.js';

const DAY = 24 * 3_600_000;
const NOW = Date.UTC(2024, 5, 1);
const ok = (daysAgo: number, provider = 'p'): OutcomeEvent => ({ time: NOW - daysAgo * DAY, provider, outcome: 'success', faultOf: 'none' });
const bad = (daysAgo: number, faultOf: OutcomeEvent['faultOf'] = 'provider', provider = 'p'): OutcomeEvent => ({
  time: NOW - daysAgo * DAY,
  provider,
  outcome: 'failure',
  faultOf,
});
const score = (events: OutcomeEvent[]): number => computeReputation('p', events, NOW).score;
const times = (n: number, make: (i: number) => OutcomeEvent): OutcomeEvent[] => Array.from({ length: n }, (_, i) => make(i));

describe('computeReputation', () => {
  it('a newcomer gets the 5% quantile of the uniform prior', () => {
    const r = computeReputation('p', [], NOW);
    expect(r.score).toBeCloseTo(0.05, 12);
    expect(r).toMatchObject({ successes: 0, failures: 0, alpha: 1, beta: 1, window: '168h' });
  });

  it('fresh successes without failures: Beta(1+S, 1) has the closed form 0.05^(1/(1+S))', () => {
    expect(score(times(50, () => ok(0)))).toBeCloseTo(0.05 ** (1 / 51), 10);
  });

  it.each<[string, OutcomeEvent[], OutcomeEvent[]]>([
    ['one more success raises it', times(5, () => ok(1)), [...times(5, () => ok(1)), ok(1)]],
    ['one fewer failure raises it', [...times(5, () => ok(1)), bad(1), bad(1)], [...times(5, () => ok(1)), bad(1)]],
    ['a recent success beats an old one', [ok(30)], [ok(0)]],
    ['an old failure hurts less than a recent one', [ok(0), ok(0), bad(0)], [ok(0), ok(0), bad(30)]],
    ['more evidence at the same rate tightens the bound', times(10, (i) => (i < 9 ? ok(0) : bad(0))), times(100, (i) => (i < 90 ? ok(0) : bad(0)))],
  ])('monotone: %s', (_name, lower, higher) => {
    expect(score(higher)).toBeGreaterThan(score(lower));
  });

  it.each<[string, OutcomeEvent]>([
    ['user faults', bad(0, 'user')],
    ['owner reclaims', bad(0, 'owner-reclaim')],
    ['other providers', bad(0, 'provider', 'q')],
    ['events after now', { time: NOW + DAY, provider: 'p', outcome: 'failure', faultOf: 'provider' }],
    ['events older than the window', bad(91)],
  ])('ignores %s', (_name, event) => {
    const base = [ok(1), ok(2), ok(3)];
    expect(score([...base, event])).toBe(score(base));
  });

  it.each<[string, OutcomeEvent[], number, number]>([
    ['a success of weight 1 counts once', [{ ...ok(0), weight: 1 }], 1, 0],
    ['a success without weight counts once', [ok(0)], 1, 0],
    ['a half-weight success counts half', [{ ...ok(0), weight: 0.5 }], 0.5, 0],
    ['100 successes of weight 0 count nothing', times(100, () => ({ ...ok(0), weight: 0 })), 0, 0],
    ['a weight above 1 counts once', [{ ...ok(0), weight: 7 }], 1, 0],
    ['a negative weight counts nothing', [{ ...ok(0), weight: -1 }], 0, 0],
    ['a quarter-weight slash counts a quarter', [{ time: NOW, provider: 'p', outcome: 'failure', weight: 0.25 }], 0, 0.25],
    ['weights and decay multiply', [{ ...ok(7), weight: 0.5 }, { ...bad(7), weight: 0.5 }], 0.25, 0.25],
  ])('weights: %s', (_name, events, successes, failures) => {
    const r = computeReputation('p', events, NOW);
    expect(r.successes).toBeCloseTo(successes, 12);
    expect(r.failures).toBeCloseTo(failures, 12);
  });

  it('weight-0 successes leave the score of an empty history', () => {
    expect(score(times(1000, () => ({ ...ok(0), weight: 0 })))).toBe(score([]));
  });

  it('counts failures without faultOf as the provider’s (on-chain slashes)', () => {
    const slash: OutcomeEvent = { time: NOW, provider: 'p', outcome: 'failure' };
    expect(computeReputation('p', [slash], NOW).failures).toBe(1);
  });

  it('decays by half per half-life', () => {
    const r = computeReputation('p', [ok(7), ok(14), bad(7)], NOW);
    expect(r.successes).toBeCloseTo(0.75, 12);
    expect(r.failures).toBeCloseTo(0.5, 12);
    expect(r.alpha).toBeCloseTo(1.75, 12);
    expect(r.beta).toBeCloseTo(1.5, 12);
  });

  it('forgets: the same history scores lower as it ages', () => {
    const history = times(20, () => ok(0));
    const fresh = computeReputation('p', history, NOW).score;
    const weekLater = computeReputation('p', history, NOW + 7 * DAY).score;
    const monthLater = computeReputation('p', history, NOW + 30 * DAY).score;
    expect(fresh).toBeGreaterThan(weekLater);
    expect(weekLater).toBeGreaterThan(monthLater);
  });

  it('is independent of event order (a chain replay gives the same number)', () => {
    const events = [...times(30, (i) => ok(i * 0.37)), ...times(4, (i) => bad(i * 1.3))];
    const shuffled = [...events].reverse().sort((a, b) => (a.time % 7) - (b.time % 7));
    expect(computeReputation('p', shuffled, NOW)).toEqual(computeReputation('p', events, NOW));
  });

  it.each([
    [{ uptime: 0.5 }, 0.5, 1],
    [{ uptime: 1.7 }, 1, 1], // clamped
    [{ uptime: -1 }, 0, 1],
    [{ performance: [{ time: NOW, provider: 'p', delivered: 30, claimed: 100 }] }, 1, 0.3],
    [{ performance: [{ time: NOW, provider: 'p', delivered: 300, claimed: 100 }] }, 1, 1], // over-delivery does not inflate
  ])('signals %j multiply the bound', (signals, uptimeFactor, performanceFactor) => {
    const r = computeReputation('p', times(10, () => ok(0)), NOW, signals);
    expect(r.uptimeFactor).toBeCloseTo(uptimeFactor, 12);
    expect(r.performanceFactor).toBeCloseTo(performanceFactor, 12);
    expect(r.score).toBeCloseTo(r.lowerBound * uptimeFactor * performanceFactor, 12);
  });

  it('takes weights as exponents; 0 disables a factor', () => {
    const r = computeReputation('p', [ok(0)], NOW, { uptime: 0.5 }, { ...DEFAULT_REPUTATION_CONFIG, uptimeWeight: 0 });
    expect(r.score).toBe(r.lowerBound);
  });

  it('rejects a bad configuration', () => {
    expect(() => computeReputation('p', [], NOW, {}, { ...DEFAULT_REPUTATION_CONFIG, confidence: 1 })).toThrow(RangeError);
    expect(() => computeReputation('p', [], NOW, {}, { ...DEFAULT_REPUTATION_CONFIG, halfLifeMs: 0 })).toThrow(RangeError);
  });
});

describe('computeReputations', () => {
  it('computes every provider, sorted, equal to one-by-one', () => {
    const events = [ok(0, 'b'), ok(1, 'a'), bad(2, 'provider', 'b')];
    const all = computeReputations(events, NOW, { c: { uptime: 0.9 } });
    expect(all.map((r) => r.provider)).toEqual(['a', 'b', 'c']);
    expect(all[1]).toEqual(computeReputation('b', events, NOW));
  });
});

describe('helpers', () => {
  it.each([
    [0, 1],
    [DAY * 7, 0.5],
    [DAY * 14, 0.25],
    [-DAY, 1],
  ])('decayWeight(%d)', (age, want) => {
    expect(decayWeight(age, DEFAULT_REPUTATION_CONFIG.halfLifeMs)).toBeCloseTo(want, 12);
  });

  it.each([
    [7 * DAY, '168h'],
    [90 * 60_000, '90m'],
    [45_000, '45s'],
  ])('formatHalfLife(%d) = %s', (ms, want) => {
    expect(formatHalfLife(ms)).toBe(want);
  });

  it('performanceRatio weights recent samples more', () => {
    const samples = [
      { time: NOW - 7 * DAY, provider: 'p', delivered: 0, claimed: 1 },
      { time: NOW, provider: 'p', delivered: 1, claimed: 1 },
    ];
    expect(performanceRatio('p', samples, NOW)).toBeCloseTo(1 / 1.5, 12);
    expect(performanceRatio('p', [], NOW)).toBe(1);
  });
});
