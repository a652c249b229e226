import { describe, expect, it } from 'vitest';
import { prepareJob, parseAuditRequirement } from '../job.js';
import { schedulerConfig } from './config.js';
import { fragmentationPart, latencyPart, pricePart, reputationPart, timeToStartPart, timeToStartSeconds, totalScore } from './score.js';
import { job, provider } from '../testing/fixtures.js';

const config = schedulerConfig();
const prepared = (request = job(1, 1)) => {
  const p = prepareJob(request, config);
  if ('invalid' in p) throw new Error(p.invalid);
  return p;
};

describe('score parts', () => {
  it.each([
    // score, observations → part: the exploration bonus 0.15 × 5 / (5 + n) fades with evidence
    [0.05, 0, 0.2],
    [0.05, 5, 0.125],
    [0.05, 45, 0.065],
    [0.9, 1000, 0.9 + 0.75 / 1005],
    [0.95, 0, 1], // capped
  ])('reputationPart(score %d, n %d) = %d', (score, n, want) => {
    expect(reputationPart({ score, successes: n, failures: 0 }, config)).toBeCloseTo(want, 12);
  });

  it('exploration bonus decreases monotonically with observations', () => {
    let previous = Number.POSITIVE_INFINITY;
    for (let n = 0; n <= 200; n += 10) {
      const part = reputationPart({ score: 0.1, successes: n / 2, failures: n / 2 }, config);
      expect(part).toBeLessThan(previous);
      previous = part;
    }
  });

  it.each([
    [0, undefined, 1],
    [125, undefined, 0.5], // default scale 250 ms
    [500, undefined, 0],
    [25, 50, 0.5], // the job's own maxLatencyMs is the scale
  ])('latencyPart(%d ms, max %s) = %d', (rtt, max, want) => {
    const p = prepared(job(1, 1, max === undefined ? {} : { placement: { maxLatencyMs: max } }));
    expect(latencyPart(rtt, p, config)).toBeCloseTo(want, 12);
  });

  it.each([
    [0, 4, 1],
    [1, 4, 0.75],
    [4, 4, 0],
    [5, 4, 0],
    [1, 0, 0],
  ])('pricePart(%d, budget %d) = %d', (price, budget, want) => {
    expect(pricePart(price, budget)).toBeCloseTo(want, 12);
  });

  it.each<[string, { sizeGiB?: number; sourceRegion?: string } | undefined, number, number]>([
    ['no data', undefined, 1000, 0],
    ['zero size', { sizeGiB: 0 }, 1000, 0],
    ['same region', { sizeGiB: 100, sourceRegion: 'us-east' }, 1000, 0],
    ['remote: GiB × 8192 / Mbps', { sizeGiB: 100, sourceRegion: 'eu-west' }, 1000, 819.2],
    ['no source region counts as remote', { sizeGiB: 1 }, 8192, 1],
    ['unknown bandwidth', { sizeGiB: 1 }, 0, Number.POSITIVE_INFINITY],
  ])('timeToStartSeconds: %s', (_name, data, bandwidthMbps, want) => {
    const p = prepared(job(1, 1, data ? { data } : {}));
    expect(timeToStartSeconds(p, provider('x', [], { bandwidthMbps }))).toBeCloseTo(want, 9);
  });

  it.each([
    [0, 1],
    [900, 0.5],
    [2700, 0.25],
    [Number.POSITIVE_INFINITY, 0],
  ])('timeToStartPart(%d s) = %d', (seconds, want) => {
    expect(timeToStartPart(seconds, config)).toBeCloseTo(want, 12);
  });

  it.each([
    [4, 4, 1],
    [2, 8, 0.25],
    [1, 0, 0],
  ])('fragmentationPart(%d of %d) = %d', (used, touched, want) => {
    expect(fragmentationPart(used, touched)).toBe(want);
  });

  it('totalScore is the weighted mean', () => {
    const parts = { reputation: 1, latency: 0, price: 0.5, timeToStart: 1, fragmentation: 0 };
    expect(totalScore(parts, { reputation: 1, latency: 1, price: 2, timeToStart: 0, fragmentation: 0 })).toBeCloseTo(0.5, 12);
  });
});

describe('prepareJob and config', () => {
  it.each([
    ['soc2', { name: 'soc2', value: undefined, text: 'soc2' }],
    ['tier=3', { name: 'tier', value: '3', text: 'tier=3' }],
    ['k=', { name: 'k', value: '', text: 'k=' }],
  ])('parseAuditRequirement(%s)', (text, want) => {
    expect(parseAuditRequirement(text)).toEqual(want);
  });

  it('converts GiB with the memory tolerance and dedupes products', () => {
    const p = prepared(job(2, 4, { gpu: { products: ['A', 'A', 'B'], minMemoryGiB: 80 } }));
    expect(p.products).toEqual(['A', 'B']);
    expect(p.minMemoryMiB).toBe(Math.ceil(80 * 1024 * 0.93));
    expect(p.gpus).toBe(8);
  });

  it('merges overrides and rejects bad weights', () => {
    expect(schedulerConfig({ weights: { price: 2 } }).weights).toMatchObject({ price: 2, reputation: 0.35 });
    expect(() => schedulerConfig({ weights: { reputation: 0, latency: 0, price: 0, timeToStart: 0, fragmentation: 0 } })).toThrow(RangeError);
    expect(() => schedulerConfig({ weights: { price: -1 } })).toThrow(RangeError);
  });
});
