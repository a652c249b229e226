import { describe, expect, it } from 'vitest';
import type { InventoryPool } from './inventory.js';
import { placementProblem } from './placement.js';

const pool = (over: Partial<InventoryPool> = {}): InventoryPool => ({
  gpuProduct: 'NVIDIA-H100-80GB-HBM3', memoryMiB: 81_920, cudaDriverMajor: 12, total: 16, allocatable: 16, idle: 16,
  pricePerGpuHour: '2', breakEvenPricePerGpuHour: '1', offered: true, egress: { mode: 'dns' }, access: { exec: true, portForward: true },
  nodes: [
    { name: 'gpu-0', totalGpus: 8, idleGpus: 8, ready: true, cordoned: false },
    { name: 'gpu-1', totalGpus: 8, idleGpus: 8, ready: true, cordoned: false },
  ],
  ...over,
});

describe('placementProblem (what an agent takes from a hub)', () => {
  it('takes replicas on ready, uncordoned nodes of an offered pool with the GPUs they ask', () => {
    expect(placementProblem({ nodeNames: ['gpu-0', 'gpu-1'], gpusPerReplica: 8 }, [pool()])).toBeUndefined();
    expect(placementProblem({ nodeNames: ['gpu-0', 'gpu-0'], gpusPerReplica: 4 }, [pool()])).toBeUndefined();
  });

  it("refuses a node outside its GPU pools: the owner's database node, the control plane", () => {
    expect(placementProblem({ nodeNames: ['gpu-0', 'db-0'], gpusPerReplica: 1 }, [pool()])).toBe('node db-0 is not in a GPU pool of this provider');
  });

  it('refuses a replica without a GPU', () => {
    expect(placementProblem({ nodeNames: ['gpu-0'], gpusPerReplica: 0 }, [pool()])).toMatch(/gpusPerReplica 0: every replica/);
    expect(placementProblem({ nodeNames: ['gpu-0'], gpusPerReplica: -1 }, [pool()])).toMatch(/gpusPerReplica -1/);
  });

  it('refuses a pool not offered now, a cordoned or NotReady node, and a node with fewer GPUs than asked', () => {
    expect(placementProblem({ nodeNames: ['gpu-0'], gpusPerReplica: 1 }, [pool({ offered: false, notOfferedReason: 'OutsideAvailabilityWindow: the owner lends these GPUs only in its windows' })]))
      .toBe('node gpu-0 is in pool NVIDIA-H100-80GB-HBM3, which is not offered now (OutsideAvailabilityWindow: the owner lends these GPUs only in its windows)');
    const cordoned = pool({ nodes: [{ name: 'gpu-0', totalGpus: 8, idleGpus: 0, ready: true, cordoned: true }] });
    expect(placementProblem({ nodeNames: ['gpu-0'], gpusPerReplica: 1 }, [cordoned])).toBe('node gpu-0 is cordoned: its owner has taken it back');
    const down = pool({ nodes: [{ name: 'gpu-0', totalGpus: 8, idleGpus: 0, ready: false, cordoned: false }] });
    expect(placementProblem({ nodeNames: ['gpu-0'], gpusPerReplica: 1 }, [down])).toBe('node gpu-0 is not Ready');
    const tainted = pool({ nodes: [{ name: 'gpu-0', totalGpus: 8, idleGpus: 0, ready: true, cordoned: false, tainted: true }] });
    expect(placementProblem({ nodeNames: ['gpu-0'], gpusPerReplica: 1 }, [tainted])).toBe('node gpu-0 has a taint job pods do not tolerate: its owner is using it');
    expect(placementProblem({ nodeNames: ['gpu-0'], gpusPerReplica: 16 }, [pool()])).toBe('node gpu-0 has 8 GPU(s); each replica asks 16');
  });
});
