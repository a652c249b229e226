import { describe, expect, it } from 'vitest';
import { seededRandom } from './random.js';
import { FAULT_KINDS, generateSchedule, type ScheduleConfig } from './schedule.js';

const config: ScheduleConfig = { seed: 1, jobs: 200, minutes: 30, providers: ['p1', 'p2', 'p3'], providerLostAfterMs: 10_000, leaseDurationMs: 6_000 };

describe('seededRandom', () => {
  it('replays the same stream for the same seed and another for another seed', () => {
    const a = seededRandom(7);
    const b = seededRandom(7);
    const c = seededRandom(8);
    const xs = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it('keeps int() inside its bounds and weighted() to positive weights', () => {
    const r = seededRandom(3);
    const ints = Array.from({ length: 1000 }, () => r.int(2, 4));
    expect(new Set(ints)).toEqual(new Set([2, 3, 4]));
    expect(new Set(Array.from({ length: 200 }, () => r.weighted([['a', 1], ['b', 0]] as const)))).toEqual(new Set(['a']));
    expect(() => r.weighted([['a', 0]] as const)).toThrow(/no positive weight/);
  });
});

describe('generateSchedule', () => {
  it('is a pure function of its configuration: same seed, same schedule', () => {
    expect(generateSchedule(config)).toEqual(generateSchedule({ ...config }));
    expect(generateSchedule({ ...config, seed: 2 })).not.toEqual(generateSchedule(config));
  });

  it('plans exactly JOBS jobs with unique names, arriving in order inside the first 70% of the run', () => {
    const s = generateSchedule(config);
    expect(s.jobs).toHaveLength(200);
    expect(new Set(s.jobs.map((j) => j.name)).size).toBe(200);
    expect(s.jobs.map((j) => j.atMs)).toEqual([...s.jobs.map((j) => j.atMs)].sort((a, b) => a - b));
    expect(Math.max(...s.jobs.map((j) => j.atMs))).toBeLessThanOrEqual(s.durationMs * 0.7);
  });

  it('mixes every job kind, each with the fields its kind needs', () => {
    const s = generateSchedule(config);
    const kinds = new Set(s.jobs.map((j) => j.kind));
    expect(kinds).toEqual(new Set(['single', 'gang', 'tight-budget', 'deadline', 'delete-mid-run', 'user-exit']));
    for (const j of s.jobs) {
      if (j.kind === 'gang') expect(j.replicas).toBeGreaterThan(1);
      if (j.kind === 'user-exit') expect(j.exitCode).toBeGreaterThan(0);
      if (j.kind === 'tight-budget') expect(Number(j.maxTotal)).toBeGreaterThan(0);
      if (j.kind === 'deadline') expect(j.activeDeadlineSeconds).toBeGreaterThan(0);
      if (j.kind === 'delete-mid-run') expect(j.deleteAfterMs).toBeGreaterThan(0);
    }
  });

  it('draws faults of every kind over a long run, never two at once on the same target', () => {
    const s = generateSchedule({ ...config, faultRate: 4 });
    expect(new Set(s.faults.map((f) => f.kind))).toEqual(new Set(FAULT_KINDS));
    for (const [i, a] of s.faults.entries()) {
      expect(a.atMs).toBeGreaterThanOrEqual(s.durationMs * 0.05);
      expect(a.atMs).toBeLessThanOrEqual(s.durationMs * 0.8);
      for (const b of s.faults.slice(i + 1)) {
        if (a.target === b.target) expect(b.atMs >= a.atMs + a.durationMs || a.atMs >= b.atMs + b.durationMs, `${a.kind}@${a.atMs} vs ${b.kind}@${b.atMs}`).toBe(true);
      }
    }
  });

  it('sends provider faults to providers, hub faults to the hub and chain faults to the chain', () => {
    for (const f of generateSchedule({ ...config, faultRate: 4 }).faults) {
      if (f.kind.startsWith('hub-')) expect(f.target).toBe('hub');
      else if (f.kind.startsWith('rpc-') || f.kind === 'chain-reorg') expect(f.target).toBe('chain');
      else expect(['provider:p1', 'provider:p2', 'provider:p3']).toContain(f.target);
    }
  });

  it('pauses a leader past its lease, and draws agent losses both shorter and longer than providerLostAfter', () => {
    const s = generateSchedule({ ...config, faultRate: 6 });
    for (const f of s.faults.filter((f) => f.kind === 'hub-leader-pause')) expect(f.durationMs).toBeGreaterThan(config.leaseDurationMs);
    const losses = s.faults.filter((f) => f.kind === 'agent-kill' || f.kind === 'partition' || f.kind === 'agent-pause').map((f) => f.durationMs);
    expect(losses.some((d) => d < config.providerLostAfterMs)).toBe(true);
    expect(losses.some((d) => d > config.providerLostAfterMs)).toBe(true);
  });

  it('keeps to the fault kinds asked for', () => {
    const s = generateSchedule({ ...config, kinds: ['agent-kill', 'rpc-outage'] });
    expect(new Set(s.faults.map((f) => f.kind))).toEqual(new Set(['agent-kill', 'rpc-outage']));
  });

  it('refuses a configuration it cannot honour, saying which setting', () => {
    expect(() => generateSchedule({ ...config, jobs: 0 })).toThrow(/JOBS/);
    expect(() => generateSchedule({ ...config, minutes: 0 })).toThrow(/MINUTES/);
    expect(() => generateSchedule({ ...config, providers: ['only'] })).toThrow(/two providers/);
  });
});
