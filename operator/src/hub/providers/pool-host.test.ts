import { describe, expect, it } from 'vitest';
import type { GpuJob, GpuProvider } from '../../api/types.js';
import { inventoryMessage } from '../../agent/agent.js';
import type { InventoryPool } from '../../agent/inventory.js';
import { schedule } from '../../core/scheduling/scheduler.js';
import { DEFAULT_SCHEDULER_CONFIG } from '../../core/scheduling/config.js';
import { Inventory } from '../../gen/proto/fedgpu/v1/market.js';
import { validateAgentMessage } from '../../protocol/validate.js';
import { providerSnapshot } from '../jobs/market-view.js';
import { jobRequest } from '../jobs/plan.js';
import { poolsStatus } from './status.js';
import { marketRows } from '../../cli/market.command.js';

// What each GPU brings of its node's CPU and memory, from the agent's inventory to the scheduler:
// the wire (encoded and decoded as the stream carries it), GpuProvider status, the scheduler's
// snapshot, and the job's template to its JobRequest.

const H100 = 'NVIDIA-H100-80GB-HBM3';
const now = Date.parse('2026-12-01T00:00:00Z');

const inventoryPool = (hostPerGpu?: { cpuMilli: number; memoryMiB: number }): InventoryPool => ({
  gpuProduct: H100, memoryMiB: 81559, cudaDriverMajor: 580, total: 8, allocatable: 8, idle: 8,
  nodes: [{ name: 'h100-0', totalGpus: 8, idleGpus: 8, ready: true, cordoned: false }],
  pricePerGpuHour: '2', breakEvenPricePerGpuHour: '0', offered: true, egress: { mode: 'dns' }, access: { exec: true, portForward: true },
  ...(hostPerGpu ? { hostPerGpu } : {}),
});

const providerWith = (pools: ReturnType<typeof poolsStatus>['pools']): GpuProvider => ({
  apiVersion: 'fedgpu.io/v1alpha1', kind: 'GpuProvider', metadata: { name: 'gp-1' },
  spec: { wallet: '0x0000000000000000000000000000000000000001', region: 'eu' },
  status: { pools, lastHeartbeatTime: new Date(now).toISOString(), conditions: [{ type: 'Ready', status: 'True', reason: 'Heartbeat', message: '', lastTransitionTime: new Date(now).toISOString() }] },
}) as GpuProvider;

const gpuJob = (resources?: Record<string, Record<string, string>>): GpuJob => ({
  apiVersion: 'fedgpu.io/v1alpha1', kind: 'GpuJob', metadata: { name: 'j', namespace: 'ml' },
  spec: { template: { spec: { containers: [{ name: 'c', image: 'x', ...(resources ? { resources } : {}) }] } }, budget: { maxPricePerGpuHour: '3' }, replicas: 1, gpusPerReplica: 2 },
}) as GpuJob;

const wire = (pool: InventoryPool) => Inventory.decode(Inventory.encode(inventoryMessage([pool])).finish());

describe('CPU and memory per GPU, agent to scheduler', () => {
  it('carries the pool\'s share per GPU to GpuProvider status and the scheduler, which places only what fits', () => {
    const inventory = wire(inventoryPool({ cpuMilli: 7_500, memoryMiB: 61_440 }));
    expect(validateAgentMessage({ seq: 1, body: { $case: 'inventory', value: inventory } }, 0).ok).toBe(true);
    const status = poolsStatus(inventory);
    expect(status.pools?.[0]).toMatchObject({ cpuMilliPerGpu: 7_500, memoryMiBPerGpu: 61_440 });
    expect(marketRows([providerWith(status.pools)])[0]?.perGpu).toBe('7.5cpu/60Gi');
    const snapshot = providerSnapshot(providerWith(status.pools), now);
    expect(snapshot.pools[0]?.hostPerGpu).toEqual({ cpuMilli: 7_500, memoryMiB: 61_440 });
    // Two GPUs per replica: 15 CPU and 120Gi.
    const fits = jobRequest(gpuJob({ limits: { cpu: '15', memory: '120Gi' } }), []);
    expect(fits.hostPerReplica).toEqual({ cpuMilli: 15_000, memoryMiB: 122_880 });
    expect(schedule([snapshot], fits, DEFAULT_SCHEDULER_CONFIG, now)).toMatchObject({ kind: 'decision' });
    const greedy = jobRequest(gpuJob({ limits: { memory: '121Gi' } }), []);
    expect(schedule([snapshot], greedy, DEFAULT_SCHEDULER_CONFIG, now)).toMatchObject({
      kind: 'unschedulable', reasons: { InsufficientCpuMemory: 1 }, message: '0/1 providers fit: 1 NVIDIA-H100-80GB-HBM3 gives at most 15 CPU & 120Gi per replica < 0.01 CPU & 121Gi asked',
    });
  });

  it('refuses up front a template every agent would refuse (a zero limit is no limit), naming the field', () => {
    const snapshot = providerSnapshot(providerWith(poolsStatus(wire(inventoryPool({ cpuMilli: 7_500, memoryMiB: 61_440 }))).pools), now);
    expect(schedule([snapshot], jobRequest(gpuJob({ limits: { cpu: '0' } }), []), DEFAULT_SCHEDULER_CONFIG, now)).toEqual({
      kind: 'unschedulable', reasons: { InvalidRequest: 1 },
      message: 'invalid job: template.spec.containers[0].resources.limits.cpu: "0" is below 0.01 CPU, the least a container runs with (a zero limit would be no limit)',
    });
  });

  it('an agent that says nothing (0 on the wire) leaves the pool unjudged; one that says too much is refused at the edge', () => {
    const status = poolsStatus(wire(inventoryPool()));
    expect(status.pools?.[0]?.cpuMilliPerGpu).toBeUndefined();
    expect(marketRows([providerWith(status.pools)])[0]?.perGpu).toBe('');
    expect(providerSnapshot(providerWith(status.pools), now).pools[0]?.hostPerGpu).toBeUndefined();
    const bragging = inventoryMessage([inventoryPool({ cpuMilli: 2_000_000, memoryMiB: 1024 })]);
    const verdict = validateAgentMessage({ seq: 1, body: { $case: 'inventory', value: bragging } }, 0);
    expect(verdict.ok).toBe(false);
  });
});
