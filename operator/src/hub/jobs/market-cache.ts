import type { GpuProvider } from '../../api/types.js';
import type { AssumedAllocation, AssumedAllocations } from '../../core/scheduling/assumed.js';
import { MarketSnapshot } from '../../core/scheduling/snapshot.js';
import type { Decision } from '../../core/types.js';
import { providerSnapshot } from './market-view.js';

// One MarketSnapshot for the whole hub, kept up to date instead of rebuilt per placement (which
// was 47 % of the hub's CPU in docs/benchmarks.md, and grew with every recent decision):
//  - a GpuProvider change marks that provider dirty; the next view() re-reads it from the informer
//    (snapshot.updateProvider, allocation-free when its layout is unchanged) and re-applies only
//    its own assumptions (AssumedAllocations indexes them by provider);
//  - a decision lowers idle in place at once (assume), so the next decision of a burst sees it;
//  - an assumption forgotten or expired gives its GPUs back by re-basing its provider;
//  - heartbeat ages and the leader's live link measures (round-trip time, bandwidth) move with
//    time: refreshed for every provider once a second, O(providers).

export interface MarketCacheOptions {
  /** The GpuProvider cache (the controller's informer). */
  provider(name: string): GpuProvider | undefined;
  providers(): readonly GpuProvider[];
  assumed: AssumedAllocations;
  /** The leader's in-memory heartbeat age, when it tracks the provider. */
  heartbeatAgeMs?: (provider: string, now: number) => number | undefined;
  /** The leader's live measure of the provider's link; status carries it only once a period. */
  link?: (provider: string) => { rttMs?: number; bandwidthMbps?: number } | undefined;
}

export class MarketCache {
  private readonly snapshot = new MarketSnapshot([]);
  private readonly dirty = new Set<string>();
  private everything = true;
  private nextPeriodicMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly opts: MarketCacheOptions) {}

  /** A GpuProvider was added, changed or deleted. */
  providerChanged(name: string): void {
    this.dirty.add(name);
  }

  /** The snapshot as of `now`: dirty providers re-read, expired assumptions given back. */
  view(now: number): MarketSnapshot {
    // Expiry walks every assumption, the heartbeat refresh every provider: once a second is plenty
    // for a TTL of minutes and a staleness bound of a minute, and keeps both off the per-decision path.
    const periodic = now >= this.nextPeriodicMs || now < this.nextPeriodicMs - 1_000;
    if (periodic) {
      this.nextPeriodicMs = now + 1_000;
      for (const expired of this.opts.assumed.expireAllocations(now)) this.dirty.add(expired.provider);
    }
    if (this.everything) {
      this.everything = false;
      for (const p of this.opts.providers()) if (p.metadata.name) this.dirty.add(p.metadata.name);
    }
    for (const name of this.dirty) this.refresh(name, now);
    this.dirty.clear();
    if (periodic) this.refreshHeartbeats(now);
    return this.snapshot;
  }

  /** Records a decision and takes its GPUs out of the snapshot at once. */
  assume(jobKey: string, decision: Decision, now: number): void {
    this.forget(jobKey);
    const allocation = this.opts.assumed.assume(jobKey, decision, now);
    this.snapshot.take(allocation.provider, allocation, allocation.gpusByNode);
  }

  /** Drops a job's assumption (if any) and gives its GPUs back at the next view. */
  forget(jobKey: string): void {
    const removed = this.opts.assumed.remove(jobKey);
    if (removed) this.dirty.add(removed.provider);
  }

  /** The job's current assumption, e.g. to put it back with restore(). */
  assumption(jobKey: string): AssumedAllocation | undefined {
    return this.opts.assumed.get(jobKey);
  }

  /** Undoes a decision that could not be recorded: its GPUs back, the job's earlier assumption (if any) again. */
  restore(jobKey: string, previous: AssumedAllocation | undefined): void {
    this.forget(jobKey);
    if (!previous) return;
    this.opts.assumed.restore(previous);
    this.dirty.add(previous.provider);
  }

  private refresh(name: string, now: number): void {
    const provider = this.opts.provider(name);
    if (!provider) {
      this.snapshot.removeProvider(name);
      return;
    }
    const snapshot = providerSnapshot(provider, now, this.opts.heartbeatAgeMs?.(name, now));
    this.applyLink(snapshot);
    this.snapshot.updateProvider(snapshot);
    this.opts.assumed.applyToSnapshot(this.snapshot, now, name);
  }

  private refreshHeartbeats(now: number): void {
    for (const p of this.snapshot.providers) {
      const age = this.opts.heartbeatAgeMs?.(p.name, now);
      if (age !== undefined) p.source.heartbeatAgeMs = age;
      else if (p.source.heartbeatAgeMs !== undefined) {
        const written = this.opts.provider(p.name)?.status?.lastHeartbeatTime;
        if (written) p.source.heartbeatAgeMs = Math.max(0, now - Date.parse(written));
      }
      this.applyLink(p.source);
    }
  }

  private applyLink(p: { name: string; rttMs: number; bandwidthMbps: number }): void {
    const link = this.opts.link?.(p.name);
    if (link?.rttMs !== undefined) p.rttMs = link.rttMs;
    if (link?.bandwidthMbps !== undefined) p.bandwidthMbps = link.bandwidthMbps;
  }
}
