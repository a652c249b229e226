import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { GPU_RESOURCE } from '../api/constants.js';
import { parseQuantity, podRequest } from '../core/idle.js';
import { replicaShare, type NodeResources, type Share } from '../core/isolation/share.js';
import { podInfo } from './inventory.js';

// A replica's CPU and memory share on a node, from the agent's caches of nodes and pods: the node's
// allocatable less what pods that are not job pods hold there (the owner's, DaemonSets), as
// kube-scheduler counts requests. Job pods are left out: each holds its own share.

const FINISHED = new Set(['Succeeded', 'Failed']);

/** What the node can give: its allocatable CPU, memory and GPUs. */
function allocatable(node: V1Node): NodeResources {
  const a = node.status?.allocatable ?? {};
  return {
    cpuMilli: Math.floor(parseQuantity(a.cpu ?? 0) * 1000),
    memoryBytes: Math.floor(parseQuantity(a.memory ?? 0)),
    gpus: Math.floor(parseQuantity(a[GPU_RESOURCE] ?? 0)),
  };
}

/** Requests of the pods on `nodeName` that are not job pods. */
function heldByOthers(pods: readonly V1Pod[], nodeName: string, isJobPod: (pod: V1Pod) => boolean): NodeResources {
  const held = { cpuMilli: 0, memoryBytes: 0, gpus: 0 };
  for (const pod of pods) {
    if (pod.spec?.nodeName !== nodeName || FINISHED.has(pod.status?.phase ?? '') || isJobPod(pod)) continue;
    const info = podInfo(pod);
    held.cpuMilli += Math.ceil(podRequest(info, 'cpu') * 1000);
    held.memoryBytes += Math.ceil(podRequest(info, 'memory'));
    held.gpus += podRequest(info, GPU_RESOURCE, true);
  }
  return held;
}

/** The share of a replica of `gpus` GPUs on `nodeName`, or undefined (unknown node, too few GPUs left). */
export function shareOnNode(nodes: readonly V1Node[], pods: readonly V1Pod[], isJobPod: (pod: V1Pod) => boolean, nodeName: string, gpus: number): Share | undefined {
  const node = nodes.find((n) => n.metadata?.name === nodeName);
  if (!node) return undefined;
  return replicaShare(allocatable(node), heldByOthers(pods, nodeName, isJobPod), gpus);
}
