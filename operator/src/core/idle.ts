// Which GPUs of a provider cluster are idle, from plain node and pod facts the agent reads from its
// apiserver. Pure: the agent maps client-node objects to these interfaces. kwok (and a misbehaving
// kubelet) never rejects overcommit, so we count requests ourselves and clamp at zero.

import { compileAvailability, isWithinWindows, subtractReserved } from './availability.js';
import { compareStrings } from './order.js';
import type { Availability, NodeSnapshot } from './types.js';

import {
  GFD_COUNT_LABEL,
  GFD_CUDA_DRIVER_MAJOR_LABEL,
  GFD_MEMORY_LABEL,
  GFD_PRODUCT_LABEL,
  GPU_RESOURCE,
} from '../api/constants.js';

// The names live with the API's other public names; re-exported for callers of the core.
export { GFD_COUNT_LABEL, GFD_CUDA_DRIVER_MAJOR_LABEL, GFD_MEMORY_LABEL, GFD_PRODUCT_LABEL, GPU_RESOURCE };

export interface NodeTaint {
  key: string;
  value?: string;
  effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' | string;
}

/** What the agent knows about one node. */
export interface GpuNodeInfo {
  name: string;
  labels: Record<string, string>;
  /** status.allocatable["nvidia.com/gpu"], as a quantity string or number; absent on non-GPU nodes. */
  allocatableGpus?: string | number;
  /** spec.unschedulable: the node is cordoned. */
  unschedulable?: boolean;
  /** The Ready condition is True. */
  ready: boolean;
  taints?: NodeTaint[];
}

/** Requests and limits of one container; restartPolicy "Always" marks an init container as a sidecar. */
export interface ContainerResources {
  requests?: Record<string, string | number>;
  limits?: Record<string, string | number>;
  restartPolicy?: string;
}

/** What the agent knows about one pod. */
export interface PodInfo {
  name: string;
  namespace?: string;
  /** spec.nodeName; unbound pods hold nothing. */
  nodeName?: string;
  /** status.phase; Succeeded and Failed pods hold nothing. */
  phase?: string;
  containers: ContainerResources[];
  initContainers?: ContainerResources[];
  /** spec.overhead (RuntimeClass). */
  overhead?: Record<string, string | number>;
  /** A terminating pod still holds its GPUs until it is gone, as kube-scheduler counts it. */
  deletionTimestamp?: string | number | null;
}

export interface IdleOptions {
  now: number;
  availability?: Availability;
  /** Taint keys our job pods tolerate (NoSchedule/NoExecute); default: the GPU taint only. */
  toleratedTaintKeys?: readonly string[];
}

/** Why a node offers no GPUs. */
export type NodeIdleReason = 'Cordoned' | 'NotReady' | 'Tainted' | 'OutsideWindow';

/** Per-node result, for logs and status. */
export interface NodeIdle {
  name: string;
  allocatable: number;
  requested: number;
  /** Offered GPUs after cordon/readiness/taints, the availability window and the owner's reserve. */
  idle: number;
  reason?: NodeIdleReason;
}

/** Identical GPU nodes grouped by the GFD labels; field names follow status.pools[]. */
export interface IdlePool {
  gpuProduct: string;
  memoryMiB: number;
  cudaDriverMajor: number;
  nodes: NodeSnapshot[];
  /** GPUs in the pool: gpu.count label, else allocatable. */
  total: number;
  /** GPUs on schedulable, Ready, untainted nodes. */
  allocatable: number;
  idle: number;
}

export interface IdleInventory {
  pools: IdlePool[];
  nodes: NodeIdle[];
  /** GPU nodes left out of every pool, e.g. without a product label. */
  skipped: { node: string; reason: 'NoGpus' | 'MissingProductLabel' }[];
  inWindow: boolean;
  reservedGpus: number;
}

