import type { V1Node } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { GFD_COUNT_LABEL, GFD_MEMORY_LABEL } from '../api/constants.js';
import type { AgentMessage } from '../gen/proto/fedgpu/v1/market.js';
import { validateAgentMessage } from '../protocol/validate.js';
import { gpuNodes } from '../testbed/kwok/gpu-nodes.js';
import { inventoryMessage } from './agent.js';
import { fitInventory } from './inventory-fit.js';
import { buildInventory, type ProviderSettings } from './inventory.js';

// Clusters the hub's edge used to refuse (ending the agent's stream at every reconnect), through
// the agent's own path: nodes → buildInventory → inventoryMessage → fitInventory → the hub's check.
const settings: ProviderSettings = { pricePerGpuHour: { 'NVIDIA-H100-80GB-HBM3': '2.40' } };
const noon = Date.UTC(2026, 10, 25, 12, 0);
const nodes = (edit: (n: V1Node) => V1Node) =>
  gpuNodes({ prefix: 'h100', count: 2, gpusPerNode: 8, product: 'NVIDIA-H100-80GB-HBM3', memoryMiB: 81559 })
    .map((n) => ({ ...n, status: { ...n.status, conditions: [{ type: 'Ready', status: 'True' }] } }))
    .map((n, i) => (i === 0 ? edit(n) : n));
const allocatable = (gpus: number) => (n: V1Node): V1Node => ({ ...n, status: { ...n.status, allocatable: { ...n.status?.allocatable, 'nvidia.com/gpu': String(gpus) } } });
const label = (key: string, value: string) => (n: V1Node): V1Node => ({ ...n, metadata: { ...n.metadata, labels: { ...n.metadata?.labels, [key]: value } } });
const accepted = (pools: ReturnType<typeof inventoryMessage>) => validateAgentMessage({ seq: 1, body: { $case: 'inventory', value: pools } } satisfies AgentMessage, 0).ok;

describe('fitInventory: an unusual cluster stays on the market', () => {
  it('a node with an unhealthy GPU (count label 8, allocatable 7)', () => {
    const raw = inventoryMessage(buildInventory(nodes(allocatable(7)), [], settings, noon));
    expect(accepted(raw)).toBe(false);
    const fitted = fitInventory(raw);
    expect(accepted(fitted.inventory)).toBe(true);
    expect(fitted.inventory.pools[0]).toMatchObject({ total: 15, allocatable: 15, idle: 15 });
    expect(fitted.changes.join()).toMatch(/total\/allocatable\/idle 16\/15\/15 reported as 15\/15\/15/);
  });

  it('time-slicing: 80 shares of 8 GPUs on one node', () => {
    const raw = inventoryMessage(buildInventory(nodes(allocatable(80)), [], settings, noon));
    expect(accepted(raw)).toBe(false);
    const fitted = fitInventory(raw);
    expect(accepted(fitted.inventory)).toBe(true);
    expect(fitted.inventory.pools[0]!.nodes[0]).toMatchObject({ totalGpus: 64, idleGpus: 64 });
    expect(fitted.changes.join()).toContain('80 GPUs, 64 reported');
  });

  it('a memory label a node set to anything', () => {
    const raw = inventoryMessage(buildInventory(nodes(label(GFD_MEMORY_LABEL, '999999999999')), [], settings, noon));
    expect(accepted(raw)).toBe(false);
    expect(accepted(fitInventory(raw).inventory)).toBe(true);
  });

  it('leaves a cluster that already fits as it is', () => {
    const raw = inventoryMessage(buildInventory(nodes(label(GFD_COUNT_LABEL, '8')), [], settings, noon));
    const fitted = fitInventory(raw);
    expect(fitted.changes).toEqual([]);
    expect(fitted.inventory).toEqual(raw);
  });
});
