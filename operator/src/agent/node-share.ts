import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { GPU_RESOURCE } from '../api/constants.js';
import { parseQuantity, podRequest } from '../core/idle.js';
import { MIN_CPU_MILLI, MIN_MEMORY_BYTES, replicaShare, type NodeResources, type Share } from '../core/isolation/share.js';
import { podInfo } from './inventory.js';

// A replica's CPU, memory and disk share on a node, from the agent's caches of nodes and pods: the node's
// allocatable less what pods that are not job pods hold there (the owner's, DaemonSets), as
// kube-scheduler counts requests, divided among the GPUs they leave. Capped by what is still free
// beside every pod bound there, job pods included, divided among the free GPUs: an owner's pod
// bound after job pods took their shares leaves less for the next ones, and they must still fit.

const FINISHED = new Set(['Succeeded', 'Failed']);

const add = (into: NodeResources, more: NodeResources) => {
  into.cpuMilli += more.cpuMilli;
  into.memoryBytes += more.memoryBytes;
  into.gpus += more.gpus;
  into.diskBytes = (into.diskBytes ?? 0) + (more.diskBytes ?? 0);
};

/** What the node can give: its allocatable CPU, memory and GPUs. */
function allocatableOf(node: V1Node): NodeResources {
  const a = node.status?.allocatable ?? {};
  return {
    cpuMilli: Math.floor(parseQuantity(a.cpu ?? 0) * 1000),
    memoryBytes: Math.floor(parseQuantity(a.memory ?? 0)),
    gpus: Math.floor(parseQuantity(a[GPU_RESOURCE] ?? 0)),
    diskBytes: Math.floor(parseQuantity(a['ephemeral-storage'] ?? 0)),
  };
}

/** Requests of the unfinished pods in `podsOnNode`, as kube-scheduler adds them up: all of them, and those that are not job pods. */
function requested(podsOnNode: readonly V1Pod[], isJobPod: (pod: V1Pod) => boolean): { all: NodeResources; others: NodeResources } {
  const all = { cpuMilli: 0, memoryBytes: 0, gpus: 0 };
  const others = { cpuMilli: 0, memoryBytes: 0, gpus: 0 };
  for (const pod of podsOnNode) {
    if (FINISHED.has(pod.status?.phase ?? '')) continue;
    const info = podInfo(pod);
    const requests = { cpuMilli: Math.ceil(podRequest(info, 'cpu') * 1000), memoryBytes: Math.ceil(podRequest(info, 'memory')), gpus: podRequest(info, GPU_RESOURCE, true), diskBytes: Math.ceil(podRequest(info, 'ephemeral-storage')) };
    add(all, requests);
    if (!isJobPod(pod)) add(others, requests);
  }
  return { all, others };
}

/** The share of a replica of `gpus` GPUs on `node`, whose bound pods are `podsOnNode`; undefined when too few GPUs are left. */
function shareOf(node: V1Node, podsOnNode: readonly V1Pod[], isJobPod: (pod: V1Pod) => boolean, gpus: number): Share | undefined {
  const allocatable = allocatableOf(node);
  const held = requested(podsOnNode, isJobPod);
  const proportional = replicaShare(allocatable, held.others, gpus);
  if (!proportional) return undefined;
  const free = replicaShare(allocatable, held.all, gpus);
  if (!free) return proportional;
  return { ...proportional, cpuMilli: Math.min(proportional.cpuMilli, free.cpuMilli), memoryBytes: Math.min(proportional.memoryBytes, free.memoryBytes) };
}

/** The share of a replica of `gpus` GPUs on `nodeName`, or undefined (unknown node, too few GPUs left). */
export function shareOnNode(nodes: readonly V1Node[], pods: readonly V1Pod[], isJobPod: (pod: V1Pod) => boolean, nodeName: string, gpus: number): Share | undefined {
  const node = nodes.find((n) => n.metadata?.name === nodeName);
  if (!node) return undefined;
  return shareOf(node, pods.filter((p) => p.spec?.nodeName === nodeName), isJobPod, gpus);
}

/**
 * What one GPU brings on the smallest of `nodeNames` (a pool's nodes with idle GPUs): the share of a
 * one-GPU replica there as shareOnNode gives it (the free cap included), the least over the nodes,
 * in millicores and whole MiB. A node too full to run any container is left out; when every node
 * is, 1m and 1Mi (never 0, which on the wire means "not said"): no replica fits. Undefined when no
 * node has a GPU left to jobs. The hub places a job only where its replicas fit this
 * (core/scheduling/filter.ts).
 */
export function poolHostPerGpu(nodes: readonly V1Node[], pods: readonly V1Pod[], isJobPod: (pod: V1Pod) => boolean, nodeNames: readonly string[]): { cpuMilli: number; memoryMiB: number } | undefined {
  // Each pod and node looked at once, however many nodes the pool has (this runs at every inventory).
  const wanted = new Set(nodeNames);
  const podsByNode = new Map<string, V1Pod[]>();
  for (const pod of pods) {
    const name = pod.spec?.nodeName;
    if (name === undefined || !wanted.has(name)) continue;
    const list = podsByNode.get(name);
    if (list) list.push(pod);
    else podsByNode.set(name, [pod]);
  }
  let least: { cpuMilli: number; memoryMiB: number } | undefined;
  let any = false;
  for (const node of nodes) {
    const name = node.metadata?.name ?? '';
    if (!wanted.has(name)) continue;
    const share = shareOf(node, podsByNode.get(name) ?? [], isJobPod, 1);
    if (!share) continue;
    any = true;
    if (share.cpuMilli < MIN_CPU_MILLI || share.memoryBytes < MIN_MEMORY_BYTES) continue;
    const memoryMiB = Math.floor(share.memoryBytes / (1024 * 1024));
    least = least === undefined ? { cpuMilli: share.cpuMilli, memoryMiB } : { cpuMilli: Math.min(least.cpuMilli, share.cpuMilli), memoryMiB: Math.min(least.memoryMiB, memoryMiB) };
  }
  return least ?? (any ? { cpuMilli: 1, memoryMiB: 1 } : undefined);
}
