import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { poolHostPerGpu, shareOnNode } from './node-share.js';

const node = (name: string, cpu = '64'): V1Node => ({ metadata: { name }, status: { allocatable: { cpu, memory: '512Gi', 'nvidia.com/gpu': '8' } } });
const pod = (name: string, nodeName: string, requests: Record<string, string>, extra: { phase?: string; job?: boolean } = {}): V1Pod => ({
  metadata: { name, namespace: extra.job ? 'fedgpu-jobs-a' : 'owner', labels: extra.job ? { job: 'yes' } : {} },
  spec: { nodeName, containers: [{ name: 'c', resources: { requests } }] },
  status: { phase: extra.phase ?? 'Running' },
});
const isJobPod = (p: V1Pod) => p.metadata?.labels?.job === 'yes';
const GI = 1024 ** 3;

describe('shareOnNode', () => {
  it('divides what the owner\'s pods on that node leave, and ignores finished pods and other nodes', () => {
    const pods = [
      pod('owner-db', 'gpu-0', { cpu: '16', memory: '128Gi', 'nvidia.com/gpu': '2' }),
      pod('daemon', 'gpu-0', { cpu: '500m', memory: '512Mi' }),
      // A job pod holding its own share (47.5 CPU and 383.5Gi over 6 GPUs, for 1 GPU).
      pod('job', 'gpu-0', { cpu: '7916m', memory: `${Math.floor((383.5 * 1024) / 6)}Mi`, 'nvidia.com/gpu': '1' }, { job: true }),
      pod('done', 'gpu-0', { cpu: '32' }, { phase: 'Succeeded' }),
      pod('elsewhere', 'gpu-1', { cpu: '60' }),
    ];
    // 6 GPUs left share 47.5 CPU and 383.5Gi.
    expect(shareOnNode([node('gpu-0'), node('gpu-1')], pods, isJobPod, 'gpu-0', 3)).toEqual({
      cpuMilli: 23_750, memoryBytes: 191.75 * GI, gpus: 3, ofGpus: 6,
    });
  });

  it('gives no more than is still free beside every pod there: an owner\'s pod bound after the job pods took their shares', () => {
    // Four 1-GPU replicas took 8 CPU each, then the owner's pod took 16 CPU: 16 CPU are free for 4 GPUs.
    const pods = [
      ...[0, 1, 2, 3].map((i) => pod(`job-${i}`, 'gpu-0', { cpu: '8', memory: '64Gi', 'nvidia.com/gpu': '1' }, { job: true })),
      pod('owner-late', 'gpu-0', { cpu: '16' }),
    ];
    const share = shareOnNode([node('gpu-0')], pods, isJobPod, 'gpu-0', 1)!;
    expect(share.cpuMilli).toBe(4_000);
    // Four more replicas of that share fit beside the rest: 4 × 8 + 16 + 4 × 4 = 64.
    expect(4 * 8_000 + 16_000 + 4 * share.cpuMilli).toBe(64_000);
  });

  it('is undefined for a node it does not know, or one whose GPUs the owner holds', () => {
    expect(shareOnNode([node('gpu-0')], [], isJobPod, 'gpu-9', 1)).toBeUndefined();
    expect(shareOnNode([node('gpu-0')], [pod('owner', 'gpu-0', { 'nvidia.com/gpu': '8' })], isJobPod, 'gpu-0', 1)).toBeUndefined();
  });
});

describe('poolHostPerGpu', () => {
  it('is what a GPU brings on the smallest node of the pool, in millicores and MiB', () => {
    const nodes = [node('gpu-0'), node('gpu-1', '32'), node('gpu-2')];
    const pods = [pod('owner', 'gpu-2', { memory: '256Gi' })];
    expect(poolHostPerGpu(nodes, pods, isJobPod, ['gpu-0', 'gpu-1', 'gpu-2'])).toEqual({ cpuMilli: 4_000, memoryMiB: 32 * 1024 });
    expect(poolHostPerGpu(nodes, [], isJobPod, ['gpu-0'])).toEqual({ cpuMilli: 8_000, memoryMiB: 64 * 1024 });
    expect(poolHostPerGpu(nodes, [pod('owner', 'gpu-0', { 'nvidia.com/gpu': '8' })], isJobPod, ['gpu-0'])).toBeUndefined();
  });
});
