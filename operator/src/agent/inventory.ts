import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { GPU_RESOURCE } from '../api/constants.js';
import { computeIdle, type ContainerResources, type GpuNodeInfo, type PodInfo } from '../core/idle.js';
import { formatMoney } from '../core/money.js';
import { breakEvenPrice, offerPool } from '../core/pricing.js';
import type { Availability } from '../core/types.js';
import type { EgressProfile } from '../core/egress.js';
import { poolEgress } from './attempt/egress.js';
import { poolAccess, type AccessSwitches } from './access/policy.js';
import type { HostResources, PoolAccess } from '../core/types.js';

// Turns what the agent's informers hold (nodes and pods of its own cluster) into the inventory it
// streams to the hub: pools of identical GPU nodes with their idle GPUs, price and break-even
// price. Pure apart from reading the objects, so it is tested without a cluster.

/** The owner's settings for this provider cluster (chart values of the provider mode). */
export interface ProviderSettings {
  displayName?: string;
  /** DNS-1123 label, e.g. eu-west; the scheduler filters on it. */
  region?: string;
  /** Price per GPU-hour by GPU product, decimal credits. */
  pricePerGpuHour: Record<string, string>;
  /** Price for products not listed. Without it, unlisted products are not offered. */
  defaultPricePerGpuHour?: string;
  electricity?: { pricePerKWh: string; pue?: number; wearPerGpuHour?: string };
  /** Measured or declared watts per product, overriding the built-in table. */
  powerWatts?: Record<string, number>;
  availability?: Availability;
  /** What consumers may do with job pods through the hub's tunnel, every pool (logs are always allowed). */
  access?: AccessSwitches;
  /** Per GPU product (the pool), field by field over `access`. See agent/access/policy.ts. */
  accessByProduct?: Record<string, AccessSwitches>;
  /** What job pods may reach, for every pool (absent: DNS only). See core/egress.ts. */
  egress?: EgressProfile;
  /** Per GPU product, overriding `egress`. */
  egressByProduct?: Record<string, EgressProfile>;
  /** RuntimeClass for job pods of every pool (e.g. gvisor), unless runtimeClassByProduct names one. */
  runtimeClassName?: string;
  /** RuntimeClass for job pods by GPU product: the owner's choice per pool. */
  runtimeClassByProduct?: Record<string, string>;
}

/** The RuntimeClass job pods of a product's pool run under, if the owner chose one. */
export function runtimeClassOf(settings: ProviderSettings, gpuProduct: string | undefined): string | undefined {
  return (gpuProduct !== undefined ? settings.runtimeClassByProduct?.[gpuProduct] : undefined) || settings.runtimeClassName || undefined;
}

export interface InventoryNode {
  name: string;
  totalGpus: number;
  idleGpus: number;
  ready: boolean;
  cordoned: boolean;
  /** A taint job pods do not tolerate (the owner's own use): for the agent's placement check, not sent. */
  tainted?: boolean;
}

export interface InventoryPool {
  gpuProduct: string;
  memoryMiB: number;
  cudaDriverMajor: number;
  nodes: InventoryNode[];
  total: number;
  allocatable: number;
  idle: number;
  pricePerGpuHour: string;
  breakEvenPricePerGpuHour: string;
  offered: boolean;
  /** PascalCase cause and detail when not offered, e.g. "PriceBelowBreakEven: listed 0.10 < break-even 0.31". */
  notOfferedReason?: string;
  /** What job pods in this pool may reach. */
  egress: EgressProfile;
  /** Exec and port-forward into this pool's job pods, as the owner allows. */
  access: PoolAccess;
  /** RuntimeClass job pods of this pool run under (the owner's choice). */
  runtimeClassName?: string;
  /** CPU and memory a GPU brings on the pool's smallest node (agent/node-share.ts); absent: not worked out. */
  hostPerGpu?: HostResources;
}

export function nodeInfo(node: V1Node): GpuNodeInfo {
  const info: GpuNodeInfo = {
    name: node.metadata?.name ?? '',
    labels: node.metadata?.labels ?? {},
    ready: node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    unschedulable: node.spec?.unschedulable ?? false,
    taints: (node.spec?.taints ?? []).map((t) => ({ key: t.key, value: t.value, effect: t.effect })),
  };
  const gpus = node.status?.allocatable?.[GPU_RESOURCE];
  if (gpus !== undefined) info.allocatableGpus = gpus;
  return info;
}

