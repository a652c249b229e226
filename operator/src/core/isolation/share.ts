// A replica's share of its node's CPU and memory, and the limits that hold it there. Strangers share
// a provider's GPU nodes: a pod with no CPU or memory limit could take every core and all the memory
// of the node, from the other consumers' replicas beside it and from the owner. So every job
// container gets limits, and a replica's limits add up to at most what its GPUs are of the node's
// GPUs left to jobs (allocatable less what the owner's own pods hold). Requests equal the limits, as
// Kubernetes would default them: the shares of one node's replicas add up to no more than the node
// has, so each replica gets what it is bounded to. Pure.

import type { V1Container } from '@kubernetes/client-node';
import { parseQuantity, QUANTITY_PATTERN } from '../idle.js';

/** The node's allocatable CPU (millicores), memory (bytes) and GPUs. */
export interface NodeResources {
  cpuMilli: number;
  memoryBytes: number;
  gpus: number;
  /** Allocatable ephemeral storage (bytes); absent or 0 where the node does not say (disk.ts). */
  diskBytes?: number;
}

/** What one replica may use: its limits added up over the containers running at once. */
export interface Share {
  cpuMilli: number;
  memoryBytes: number;
  /** The GPUs it is the share of, and of how many (for messages). */
  gpus: number;
  ofGpus: number;
  /** Ephemeral storage its containers' limits add up to at most (disk.ts); absent where the node does not say. */
  diskBytes?: number;
}

const MIB = 1024 * 1024;
/** Below these a container cannot start, so a share or a remainder this small is refused, not given. */
export const MIN_CPU_MILLI = 10;
export const MIN_MEMORY_BYTES = 16 * MIB;

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
    ...(node.diskBytes ? { diskBytes: Math.floor(part(node.diskBytes, others.diskBytes ?? 0) / MIB) * MIB } : {}),
  };
}

type Kind = 'cpu' | 'memory';
const KINDS: readonly Kind[] = ['cpu', 'memory'];
const MINIMUM: Record<Kind, number> = { cpu: MIN_CPU_MILLI, memory: MIN_MEMORY_BYTES };

