import type { GpuJob } from '../../api/types.js';
import { stripManagedFields } from '../../runtime/informer.js';

// The hub's own status writes, until its informer catches up with them. A status write returns
// the new object at once; the watch event for it comes later (milliseconds, more under load).
// Reading the cache in between gives the object the hub just overwrote: an agent's report on the
// attempt the hub assigned a moment ago would look like a report on an unknown epoch (and be
// fenced: the attempt cancelled), and a reconcile would write against an outdated
// resourceVersion (409, half a second lost). An entry is used only while the cache still holds
// a version one of the hub's own writes replaced (a chain: finalizer, then status), so it is
// never older than the cache.

export class FreshJobs {
  private readonly written = new Map<string, { replaced: Set<string>; object: GpuJob }>();
  /** GpuJob key by uid, for agent reports (which name the job by uid). */
  private readonly keyByUid = new Map<string, string>();

  /** The hub wrote `object` over the version `replaced` of the job at `key`. */
  wrote(key: string, replaced: string | undefined, object: GpuJob): void {
    if (replaced === undefined) return;
    const previous = this.written.get(key);
    // Written over the hub's own previous write: the cache may still show any version of the chain.
    const chain = previous && previous.object.metadata.resourceVersion === replaced ? previous.replaced : new Set<string>();
    chain.add(replaced);
    // What the apiserver returns carries managedFields, which the informer drops and nothing reads.
    stripManagedFields(object);
    this.written.set(key, { replaced: chain, object });
  }

  /** The newer of the cached object and the hub's own last write over it. */
  freshest(key: string, cached: GpuJob): GpuJob {
    const entry = this.written.get(key);
    if (!entry) return cached;
    if (cached.metadata.resourceVersion !== undefined && entry.replaced.has(cached.metadata.resourceVersion)) return entry.object;
    this.written.delete(key); // the cache caught up, or someone else wrote since
    return cached;
  }

  /**
   * Keeps the uid index in step with the informer, and forgets a write the cache has caught up
   * with (or someone wrote past): a job nobody reads again, e.g. one Running at rest, would keep a
   * second copy of itself here for good (10,000 of them at market scale, bench/hub-scale).
   */
  seen(key: string, job: GpuJob): void {
    if (job.metadata.uid) this.keyByUid.set(job.metadata.uid, key);
    const entry = this.written.get(key);
    const version = job.metadata.resourceVersion;
    if (entry && version !== undefined && !entry.replaced.has(version)) this.written.delete(key);
  }

  gone(key: string, job: GpuJob): void {
    this.written.delete(key);
    if (job.metadata.uid && this.keyByUid.get(job.metadata.uid) === key) this.keyByUid.delete(job.metadata.uid);
  }

  keyOf(uid: string): string | undefined {
    return this.keyByUid.get(uid);
  }

  get size(): number {
    return this.written.size;
  }
}