const QUANTITY_SUFFIX: Record<string, number> = {
  '': 1,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const TERMINAL_PHASES = new Set(['Succeeded', 'Failed']);
const CORDON_TAINT = 'node.kubernetes.io/unschedulable';
const NOT_READY_TAINTS = new Set(['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable']);

/**
 * Idle GPUs per node and per pool: allocatable minus GPUs requested by non-terminated pods bound to
 * the node; zero on cordoned, NotReady or untolerated-tainted nodes; zero everywhere outside the
 * owner's availability window; then the owner's reserved GPUs taken out (smallest nodes first).
 */
export function computeIdle(nodes: readonly GpuNodeInfo[], pods: readonly PodInfo[], options: IdleOptions): IdleInventory {
  const availability = compileAvailability(options.availability);
  const inWindow = isWithinWindows(availability, options.now);
  const tolerated = new Set(options.toleratedTaintKeys ?? [GPU_RESOURCE]);

  const requestedByNode = new Map<string, number>();
  for (const pod of pods) {
    if (!pod.nodeName || (pod.phase !== undefined && TERMINAL_PHASES.has(pod.phase))) continue;
    const gpus = podGpuRequest(pod);
    if (gpus > 0) requestedByNode.set(pod.nodeName, (requestedByNode.get(pod.nodeName) ?? 0) + gpus);
  }

  const skipped: IdleInventory['skipped'] = [];
  const perNode: { info: GpuNodeInfo; result: NodeIdle; idleGpus: number }[] = [];
  for (const info of [...nodes].sort((a, b) => compareStrings(a.name, b.name))) {
    const allocatable = info.allocatableGpus === undefined ? 0 : Math.floor(parseQuantity(info.allocatableGpus));
    if (allocatable <= 0) {
      skipped.push({ node: info.name, reason: 'NoGpus' });
      continue;
    }
    if (!info.labels[GFD_PRODUCT_LABEL]) {
      skipped.push({ node: info.name, reason: 'MissingProductLabel' });
      continue;
    }
    const requested = requestedByNode.get(info.name) ?? 0;
    const reason = unavailableReason(info, tolerated) ?? (inWindow ? undefined : 'OutsideWindow');
    const idle = reason ? 0 : Math.max(0, allocatable - requested);
    const result: NodeIdle = { name: info.name, allocatable, requested, idle };
    if (reason) result.reason = reason;
    perNode.push({ info, result, idleGpus: idle });
  }

  // The owner's reserve spans the whole cluster, so it is taken before grouping into pools.
  const afterReserve = subtractReserved(
    perNode.map((n) => ({ name: n.info.name, idleGpus: n.idleGpus })),
    availability.reservedGpus,
  );
  perNode.forEach((n, i) => {
    n.result.idle = afterReserve[i]?.idleGpus ?? 0;
  });

  const pools = new Map<string, IdlePool>();
  for (const { info, result } of perNode) {
    const gpuProduct = info.labels[GFD_PRODUCT_LABEL] ?? '';
    const memoryMiB = labelInt(info.labels[GFD_MEMORY_LABEL]);
    const cudaDriverMajor = labelInt(info.labels[GFD_CUDA_DRIVER_MAJOR_LABEL]);
    const key = `${gpuProduct}\u0000${memoryMiB}\u0000${cudaDriverMajor}`;
    let pool = pools.get(key);
    if (!pool) {
      pool = { gpuProduct, memoryMiB, cudaDriverMajor, nodes: [], total: 0, allocatable: 0, idle: 0 };
      pools.set(key, pool);
    }
    const counted = labelInt(info.labels[GFD_COUNT_LABEL]);
    pool.total += counted > 0 ? counted : result.allocatable;
    const offerable = result.reason === undefined || result.reason === 'OutsideWindow';
    if (offerable) pool.allocatable += result.allocatable;
    pool.idle += result.idle;
    pool.nodes.push({ name: result.name, idleGpus: result.idle, totalGpus: result.allocatable });
  }

  return {
    pools: [...pools.values()].sort(
      (a, b) =>
        compareStrings(a.gpuProduct, b.gpuProduct) || a.memoryMiB - b.memoryMiB || a.cudaDriverMajor - b.cudaDriverMajor,
    ),
    nodes: perNode.map((n) => n.result),
    skipped,
    inWindow,
    reservedGpus: availability.reservedGpus,
  };
}

/**
 * GPUs a pod holds, by Kubernetes' effective-request rule: the larger of (app containers + sidecars)
 * and the peak of the init sequence (each init container plus the sidecars started before it), plus
 * pod overhead. A container's request defaults to its limit, as for every extended resource.
 */
export function podGpuRequest(pod: PodInfo, resource: string = GPU_RESOURCE): number {
  return podRequest(pod, resource, true);
}

/**
 * What a pod asks of any resource by the same rule. `whole`: each request rounded up to a whole
 * unit, as GPUs are counted; otherwise as given (0.5 for a cpu of 500m).
 */
export function podRequest(pod: PodInfo, resource: string, whole = false): number {
  const round = (q: number) => (whole ? Math.ceil(q) : q);
  const containerRequest = (container: ContainerResources) => {
    const quantity = container.requests?.[resource] ?? container.limits?.[resource];
    return quantity === undefined ? 0 : round(parseQuantity(quantity));
  };
  let sidecars = 0;
  let initPeak = 0;
  for (const init of pod.initContainers ?? []) {
    const request = containerRequest(init);
    if (init.restartPolicy === 'Always') {
      sidecars += request;
      initPeak = Math.max(initPeak, sidecars);
    } else {
      initPeak = Math.max(initPeak, sidecars + request);
    }
  }
  let app = sidecars;
  for (const container of pod.containers) app += containerRequest(container);
  const overhead = pod.overhead?.[resource];
  return Math.max(app, initPeak) + (overhead === undefined ? 0 : round(parseQuantity(overhead)));
}

/** A Kubernetes quantity as this project reads it: a decimal number and an optional suffix (no exponent). */
export const QUANTITY_PATTERN = /^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

/**
 * Parse a Kubernetes quantity ("2", "500m", "1k", "1Ki") to a number; unparseable input is 0.
 * GPUs are whole, so callers round: up for requests (never undercount use), down for allocatable.
 */
export function parseQuantity(quantity: string | number): number {
  if (typeof quantity === 'number') return Number.isFinite(quantity) && quantity > 0 ? quantity : 0;
  const match = QUANTITY_PATTERN.exec(quantity.trim());
  if (!match) return 0;
  const value = Number(match[1]);
  const suffix = match[2] ?? '';
  return value * (QUANTITY_SUFFIX[suffix] ?? 0);
}

function unavailableReason(node: GpuNodeInfo, tolerated: ReadonlySet<string>): NodeIdleReason | undefined {
  const taints = node.taints ?? [];
  if (node.unschedulable || taints.some((t) => t.key === CORDON_TAINT)) return 'Cordoned';
  if (!node.ready || taints.some((t) => NOT_READY_TAINTS.has(t.key))) return 'NotReady';
  const blocking = taints.some((t) => (t.effect === 'NoSchedule' || t.effect === 'NoExecute') && !tolerated.has(t.key));
  return blocking ? 'Tainted' : undefined;
}

function labelInt(value: string | undefined): number {
  if (value === undefined || !/^[0-9]+$/.test(value)) return 0;
  return Number(value);
}
