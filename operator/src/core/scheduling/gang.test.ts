import { describe, expect, it } from 'vitest';
import { gangFits, gangTouchedIdle, placeGang } from './gang.js';

// GPUs placed per node position, for compact expectations.
function usage(idle: number[], replicas: number, gpusPerReplica: number, sameNode = false): number[] | undefined {
  const placement = placeGang(idle, replicas, gpusPerReplica, sameNode);
  if (!placement) return undefined;
  const used = idle.map(() => 0);
  for (const node of placement.nodeOfReplica) used[node] = (used[node] ?? 0) + gpusPerReplica;
  expect(placement.nodeOfReplica).toHaveLength(replicas);
  return used;
}

describe('placeGang', () => {
  it.each<[string, number[], number, number, boolean, number[] | undefined]>([
    ['single replica on the smallest node that fits (best fit)', [8, 2, 4], 1, 2, false, [0, 2, 0]],
    ['whole gang on one node when one holds it', [8, 4, 2], 2, 2, false, [0, 4, 0]],
    ['exact fill beats a partial big node', [3, 4, 8], 2, 2, false, [0, 4, 0]],
    ['ties go to the first node by name', [4, 4], 1, 4, false, [4, 0]],
    ['spreads when no single node holds the gang', [4, 4, 4], 3, 4, false, [4, 4, 4]],
    ['fewest nodes, then least stranded idle (keeps the 8 whole)', [8, 6, 4], 10, 1, false, [0, 6, 4]],
    ['minimal node count uses the big node when it must', [8, 2, 1, 1], 10, 1, false, [8, 2, 0, 0]],
    ['slots are whole replicas: 3 idle holds one 2-GPU replica', [3, 3, 2], 3, 2, false, [2, 2, 2]],
    ['gang that fits only whole: not enough slots', [3, 3], 3, 2, false, undefined],
    ['all-or-nothing: 7 of 8 GPUs is a refusal', [4, 3], 2, 4, false, undefined],
    ['sameNode picks the one node that holds all', [4, 8, 6], 3, 2, true, [0, 0, 6]],
    ['sameNode refuses a spread', [4, 4], 2, 4, true, undefined],
    ['nothing idle', [0, 0], 1, 1, false, undefined],
    ['no nodes', [], 1, 1, false, undefined],
  ])('%s', (_name, idle, replicas, gpusPerReplica, sameNode, want) => {
    expect(usage(idle, replicas, gpusPerReplica, sameNode)).toEqual(want);
    expect(gangFits(idle, replicas, gpusPerReplica, sameNode)).toBe(want !== undefined);
    expect(gangTouchedIdle(idle, replicas, gpusPerReplica, sameNode)).toBe(
      placeGang(idle, replicas, gpusPerReplica, sameNode)?.touchedIdle ?? -1,
    );
  });

  it('reports the idle of the touched nodes for the fragmentation part', () => {
    expect(placeGang([8, 6, 4], 10, 1, false)).toMatchObject({ touchedIdle: 10, nodesUsed: 2 });
    expect(placeGang([8, 2], 1, 2, false)).toMatchObject({ touchedIdle: 2, nodesUsed: 1 });
  });

  it('never places more than a node holds, on a big pool (greedy path)', () => {
    const idle = Array.from({ length: 3000 }, (_, i) => (i * 7) % 9);
    const placement = placeGang(idle, 200, 2, false);
    expect(placement).toBeDefined();
    const used = new Map<number, number>();
    for (const node of placement?.nodeOfReplica ?? []) used.set(node, (used.get(node) ?? 0) + 2);
    for (const [node, gpus] of used) expect(gpus).toBeLessThanOrEqual(idle[node] ?? 0);
    expect(placement?.nodeOfReplica).toHaveLength(200);
    expect(gangTouchedIdle(idle, 200, 2, false)).toBe(placement?.touchedIdle);
  });

  it('the exact search matches brute force on small pools', () => {
    // Brute force: every subset; fewest nodes, then least idle.
    let seed = 7;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let round = 0; round < 300; round++) {
      const idle = Array.from({ length: 1 + random(7) }, () => random(9));
      const gpusPerReplica = 1 + random(3);
      const replicas = 1 + random(6);
      const placement = placeGang(idle, replicas, gpusPerReplica, false);
      let best: { nodes: number; idle: number } | undefined;
      for (let mask = 1; mask < 1 << idle.length; mask++) {
        let slots = 0;
        let nodes = 0;
        let sum = 0;
        idle.forEach((v, i) => {
          if (mask & (1 << i)) {
            slots += Math.floor(v / gpusPerReplica);
            nodes += 1;
            sum += v;
          }
        });
        if (slots < replicas) continue;
        if (!best || nodes < best.nodes || (nodes === best.nodes && sum < best.idle)) best = { nodes, idle: sum };
      }
      if (!best) {
        expect(placement).toBeUndefined();
        expect(gangTouchedIdle(idle, replicas, gpusPerReplica, false)).toBe(-1);
        continue;
      }
      expect(placement?.nodesUsed).toBe(best.nodes);
      expect(placement?.touchedIdle).toBe(best.idle);
      expect(gangTouchedIdle(idle, replicas, gpusPerReplica, false)).toBe(best.idle);
    }
  });
});
