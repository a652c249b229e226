// Which provider-side pod Events go to the hub, and when: pure, with the clock injected.
// Only Events about a pod of an attempt the agent runs are considered (the caller resolves that);
// Warnings, plus the few Normal reasons that say what a pending pod waits for. Deduplicated: the
// same Event seen again (a re-list after a dropped watch) or a repeat (its count grew) within
// `repeatAfterMs` is not relayed again. Rate limited per attempt with a token bucket, and the
// distinct events remembered per attempt are bounded, so a crash-looping pod cannot flood the hub.
import type { PodEvent } from '../../gen/proto/fedgpu/v1/market.js';
import { eventReason, maxRelayedMessageChars, oneLine } from '../../protocol/event-text.js';
import { TokenBucket, type TokenBucketOptions } from '../../protocol/rate-limit.js';

/** The attempt pod an Event is about (resolved by the caller from namespace and pod name). */
export interface AttemptPodRef {
  jobUid: string;
  epoch: number;
  replica: number;
}

/** The parts of a provider Event the relay looks at. */
export interface ObservedEvent {
  type: string;
  reason: string;
  message: string;
  /** The Event's count (1 for a new one; the kubelet bumps it on repeats). */
  count: number;
}

export interface RelayLimits {
  /** Events an attempt may send at once. */
  burst: number;
  /** One more token per this many ms. */
  refillMs: number;
  /** Distinct events remembered per attempt (the oldest is forgotten first). */
  maxKeysPerAttempt: number;
  /** A repeat of a relayed event (its count grew) goes again only after this long. */
  repeatAfterMs: number;
}

export const defaultRelayLimits: Readonly<RelayLimits> = Object.freeze({ burst: 8, refillMs: 10_000, maxKeysPerAttempt: 32, repeatAfterMs: 60_000 });

/** Normal reasons worth telling the consumer: the image is (still) being pulled or backing off. */
const relayedNormalReasons: ReadonlySet<string> = new Set(['Pulling', 'Pulled', 'BackOff']);

export function isRelayed(event: Pick<ObservedEvent, 'type' | 'reason'>): boolean {
  return event.type === 'Warning' || (event.type === 'Normal' && relayedNormalReasons.has(event.reason));
}

interface AttemptState {
  bucket: TokenBucket;
  /** Insertion order = recency. */
  seen: Map<string, { count: number; sentAtMs: number }>;
  dropped: number;
}

export class PodEventRelay {
  private readonly attempts = new Map<string, AttemptState>();
  private readonly bucketOptions: TokenBucketOptions;

  constructor(
    private readonly limits: Readonly<RelayLimits> = defaultRelayLimits,
    private readonly now: () => number = Date.now,
  ) {
    this.bucketOptions = { capacity: limits.burst, refillPerSecond: 1000 / limits.refillMs, now };
  }

  /** The message to send for this Event now, or undefined (not relayed, duplicate, or over the rate). */
  offer(pod: AttemptPodRef, event: ObservedEvent): PodEvent | undefined {
    if (!isRelayed(event)) return undefined;
    const now = this.now();
    const type = event.type as 'Warning' | 'Normal';
    const reason = eventReason(event.reason);
    const message = oneLine(event.message, maxRelayedMessageChars);
    const attemptKey = `${pod.jobUid}/${pod.epoch}`;
    const state = this.attempts.get(attemptKey) ?? { bucket: new TokenBucket(this.bucketOptions), seen: new Map(), dropped: 0 };
    this.attempts.set(attemptKey, state);
    const key = JSON.stringify([pod.replica, type, reason, message]);
    const seen = state.seen.get(key);
    if (seen && (event.count <= seen.count || now - seen.sentAtMs < this.limits.repeatAfterMs)) return undefined;
    if (!state.bucket.tryTake()) {
      state.dropped++;
      return undefined;
    }
    state.seen.delete(key);
    state.seen.set(key, { count: Math.max(1, event.count), sentAtMs: now });
    for (const oldest of state.seen.keys()) {
      if (state.seen.size <= this.limits.maxKeysPerAttempt) break;
      state.seen.delete(oldest);
    }
    return { jobUid: pod.jobUid, epoch: pod.epoch, replica: pod.replica, type, reason, message, count: Math.min(Math.max(1, event.count), 0xffff_ffff) };
  }

  /** Events not relayed for an attempt because of the rate limit (for logs). */
  dropped(jobUid: string, epoch: number): number {
    return this.attempts.get(`${jobUid}/${epoch}`)?.dropped ?? 0;
  }

  /** The attempt ("jobUid/epoch") ended or was cancelled: forget what was relayed for it. */
  forget(attemptKey: string): void {
    this.attempts.delete(attemptKey);
  }

  /** Attempts tracked (bounded by the attempts the agent runs; for tests). */
  get size(): number {
    return this.attempts.size;
  }
}

/** An attempt the agent runs, as far as Events are concerned. */
export interface RelayedAttempt {
  jobUid: string;
  epoch: number;
  /** The tenant namespace its pods run in. */
  namespace: string;
  replicas: number;
}

/**
 * The attempt pod an Event is about, or undefined: the Event must live in the attempt's own
 * namespace and name one of its pods (by the agent's deterministic pod names). Events of any other
 * namespace, kind or pod are never relayed.
 */
export function attemptPodOf(
  attempts: Iterable<RelayedAttempt>,
  event: { namespace?: string; involvedObject?: { kind?: string; namespace?: string; name?: string } },
  podNameOf: (jobUid: string, epoch: number, replica: number) => string,
): AttemptPodRef | undefined {
  const object = event.involvedObject;
  if (!event.namespace || object?.kind !== 'Pod' || !object.name || (object.namespace && object.namespace !== event.namespace)) return undefined;
  for (const a of attempts) {
    if (a.namespace !== event.namespace) continue;
    for (let replica = 0; replica < a.replicas; replica++) {
      if (podNameOf(a.jobUid, a.epoch, replica) === object.name) return { jobUid: a.jobUid, epoch: a.epoch, replica };
    }
  }
  return undefined;
}
