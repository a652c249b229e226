import { describe, expect, it } from 'vitest';
import { buildSnapshot, formatPoolKey } from './snapshot.js';
import { A100, H100, pool, provider, RTX4090 } from '../testing/fixtures.js';
import type { Decision } from '../types.js';

describe('MarketSnapshot', () => {
  const fleet = [
    provider('b', [pool(H100, [8, 2]), pool(A100, [4], 'bad')]),
    provider('a', [pool(H100, [1])], { stakeAmount: '12.5', availability: { windows: [{ start: 'nope', end: '1' }] } }),
    provider('a', [pool(RTX4090, [9])]), // duplicate name: ignored
  ];
  const snapshot = buildSnapshot(fleet);

  it('sorts providers by name, drops duplicates, parses once', () => {
    expect(snapshot.providers.map((p) => p.name)).toEqual(['a', 'b']);
    expect(snapshot.providers[0]?.stake).toBe(12_500_000_000_000_000_000n);
    expect(snapshot.providers[0]?.availability).toBeUndefined(); // invalid windows: never available
    expect(snapshot.pools.map((p) => `${p.provider.name}:${p.gpuProduct}`)).toEqual([`a:${H100}`, `b:${A100}`, `b:${H100}`]);
    expect(snapshot.poolOf('b', A100, 81920, 535)?.price).toBeUndefined();
  });

  it.each<[string[], string[]]>([
    [[H100], ['a', 'b']],
    [[A100], ['b']],
    [[RTX4090], []],
    [[], ['a', 'b', 'b']],
    [[H100, A100, H100], ['a', 'b', 'b']],
  ])('poolsFor(%j)', (products, providers) => {
    expect(snapshot.poolsFor(products).map((p) => p.provider.name)).toEqual(providers);
  });

  it('assume lowers idle and totals in place; release gives back', () => {
    const s = buildSnapshot(fleet);
    const d = {
      provider: 'b',
      gpuProduct: H100,
      memoryMiB: 81559,
      cudaDriverMajor: 535,
      gpusPerReplica: 2,
      assignments: [
        { replica: 0, node: 'n0' },
        { replica: 1, node: 'n1' },
        { replica: 2, node: 'ghost' },
      ],
    } as Decision;
    expect(s.assume(d)).toBe(false); // ghost node: partly applied
    const pool = s.poolOf('b', H100, 81559, 535);
    expect([...(pool?.idle ?? [])]).toEqual([6, 0]);
    expect(pool?.maxIdle).toBe(6);
    expect(pool?.sumIdle).toBe(6);
    expect(s.toProviders().find((p) => p.name === 'b')?.pools.find((p) => p.gpuProduct === H100)?.nodes).toEqual([
      { name: 'n0', idleGpus: 6, totalGpus: 8 },
      { name: 'n1', idleGpus: 0, totalGpus: 8 },
    ]);
    s.release(d);
    expect([...(pool?.idle ?? [])]).toEqual([8, 2]);
    expect(fleet[0]?.pools[0]?.nodes[0]?.idleGpus).toBe(8); // sources untouched
  });

  it('updateProvider writes a fresh inventory in place when the layout is unchanged', () => {
    const s = buildSnapshot(fleet);
    const before = s.poolOf('b', H100, 81559, 535);
    s.updateProvider(provider('b', [pool(H100, [3, 1], '1.5'), pool(A100, [4], '2')], { rttMs: 99 }));
    const after = s.poolOf('b', H100, 81559, 535);
    expect(after).toBe(before); // same object: no re-index
    expect([...(after?.idle ?? [])]).toEqual([3, 1]);
    expect(after?.maxIdle).toBe(3);
    expect(after?.price).toBe(1_500_000_000_000_000_000n);
    expect(s.poolOf('b', A100, 81920, 535)?.price).toBe(2_000_000_000_000_000_000n);
    expect(s.providers[1]?.source.rttMs).toBe(99);
  });

  it.each<[string, ReturnType<typeof provider>, string[]]>([
    ['a changed layout re-indexes', provider('b', [pool(RTX4090, [2])]), [`a:${H100}`, `b:${RTX4090}`]],
    ['a new provider is inserted in name order', provider('aa', [pool(A100, [2])]), [`a:${H100}`, `aa:${A100}`, `b:${A100}`, `b:${H100}`]],
  ])('updateProvider: %s', (_name, update, pools) => {
    const s = buildSnapshot(fleet);
    s.updateProvider(update);
    expect(s.pools.map((p) => `${p.provider.name}:${p.gpuProduct}`)).toEqual(pools);
    expect(s.providers.map((p) => p.index)).toEqual(s.providers.map((_, i) => i));
    expect(s.poolsFor([A100]).every((p) => p.gpuProduct === A100)).toBe(true);
  });

  it('updateProvider keeps other providers’ assumed idle; removeProvider drops one', () => {
    const s = buildSnapshot(fleet);
    s.take('a', { gpuProduct: H100, memoryMiB: 81559, cudaDriverMajor: 535 }, { n0: 1 });
    s.updateProvider(provider('b', [pool(RTX4090, [2])]));
    expect(s.poolOf('a', H100, 81559, 535)?.idle[0]).toBe(0);
    expect(s.removeProvider('a')).toBe(true);
    expect(s.removeProvider('a')).toBe(false);
    expect(s.providers.map((p) => p.name)).toEqual(['b']);
    expect(s.poolsFor([H100])).toEqual([]);
  });

  it('formats pool keys', () => {
    expect(formatPoolKey(H100, 81559, 535)).toBe('NVIDIA-H100-80GB-HBM3/81559/535');
  });
});
