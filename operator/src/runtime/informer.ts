// A typed informer: client-node's ListWatch (list, then watch from the list's resourceVersion, relist
// on 410 Gone, reconnect on a clean close) plus what it leaves out:
//  - start() resolves only once the initial list is in the cache;
//  - after a watch or list *error* ListWatch just stops; here it is restarted with jittered,
//    capped exponential backoff (it resumes from the last resourceVersion, or relists when that has
//    expired, so no event is lost across the gap);
//  - every wait goes through an injectable, abortable delay, and stop() cancels all of them and
//    refuses to open a new watch, so nothing outlives the informer;
//  - watch events are decoded like list items (core kinds become the same typed models);
//  - metadata.managedFields is dropped from every cached object: nothing here reads it, and it was
//    half of each cached GpuJob's JSON (docs/benchmarks.md);
//  - each short string value is replaced by the one copy the process holds (intern.ts).
import {
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  Watch,
} from '@kubernetes/client-node';
import { sleep } from './clock.js';
import { sharedInterner, type StringInterner } from './intern.js';
import { objectKey, parseKey } from './kube.js';
import { type Logger, stderrLogger } from './logger.js';

export interface InformerSource<T extends KubernetesObject> {
  /** Collection URL path to watch, e.g. /apis/fedgpu.io/v1alpha1/namespaces/ns/gpujobs. */
  path: string;
  /** Lists the same collection, with the same selectors. */
  list(): Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  fieldSelector?: string;
  /** Turns a watch event's JSON into what list() returns; identity when omitted. */
  decode?: (raw: unknown) => T;
  /** For logs, e.g. "gpujobs". */
  description?: string;
  /**
   * Holds secret values (Secrets): its strings are not interned, since the process-wide table would
   * keep them past the object's deletion or rotation.
   */
  sensitive?: boolean;
}

/** Waits `ms` or until `signal` aborts. */
export type DelayFn = (ms: number, signal: AbortSignal) => Promise<void>;

export interface RestartBackoff {
  initialMs: number;
  maxMs: number;
}

export interface InformerOptions {
  kubeConfig: KubeConfig;
  logger?: Logger;
  delay?: DelayFn;
  random?: () => number;
  backoff?: Partial<RestartBackoff>;
  /** Watch transport; tests inject one to cut the connection or fake a 410. */
  watch?: Pick<Watch, 'watch'>;
  /** Where cached objects' strings are deduplicated; the process's shared table when omitted. */
  interner?: StringInterner;
}

export type InformerEvent = 'add' | 'update' | 'delete';
export type ObjectHandler<T> = (obj: T) => void;

export const DEFAULT_RESTART_BACKOFF: RestartBackoff = { initialMs: 500, maxMs: 30_000 };

/** Abortable delay that never rejects: ListWatch awaits it without a catch. */
const defaultDelay: DelayFn = (ms, signal) => sleep(ms, signal);

export class Informer<T extends KubernetesObject> {
  private readonly listWatch: ListWatch<T>;
  private readonly logger: Logger;
  private readonly delay: DelayFn;
  private readonly random: () => number;
  private readonly backoff: RestartBackoff;
  private readonly stopping = new AbortController();
  private readonly handlers: Record<InformerEvent, Set<ObjectHandler<T>>> = {
    add: new Set(),
    update: new Set(),
    delete: new Set(),
  };
  private started: Promise<void> | undefined;
  private synced = false;
  private listedOnce = false;
  private resolveSynced: (() => void) | undefined;
  private rejectSynced: ((err: Error) => void) | undefined;
  private consecutiveFailures = 0;
  private restartPending = false;
  private readonly name: string;

  constructor(
    private readonly source: InformerSource<T>,
    options: InformerOptions,
  ) {
    this.name = source.description ?? source.path;
    this.logger = options.logger ?? stderrLogger;
    this.delay = options.delay ?? defaultDelay;
    this.random = options.random ?? Math.random;
    this.backoff = { ...DEFAULT_RESTART_BACKOFF, ...options.backoff };
    const interner = source.sensitive ? undefined : options.interner ?? sharedInterner;
    // What every cached object goes through, listed or watched.
    const prepare = (obj: unknown): void => {
      stripManagedFields(obj);
      interner?.internAll(obj);
    };
    const transport = new GuardedWatch(options.kubeConfig, options.watch ?? new Watch(options.kubeConfig), {
      isStopped: () => this.stopping.signal.aborted,
      decode: source.decode,
      onActivity: () => (this.consecutiveFailures = 0),
      prepare,
    });
    const list = async () => {
      const result = await source.list();
      for (const item of result.items) prepare(item);
      this.listedOnce = true;
      this.consecutiveFailures = 0;
      return result;
    };
    this.listWatch = new ListWatch<T>(source.path, transport, list, false, source.labelSelector, source.fieldSelector, {
      // ListWatch's own reconnect pause after a clean close: the same abortable delay, jittered.
      delayFn: (ms) => this.wait(this.jitter(ms)),
    });
    this.listWatch.on('add', (obj) => this.dispatch('add', obj));
    this.listWatch.on('update', (obj) => this.dispatch('update', obj));
    this.listWatch.on('delete', (obj) => this.dispatch('delete', obj));
    this.listWatch.on('error', (err) => this.onError(err));
  }

