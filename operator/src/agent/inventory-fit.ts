import type { Inventory } from '../gen/proto/fedgpu/v1/market.js';
import { defaultEdgeLimits, type EdgeLimits } from '../protocol/limits.js';

// The inventory as the hub's edge accepts it (protocol/validate.ts). The hub ends a stream whose
// inventory breaks a bound or does not add up, and the agent sends one again after every
// reconnect: a cluster that is merely unusual would stay off the market. Two cases need no
// attacker: a node with an unhealthy GPU (its count label says 8, its allocatable 7, so the pool's
// total exceeded its nodes' GPUs) and time-slicing (allocatable above the count label, or above 64
// on one node). Node labels that the nodes themselves may set feed memory and driver numbers.
// What does not fit is made to fit, and said, never sent as is.

export interface FittedInventory {
  inventory: Inventory;
  /** What was changed to fit, for the agent's log; empty when nothing was. */
  changes: string[];
}

const clamp = (value: number, min: number, max: number) => (Number.isFinite(value) ? Math.min(Math.max(Math.trunc(value), min), max) : min);

export function fitInventory(inventory: Inventory, limits: Readonly<EdgeLimits> = defaultEdgeLimits): FittedInventory {
  const changes: string[] = [];
  if (inventory.pools.length > limits.maxPools) changes.push(`${inventory.pools.length} pools, ${limits.maxPools} reported`);
  let nodesLeft = limits.maxNodesTotal;
  const pools = inventory.pools.slice(0, limits.maxPools).map((pool) => {
    const room = Math.max(0, Math.min(limits.maxNodesPerPool, nodesLeft));
    if (pool.nodes.length > room) changes.push(`pool ${pool.gpuProduct}: ${pool.nodes.length} nodes, ${room} reported`);
    const nodes = pool.nodes.slice(0, room).map((node) => {
      const totalGpus = clamp(node.totalGpus, 0, limits.maxGpusPerNode);
      if (totalGpus !== node.totalGpus) changes.push(`node ${node.name}: ${node.totalGpus} GPUs, ${totalGpus} reported`);
      return { ...node, totalGpus, idleGpus: clamp(node.idleGpus, 0, totalGpus) };
    });
    nodesLeft -= nodes.length;
    const nodeTotal = nodes.reduce((n, x) => n + x.totalGpus, 0);
    const nodeIdle = nodes.reduce((n, x) => n + x.idleGpus, 0);
    const ceiling = Math.min(nodeTotal, limits.maxGpusPerPool);
    const allocatable = clamp(pool.allocatable, 0, ceiling);
    // The count label and the nodes' allocatable disagree when a GPU is unhealthy or shared.
    const total = clamp(pool.total, allocatable, ceiling);
    const idle = clamp(pool.idle, 0, Math.min(allocatable, nodeIdle));
    if (total !== pool.total || allocatable !== pool.allocatable || idle !== pool.idle) {
      changes.push(`pool ${pool.gpuProduct}: total/allocatable/idle ${pool.total}/${pool.allocatable}/${pool.idle} reported as ${total}/${allocatable}/${idle} (its nodes have ${nodeTotal})`);
    }
    const memoryMib = clamp(pool.memoryMib, 0, limits.maxMemoryMiB);
    const cudaDriverMajor = pool.cudaDriverMajor > limits.maxCudaDriverMajor ? 0 : clamp(pool.cudaDriverMajor, 0, limits.maxCudaDriverMajor);
    if (memoryMib !== pool.memoryMib || cudaDriverMajor !== pool.cudaDriverMajor) changes.push(`pool ${pool.gpuProduct}: memory or driver label out of range`);
    return { ...pool, nodes, total, allocatable, idle, memoryMib, cudaDriverMajor };
  });
  const unisolatedNamespaces = inventory.unisolatedNamespaces.slice(0, limits.maxUnisolatedNamespaces);
  if (unisolatedNamespaces.length < inventory.unisolatedNamespaces.length) changes.push(`${inventory.unisolatedNamespaces.length} refused namespaces, ${unisolatedNamespaces.length} reported`);
  return { inventory: { ...inventory, pools, unisolatedNamespaces }, changes };
}
