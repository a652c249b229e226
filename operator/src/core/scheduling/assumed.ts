// Assumed allocations (DESIGN §4.4), as kube-scheduler's assume cache: a decision's GPUs count as used
// from the moment it is made until the provider's inventory shows the pods (confirm), the job is
// abandoned (forget), or a TTL passes (expire: the assignment never reached the agent). Every fresh
// inventory is re-based on the live assumptions with applyTo/applyToSnapshot before scheduling.

import type { MarketSnapshot } from './snapshot.js';
import type { Decision, ProviderSnapshot } from '../types.js';

export interface AssumedAllocation {
  jobKey: string;
  provider: string;
  gpuProduct: string;
  memoryMiB: number;
  cudaDriverMajor: number;
  gpusByNode: Record<string, number>;
  assumedAt: number;
  expiresAt: number;
}

export interface AssumedAllocationsOptions {
  /** How long an unconfirmed assumption holds GPUs; default 5 minutes. */
  ttlMs?: number;
}

export const DEFAULT_ASSUME_TTL_MS = 5 * 60_000;

export class AssumedAllocations {
  private readonly ttlMs: number;
  private readonly byJob = new Map<string, AssumedAllocation>();
  /** The same allocations indexed by provider, so one provider's fresh inventory re-bases in O(its own). */
  private readonly byProvider = new Map<string, Map<string, AssumedAllocation>>();

  constructor(options: AssumedAllocationsOptions = {}) {
    this.ttlMs = options.ttlMs ?? DEFAULT_ASSUME_TTL_MS;
    if (!(this.ttlMs > 0)) throw new RangeError('ttlMs must be positive');
  }

  /** Record a decision's GPUs as used; a second call for the same job replaces the first. */
  assume(jobKey: string, decision: Decision, now: number): AssumedAllocation {
    const allocation: AssumedAllocation = {
      jobKey,
      provider: decision.provider,
      gpuProduct: decision.gpuProduct,
      memoryMiB: decision.memoryMiB,
      cudaDriverMajor: decision.cudaDriverMajor,
      gpusByNode: gpusByNode(decision),
      assumedAt: now,
      expiresAt: now + this.ttlMs,
    };
    this.restore(allocation);
    return allocation;
  }

  /** The provider's inventory now includes the job's pods: stop subtracting them. */
  confirm(jobKey: string): boolean {
    return this.remove(jobKey) !== undefined;
  }

  /** The decision was dropped (cancelled, escrow failed, assignment refused): give the GPUs back. */
  forget(jobKey: string): boolean {
    return this.remove(jobKey) !== undefined;
  }

  /** Puts back an assumption removed earlier (a decision that could not be recorded replaced it). */
  restore(allocation: AssumedAllocation): void {
    this.remove(allocation.jobKey);
    this.byJob.set(allocation.jobKey, allocation);
    let mine = this.byProvider.get(allocation.provider);
    if (!mine) this.byProvider.set(allocation.provider, (mine = new Map()));
    mine.set(allocation.jobKey, allocation);
  }

  /** Removes a job's assumption; returns it, if there was one. */
  remove(jobKey: string): AssumedAllocation | undefined {
    const allocation = this.byJob.get(jobKey);
    if (!allocation) return undefined;
    this.byJob.delete(jobKey);
    const mine = this.byProvider.get(allocation.provider);
    mine?.delete(jobKey);
    if (mine?.size === 0) this.byProvider.delete(allocation.provider);
    return allocation;
  }

  /** Drop assumptions whose TTL passed; returns their job keys, sorted. */
  expire(now: number): string[] {
    return this.expireAllocations(now)
      .map((a) => a.jobKey)
      .sort();
  }

  /** Drop assumptions whose TTL passed; returns them (their providers need re-basing). */
  expireAllocations(now: number): AssumedAllocation[] {
    const expired: AssumedAllocation[] = [];
    for (const [key, allocation] of this.byJob) {
      if (allocation.expiresAt <= now) {
        this.remove(key);
        expired.push(allocation);
      }
    }
    return expired;
  }

  /** Live assumptions on one provider at `now`, in no particular order. */
  ofProvider(provider: string, now: number = Number.NEGATIVE_INFINITY): AssumedAllocation[] {
    const mine = this.byProvider.get(provider);
    if (!mine) return [];
    const live: AssumedAllocation[] = [];
    for (const a of mine.values()) if (a.expiresAt > now) live.push(a);
    return live;
  }

  get(jobKey: string): AssumedAllocation | undefined {
    return this.byJob.get(jobKey);
  }

  /** Live assumptions at `now` (unexpired), sorted by job key. */
  list(now: number = Number.NEGATIVE_INFINITY): AssumedAllocation[] {
    return [...this.byJob.values()].filter((a) => a.expiresAt > now).sort((a, b) => (a.jobKey < b.jobKey ? -1 : 1));
  }

  get size(): number {
    return this.byJob.size;
  }

  /**
   * Fresh provider snapshots with every live assumption subtracted from node idle (clamped at 0).
   * Inputs are not mutated; untouched providers are returned as they are.
   */
  applyTo(providers: readonly ProviderSnapshot[], now: number): ProviderSnapshot[] {
    const live = this.list(now);
    if (live.length === 0) return [...providers];
    const byProvider = new Map<string, AssumedAllocation[]>();
    for (const a of live) {
      const list = byProvider.get(a.provider);
      if (list) list.push(a);
      else byProvider.set(a.provider, [a]);
    }
    return providers.map((provider) => {
      const allocations = byProvider.get(provider.name);
      if (!allocations) return provider;
      return {
        ...provider,
        pools: provider.pools.map((pool) => {
          const mine = allocations.filter(
            (a) =>
              a.gpuProduct === pool.gpuProduct && a.memoryMiB === pool.memoryMiB && a.cudaDriverMajor === pool.cudaDriverMajor,
          );
          if (mine.length === 0) return pool;
          return {
            ...pool,
            nodes: pool.nodes.map((node) => {
              const taken = mine.reduce((sum, a) => sum + (a.gpusByNode[node.name] ?? 0), 0);
              return taken === 0 ? node : { ...node, idleGpus: Math.max(0, node.idleGpus - taken) };
            }),
          };
        }),
      };
    });
  }

  /**
   * Subtract live assumptions from an indexed snapshot in place: all of them after buildSnapshot, or
   * one provider's after snapshot.updateProvider folded in its fresh inventory.
   */
  applyToSnapshot(snapshot: MarketSnapshot, now: number, provider?: string): void {
    const allocations = provider === undefined ? this.list(now) : this.ofProvider(provider, now);
    for (const a of allocations) snapshot.take(a.provider, a, a.gpusByNode);
  }
}

/** GPUs a decision places on each node. */
export function gpusByNode(decision: Decision): Record<string, number> {
  const result: Record<string, number> = {};
  for (const { node } of decision.assignments) result[node] = (result[node] ?? 0) + decision.gpusPerReplica;
  return result;
}
