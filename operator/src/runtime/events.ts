// Records core/v1 Events (what `kubectl describe` shows) about our objects. Repeats of an identical
// event (same object, type, reason and message) within a window bump `count` and `lastTimestamp`
// of the existing Event instead of creating a new one, as client-go's EventCorrelator does, so a
// controller that re-reports a state cannot flood etcd. Recording is best effort: a failure is
// logged and never fails the reconcile that reported it.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { CoreV1Api, CoreV1Event, KubernetesObject, V1ObjectReference } from '@kubernetes/client-node';
import { ConcurrencyLimit } from './concurrency.js';
import { isNotFound, mergePatch } from './kube.js';
import { type Logger, stderrLogger } from './logger.js';

export type EventType = 'Normal' | 'Warning';

/** Where events go: the core API, or a fake in unit tests. */
export interface EventSink {
  create(namespace: string, event: CoreV1Event): Promise<CoreV1Event>;
  patch(namespace: string, name: string, patch: Partial<CoreV1Event>): Promise<CoreV1Event>;
}

export function coreEventSink(core: CoreV1Api): EventSink {
  return {
    create: (namespace, body) => core.createNamespacedEvent({ namespace, body }),
    patch: (namespace, name, body) => core.patchNamespacedEvent({ namespace, name, body }, mergePatch),
  };
}

export interface EventRecorderOptions {
  sink: EventSink;
  /** The reporting controller, e.g. "fedgpu.io/gpujob-controller" (a qualified name). */
  controller: string;
  /** This replica, e.g. the pod name. Default: the host name. */
  instance?: string;
  /** Identical events closer than this are merged into one. Default 10 minutes. */
  windowMs?: number;
  /** Distinct events remembered for merging; the least recently seen is forgotten first. */
  maxRemembered?: number;
  /**
   * Event writes at once; the rest wait in order. A burst of placements records an Event for each,
   * and leaving them to a few slots keeps the apiserver for the status writes that fence attempts.
   * Default: no limit.
   */
  maxInFlight?: number;
  now?: () => Date;
  logger?: Logger;
}

const PASCAL_CASE = /^[A-Z][A-Za-z0-9]*$/;
const MAX_MESSAGE = 1024;

interface Remembered {
  namespace: string;
  name: string;
  count: number;
  lastSeenMs: number;
}

export class EventRecorder {
  private readonly sink: EventSink;
  private readonly controller: string;
  private readonly instance: string;
  private readonly windowMs: number;
  private readonly maxRemembered: number;
  private readonly now: () => Date;
  private readonly logger: Logger;
  /** Insertion order = recency: a touched entry is moved to the end. */
  private readonly remembered = new Map<string, Remembered>();
  /** Writes for one identical event run one after another, so repeats never race to create two. */
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly slots: ConcurrencyLimit | undefined;

  constructor(options: EventRecorderOptions) {
    this.sink = options.sink;
    this.controller = options.controller;
    this.instance = options.instance ?? hostname();
    this.windowMs = options.windowMs ?? 10 * 60_000;
    this.maxRemembered = options.maxRemembered ?? 4096;
    this.now = options.now ?? (() => new Date());
    this.logger = options.logger ?? stderrLogger;
    this.slots = options.maxInFlight !== undefined ? new ConcurrencyLimit(options.maxInFlight) : undefined;
  }

  /**
   * Records an event about `obj`. `reason` is PascalCase (a cause: HeartbeatMissed); an invalid
   * type or reason is a programming error and throws. Resolves once written (or given up on).
   */
  record(obj: KubernetesObject, type: EventType, reason: string, message: string): Promise<void> {
    if (type !== 'Normal' && type !== 'Warning') throw new TypeError(`event type must be Normal or Warning, not ${type}`);
    if (!PASCAL_CASE.test(reason)) throw new TypeError(`event reason ${JSON.stringify(reason)} is not PascalCase`);
    const ref = reference(obj);
    const text = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 1)}…` : message;
    const key = JSON.stringify([ref.uid ?? '', ref.kind, ref.namespace ?? '', ref.name, type, reason, text]);
    const previous = this.inFlight.get(key) ?? Promise.resolve();
    const write = () => this.write(key, ref, type, reason, text);
    const next = previous.then(() => (this.slots ? this.slots.run(write) : write()));
    this.inFlight.set(key, next);
    void next.finally(() => {
      if (this.inFlight.get(key) === next) this.inFlight.delete(key);
    });
    return next;
  }

  normal(obj: KubernetesObject, reason: string, message: string): Promise<void> {
    return this.record(obj, 'Normal', reason, message);
  }

  warning(obj: KubernetesObject, reason: string, message: string): Promise<void> {
    return this.record(obj, 'Warning', reason, message);
  }

  private async write(key: string, ref: V1ObjectReference, type: EventType, reason: string, message: string): Promise<void> {
    const now = this.now();
    const known = this.remembered.get(key);
    try {
      if (known && now.getTime() - known.lastSeenMs <= this.windowMs) {
        try {
          await this.sink.patch(known.namespace, known.name, { count: known.count + 1, lastTimestamp: now });
          this.remember(key, { ...known, count: known.count + 1, lastSeenMs: now.getTime() });
          return;
        } catch (err) {
          if (!isNotFound(err)) throw err; // expired or deleted: start a new one
        }
      }
      const namespace = ref.namespace || 'default'; // events about cluster-scoped objects live in default
      const created = await this.sink.create(namespace, {
        metadata: { name: `${ref.name}.${uniqueSuffix(now)}`, namespace },
        involvedObject: ref,
        type,
        reason,
        message,
        count: 1,
        firstTimestamp: now,
        lastTimestamp: now,
        source: { component: this.controller, host: this.instance },
        reportingComponent: this.controller,
        reportingInstance: this.instance,
      });
      this.remember(key, { namespace, name: created.metadata?.name ?? '', count: 1, lastSeenMs: now.getTime() });
    } catch (err) {
      this.logger.warn({ controller: this.controller, object: `${ref.kind}/${ref.name}`, reason, err }, 'could not record event');
    }
  }

  private remember(key: string, entry: Remembered): void {
    this.remembered.delete(key);
    this.remembered.set(key, entry);
    for (const oldest of this.remembered.keys()) {
      if (this.remembered.size <= this.maxRemembered) break;
      this.remembered.delete(oldest);
    }
  }
}

export function reference(obj: KubernetesObject): V1ObjectReference {
  const m = obj.metadata ?? {};
  return { apiVersion: obj.apiVersion, kind: obj.kind, name: m.name, namespace: m.namespace, uid: m.uid };
}

/** Like client-go: the time in hex nanoseconds-ish plus randomness, unique per event. */
function uniqueSuffix(now: Date): string {
  return `${now.getTime().toString(16)}${randomBytes(3).toString('hex')}`;
}
