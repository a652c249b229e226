import { CoreV1Api, type KubeConfig, type V1ResourceQuota } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Informer } from '../../runtime/informer.js';
import { typedSource } from '../../runtime/informer-sources.js';

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
  done: (inForce: boolean) => void;
}

/** Whether the quota's status.hard is exactly `hard` (what admission will judge by). */
export function hardInForce(quota: V1ResourceQuota | undefined, hard: Hard): boolean {
  const status = quota?.status?.hard ?? {};
  const keys = new Set([...Object.keys(status), ...Object.keys(hard)]);
  for (const key of keys) if (status[key] !== hard[key]) return false;
  return true;
}

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
    const seen = (quota: V1ResourceQuota) => this.settle(`${quota.metadata?.namespace}/${quota.metadata?.name}`, quota);
    this.quotas.on('add', seen);
    this.quotas.on('update', seen);
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
   * Resolves true once the watch shows the quota with `hard` in force (its status.hard), false
   * after `timeoutMs` or when the cache is not synced: the caller goes on, and a pod refused on
   * the old bound is tried again.
   */
  quotaInForce(namespace: string, name: string, hard: Hard, timeoutMs: number): Promise<boolean> {
    const key = `${namespace}/${name}`;
    if (this.stopped || !this.quotas.hasSynced()) return Promise.resolve(false);
    if (hardInForce(this.quotas.get(key), hard)) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const waiters = this.waiters.get(key) ?? new Set<QuotaWaiter>();
      this.waiters.set(key, waiters);
      const timer = setTimeout(() => waiter.done(false), timeoutMs);
      const waiter: QuotaWaiter = {
        hard,
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

  /** Wakes the waiters of `key` whose bound `quota` shows in force; every waiter when `quota` is undefined (stopping). */
  private settle(key: string, quota: V1ResourceQuota | undefined): void {
    for (const waiter of [...(this.waiters.get(key) ?? [])]) {
      if (!quota) waiter.done(false);
      else if (hardInForce(quota, waiter.hard)) waiter.done(true);
    }
  }
}
