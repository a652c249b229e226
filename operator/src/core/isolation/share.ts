// A replica's share of its node's CPU and memory, and the limits that hold it there. Strangers share
// a provider's GPU nodes: a pod with no CPU or memory limit could take every core and all the memory
// of the node, from the other consumers' replicas beside it and from the owner. So every job
// container gets limits, and a replica's limits add up to at most what its GPUs are of the node's
// GPUs left to jobs (allocatable less what the owner's own pods hold). Requests equal the limits, as
// Kubernetes would default them: the shares of one node's replicas add up to no more than the node
// has, so each replica gets what it is bounded to. Pure.

import type { V1Container } from '@kubernetes/client-node';
import { parseQuantity } from '../idle.js';

/** The node's allocatable CPU (millicores), memory (bytes) and GPUs. */
export interface NodeResources {
  cpuMilli: number;
  memoryBytes: number;
  gpus: number;
}

/** What one replica may use: its limits added up over the containers running at once. */
export interface Share {
  cpuMilli: number;
  memoryBytes: number;
  /** The GPUs it is the share of, and of how many (for messages). */
  gpus: number;
  ofGpus: number;
}

const MIB = 1024 * 1024;
/** Below these a container cannot start, so a share or a remainder this small is refused, not given. */
const MIN_CPU_MILLI = 10;
const MIN_MEMORY_BYTES = 16 * MIB;

/**
 * The share of a replica of `gpus` GPUs on a node whose `others` (pods that are not job pods: the
 * owner's, DaemonSets) hold some of its resources; undefined when the node has fewer GPUs left
 * than the replica asks. Rounded down to whole millicores and MiB, so shares never add up past the node.
 */
export function replicaShare(node: NodeResources, others: NodeResources, gpus: number): Share | undefined {
  const gpusLeft = Math.floor(node.gpus) - Math.ceil(others.gpus);
  if (!Number.isInteger(gpus) || gpus < 1 || gpusLeft < gpus) return undefined;
  const part = (total: number, held: number) => Math.max(0, total - held) * (gpus / gpusLeft);
  return {
    cpuMilli: Math.floor(part(node.cpuMilli, others.cpuMilli)),
    memoryBytes: Math.floor(part(node.memoryBytes, others.memoryBytes) / MIB) * MIB,
    gpus,
    ofGpus: gpusLeft,
  };
}