const resources = (c: { resources?: { requests?: Record<string, string>; limits?: Record<string, string> }; restartPolicy?: string }): ContainerResources => ({
  requests: c.resources?.requests,
  limits: c.resources?.limits,
  restartPolicy: c.restartPolicy,
});

export function podInfo(pod: V1Pod): PodInfo {
  return {
    name: pod.metadata?.name ?? '',
    namespace: pod.metadata?.namespace,
    nodeName: pod.spec?.nodeName,
    phase: pod.status?.phase,
    containers: (pod.spec?.containers ?? []).map(resources),
    initContainers: (pod.spec?.initContainers ?? []).map(resources),
    overhead: pod.spec?.overhead,
    deletionTimestamp: pod.metadata?.deletionTimestamp ? String(pod.metadata.deletionTimestamp) : null,
  };
}

const money = (v: bigint) => formatMoney(v, { maxFractionDigits: 6, rounding: 'ceil' });

/** The inventory the agent reports, from its cluster's nodes and pods at `now`. */
export function buildInventory(
  nodes: readonly V1Node[],
  pods: readonly V1Pod[],
  settings: ProviderSettings,
  now: number,
  hostPerGpu?: (nodeNames: readonly string[], gpuProduct: string) => HostResources | undefined,
): InventoryPool[] {
  const idle = computeIdle(nodes.map(nodeInfo), pods.map(podInfo), { now, availability: settings.availability });
  const byName = new Map(idle.nodes.map((n) => [n.name, n]));
  return idle.pools.map((pool) => {
    const listed = settings.pricePerGpuHour[pool.gpuProduct] ?? settings.defaultPricePerGpuHour;
    const breakEven = settings.electricity
      ? breakEvenPrice({
          gpuProduct: pool.gpuProduct,
          pricePerKWh: settings.electricity.pricePerKWh,
          pue: settings.electricity.pue ?? 1.4,
          wearPerGpuHour: settings.electricity.wearPerGpuHour,
          powerWatts: settings.powerWatts,
        }).pricePerGpuHour
      : 0n;
    let offered = listed !== undefined;
    let notOfferedReason = listed === undefined ? `NoPriceSet: no price for ${pool.gpuProduct}` : undefined;
    if (listed !== undefined) {
      const offer = offerPool(listed, breakEven);
      offered = offer.offered;
      notOfferedReason = offer.reason;
    }
    if (offered && !idle.inWindow) {
      offered = false;
      notOfferedReason = 'OutsideAvailabilityWindow: the owner lends these GPUs only in its windows';
    }
    const result: InventoryPool = {
      gpuProduct: pool.gpuProduct,
      memoryMiB: pool.memoryMiB,
      cudaDriverMajor: pool.cudaDriverMajor,
      nodes: pool.nodes.map((n) => {
        const detail = byName.get(n.name);
        return {
          name: n.name,
          totalGpus: n.totalGpus,
          idleGpus: n.idleGpus,
          ready: detail?.reason !== 'NotReady',
          cordoned: detail?.reason === 'Cordoned',
          ...(detail?.reason === 'Tainted' ? { tainted: true } : {}),
        };
      }),
      total: pool.total,
      allocatable: pool.allocatable,
      idle: offered ? pool.idle : 0,
      pricePerGpuHour: listed ?? '0',
      breakEvenPricePerGpuHour: money(breakEven),
      offered,
      egress: poolEgress(settings, pool.gpuProduct),
      access: poolAccess(settings, pool.gpuProduct),
    };
    if (!offered) for (const n of result.nodes) n.idleGpus = 0;
    if (notOfferedReason) result.notOfferedReason = notOfferedReason;
    const runtimeClass = runtimeClassOf(settings, pool.gpuProduct);
    if (runtimeClass) result.runtimeClassName = runtimeClass;
    // Judged on the nodes that can take a replica now; all of them when none can.
    const idleNodes = pool.nodes.filter((n) => n.idleGpus > 0).map((n) => n.name);
    const host = hostPerGpu?.(idleNodes.length > 0 ? idleNodes : pool.nodes.map((n) => n.name), pool.gpuProduct);
    if (host) result.hostPerGpu = host;
    return result;
  });
}
