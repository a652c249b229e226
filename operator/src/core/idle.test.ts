import { describe, expect, it } from 'vitest';
import { computeIdle, type GpuNodeInfo, type PodInfo, parseQuantity, podGpuRequest } from './idle.js';
import type { Availability } from './types.js';

const NOW = Date.UTC(2024, 0, 1, 12); // Monday noon UTC

const h100 = {
  'nvidia.com/gpu.product': 'NVIDIA-H100-80GB-HBM3',
  'nvidia.com/gpu.memory': '81559',
  'nvidia.com/gpu.count': '8',
  'nvidia.com/cuda.driver.major': '535',
};
const rtx = {
  'nvidia.com/gpu.product': 'NVIDIA-GeForce-RTX-4090',
  'nvidia.com/gpu.memory': '24564',
  'nvidia.com/gpu.count': '2',
  'nvidia.com/cuda.driver.major': '550',
};

function node(name: string, labels: Record<string, string>, allocatable: number | string | undefined, extra: Partial<GpuNodeInfo> = {}): GpuNodeInfo {
  const info: GpuNodeInfo = { name, labels, ready: true, ...extra };
  if (allocatable !== undefined) info.allocatableGpus = allocatable;
  return info;
}

function pod(name: string, nodeName: string | undefined, gpus: number, extra: Partial<PodInfo> = {}): PodInfo {
  const info: PodInfo = { name, phase: 'Running', containers: [{ limits: { 'nvidia.com/gpu': String(gpus) } }], ...extra };
  if (nodeName !== undefined) info.nodeName = nodeName;
  return info;
}

const idleOf = (nodes: GpuNodeInfo[], pods: PodInfo[], availability?: Availability): Record<string, number> => {
  const inventory = computeIdle(nodes, pods, availability ? { now: NOW, availability } : { now: NOW });
  return Object.fromEntries(inventory.nodes.map((n) => [n.name, n.idle]));
};

