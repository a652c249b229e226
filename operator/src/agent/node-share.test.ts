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

  it('divides the node disk the same way, where the node says it: what the owner\'s pods ask of it left out', () => {
    const withDisk: V1Node = { metadata: { name: 'gpu-0' }, status: { allocatable: { cpu: '64', memory: '512Gi', 'ephemeral-storage': '500Gi', 'nvidia.com/gpu': '8' } } };
    const pods = [pod('owner-cache', 'gpu-0', { 'ephemeral-storage': '100Gi' }), pod('job', 'gpu-0', { 'ephemeral-storage': '300Gi', 'nvidia.com/gpu': '1' }, { job: true })];
    expect(shareOnNode([withDisk], pods, isJobPod, 'gpu-0', 2)?.diskBytes).toBe(100 * GI);
    expect(shareOnNode([node('gpu-0')], [], isJobPod, 'gpu-0', 2)?.diskBytes).toBeUndefined();
  });

  it('gives no more than is still free beside every pod there: an owner\'s pod bound after the job pods took their shares', () => {
    // Four 1-GPU replicas took 8 CPU each, then the owner's pod took 16 CPU: 16 CPU are free for 4 GPUs.
    const pods = [
      ...[0, 1, 2, 3].map((i) => pod(`job-${i}`, 'gpu-0', { cpu: '8', memory: '64Gi', 'nvidia.com/gpu': '1' }, { job: true })),
      pod('owner-late', 'gpu-0', { cpu: '16' }),
    ];
    expect(shareOnNode([node('gpu-0')], pods, isJobPod, 'gpu-0', 1)!.cpuMilli).toBe(4_000);
    // Four more replicas, each given its share as the ones before it are bound: all fit beside the rest.
    const bound = [...pods];
    for (let i = 4; i < 8; i++) {
      const share = shareOnNode([node('gpu-0')], bound, isJobPod, 'gpu-0', 1)!;
      bound.push(pod(`job-${i}`, 'gpu-0', { cpu: `${share.cpuMilli}m`, memory: `${share.memoryBytes}`, 'nvidia.com/gpu': '1' }, { job: true }));
    }
    const cpu = bound.reduce((sum, p) => sum + Number.parseFloat(String(p.spec!.containers[0]!.resources!.requests!.cpu ?? '0')) * (String(p.spec!.containers[0]!.resources!.requests!.cpu).endsWith('m') ? 1 : 1000), 0);
    expect(cpu).toBe(64_000);
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

  it('says what the agent would give now: the free cap included, a full node left out, never 0', () => {
    // Four job pods at 7 CPU, then an owner's pod of 16 CPU: the next replica gets 5 CPU, not 6.
    const crowded = [...[0, 1, 2, 3].map((i) => pod(`job-${i}`, 'gpu-0', { cpu: '7', memory: '60Gi', 'nvidia.com/gpu': '1' }, { job: true })), pod('owner', 'gpu-0', { cpu: '16', memory: '100Gi' })];
    expect(poolHostPerGpu([node('gpu-0')], crowded, isJobPod, ['gpu-0'])).toEqual({ cpuMilli: 5_000, memoryMiB: 44_032 });
    expect(poolHostPerGpu([node('gpu-0')], crowded, isJobPod, ['gpu-0'])!.cpuMilli).toBe(shareOnNode([node('gpu-0')], crowded, isJobPod, 'gpu-0', 1)!.cpuMilli);
    // A node whose owner asks every core is left out; with only such nodes, 1m and 1Mi: nothing fits.
    const full = [pod('owner', 'gpu-1', { cpu: '64' })];
    expect(poolHostPerGpu([node('gpu-0'), node('gpu-1')], full, isJobPod, ['gpu-0', 'gpu-1'])).toEqual({ cpuMilli: 8_000, memoryMiB: 65_536 });
    expect(poolHostPerGpu([node('gpu-1')], full, isJobPod, ['gpu-1'])).toEqual({ cpuMilli: 1, memoryMiB: 1 });
  });
});
