// A replica's share of its node's disk. The kubelet evicts a pod whose writable layers, logs and
// emptyDirs pass the sum of its containers' ephemeral-storage limits (the consumer's own fault,
// core/fault.ts), but it evicts every pod of a node whose disk fills first (node pressure, which
// blames no one). The tenant LimitRange bounds each container (200Gi by default), not a pod, and
// not a pod against the disk it lands on: ten containers could ask 2Ti of a 500Gi node and evict
// other consumers' replicas beside them for free. So a replica's limits add up to at most its
// GPUs' part of the node's allocatable ephemeral storage, as CPU and memory do (share.ts). Pure.

import { parseQuantity, QUANTITY_PATTERN } from '../idle.js';
import { limitedEntries, type BoundPodSpec, type BoundResult, type Limited } from './share.js';

const RESOURCE = 'ephemeral-storage';
const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
/** The least a container is given or may set (its logs count too). */
export const MIN_DISK_BYTES = MIB;

export interface DiskBounds {
  /** What a container without a limit gets when its part of the share is larger (the LimitRange's default). */
  defaultBytes: number;
  /** The most one container may set (the LimitRange's max); a template over it is left to the apiserver to refuse. */
  maxBytes: number;
  /** What a container without a request asks (the LimitRange's default request), or its limit when that is less. */
  defaultRequestBytes?: number;
}

const bytesOf = (q: unknown): number | undefined => {
  if (typeof q === 'number') return Number.isFinite(q) && q >= 0 ? Math.ceil(q) : undefined;
  if (typeof q !== 'string' || !QUANTITY_PATTERN.test(q.trim())) return undefined;
  const n = Math.ceil(parseQuantity(q));
  return Number.isFinite(n) && n >= 0 ? n : undefined;
};
const toMiB = (n: number) => Math.floor(n / MIB) * MIB;
const format = (n: number) => (n % MIB === 0 ? `${n / MIB}Mi` : String(n));
const human = (n: number) => (n % GIB === 0 ? `${n / GIB}Gi` : n % MIB === 0 ? `${n / MIB}Mi` : `${n} bytes`);


/**
 * The containers with ephemeral-storage limits that keep the replica within `shareBytes` of disk: the
 * containers and sidecars running at once add up to at most the share, and an init container to what
 * the sidecars before it leave. A container without a limit gets the default, or its equal part of
 * what the set limits leave when that is less. A template whose limits already add up past the share
 * is refused (the node is too small for it; another may not be), or for a running attempt (`clamp`)
 * cut down in proportion. A limit that is not a quantity, or above `maxBytes`, is left as it is for
 * the apiserver's LimitRange to refuse, with its own words, as the consumer's error.
 */
export function boundDisk(spec: BoundPodSpec, shareBytes: number, bounds: DiskBounds, clamp = false): BoundResult {
  const { containers, inits, entries } = limitedEntries(spec);
  const bound: BoundResult = { ok: true, spec: { containers, ...(inits ? { initContainers: inits } : {}) } };
  const explicit = new Map<Limited, number>();
  for (const e of entries) {
    const raw = e.c.resources.limits[RESOURCE];
    if (raw === undefined) continue;
    const n = bytesOf(raw);
    if (n === undefined || n > bounds.maxBytes) return { ok: true, spec };
    explicit.set(e, Math.max(n, MIN_DISK_BYTES));
  }
  const of = `this replica's share of its node's ephemeral storage, ${human(shareBytes)}`;
  const problems: string[] = [];
  const give = (e: Limited, n: number) => {
    e.c.resources.limits[RESOURCE] = format(n);
    explicit.set(e, n);
  };

  // Containers and sidecars run together: their limits add up.
  const together = entries.filter((e) => e.role !== 'init');
  const set = together.filter((e) => explicit.has(e));
  const unset = together.filter((e) => !explicit.has(e));
  let setSum = set.reduce((sum, e) => sum + explicit.get(e)!, 0);
  const room = shareBytes - unset.length * MIN_DISK_BYTES;
  if (setSum > room) {
    const parts = set.map((e) => `${e.c.name} ${human(explicit.get(e)!)}`).join(' + ');
    const scaled = set.map((e) => Math.max(MIN_DISK_BYTES, toMiB((explicit.get(e)! * room) / setSum)));
    if (!clamp || scaled.reduce((a, b) => a + b, 0) > room) {
      problems.push(`ephemeral-storage limits of the containers add up to ${human(setSum)} (${parts})${unset.length ? `, and ${unset.length} container(s) without one need ${human(MIN_DISK_BYTES)} each` : ''}: more than ${of}`);
      return { ok: false, problems };
    }
    set.forEach((e, i) => give(e, scaled[i]!));
    setSum = scaled.reduce((a, b) => a + b, 0);
  }
  if (unset.length > 0) {
    const part = Math.max(MIN_DISK_BYTES, toMiB((shareBytes - setSum) / unset.length));
    for (const e of unset) give(e, Math.min(bounds.defaultBytes, part));
  }
  // An init container runs beside the sidecars declared before it.
  let sidecarsBefore = 0;
  for (const e of entries) {
    if (e.role === 'sidecar') sidecarsBefore += explicit.get(e)!;
    if (e.role !== 'init') continue;
    const left = toMiB(shareBytes - sidecarsBefore);
    const n = explicit.get(e);
    if (left < MIN_DISK_BYTES) problems.push(`${e.path}: the sidecars before it leave ${human(Math.max(0, left))} of ${of}`);
    else if (n === undefined) give(e, Math.min(bounds.defaultBytes, left));
    else if (n > left && clamp) give(e, left);
    else if (n > left) problems.push(`${e.path}.resources.limits.${RESOURCE}: ${human(n)}, more than the ${human(left)} of ${of} left beside the sidecars before it`);
  }
  if (problems.length > 0) return { ok: false, problems };
  // Requests: the LimitRange's default request unless the limit is less; never above the limit.
  for (const e of entries) {
    const limit = explicit.get(e)!;
    const raw = e.c.resources.requests[RESOURCE];
    const request = raw === undefined ? undefined : bytesOf(raw);
    if (raw === undefined) e.c.resources.requests[RESOURCE] = format(Math.min(bounds.defaultRequestBytes ?? GIB, limit));
    else if (request !== undefined && request > limit) {
      if (clamp) e.c.resources.requests[RESOURCE] = format(limit);
      else problems.push(`${e.path}.resources.requests.${RESOURCE}: ${human(request)}, more than its limit here, ${human(limit)}`);
    }
  }
  if (problems.length > 0) return { ok: false, problems };
  return bound;
}
