import type { V1Node } from '@kubernetes/client-node';
import {
  GFD_COUNT_LABEL,
  GFD_CUDA_DRIVER_MAJOR_LABEL,
  GFD_MEMORY_LABEL,
  GFD_PRODUCT_LABEL,
  GPU_RESOURCE,
  GPU_TAINT_KEY,
} from '../../api/constants.js';

/** Label that hands a node to the test bed's kwok. */
export const KWOK_MANAGED_LABEL = 'fedgpu.io/kwok-managed';

/** A group of identical fake GPU nodes. */
export interface GpuNodeGroup {
  /** Node name prefix; nodes are named `<prefix>-0`, `<prefix>-1`, … */
  prefix: string;
  count: number;
  gpusPerNode: number;
  /** GPU Feature Discovery product name, e.g. NVIDIA-H100-80GB-HBM3. */
  product: string;
  memoryMiB: number;
  /** NVIDIA driver major as GFD labels it (nvidia.com/cuda.driver.major), e.g. 580; default 580. */
  cudaDriverMajor?: number;
  /** Add the `nvidia.com/gpu=present:NoSchedule` taint that GPU clusters often carry. */
  taint?: boolean;
  labels?: Record<string, string>;
}

/** Node objects, with status, as a device plugin and GPU Feature Discovery would leave them. */
export function gpuNodes(group: GpuNodeGroup): V1Node[] {
  return Array.from({ length: group.count }, (_, i) => {
    const resources = { cpu: '64', memory: '512Gi', 'ephemeral-storage': '2Ti', pods: '110', [GPU_RESOURCE]: String(group.gpusPerNode) };
    return {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: `${group.prefix}-${i}`,
        labels: {
          'kubernetes.io/hostname': `${group.prefix}-${i}`,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': 'amd64',
          type: 'kwok',
          [KWOK_MANAGED_LABEL]: 'true',
          [GFD_PRODUCT_LABEL]: group.product,
          [GFD_MEMORY_LABEL]: String(group.memoryMiB),
          [GFD_COUNT_LABEL]: String(group.gpusPerNode),
          [GFD_CUDA_DRIVER_MAJOR_LABEL]: String(group.cudaDriverMajor ?? 580),
          ...group.labels,
        },
        annotations: { 'kwok.x-k8s.io/node': 'fake' },
      },
      spec: group.taint ? { taints: [{ key: GPU_TAINT_KEY, value: 'present', effect: 'NoSchedule' }] } : {},
      status: { capacity: resources, allocatable: resources },
    };
  });
}