type Kind = 'cpu' | 'memory';
const KINDS: readonly Kind[] = ['cpu', 'memory'];
const STRICT_QUANTITY = /^([0-9]+(\.[0-9]*)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

/** A quantity in millicores (cpu) or bytes (memory), rounded up; undefined when it is not one. */
function amount(kind: Kind, q: unknown): number | undefined {
  if (typeof q === 'number') return Number.isFinite(q) && q >= 0 ? Math.ceil(kind === 'cpu' ? q * 1000 : q) : undefined;
  if (typeof q !== 'string' || !STRICT_QUANTITY.test(q.trim())) return undefined;
  const value = parseQuantity(q);
  return Math.ceil(kind === 'cpu' ? value * 1000 : value);
}

const format = (kind: Kind, n: number) => (kind === 'cpu' ? `${n}m` : n % MIB === 0 ? `${n / MIB}Mi` : String(n));
const human = (kind: Kind, n: number) => (kind === 'cpu' ? `${n / 1000} CPU` : `${(n / MIB).toFixed(0)}Mi`);

export interface BoundPodSpec {
  containers: V1Container[];
  initContainers?: V1Container[];
}

export type BoundResult = { ok: true; spec: BoundPodSpec } | { ok: false; problems: string[] };

/**
 * The containers with CPU and memory limits and requests that keep the replica within `share`.
 * A limit the consumer set is kept when the ones running at once (containers and sidecars) add up to
 * at most the share; containers without one split what is left. A request unset is the limit; one
 * above its limit is refused. An init container runs before the others, beside the sidecars
 * declared before it, and is bounded to what those leave. `clamp`: cut what does not fit down to the
 * share instead of refusing (an attempt already running is never refused for a share that moved).
 */
export function boundToShare(spec: BoundPodSpec, share: Share, clamp = false): BoundResult {
  const problems: string[] = [];
  const containers = spec.containers.map((c) => ({ ...c, resources: { limits: { ...c.resources?.limits }, requests: { ...c.resources?.requests } } }));
  const inits = spec.initContainers?.map((c) => ({ ...c, resources: { limits: { ...c.resources?.limits }, requests: { ...c.resources?.requests } } }));
  const of = `this replica's share of its node (${share.gpus} of the ${share.ofGpus} GPU(s) it has for jobs)`;
  for (const kind of KINDS) {
    const total = kind === 'cpu' ? share.cpuMilli : share.memoryBytes;
    const minimum = kind === 'cpu' ? MIN_CPU_MILLI : MIN_MEMORY_BYTES;
    // Containers and sidecars run together: their limits add up.
    const together = [
      ...containers.map((c, i) => ({ c, path: `spec.containers[${i}]` })),
      ...(inits ?? []).flatMap((c, i) => (c.restartPolicy === 'Always' ? [{ c, path: `spec.initContainers[${i}]` }] : [])),
    ];
    let explicit = 0;
    const unset: typeof together = [];
    for (const entry of together) {
      const raw = entry.c.resources.limits[kind];
      if (raw === undefined) {
        unset.push(entry);
        continue;
      }
      const n = amount(kind, raw);
      if (n === undefined) problems.push(`${entry.path}.resources.limits.${kind}: ${JSON.stringify(raw)} is not a quantity`);
      else explicit += n;
    }
    if (explicit > total) {
      if (!clamp) {
        problems.push(`${kind} limits of the containers add up to ${human(kind, explicit)}, more than ${of}: ${human(kind, total)}`);
        continue;
      }
      // Scaled down in proportion, so the sum fits.
      for (const { c } of together) {
        const n = amount(kind, c.resources.limits[kind]);
        if (n !== undefined) c.resources.limits[kind] = format(kind, Math.floor((n * total) / explicit));
      }
      explicit = total;
    }
    if (unset.length > 0) {
      const each = Math.floor((total - explicit) / unset.length);
      const rounded = kind === 'memory' ? Math.floor(each / MIB) * MIB : each;
      if (rounded < minimum && !clamp) {
        problems.push(`${kind}: the limits set leave ${human(kind, Math.max(0, total - explicit))} of ${of} (${human(kind, total)}) for ${unset.length} container(s) without one`);
        continue;
      }
      for (const { c } of unset) c.resources.limits[kind] = format(kind, Math.max(rounded, minimum));
    }
    // An init container runs beside the sidecars declared before it.
    let sidecarsBefore = 0;
    for (const [i, c] of (inits ?? []).entries()) {
      if (c.restartPolicy === 'Always') {
        sidecarsBefore += amount(kind, c.resources.limits[kind]) ?? 0;
        continue;
      }
      const room = Math.max(0, total - sidecarsBefore);
      const raw = c.resources.limits[kind];
      const n = raw === undefined ? undefined : amount(kind, raw);
      if (raw !== undefined && n === undefined) problems.push(`spec.initContainers[${i}].resources.limits.${kind}: ${JSON.stringify(raw)} is not a quantity`);
      else if (n !== undefined && n > room && !clamp) problems.push(`spec.initContainers[${i}].resources.limits.${kind}: ${human(kind, n)}, more than the ${human(kind, room)} of ${of} left beside the sidecars before it`);
      else if (n === undefined || n > room) c.resources.limits[kind] = format(kind, kind === 'memory' ? Math.floor(room / MIB) * MIB : room);
    }
    // Requests: the limit when unset; never above it.
    for (const [path, c] of [...containers.map((c, i) => [`spec.containers[${i}]`, c] as const), ...(inits ?? []).map((c, i) => [`spec.initContainers[${i}]`, c] as const)]) {
      const limit = c.resources.limits[kind];
      const raw = c.resources.requests[kind];
      if (raw === undefined) {
        if (limit !== undefined) c.resources.requests[kind] = limit;
        continue;
      }
      const n = amount(kind, raw);
      const max = amount(kind, limit);
      if (n === undefined) problems.push(`${path}.resources.requests.${kind}: ${JSON.stringify(raw)} is not a quantity`);
      else if (max !== undefined && n > max) {
        if (clamp) c.resources.requests[kind] = limit!;
        else problems.push(`${path}.resources.requests.${kind}: ${human(kind, n)}, more than its limit here, ${human(kind, max)}`);
      }
    }
  }
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, spec: { containers, ...(inits ? { initContainers: inits } : {}) } };
}