/** A quantity in millicores (cpu) or bytes (memory), rounded up; undefined when it is not a finite one. */
function amount(kind: Kind, q: unknown): number | undefined {
  let value: number;
  if (typeof q === 'number') value = q;
  else if (typeof q === 'string' && QUANTITY_PATTERN.test(q.trim())) value = parseQuantity(q);
  else return undefined;
  const scaled = kind === 'cpu' ? value * 1000 : value;
  // Up to the next whole unit, but not for a float's last bit: "2007m" is 2.007 × 1000 = 2007.0000000000002.
  const n = Math.ceil(scaled - Math.abs(scaled) * 1e-12);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

const format = (kind: Kind, n: number) => (kind === 'cpu' ? `${n}m` : n % MIB === 0 ? `${n / MIB}Mi` : String(n));
const quote = (raw: unknown) => JSON.stringify(raw).slice(0, 40);
/** For messages: CPU in cores, memory in MiB when whole, else in bytes (a rounding never hides a difference). */
const human = (kind: Kind, n: number) => (kind === 'cpu' ? `${n / 1000} CPU` : n % MIB === 0 ? `${n / MIB}Mi` : `${n} bytes`);

export interface BoundPodSpec {
  containers: V1Container[];
  initContainers?: V1Container[];
}

export type BoundResult = { ok: true; spec: BoundPodSpec } | { ok: false; problems: string[] };

export type Limited = {
  c: V1Container & { resources: { limits: Record<string, string>; requests: Record<string, string> } };
  path: string;
  /** A sidecar is an init container with restartPolicy Always: it runs beside the containers; an init container runs before them. */
  role: 'container' | 'sidecar' | 'init';
};

/**
 * Copies of the spec's containers and init containers, each with its own limits and requests maps
 * to write into, and the same copies as entries in declaration order with their path and role.
 */
export function limitedEntries(spec: BoundPodSpec): { containers: Limited['c'][]; inits: Limited['c'][] | undefined; entries: Limited[] } {
  const copy = (c: V1Container) => ({ ...c, resources: { ...c.resources, limits: { ...c.resources?.limits }, requests: { ...c.resources?.requests } } });
  const containers = spec.containers.map(copy);
  const inits = spec.initContainers?.map(copy);
  const entries: Limited[] = [
    ...containers.map((c, i): Limited => ({ c, path: `template.spec.containers[${i}]`, role: 'container' })),
    ...(inits ?? []).map((c, i): Limited => ({ c, path: `template.spec.initContainers[${i}]`, role: c.restartPolicy === 'Always' ? 'sidecar' : 'init' })),
  ];
  return { containers, inits, entries };
}

/** A limit set in a template, in millicores or bytes, or why it is refused (not a quantity, or below the least a container runs with). */
function checkLimit(kind: Kind, raw: unknown, path: string): { n: number } | { problem: string } {
  const n = amount(kind, raw);
  const minimum = MINIMUM[kind];
  if (n === undefined) return { problem: `${path}.resources.limits.${kind}: ${quote(raw)} is not a quantity` };
  if (n < minimum) return { problem: `${path}.resources.limits.${kind}: ${quote(raw)} is below ${human(kind, minimum)}, the least a container runs with (a zero limit would be no limit)` };
  return { n };
}

/**
 * The containers with CPU and memory limits and requests that keep the replica within `share`.
 * A limit the consumer set is kept when the ones running at once (containers and sidecars) add up to
 * at most the share; a container without one gets at least its request (and the minimum), then its
 * part of what is left (a sidecar with an init container after it, no more than that). A limit
 * below the least a container runs with (10m CPU, 16Mi) is refused: Kubernetes reads a zero limit as
 * none at all. A request unset is the limit; one above its limit is refused. An init container runs
 * before the others, beside the sidecars declared before it, and is bounded to what those leave.
 * `clamp`, for an attempt already running whose share moved since: limits over it (the containers'
 * sum, or an init container's) are cut down to it, and requests to them, instead of refused;
 * everything else is refused as for a new one.
 */
export function boundToShare(spec: BoundPodSpec, share: Share, clamp = false): BoundResult {
  const problems: string[] = [];
  const { containers, inits, entries } = limitedEntries(spec);
  const of = `this replica's share of its node (${share.gpus} of the ${share.ofGpus} GPU(s) it has for jobs)`;
  for (const kind of KINDS) {
    const total = kind === 'cpu' ? share.cpuMilli : share.memoryBytes;
    const minimum = MINIMUM[kind];
    const before = problems.length;
    // Every limit set must be a quantity, and at least the minimum (0 would mean no limit at all).
    const explicitOf = new Map<Limited, number>();
    for (const entry of entries) {
      const raw = entry.c.resources.limits[kind];
      if (raw === undefined) continue;
      const checked = checkLimit(kind, raw, entry.path);
      if ('problem' in checked) problems.push(checked.problem);
      else explicitOf.set(entry, checked.n);
    }
    if (problems.length > before) continue;
    // Containers and sidecars run together: their limits add up.
    const together = entries.filter((e) => e.role !== 'init');
    const unset = together.filter((e) => !explicitOf.has(e));
    const set = together.filter((e) => explicitOf.has(e));
    let explicit = set.reduce((sum, e) => sum + explicitOf.get(e)!, 0);
    const room = total - unset.length * minimum;
    if (explicit > room) {
      const parts = set.map((e) => `${e.c.name} ${human(kind, explicitOf.get(e)!)}`).join(' + ');
      const wanting = unset.length > 0 ? `, and ${unset.length} container(s) without one need ${human(kind, minimum)} each` : '';
      if (!clamp || set.length * minimum > room) {
        problems.push(`${kind} limits of the containers add up to ${human(kind, explicit)} (${parts})${wanting}: more than ${of}, ${human(kind, total)}`);
        continue;
      }
      // Scaled down in proportion, none below the minimum; refused when even that does not fit.
      const scaled = set.map((e) => Math.max(minimum, kind === 'memory' ? Math.floor((explicitOf.get(e)! * room) / explicit / MIB) * MIB : Math.floor((explicitOf.get(e)! * room) / explicit)));
      if (scaled.reduce((a, b) => a + b, 0) > room) {
        problems.push(`${kind} limits of the containers add up to ${human(kind, explicit)} (${parts}) and cannot be cut to ${of}, ${human(kind, total)}`);
        continue;
      }
      set.forEach((e, i) => {
        e.c.resources.limits[kind] = format(kind, scaled[i]!);
        explicitOf.set(e, scaled[i]!);
      });
      explicit = scaled.reduce((a, b) => a + b, 0);
    }
    if (unset.length > 0) {
      // Each container without a limit gets at least its request (and the minimum), then an equal
      // part of what is left: the hub's replicaAsk counts the same, so what it places fits here.
      const floors = unset.map((e) => Math.max(minimum, amount(kind, e.c.resources.requests[kind]) ?? 0));
      const needed = floors.reduce((a, b) => a + b, 0);
      if (explicit + needed > total) {
        problems.push(`${kind}: the limits set leave ${human(kind, Math.max(0, total - explicit))} of ${of} (${human(kind, total)}), and the ${unset.length} container(s) without one need ${human(kind, needed)}`);
        continue;
      }
      // What is left goes to the containers, and to a sidecar only when no init container comes
      // after it: an init container runs beside the sidecars before it, which must leave it its part.
      const lastInit = entries.reduce((last, e, i) => (e.role === 'init' ? i : last), -1);
      const takesRest = unset.map((e) => e.role === 'container' || entries.indexOf(e) > lastInit);
      const takers = takesRest.filter(Boolean).length;
      const extra = takers === 0 ? 0 : Math.floor((total - explicit - needed) / takers);
      unset.forEach((e, i) => {
        const more = takesRest[i] ? extra : 0;
        const given = kind === 'memory' ? Math.max(floors[i]!, Math.floor((floors[i]! + more) / MIB) * MIB) : floors[i]! + more;
        e.c.resources.limits[kind] = format(kind, given);
        explicitOf.set(e, given);
      });
    }
    // An init container runs beside the sidecars declared before it.
    let sidecarsBefore = 0;
    for (const entry of entries.filter((e) => e.role !== 'container')) {
      if (entry.role === 'sidecar') {
        sidecarsBefore += explicitOf.get(entry) ?? 0;
        continue;
      }
      const left = total - sidecarsBefore;
      const n = explicitOf.get(entry);
      if (n !== undefined && n > left && clamp && left >= minimum) {
        // A running attempt's: cut to what is left (its request with it, below).
        entry.c.resources.limits[kind] = format(kind, kind === 'memory' ? Math.max(minimum, Math.floor(left / MIB) * MIB) : left);
      } else if (n !== undefined && n > left) {
        problems.push(`${entry.path}.resources.limits.${kind}: ${human(kind, n)}, more than the ${human(kind, Math.max(0, left))} of ${of} left beside the sidecars before it`);
      } else if (n === undefined) {
        const given = kind === 'memory' ? Math.floor(left / MIB) * MIB : left;
        if (given < minimum) problems.push(`${entry.path}: the sidecars before it leave ${human(kind, Math.max(0, left))} of ${of}`);
        else entry.c.resources.limits[kind] = format(kind, given);
      }
    }
    if (problems.length > before) continue;
    // Requests: the limit when unset; never above it.
    for (const { c, path } of entries) {
      const limit = c.resources.limits[kind]!;
      const raw = c.resources.requests[kind];
      if (raw === undefined) {
        c.resources.requests[kind] = limit;
        continue;
      }
      const n = amount(kind, raw);
      const max = amount(kind, limit)!;
      if (n === undefined) problems.push(`${path}.resources.requests.${kind}: ${quote(raw)} is not a quantity`);
      else if (n > max) {
        if (clamp) c.resources.requests[kind] = limit;
        else problems.push(`${path}.resources.requests.${kind}: ${human(kind, n)}, more than its limit here, ${human(kind, max)}`);
      }
    }
  }
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, spec: { containers, ...(inits ? { initContainers: inits } : {}) } };
}

