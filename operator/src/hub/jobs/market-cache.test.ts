import { describe, expect, it } from 'vitest';
import type { GpuProvider } from '../../api/types.js';
import { AssumedAllocations } from '../../core/scheduling/assumed.js';
import { DEFAULT_SCHEDULER_CONFIG } from '../../core/scheduling/config.js';
import { schedule } from '../../core/scheduling/scheduler.js';
import { isDecision, type JobRequest } from '../../core/types.js';
import { MarketCache } from './market-cache.js';

// The hub's one kept-up-to-date snapshot against the same answers a per-placement rebuild gives.

const H100 = 'NVIDIA-H100-80GB-HBM3';
const ready = [{ type: 'Ready', status: 'True', reason: 'HeartbeatReceived', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' }];

function gp(name: string, idle: Record<string, number>): GpuProvider {
  const nodes = Object.entries(idle).map(([n, i]) => ({ name: n, idle: i }));
  return {
    apiVersion: 'fedgpu.io/v1alpha1',
    kind: 'GpuProvider',
    metadata: { name },
    spec: { wallet: `0x${'1'.repeat(40)}` },
    status: {
      conditions: ready,
      pools: [{ gpuProduct: H100, memoryMiB: 81559, cudaDriverMajor: 12, nodes: nodes.length, total: 8 * nodes.length, allocatable: 8 * nodes.length, idle: nodes.reduce((s, n) => s + n.idle, 0), pricePerGpuHour: '2', offered: true, idleByNode: nodes }],
    },
  } as GpuProvider;
}

const oneGpu: JobRequest = { replicas: 1, gpusPerReplica: 1, gpu: { products: [H100] }, excludeProviders: [] } as unknown as JobRequest;

function setup(objects: GpuProvider[]) {
  const store = new Map(objects.map((p) => [p.metadata.name!, p]));
  const assumed = new AssumedAllocations({ ttlMs: 60_000 });
  const ages = new Map<string, number>();
  const links = new Map<string, { rttMs?: number; bandwidthMbps?: number }>();
  const cache = new MarketCache({ provider: (n) => store.get(n), providers: () => [...store.values()], assumed, heartbeatAgeMs: (n) => ages.get(n), link: (n) => links.get(n) });
  const idleOf = (now: number) => Object.fromEntries(cache.view(now).pools.map((p) => [p.provider.name, [...p.idle]]));
  const place = (key: string, now: number) => {
    const d = schedule(cache.view(now), oneGpu, DEFAULT_SCHEDULER_CONFIG, now);
    if (!isDecision(d)) throw new Error(d.message);
    cache.assume(key, d, now);
    return d;
  };
  return { store, assumed, ages, links, cache, idleOf, place };
}

describe('MarketCache', () => {
  it('takes each decision out at once, so a burst never double-books', () => {
    const t = setup([gp('a', { n1: 2 }), gp('b', { n1: 1 })]);
    const placed = [0, 1, 2].map((i) => t.place(`ns/j${i}`, 0));
    expect(placed.map((d) => `${d.provider}/${d.assignments[0]!.node}`).sort()).toEqual(['a/n1', 'a/n1', 'b/n1']);
    expect(t.idleOf(0)).toEqual({ a: [0], b: [0] });
    expect(isDecision(schedule(t.cache.view(0), oneGpu, DEFAULT_SCHEDULER_CONFIG, 0))).toBe(false);
  });

  it('re-bases a changed provider on its fresh inventory and its own live assumptions only', () => {
    const t = setup([gp('a', { n1: 4 }), gp('b', { n1: 4 })]);
    t.place('ns/j1', 0);
    const first = t.assumed.get('ns/j1')!.provider;
    const other = first === 'a' ? 'b' : 'a';
    t.store.set(first, gp(first, { n1: 6 })); // the agent reports more idle (another job ended)
    t.cache.providerChanged(first);
    expect(t.idleOf(0)[first]).toEqual([5]); // 6 idle, minus the assumption still held
    expect(t.idleOf(0)[other]).toEqual([4]);
  });

  it('gives GPUs back when an assumption is forgotten, expires, or restored to an earlier one', () => {
    const t = setup([gp('a', { n1: 2 })]);
    t.place('ns/j1', 0);
    t.place('ns/j2', 0);
    expect(t.idleOf(0).a).toEqual([0]);
    t.cache.forget('ns/j1');
    expect(t.idleOf(0).a).toEqual([1]);
    const before = t.cache.assumption('ns/j2');
    t.cache.forget('ns/j2');
    t.place('ns/j2', 0); // a new decision that then fails to be recorded
    t.cache.restore('ns/j2', before);
    expect(t.idleOf(0).a).toEqual([1]);
    expect(t.idleOf(61_000).a).toEqual([2]); // the TTL passed
  });

  it('drops a deleted provider and refreshes heartbeat ages from the leader once a second', () => {
    const t = setup([gp('a', { n1: 2 }), gp('b', { n1: 2 })]);
    t.ages.set('a', 70_000); // stale beyond heartbeatStaleMs: filtered out
    t.cache.view(0);
    expect(t.place('ns/j', 0).provider).toBe('b');
    t.store.delete('b');
    t.cache.providerChanged('b');
    t.ages.set('a', 0);
    expect(t.cache.view(0).providers.map((p) => p.name)).toEqual(['a']);
    expect(isDecision(schedule(t.cache.view(500), oneGpu, DEFAULT_SCHEDULER_CONFIG, 500))).toBe(false); // within the second
    expect(t.place('ns/k', 1_000).provider).toBe('a');
  });

  it('filters on the leader\'s live round-trip time, not the one last written to status', () => {
    const far = gp('a', { n1: 2 });
    far.status!.latency = { rttMs: 5 }; // written a while ago
    const t = setup([far]);
    const within = { ...oneGpu, placement: { maxLatencyMs: 50 } } as unknown as JobRequest;
    expect(isDecision(schedule(t.cache.view(0), within, DEFAULT_SCHEDULER_CONFIG, 0))).toBe(true);
    t.links.set('a', { rttMs: 120, bandwidthMbps: 900 }); // the route changed since
    expect(isDecision(schedule(t.cache.view(1_000), within, DEFAULT_SCHEDULER_CONFIG, 1_000))).toBe(false);
    expect(t.cache.view(1_000).providers.find((p) => p.name === 'a')?.source).toMatchObject({ rttMs: 120, bandwidthMbps: 900 });
    // A provider re-read from the informer keeps the live figures too.
    t.cache.providerChanged('a');
    expect(t.cache.view(1_100).providers.find((p) => p.name === 'a')?.source).toMatchObject({ rttMs: 120 });
  });
});