  /** Subscribes to cache changes; returns the unsubscribe function. */
  on(event: InformerEvent, handler: ObjectHandler<T>): () => void {
    this.handlers[event].add(handler);
    return () => this.handlers[event].delete(handler);
  }

  /** Starts listing and watching; resolves once the initial list is in the cache. Idempotent. */
  start(): Promise<void> {
    if (this.stopping.signal.aborted) return Promise.reject(new Error(`informer ${this.name} is stopped`));
    this.started ??= new Promise<void>((resolve, reject) => {
      this.resolveSynced = resolve;
      this.rejectSynced = reject;
      void this.connect();
    });
    return this.started;
  }

  /** Stops watching and cancels pending restarts. The cache keeps its last content. */
  async stop(): Promise<void> {
    if (this.stopping.signal.aborted) return;
    this.stopping.abort();
    await this.listWatch.stop();
    this.rejectSynced?.(new Error(`informer ${this.name} stopped before its first list`));
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** Cached objects, of one namespace or all. */
  list(namespace?: string): readonly T[] {
    return this.listWatch.list(namespace);
  }

  /** The cached object with key "namespace/name" (or "name" when cluster-scoped). */
  get(key: string): T | undefined {
    const { namespace, name } = parseKey(key);
    return this.listWatch.get(name, namespace);
  }

  private async connect(): Promise<void> {
    try {
      await this.listWatch.start();
    } catch (err) {
      this.onError(err);
      return;
    }
    if (this.listedOnce && !this.synced) {
      this.synced = true;
      this.resolveSynced?.();
    }
  }

  /** ListWatch gave up (list failed, or the watch failed with anything but 410/timeout): retry later. */
  private onError(err: unknown): void {
    if (this.stopping.signal.aborted || this.restartPending) return;
    this.restartPending = true;
    const base = Math.min(this.backoff.initialMs * 2 ** Math.min(this.consecutiveFailures, 30), this.backoff.maxMs);
    this.consecutiveFailures++;
    // "Equal jitter": half fixed, half random, never above the cap.
    const delayMs = base / 2 + (base / 2) * this.random();
    this.logger.warn({ informer: this.name, err, retryInMs: Math.round(delayMs) }, 'watch failed; restarting');
    void this.wait(delayMs).then(() => {
      this.restartPending = false;
      if (!this.stopping.signal.aborted) void this.connect();
    });
  }

  private async wait(ms: number): Promise<void> {
    try {
      await this.delay(ms, this.stopping.signal);
    } catch {
      // an injected delay that rejects on abort is fine: stop() is what aborted it
    }
  }

  private jitter(ms: number): number {
    return ms * (1 + 0.2 * this.random());
  }

  private dispatch(event: InformerEvent, obj: T): void {
    for (const handler of this.handlers[event]) {
      try {
        handler(obj);
      } catch (err) {
        this.logger.error({ informer: this.name, event, key: objectKey(obj), err }, 'informer handler threw');
      }
    }
  }
}

interface GuardHooks {
  isStopped(): boolean;
  decode: ((raw: unknown) => unknown) | undefined;
  onActivity(): void;
  prepare(obj: unknown): void;
}

/**
 * The transport ListWatch sees: refuses to open a watch once the informer is stopped (ListWatch
 * may still be inside a reconnect pause), asks for bookmarks so the resourceVersion stays fresh on
 * quiet collections, and decodes event objects.
 */
class GuardedWatch extends Watch {
  constructor(
    config: KubeConfig,
    private readonly inner: Pick<Watch, 'watch'>,
    private readonly hooks: GuardHooks,
  ) {
    super(config);
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: any, watchObj?: any) => void,
    done: (err: any) => void,
  ): Promise<AbortController> {
    if (this.hooks.isStopped()) {
      const idle = new AbortController();
      idle.abort();
      return idle;
    }
    const decode = this.hooks.decode;
    return this.inner.watch(
      path,
      { ...queryParams, allowWatchBookmarks: true },
      (phase, obj, watchObj) => {
        this.hooks.onActivity();
        const isObjectEvent = phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED';
        const decoded = decode && isObjectEvent ? decode(obj) : obj;
        if (isObjectEvent) this.hooks.prepare(decoded);
        callback(phase, decoded, watchObj);
      },
      done,
    );
  }
}

/** Drops metadata.managedFields (server-side apply bookkeeping) in place; returns `obj`. */
export function stripManagedFields<T>(obj: T): T {
  const metadata = (obj as { metadata?: { managedFields?: unknown } } | null)?.metadata;
  if (metadata && 'managedFields' in metadata) delete metadata.managedFields;
  return obj;
}
