import type { Assign } from '../gen/proto/fedgpu/v1/market.js';
import type { InventoryPool } from './inventory.js';

// What the agent checks of a placement before it makes anything for it: the hub may be hostile or
// its view a moment old, and the pods would run wherever the Assign says (their node affinity names
// the node). Only nodes of GPU pools this provider offers now, ready and not cordoned, with at least
// the GPUs each replica asks for; and every replica gets a GPU. Otherwise a hub could put a
// stranger's code on the owner's database node or control plane, outside the pools the owner lends
// (and outside their RuntimeClass). Pure.

/** Why this provider does not take the placement, or undefined when it does. */
export function placementProblem(assign: Pick<Assign, 'nodeNames' | 'gpusPerReplica'>, pools: readonly InventoryPool[]): string | undefined {
  if (!Number.isInteger(assign.gpusPerReplica) || assign.gpusPerReplica < 1) {
    return `gpusPerReplica ${assign.gpusPerReplica}: every replica of an attempt gets at least one GPU`;
  }
  for (const name of new Set(assign.nodeNames)) {
    const pool = pools.find((p) => p.nodes.some((n) => n.name === name));
    const node = pool?.nodes.find((n) => n.name === name);
    if (!pool || !node) return `node ${name} is not in a GPU pool of this provider`;
    if (!pool.offered) return `node ${name} is in pool ${pool.gpuProduct}, which is not offered now (${pool.notOfferedReason ?? 'not offered'})`;
    if (node.cordoned) return `node ${name} is cordoned: its owner has taken it back`;
    if (!node.ready) return `node ${name} is not Ready`;
    if (node.tainted) return `node ${name} has a taint job pods do not tolerate: its owner is using it`;
    if (node.totalGpus < assign.gpusPerReplica) return `node ${name} has ${node.totalGpus} GPU(s); each replica asks ${assign.gpusPerReplica}`;
  }
  return undefined;
}
