// informers → keyed work queue → reconcile(key) → Action, in the manner of kube-rs and
// controller-runtime. Reconcile receives only a key: it reads the current state itself and never
// learns which event woke it (level-based), so a missed, merged or repeated event changes nothing.
import type { KubernetesObject } from '@kubernetes/client-node';
import { type Action, requeueDelay } from './action.js';
import type { InformerEvent } from './informer.js';
import { objectKey } from './kube.js';
import { type Logger, stderrLogger } from './logger.js';
import { WorkQueue } from './work-queue.js';

export type { Action } from './action.js';

/** Thrown by reconcile for a failure that retrying cannot fix: logged, counted, not retried. */
export class TerminalError extends Error {
  override name = 'TerminalError';
}

export type ReconcileOutcome = 'success' | 'requeue' | 'error' | 'terminal';

export interface ReconcileSample {
  controller: string;
  key: string;
  outcome: ReconcileOutcome;
  durationMs: number;
  error?: unknown;
}

/** Hooks for a metrics registry (prom-client or a test spy); the runtime depends on neither. */
export interface ControllerMetrics {
  /** Once per reconcile, after it finished. */
  reconciled?(sample: ReconcileSample): void;
  /** Whenever the number of reconciles in flight changes. */
  activeWorkers?(controller: string, active: number): void;
}

/** What a controller needs of an informer (an Informer, or a fake in unit tests). */
export interface EventSource<T> {
  on(event: InformerEvent, handler: (obj: T) => void): () => void;
  /** Resolves once the source's cache is filled; called by Controller.start (must be idempotent). */
  start(): Promise<void>;
}

/** Maps an object from a watched informer to the keys of the objects to reconcile. */
export type KeyMapper<T> = (obj: T) => string | readonly string[] | undefined | null;

export interface ControllerOptions {
  /** Names this controller in logs and metrics. */
  name: string;
  reconcile: (key: string) => Promise<Action>;
  /**
   * Turns a reconcile error into what to do next. `{ requeueAfterMs }` retries after that delay,
   * `'done'` gives up until the next event, and `{}` (no delay) uses the queue's per-key
   * exponential backoff. Default: `{}`.
   */
  errorPolicy?: (err: unknown, key: string) => Action;
  /** Reconciles running at once (different keys; one key never runs twice at once). Default 1. */
  concurrency?: number;
  queue?: WorkQueue;
  metrics?: ControllerMetrics;
  logger?: Logger;
  now?: () => number;
}