/**
 * What one replica asks of its node's CPU and memory, as the scheduler compares it with a pool's
 * share per GPU, counted as boundToShare gives it: each container's limit, else its request, and
 * never less than the least a container runs with; the containers and sidecars added up, and the
 * larger of that and each init container beside the sidecars before it. So a replica the hub
 * places within a pool's share is one the agent's bound admits. `problems`: what every provider's
 * agent would refuse (a limit below the minimum or not a quantity, a request above its limit),
 * which the hub refuses up front as an invalid job.
 */
export function replicaAsk(spec: BoundPodSpec): { cpuMilli: number; memoryMiB: number; problems: string[] } {
  const problems: string[] = [];
  const out = { cpuMilli: 0, memoryMiB: 0, problems };
  for (const kind of KINDS) {
    const minimum = MINIMUM[kind];
    const ask = (c: V1Container, path: string) => {
      const limitRaw = c.resources?.limits?.[kind];
      const requestRaw = c.resources?.requests?.[kind];
      const limit = limitRaw === undefined ? undefined : amount(kind, limitRaw);
      const request = requestRaw === undefined ? undefined : amount(kind, requestRaw);
      const checked = limitRaw === undefined ? undefined : checkLimit(kind, limitRaw, path);
      if (checked && 'problem' in checked) problems.push(checked.problem);
      if (requestRaw !== undefined && request === undefined) problems.push(`${path}.resources.requests.${kind}: ${quote(requestRaw)} is not a quantity`);
      else if (request !== undefined && limit !== undefined && request > limit) problems.push(`${path}.resources.requests.${kind}: ${human(kind, request)}, more than its limit ${human(kind, limit)}`);
      return Math.max(minimum, limit ?? request ?? 0);
    };
    let sidecars = 0;
    let initPeak = 0;
    for (const [i, c] of (spec.initContainers ?? []).entries()) {
      const n = ask(c, `template.spec.initContainers[${i}]`);
      if (c.restartPolicy === 'Always') sidecars += n;
      else initPeak = Math.max(initPeak, sidecars + n);
    }
    const together = spec.containers.reduce((sum, c, i) => sum + ask(c, `template.spec.containers[${i}]`), sidecars);
    const peak = Math.max(together, initPeak);
    if (kind === 'cpu') out.cpuMilli = peak;
    else out.memoryMiB = Math.ceil(peak / MIB);
  }
  return out;
}

/**
 * The share less a RuntimeClass's pod overhead (Kata's VM, say): kube-scheduler adds the overhead to
 * each pod's requests and the kubelet to its cgroup, so the containers get what is left, and the
 * replicas of a full node still fit beside each other's overhead.
 */
export function withoutOverhead(share: Share, overhead: { cpuMilli: number; memoryBytes: number }): Share {
  return {
    ...share,
    cpuMilli: Math.max(0, share.cpuMilli - Math.ceil(overhead.cpuMilli)),
    memoryBytes: Math.max(0, Math.floor((share.memoryBytes - Math.ceil(overhead.memoryBytes)) / MIB) * MIB),
  };
}
