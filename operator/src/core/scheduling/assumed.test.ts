import { describe, expect, it } from 'vitest';
import { AssumedAllocations, gpusByNode } from './assumed.js';
import { schedule } from './scheduler.js';
import { schedulerConfig } from './config.js';
import { buildSnapshot } from './snapshot.js';
import { A100, H100, job, pool, provider } from '../testing/fixtures.js';
import { type Decision, isDecision } from '../types.js';

const NOW = Date.UTC(2024, 0, 1, 12);
const config = schedulerConfig();

function decision(provider: string, nodes: string[], gpusPerReplica: number, gpuProduct = H100): Decision {
  return {
    kind: 'decision',
    provider,
    gpuProduct,
    memoryMiB: gpuProduct === H100 ? 81559 : 81920,
    cudaDriverMajor: 535,
    gpusPerReplica,
    assignments: nodes.map((node, replica) => ({ replica, node })),
    pricePerGpuHour: '2',
    estimatedTimeToStartSeconds: 0,
    score: { total: 1, parts: { reputation: 1, latency: 1, price: 1, timeToStart: 1, fragmentation: 1 } },
  };
}

const fleet = () => [provider('a', [pool(H100, [8, 4]), pool(A100, [8])]), provider('b', [pool(H100, [8])])];
const idleOf = (providers: ReturnType<typeof fleet>, name: string, product: string) =>
  providers.find((p) => p.name === name)?.pools.find((p) => p.gpuProduct === product)?.nodes.map((n) => n.idleGpus);

describe('AssumedAllocations', () => {
  it('gpusByNode sums replicas per node', () => {
    expect(gpusByNode(decision('a', ['n0', 'n0', 'n1'], 2))).toEqual({ n0: 4, n1: 2 });
  });

  it.each<[string, (c: AssumedAllocations) => void, number[] | undefined]>([
    ['live assumption is subtracted', () => {}, [5, 4]],
    ['confirm stops subtracting (inventory has the pods now)', (c) => c.confirm('ns/j1'), [8, 4]],
    ['forget gives the GPUs back', (c) => c.forget('ns/j1'), [8, 4]],
    ['expiry by time', (c) => c.expire(NOW + 10 * 60_000), [8, 4]],
    ['re-assume replaces, not adds', (c) => c.assume('ns/j1', decision('a', ['n1'], 1), NOW), [8, 3]],
  ])('%s', (_name, act, want) => {
    const cache = new AssumedAllocations({ ttlMs: 60_000 });
    cache.assume('ns/j1', decision('a', ['n0', 'n0', 'n0'], 1), NOW);
    act(cache);
    expect(idleOf(cache.applyTo(fleet(), NOW), 'a', H100)).toEqual(want);
  });

  it('ignores expired assumptions even before expire() runs, and reports expired keys sorted', () => {
    const cache = new AssumedAllocations({ ttlMs: 1000 });
    cache.assume('ns/b', decision('a', ['n0'], 8), NOW);
    cache.assume('ns/a', decision('b', ['n0'], 8), NOW + 500);
    expect(idleOf(cache.applyTo(fleet(), NOW + 1000), 'a', H100)).toEqual([8, 4]);
    expect(idleOf(cache.applyTo(fleet(), NOW + 1000), 'b', H100)).toEqual([0]);
    expect(cache.expire(NOW + 2000)).toEqual(['ns/a', 'ns/b']);
    expect(cache.size).toBe(0);
  });

  it('applies only to the matching pool, clamps at zero, never mutates inputs', () => {
    const providers = fleet();
    const before = structuredClone(providers);
    const cache = new AssumedAllocations();
    cache.assume('x', decision('a', ['n0', 'n0'], 8, A100), NOW);
    const after = cache.applyTo(providers, NOW);
    expect(idleOf(after, 'a', A100)).toEqual([0]);
    expect(idleOf(after, 'a', H100)).toEqual([8, 4]);
    expect(after[1]).toBe(providers[1]); // untouched provider is the same object
    expect(providers).toEqual(before);
  });

  it('re-bases a fresh snapshot so the next burst does not double-book', () => {
    const cache = new AssumedAllocations();
    const first = buildSnapshot(fleet());
    const d = schedule(first, job(1, 8, {}, [A100]), config, NOW);
    if (!isDecision(d)) throw new Error(d.message);
    cache.assume('ns/j', d, NOW);
    // Fresh inventory arrives before the agent started the pods: the A100 node still looks idle.
    const fresh = buildSnapshot(fleet());
    cache.applyToSnapshot(fresh, NOW);
    expect(isDecision(schedule(fresh, job(1, 8, {}, [A100]), config, NOW))).toBe(false);
    // Once confirmed, the inventory itself carries the usage; nothing is subtracted twice.
    cache.confirm('ns/j');
    const later = buildSnapshot(fleet());
    cache.applyToSnapshot(later, NOW);
    expect(later.poolOf('a', A100, 81920, 535)?.idle[0]).toBe(8);
  });

  it('re-applies one provider’s assumptions after updateProvider', () => {
    const cache = new AssumedAllocations();
    cache.assume('ns/a', decision('a', ['n0'], 8), NOW);
    cache.assume('ns/b', decision('b', ['n0'], 2), NOW);
    const snapshot = buildSnapshot(fleet());
    cache.applyToSnapshot(snapshot, NOW);
    snapshot.updateProvider(fleet()[1] as ReturnType<typeof fleet>[number]); // fresh inventory from b only
    cache.applyToSnapshot(snapshot, NOW, 'b');
    expect(snapshot.poolOf('a', H100, 81559, 535)?.idle[0]).toBe(0); // not subtracted twice
    expect(snapshot.poolOf('b', H100, 81559, 535)?.idle[0]).toBe(6);
  });

  it('rejects a non-positive TTL', () => {
    expect(() => new AssumedAllocations({ ttlMs: 0 })).toThrow(RangeError);
  });
});