describe('computeIdle per node', () => {
  it.each<[string, GpuNodeInfo[], PodInfo[], Availability | undefined, Record<string, number>]>([
    ['empty node is fully idle', [node('a', h100, 8)], [], undefined, { a: 8 }],
    ['running pod takes its GPUs', [node('a', h100, 8)], [pod('p', 'a', 3)], undefined, { a: 5 }],
    ['pending (Pending phase) bound pod takes GPUs', [node('a', h100, 8)], [pod('p', 'a', 2, { phase: 'Pending' })], undefined, { a: 6 }],
    ['unbound pod takes nothing', [node('a', h100, 8)], [pod('p', undefined, 4)], undefined, { a: 8 }],
    ['Succeeded pod takes nothing', [node('a', h100, 8)], [pod('p', 'a', 4, { phase: 'Succeeded' })], undefined, { a: 8 }],
    ['Failed pod takes nothing', [node('a', h100, 8)], [pod('p', 'a', 4, { phase: 'Failed' })], undefined, { a: 8 }],
    ['terminating pod still holds GPUs', [node('a', h100, 8)], [pod('p', 'a', 4, { deletionTimestamp: '2024-01-01T11:59:00Z' })], undefined, { a: 4 }],
    ['overcommit clamps at zero (kwok never rejects)', [node('a', h100, 8)], [pod('p', 'a', 6), pod('q', 'a', 6)], undefined, { a: 0 }],
    ['cordoned node offers nothing', [node('a', h100, 8, { unschedulable: true })], [], undefined, { a: 0 }],
    ['cordon taint offers nothing', [node('a', h100, 8, { taints: [{ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }] })], [], undefined, { a: 0 }],
    ['NotReady node offers nothing', [node('a', h100, 8, { ready: false })], [], undefined, { a: 0 }],
    ['unreachable taint offers nothing', [node('a', h100, 8, { taints: [{ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' }] })], [], undefined, { a: 0 }],
    ['GPU taint is tolerated', [node('a', h100, 8, { taints: [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }] })], [], undefined, { a: 8 }],
    ['foreign NoSchedule taint blocks', [node('a', h100, 8, { taints: [{ key: 'team', value: 'ml', effect: 'NoSchedule' }] })], [], undefined, { a: 0 }],
    ['PreferNoSchedule taint does not block', [node('a', h100, 8, { taints: [{ key: 'team', effect: 'PreferNoSchedule' }] })], [], undefined, { a: 8 }],
    ['pods on non-GPU nodes are ignored', [node('a', h100, 8), node('cpu', {}, undefined)], [pod('p', 'cpu', 0), pod('q', 'cpu', 1)], undefined, { a: 8 }],
    ['pods on unknown nodes are ignored', [node('a', h100, 8)], [pod('p', 'ghost', 8)], undefined, { a: 8 }],
    ['reserved GPUs come from the smallest node', [node('a', h100, 8), node('b', h100, 8)], [pod('p', 'b', 6)], { reservedGpus: 3 }, { a: 7, b: 0 }],
    ['outside the window nothing is idle', [node('a', h100, 8)], [], { windows: [{ start: '18:00', end: '08:00' }] }, { a: 0 }],
    ['inside the window idle counts', [node('a', h100, 8)], [], { windows: [{ start: '08:00', end: '18:00' }] }, { a: 8 }],
    ['allocatable as a quantity string', [node('a', h100, '4')], [], undefined, { a: 4 }],
  ])('%s', (_name, nodes, pods, availability, want) => {
    expect(idleOf(nodes, pods, availability)).toEqual(want);
  });
});

describe('computeIdle pools', () => {
  it('groups by product, memory and driver, sorted, with totals', () => {
    const inventory = computeIdle(
      [
        node('h2', h100, 8),
        node('h1', h100, 8, { unschedulable: true }),
        node('r1', rtx, 2),
        node('h3', { ...h100, 'nvidia.com/cuda.driver.major': '550' }, 8),
        node('nolabel', {}, 4),
        node('cpu', {}, undefined),
      ],
      [pod('p', 'h2', 2), pod('q', 'r1', 1)],
      { now: NOW },
    );
    expect(inventory.pools).toEqual([
      {
        gpuProduct: 'NVIDIA-GeForce-RTX-4090',
        memoryMiB: 24564,
        cudaDriverMajor: 550,
        nodes: [{ name: 'r1', idleGpus: 1, totalGpus: 2 }],
        total: 2,
        allocatable: 2,
        idle: 1,
      },
      {
        gpuProduct: 'NVIDIA-H100-80GB-HBM3',
        memoryMiB: 81559,
        cudaDriverMajor: 535,
        nodes: [
          { name: 'h1', idleGpus: 0, totalGpus: 8 },
          { name: 'h2', idleGpus: 6, totalGpus: 8 },
        ],
        total: 16,
        allocatable: 8,
        idle: 6,
      },
      {
        gpuProduct: 'NVIDIA-H100-80GB-HBM3',
        memoryMiB: 81559,
        cudaDriverMajor: 550,
        nodes: [{ name: 'h3', idleGpus: 8, totalGpus: 8 }],
        total: 8,
        allocatable: 8,
        idle: 8,
      },
    ]);
    expect(inventory.skipped).toEqual([
      { node: 'cpu', reason: 'NoGpus' },
      { node: 'nolabel', reason: 'MissingProductLabel' },
    ]);
    expect(inventory.nodes.find((n) => n.name === 'h1')?.reason).toBe('Cordoned');
  });

  it('marks the whole inventory outside the window', () => {
    const inventory = computeIdle([node('a', h100, 8)], [], { now: NOW, availability: { windows: [{ start: '00:00', end: '01:00' }] } });
    expect(inventory.inWindow).toBe(false);
    expect(inventory.pools[0]?.idle).toBe(0);
    expect(inventory.pools[0]?.allocatable).toBe(8);
    expect(inventory.nodes[0]?.reason).toBe('OutsideWindow');
  });
});

describe('podGpuRequest (effective request rules)', () => {
  const gpu = (n: number, kind: 'requests' | 'limits' = 'limits') => ({ [kind]: { 'nvidia.com/gpu': String(n) } });
  it.each<[string, Partial<PodInfo>, number]>([
    ['sum of app containers', { containers: [gpu(1), gpu(2)] }, 3],
    ['request wins over limit', { containers: [{ requests: { 'nvidia.com/gpu': '1' }, limits: { 'nvidia.com/gpu': '1' } }] }, 1],
    ['request alone', { containers: [gpu(2, 'requests')] }, 2],
    ['no GPU at all', { containers: [{ requests: { cpu: '1' } }] }, 0],
    ['init container larger than the app', { containers: [gpu(1)], initContainers: [gpu(4)] }, 4],
    ['init containers run one at a time (max, not sum)', { containers: [gpu(1)], initContainers: [gpu(2), gpu(3)] }, 3],
    ['sidecar adds to the app', { containers: [gpu(2)], initContainers: [{ ...gpu(1), restartPolicy: 'Always' }] }, 3],
    ['init after a sidecar adds to it', { containers: [gpu(1)], initContainers: [{ ...gpu(1), restartPolicy: 'Always' }, gpu(3)] }, 4],
    ['init before a sidecar does not', { containers: [gpu(1)], initContainers: [gpu(3), { ...gpu(1), restartPolicy: 'Always' }] }, 3],
    ['pod overhead is added', { containers: [gpu(1)], overhead: { 'nvidia.com/gpu': '1' } }, 2],
    ['numeric quantities', { containers: [{ limits: { 'nvidia.com/gpu': 2 } }] }, 2],
  ])('%s', (_name, spec, want) => {
    expect(podGpuRequest({ name: 'p', containers: [], ...spec })).toBe(want);
  });
});

describe('parseQuantity', () => {
  it.each<[string | number, number]>([
    ['1', 1],
    ['8', 8],
    ['500m', 0.5],
    ['1k', 1000],
    ['1Ki', 1024],
    ['', 0],
    ['abc', 0],
    ['-1', 0],
    [-3, 0],
    [4, 4],
  ])('%j → %d', (text, want) => {
    expect(parseQuantity(text)).toBe(want);
  });
});
