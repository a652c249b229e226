import { describe, expect, it } from 'vitest';
import type { GpuProvider } from '../../api/types.js';
import type { Inventory } from '../../gen/proto/fedgpu/v1/market.js';
import { inventoryPrint, providerPrint, RunningHolds } from './running-holds.js';

const H100 = 'NVIDIA-H100-80GB-HBM3';

function inventory(idle: Record<string, number>, offered = true): Inventory {
  const nodes = Object.entries(idle).map(([name, idleGpus]) => ({ name, totalGpus: 8, idleGpus, ready: true, cordoned: false }));
  return { pools: [{ gpuProduct: H100, memoryMib: 81559, cudaDriverMajor: 12, nodes, total: 8 * nodes.length, allocatable: 8 * nodes.length, idle: nodes.reduce((n, x) => n + x.idleGpus, 0), pricePerGpuHour: '2', breakEvenPricePerGpuHour: '1', offered, notOfferedReason: 0, runtimeClassName: '', cpuMilliPerGpu: 0, memoryMibPerGpu: 0, egress: undefined, access: undefined }], unisolatedNamespaces: [] } as Inventory;
}

// As the registry writes it and the apiserver gives it back: other fields, node order by idle.
function provider(idle: Record<string, number>): GpuProvider {
  const idleByNode = Object.entries(idle).map(([name, n]) => ({ name, idle: n })).sort((a, b) => b.idle - a.idle);
  return { metadata: { name: 'gp-1' }, spec: { wallet: '0x1' }, status: { idleGpus: 0, pools: [{ cudaDriverMajor: 12, gpuProduct: H100, idleByNode, memoryMiB: 81559, offered: true, total: 16 }] } } as unknown as GpuProvider;
}

describe('inventoryPrint / providerPrint', () => {
  it('print an inventory and the GpuProvider written from it alike, whatever the order', () => {
    expect(providerPrint(provider({ b: 3, a: 8 }))).toBe(inventoryPrint(inventory({ a: 8, b: 3 })));
    expect(providerPrint(provider({ a: 7, b: 3 }))).not.toBe(inventoryPrint(inventory({ a: 8, b: 3 })));
  });
});

describe('RunningHolds', () => {
  const held = { jobKey: 'ml/a', provider: 'gp-1', assumedAt: 100 };

  it('holds a Running job until the informer shows an inventory received after its report', () => {
    const holds = new RunningHolds();
    holds.inventory('gp-1', 'idle 8'); // before the pod was bound
    holds.runningReported('uid-a', 1, 'gp-1');
    holds.hold(held, 'uid-a', 1);
    // The informer still shows the inventory from before the report: the pod is not counted.
    expect(holds.confirmed('gp-1', 'idle 8')).toEqual([]);
    expect(holds.isHeld('ml/a')).toBe(true);
    holds.inventory('gp-1', 'idle 7'); // received after the report: it counts the pod
    expect(holds.confirmed('gp-1', 'idle 8')).toEqual([]);
    expect(holds.confirmed('gp-1', 'something never received')).toEqual([]);
    expect(holds.confirmed('gp-1', 'idle 7')).toEqual([held]);
    expect(holds.isHeld('ml/a')).toBe(false);
  });

  it('counts from the report, not from the reconcile that holds (a later inventory was already received)', () => {
    const holds = new RunningHolds();
    holds.runningReported('uid-a', 1, 'gp-1');
    holds.inventory('gp-1', 'idle 7');
    holds.hold(held, 'uid-a', 1);
    expect(holds.confirmed('gp-1', 'idle 7')).toEqual([held]);
  });

  it('without a report of this epoch, only an inventory received from the hold on counts', () => {
    const holds = new RunningHolds();
    holds.runningReported('uid-a', 1, 'gp-1');
    holds.inventory('gp-1', 'idle 7');
    holds.hold(held, 'uid-a', 2);
    expect(holds.confirmed('gp-1', 'idle 7')).toEqual([]);
    holds.inventory('gp-1', 'idle 6');
    expect(holds.confirmed('gp-1', 'idle 6')).toEqual([held]);
  });

  it('keeps other providers and released jobs apart', () => {
    const holds = new RunningHolds();
    holds.hold(held, undefined, 1);
    holds.hold({ jobKey: 'ml/b', provider: 'gp-2', assumedAt: 5 }, undefined, 1);
    holds.inventory('gp-2', 'x');
    holds.inventory('gp-1', 'x');
    holds.release('ml/a');
    expect(holds.confirmed('gp-1', 'x')).toEqual([]);
    holds.providerGone('gp-2');
    expect(holds.isHeld('ml/b')).toBe(false);
  });
});