export class Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  private readonly options: ControllerOptions;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly sources = new Set<{ start(): Promise<void> }>();
  private readonly unsubscribes: (() => void)[] = [];
  private workers: Promise<void>[] = [];
  private active = 0;
  private state: 'new' | 'running' | 'stopped' = 'new';

  constructor(options: ControllerOptions) {
    this.options = options;
    this.name = options.name;
    this.queue = options.queue ?? new WorkQueue();
    this.logger = options.logger ?? stderrLogger;
    this.now = options.now ?? (() => performance.now());
  }

  /**
   * Enqueues keys for every add/update/delete of `informer`. Without `map`, the object's own key;
   * with it, any keys: an owner (see ownerKeys), or related objects found by label or index.
   */
  watch<T extends KubernetesObject>(informer: EventSource<T>, map: KeyMapper<T> = objectKey): this {
    this.sources.add(informer);
    const enqueue = (obj: T) => {
      const keys = map(obj);
      if (keys === undefined || keys === null) return;
      for (const key of typeof keys === 'string' ? [keys] : keys) if (key) this.queue.add(key);
    };
    for (const event of ['add', 'update', 'delete'] as const) this.unsubscribes.push(informer.on(event, enqueue));
    return this;
  }

  /** Enqueues a key by hand (a timer, an external system). */
  enqueue(key: string): void {
    this.queue.add(key);
  }

  /** Starts the watched informers (idempotent), waits until each has listed, then starts workers. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`controller ${this.name} already ${this.state}`);
    this.state = 'running';
    await Promise.all([...this.sources].map((source) => source.start()));
    if (this.state !== 'running') return; // stopped while waiting for the caches
    const concurrency = Math.max(1, this.options.concurrency ?? 1);
    this.workers = Array.from({ length: concurrency }, () => this.work());
  }

  /**
   * Stops taking events, lets reconciles in flight finish (queued keys are dropped: the next
   * start relists everything), and resolves when the workers have exited. Informers are left
   * running: they may be shared; stop them separately.
   */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    for (const unsubscribe of this.unsubscribes.splice(0)) unsubscribe();
    await this.queue.shutDown({ drain: false });
    await Promise.all(this.workers);
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.reconcileOne(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  private async reconcileOne(key: string): Promise<void> {
    const started = this.now();
    this.setActive(+1);
    let outcome: ReconcileOutcome;
    let error: unknown;
    try {
      const action = await this.options.reconcile(key);
      this.queue.forget(key);
      const delay = requeueDelay(action);
      if (delay !== undefined) this.queue.addAfter(key, delay);
      outcome = delay !== undefined ? 'requeue' : 'success';
    } catch (err) {
      error = err;
      outcome = err instanceof TerminalError ? 'terminal' : 'error';
      this.handleError(err, key);
    } finally {
      this.setActive(-1);
    }
    this.observe({ controller: this.name, key, outcome, durationMs: this.now() - started, error });
  }

  private handleError(err: unknown, key: string): void {
    if (err instanceof TerminalError) {
      this.queue.forget(key);
      this.logger.error({ controller: this.name, key, err }, 'reconcile failed terminally; not retrying');
      return;
    }
    let action: Action = {};
    try {
      action = this.options.errorPolicy?.(err, key) ?? {};
    } catch (policyErr) {
      this.logger.error({ controller: this.name, key, err: policyErr }, 'errorPolicy threw; backing off');
    }
    let retryInMs: number | undefined;
    if (action === 'done') {
      this.queue.forget(key);
    } else if (action.requeueAfterMs !== undefined) {
      retryInMs = action.requeueAfterMs;
      this.queue.addAfter(key, retryInMs);
    } else {
      retryInMs = this.queue.addRateLimited(key);
    }
    this.logger.warn({ controller: this.name, key, err, retryInMs }, 'reconcile failed');
  }

  private setActive(delta: number): void {
    this.active += delta;
    this.options.metrics?.activeWorkers?.(this.name, this.active);
  }

  private observe(sample: ReconcileSample): void {
    try {
      this.options.metrics?.reconciled?.(sample);
    } catch (err) {
      this.logger.error({ controller: this.name, err }, 'metrics hook threw');
    }
  }
}

/**
 * A KeyMapper from an owned object to the keys of its owners of `kind` (same namespace: owner
 * references cannot cross namespaces). `apiVersion` narrows the group/version when given.
 */
export function ownerKeys(kind: string, apiVersion?: string): KeyMapper<KubernetesObject> {
  return (obj) => {
    const namespace = obj.metadata?.namespace;
    return (obj.metadata?.ownerReferences ?? [])
      .filter((ref) => ref.kind === kind && (apiVersion === undefined || ref.apiVersion === apiVersion))
      .map((ref) => (namespace ? `${namespace}/${ref.name}` : ref.name));
  };
}

/**
 * A KeyMapper to the object named by a label on the watched object, e.g. pods labelled with the
 * GpuJob they belong to. `namespace` pins the target namespace (cluster-scoped targets: '').
 */
export function labelKey(label: string, namespace?: string): KeyMapper<KubernetesObject> {
  return (obj) => {
    const name = obj.metadata?.labels?.[label];
    if (!name) return undefined;
    const ns = namespace ?? obj.metadata?.namespace;
    return ns ? `${ns}/${name}` : name;
  };
}
