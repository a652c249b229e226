import { CoreV1Api, type KubeConfig, type V1ResourceQuota } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Informer } from '../../runtime/informer.js';
import { typedSource } from '../../runtime/informer-sources.js';
import { parseQuantity } from '../../core/idle.js';

// The agent's watch of its own tenant quotas (by its managed-by label), so that a quota bound the
// agent just raised is awaited until it is in force before the pods it admits are created. The
// apiserver's quota admission judges a pod by the quota's status.hard, which the
// controller-manager's quota controller copies from the spec after it sees the write, and by its
// own cache of quotas, fed by a watch like this one. A pod created the moment the quota write
// returned was refused as over quota in a third of paced attempts (bench/e2e-throughput.bench.ts),
// then tried again after 10 ms or more.

export interface QuotaWatchOptions {
  /** The label every tenant quota of this agent carries (`key=value`). */
  labelSelector: string;
}

type Hard = Record<string, string>;

interface QuotaWaiter {
  hard: Hard;
  /** The version the agent's write returned: the cache must show this one or a later one. */
  resourceVersion: string;
  done: (inForce: boolean) => void;
}

/** Whether a status.hard admits at least `hard` for every resource (quantities as the apiserver writes them back: "1k"). */
function admits(status: Hard, hard: Hard): boolean {
  return Object.entries(hard).every(([key, value]) => status[key] !== undefined && parseQuantity(status[key]) >= parseQuantity(value));
}

/** Whether `quota`'s status.hard (what admission judges by) admits at least `hard` for every resource. */
export function hardInForce(quota: V1ResourceQuota | undefined, hard: Hard): boolean {
  return admits(quota?.status?.hard ?? {}, hard);
}

/**
 * Whether writing `after` raised a bound above `before` (the status.hard the write returned): the
 * only case where pods must wait. An empty status limits nothing (the controller has not filled it
 * in yet), so nothing waits on it.
 */
export function raisesBound(before: Hard | undefined, after: Hard): boolean {
  return before !== undefined && Object.keys(before).length > 0 && !admits(before, after);
}

/** Whether version `a` is at least `b`. Versions are etcd revisions, compared as numbers as the apiserver's own quota admission does; anything else is taken as not newer. */
function atLeast(a: string | undefined, b: string): boolean {
  if (!a || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return false;
  return BigInt(a) >= BigInt(b);
}

/** Whether `quota` is the agent's write at `resourceVersion`, or later, with at least `hard` in force. */
const showsInForce = (quota: V1ResourceQuota | undefined, hard: Hard, resourceVersion: string) =>
  atLeast(quota?.metadata?.resourceVersion, resourceVersion) && hardInForce(quota, hard);

export class QuotaWatch {
  private readonly quotas: Informer<V1ResourceQuota>;
  /** Callers waiting for a bound to be in force, by "namespace/name". */
  private readonly waiters = new Map<string, Set<QuotaWaiter>>();
  private stopped = false;

  constructor(kubeConfig: KubeConfig, logger: Logger, options: QuotaWatchOptions) {
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const { labelSelector } = options;
    this.quotas = new Informer<V1ResourceQuota>(
      typedSource<V1ResourceQuota>({
        path: '/api/v1/resourcequotas',
        labelSelector,
        list: () => core.listResourceQuotaForAllNamespaces({ labelSelector }),
        model: 'V1ResourceQuota',
        description: 'tenant quotas',
      }),
      { kubeConfig, logger },
    );
    const keyOf = (quota: V1ResourceQuota) => `${quota.metadata?.namespace}/${quota.metadata?.name}`;
    const seen = (quota: V1ResourceQuota) => this.settle(keyOf(quota), quota);
    this.quotas.on('add', seen);
    this.quotas.on('update', seen);
    // Deleted under the wait: no bound will come into force; the pods' create says what happens.
    this.quotas.on('delete', (quota) => this.settle(keyOf(quota), undefined));
  }

  /** Lists and watches; resolves once the cache is filled. */
  async start(): Promise<void> {
    await this.quotas.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const key of [...this.waiters.keys()]) this.settle(key, undefined);
    await this.quotas.stop();
  }

  /**
   * Resolves true once the watch shows the quota at `resourceVersion` (the agent's write) or
   * later with at least `hard` in its status.hard; false after `timeoutMs`, when the quota is
   * deleted, or when the cache is not synced. The caller goes on either way: this cache is not the
   * apiserver's own, so a pod refused on the old bound is still tried again.
   */
  quotaInForce(namespace: string, name: string, hard: Hard, resourceVersion: string | undefined, timeoutMs: number): Promise<boolean> {
    const key = `${namespace}/${name}`;
    if (this.stopped || !resourceVersion || !this.quotas.hasSynced()) return Promise.resolve(false);
    if (showsInForce(this.quotas.get(key), hard, resourceVersion)) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const waiters = this.waiters.get(key) ?? new Set<QuotaWaiter>();
      this.waiters.set(key, waiters);
      const timer = setTimeout(() => waiter.done(false), timeoutMs);
      const waiter: QuotaWaiter = {
        hard,
        resourceVersion,
        done: (result) => {
          clearTimeout(timer);
          waiters.delete(waiter);
          if (waiters.size === 0 && this.waiters.get(key) === waiters) this.waiters.delete(key);
          resolve(result);
        },
      };
      waiters.add(waiter);
    });
  }

  /** Wakes the waiters of `key` whose bound `quota` shows in force; every waiter, with false, when `quota` is undefined (deleted, stopping). */
  private settle(key: string, quota: V1ResourceQuota | undefined): void {
    for (const waiter of [...(this.waiters.get(key) ?? [])]) {
      if (!quota) waiter.done(false);
      else if (showsInForce(quota, waiter.hard, waiter.resourceVersion)) waiter.done(true);
    }
  }
}
