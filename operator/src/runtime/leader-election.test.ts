import type { V1Lease } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { type LeaseApi, LeaderElector } from './leader-election.js';
import { silentLogger } from './logger.js';
import { FakeClock } from './testing/fake-clock.js';

/** One Lease with apiserver semantics: 404 before create, 409 on a stale resourceVersion. */
class FakeLeaseApi implements LeaseApi {
  lease: V1Lease | undefined;
  rv = 0;
  down = false;
  writes: V1Lease[] = [];
  private check(): void {
    if (this.down) throw Object.assign(new Error('connection refused'), { code: 503 });
  }
  async readNamespacedLease(): Promise<V1Lease> {
    this.check();
    if (!this.lease) throw Object.assign(new Error('not found'), { code: 404 });
    return JSON.parse(JSON.stringify(this.lease));
  }
  async createNamespacedLease({ body }: { body: V1Lease }): Promise<V1Lease> {
    this.check();
    if (this.lease) throw Object.assign(new Error('already exists'), { code: 409 });
    return this.store(body);
  }
  async replaceNamespacedLease({ body }: { body: V1Lease }): Promise<V1Lease> {
    this.check();
    if (body.metadata?.resourceVersion !== this.lease?.metadata?.resourceVersion) {
      throw Object.assign(new Error('conflict'), { code: 409 });
    }
    return this.store(body);
  }
  private store(body: V1Lease): V1Lease {
    const json = JSON.parse(JSON.stringify(body)) as V1Lease;
    json.metadata = { ...json.metadata, resourceVersion: String(++this.rv) };
    this.lease = json;
    this.writes.push(json);
    return JSON.parse(JSON.stringify(json));
  }
}

const timing = { leaseDurationMs: 1_000, renewDeadlineMs: 700, retryPeriodMs: 150 };
const electors: LeaderElector[] = [];

// Every candidate of a test runs on one fake clock: timings are asserted in its milliseconds,
// which no load on the machine can stretch.
function candidate(api: FakeLeaseApi, identity: string, clock: FakeClock) {
  const log: string[] = [];
  let signal: AbortSignal | undefined;
  const elector = new LeaderElector({
    coordination: api,
    namespace: 'ns',
    name: 'hub',
    identity,
    ...timing,
    clock,
    logger: silentLogger,
    onStartedLeading: (s) => {
      signal = s;
      log.push('started');
    },
    onStoppedLeading: () => log.push('stopped'),
  });
  electors.push(elector);
  return { elector, log, signal: () => signal };
}

/** Lets every pending promise settle (the fake API answers in microtasks). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Moves the clock 10 ms at a time, settling in between, until `check` holds; the fake time it took. */
async function until(clock: FakeClock, check: () => boolean, timeoutMs = 10_000): Promise<number> {
  const start = clock.now();
  for (;;) {
    await settle();
    if (check()) return clock.now() - start;
    if (clock.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms of fake time`);
    clock.advance(10);
  }
}

/** Lets `ms` of fake time pass, 10 ms at a time. */
const pass = (clock: FakeClock, ms: number) => until(clock, (() => { const end = clock.now() + ms; return () => clock.now() >= end; })());

afterEach(async () => {
  await Promise.all(electors.splice(0).map((e) => e.stop({ release: false })));
});

describe('LeaderElector', () => {
  it('refuses timings that cannot work', () => {
    const api = new FakeLeaseApi();
    const base = { coordination: api, namespace: 'n', name: 'l', identity: 'a', onStartedLeading() {} };
    expect(() => new LeaderElector({ ...base, leaseDurationMs: 1_000, renewDeadlineMs: 1_000 })).toThrow(RangeError);
    expect(() => new LeaderElector({ ...base, renewDeadlineMs: 1_000, retryPeriodMs: 900 })).toThrow(RangeError);
  });

  it('creates the lease and leads; renews it with microsecond times; keeps acquireTime', async () => {
    const api = new FakeLeaseApi();
    const clock = new FakeClock();
    const a = candidate(api, 'a', clock);
    a.elector.start();
    await until(clock, () => a.elector.isLeader());
    expect(a.log).toEqual(['started']);
    await until(clock, () => api.writes.length >= 3);
    const [first, , third] = api.writes;
    expect(third?.spec?.holderIdentity).toBe('a');
    expect(third?.spec?.acquireTime).toBe(first?.spec?.acquireTime);
    expect(String(third?.spec?.renewTime)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(third?.spec?.leaseTransitions).toBe(0);
    expect(a.elector.leader()).toBe('a');
  });

  it('of two candidates exactly one leads', async () => {
    const api = new FakeLeaseApi();
    const clock = new FakeClock();
    const a = candidate(api, 'a', clock);
    const b = candidate(api, 'b', clock);
    a.elector.start();
    b.elector.start();
    await until(clock, () => a.elector.isLeader() || b.elector.isLeader());
    // Never two at once, checked at every step over more than a lease duration of renewals.
    const end = clock.now() + 1_200;
    await until(clock, () => {
      expect([a.elector.isLeader(), b.elector.isLeader()].filter(Boolean)).toHaveLength(1);
      return clock.now() >= end;
    });
  });

  it('a released lease is taken over at the next retry; a crashed leader only after the lease duration', async () => {
    const api = new FakeLeaseApi();
    const clock = new FakeClock();
    const a = candidate(api, 'a', clock);
    a.elector.start();
    await until(clock, () => a.elector.isLeader());
    const b = candidate(api, 'b', clock);
    b.elector.start();
    await pass(clock, 400);
    expect(b.elector.isLeader()).toBe(false);
    await a.elector.stop(); // graceful: releases
    expect(a.log).toEqual(['started', 'stopped']);
    expect(a.signal()?.aborted).toBe(true);
    const releasedAfter = await until(clock, () => b.elector.isLeader());
    expect(releasedAfter).toBeLessThan(timing.leaseDurationMs / 2);
    expect(api.lease?.spec?.leaseTransitions).toBe(1);

    const c = candidate(api, 'c', clock);
    c.elector.start();
    await pass(clock, 400);
    expect(c.elector.isLeader()).toBe(false);
    await b.elector.stop({ release: false }); // as a crash: the lease is left to expire
    const crashedAfter = await until(clock, () => c.elector.isLeader());
    expect(crashedAfter).toBeGreaterThan(timing.leaseDurationMs - timing.retryPeriodMs * 3);
    expect(crashedAfter).toBeLessThan(timing.leaseDurationMs + 3 * timing.retryPeriodMs * 2.2);
  });

  it('gives up leading when it cannot renew for renewDeadline, and leads again once it can', async () => {
    const api = new FakeLeaseApi();
    const clock = new FakeClock();
    const a = candidate(api, 'a', clock);
    a.elector.start();
    await until(clock, () => a.elector.isLeader());
    api.down = true;
    const lostAfter = await until(clock, () => !a.elector.isLeader());
    expect(lostAfter).toBeGreaterThanOrEqual(timing.renewDeadlineMs - timing.retryPeriodMs);
    expect(a.signal()?.aborted).toBe(true);
    expect(a.log).toEqual(['started', 'stopped']);
    api.down = false;
    await until(clock, () => a.elector.isLeader());
    expect(a.log).toEqual(['started', 'stopped', 'started']);
  });
});
