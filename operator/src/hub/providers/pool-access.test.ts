import { describe, expect, it } from 'vitest';
import type { GpuJob, GpuProvider } from '../../api/types.js';
import { inventoryMessage } from '../../agent/agent.js';
import type { InventoryPool } from '../../agent/inventory.js';
import { schedule } from '../../core/scheduling/scheduler.js';
import { DEFAULT_SCHEDULER_CONFIG } from '../../core/scheduling/config.js';
import { Inventory } from '../../gen/proto/fedgpu/v1/market.js';
import { marketRows } from '../../cli/market.command.js';
import { providerSnapshot } from '../jobs/market-view.js';
import { jobRequest } from '../jobs/plan.js';
import { poolsStatus } from './status.js';

// Per-pool access from the agent's inventory to the scheduler: the wire (encoded and decoded as
// the stream carries it), GpuProvider status, `fedgpu market`, the scheduler's snapshot, and the
// job's spec.access to its JobRequest.

const H100 = 'NVIDIA-H100-80GB-HBM3';
const RTX = 'NVIDIA-GeForce-RTX-4090';
const now = Date.parse('2026-11-30T00:00:00Z');

function inventoryPool(gpuProduct: string, access: { exec: boolean; portForward: boolean }): InventoryPool {
  return {
    gpuProduct, memoryMiB: 81559, cudaDriverMajor: 580, total: 8, allocatable: 8, idle: 8,
    nodes: [{ name: `${gpuProduct.toLowerCase()}-0`, totalGpus: 8, idleGpus: 8, ready: true, cordoned: false }],
    pricePerGpuHour: '2', breakEvenPricePerGpuHour: '0', offered: true, egress: { mode: 'dns' }, access,
  };
}

function providerWith(pools: ReturnType<typeof poolsStatus>['pools']): GpuProvider {
  return {
    apiVersion: 'fedgpu.io/v1alpha1', kind: 'GpuProvider',
    metadata: { name: 'gp-1' },
    spec: { wallet: '0x0000000000000000000000000000000000000001', region: 'eu' },
    status: { pools, lastHeartbeatTime: new Date(now).toISOString(), conditions: [{ type: 'Ready', status: 'True', reason: 'Heartbeat', message: '', lastTransitionTime: new Date(now).toISOString() }] },
  } as GpuProvider;
}

const gpuJob = (access?: { exec?: boolean; portForward?: boolean }): GpuJob => ({
  apiVersion: 'fedgpu.io/v1alpha1', kind: 'GpuJob', metadata: { name: 'j', namespace: 'ml' },
  spec: { template: { spec: { containers: [{ name: 'c', image: 'x' }] } }, budget: { maxPricePerGpuHour: '3' }, replicas: 1, gpusPerReplica: 4, ...(access ? { access } : {}) },
}) as GpuJob;

describe('per-pool access, agent to scheduler', () => {
  const wire = Inventory.decode(Inventory.encode(inventoryMessage([inventoryPool(H100, { exec: false, portForward: true }), inventoryPool(RTX, { exec: true, portForward: true })])).finish());
  const status = poolsStatus(wire);
  const gp = providerWith(status.pools);

  it('keeps the owner\'s switches per pool in GpuProvider status and the market', () => {
    expect(status.pools?.map((p) => [p.gpuProduct, p.access])).toEqual([[H100, { exec: false, portForward: true }], [RTX, { exec: true, portForward: true }]]);
    expect(marketRows([gp]).map((r) => [r.product, r.access])).toEqual([[RTX, 'logs,exec,port-forward'], [H100, 'logs,port-forward']]);
  });

  it('places a job requiring exec only in the pool that allows it', () => {
    const request = jobRequest(gpuJob({ exec: true }), []);
    expect(request.access).toEqual({ exec: true, portForward: false });
    const snapshot = providerSnapshot(gp, now);
    expect(snapshot.pools.map((p) => p.access)).toEqual([{ exec: false, portForward: true }, { exec: true, portForward: true }]);
    expect(schedule([snapshot], request, DEFAULT_SCHEDULER_CONFIG, now)).toMatchObject({ kind: 'decision', gpuProduct: RTX });
    expect(schedule([snapshot], { ...request, gpu: { products: [H100] } }, DEFAULT_SCHEDULER_CONFIG, now)).toMatchObject({
      kind: 'unschedulable', reasons: { AccessNotOffered: 1 }, message: '0/1 providers fit: 1 exec not allowed by the owner',
    });
  });

  it('a job asking for nothing (or only false) carries no access need', () => {
    expect(jobRequest(gpuJob(), []).access).toBeUndefined();
    expect(jobRequest(gpuJob({ exec: false, portForward: false }), []).access).toBeUndefined();
  });

  it('a pool status without access (an older agent) allows both', () => {
    const old = providerWith(status.pools?.map(({ access: _, ...p }) => p));
    expect(providerSnapshot(old, now).pools.every((p) => p.access === undefined)).toBe(true);
    expect(marketRows([old]).map((r) => r.access)).toEqual(['logs,exec,port-forward', 'logs,exec,port-forward']);
  });
});
