import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { shareOnNode } from './node-share.js';

const node = (name: string): V1Node => ({ metadata: { name }, status: { allocatable: { cpu: '64', memory: '512Gi', 'nvidia.com/gpu': '8' } } });
const pod = (name: string, nodeName: string, requests: Record<string, string>, extra: { phase?: string; job?: boolean } = {}): V1Pod => ({
  metadata: { name, namespace: extra.job ? 'fedgpu-jobs-a' : 'owner', labels: extra.job ? { job: 'yes' } : {} },
  spec: { nodeName, containers: [{ name: 'c', resources: { requests } }] },
  status: { phase: extra.phase ?? 'Running' },
});
const isJobPod = (p: V1Pod) => p.metadata?.labels?.job === 'yes';
const GI = 1024 ** 3;

describe('shareOnNode', () => {
  it('divides what the owner\'s pods on that node leave, and ignores job pods, finished pods and other nodes', () => {
    const pods = [
      pod('owner-db', 'gpu-0', { cpu: '16', memory: '128Gi', 'nvidia.com/gpu': '2' }),
      pod('daemon', 'gpu-0', { cpu: '500m', memory: '512Mi' }),
      pod('job', 'gpu-0', { cpu: '8', memory: '64Gi', 'nvidia.com/gpu': '1' }, { job: true }),
      pod('done', 'gpu-0', { cpu: '32' }, { phase: 'Succeeded' }),
      pod('elsewhere', 'gpu-1', { cpu: '60' }),
    ];
    // 6 GPUs left share 47.5 CPU and 383.5Gi.
    expect(shareOnNode([node('gpu-0'), node('gpu-1')], pods, isJobPod, 'gpu-0', 3)).toEqual({
      cpuMilli: 23_750, memoryBytes: 191.75 * GI, gpus: 3, ofGpus: 6,
    });
  });

  it('is undefined for a node it does not know, or one whose GPUs the owner holds', () => {
    expect(shareOnNode([node('gpu-0')], [], isJobPod, 'gpu-9', 1)).toBeUndefined();
    expect(shareOnNode([node('gpu-0')], [pod('owner', 'gpu-0', { 'nvidia.com/gpu': '8' })], isJobPod, 'gpu-0', 1)).toBeUndefined();
  });
});
