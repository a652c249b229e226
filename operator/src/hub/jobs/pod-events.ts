// Provider-side pod Events relayed by an agent, as the hub accepts them: pure parts (which events a
// provider may report for which job, the text recorded, the per-job bound, what status.message
// says while the attempt waits) with the clock injected. The relayed text is the provider's and is
// treated as hostile: made one printable line and bounded again here, whatever the agent did.
import type { GpuJob } from '../../api/types.js';
import type { GpuJobStatus } from '../../gen/api-types.js';
import type { PodEvent } from '../../gen/proto/fedgpu/v1/market.js';
import { eventReason, maxRelayedMessageChars, oneLine } from '../../protocol/event-text.js';
import { TokenBucket, type TokenBucketOptions } from '../../protocol/rate-limit.js';

export type PodEventVerdict = { ok: true } | { ok: false; why: 'unknown_job' | 'not_current_attempt' | 'other_provider' | 'no_such_replica' };

/**
 * A provider may report Events only for the live, current attempt it runs, and only for replicas
 * that attempt has: never for another provider's job, an old epoch, or an ended attempt.
 */
export function judgePodEvent(job: GpuJob | undefined, provider: string, event: Pick<PodEvent, 'epoch' | 'replica'>): PodEventVerdict {
  if (!job) return { ok: false, why: 'unknown_job' };
  const attempt = job.status?.attempts?.find((a) => a.epoch === event.epoch);
  if (!attempt || job.status?.currentEpoch !== event.epoch || attempt.endTime) return { ok: false, why: 'not_current_attempt' };
  if (attempt.provider !== provider) return { ok: false, why: 'other_provider' };
  if (event.replica >= (job.spec.replicas ?? 1)) return { ok: false, why: 'no_such_replica' };
  return { ok: true };
}

export interface RecordedPodEvent {
  type: 'Warning' | 'Normal';
  reason: string;
  /** The GpuJob Event's message: "replica N on provider X: <the provider's message>". */
  message: string;
}

export function recordedPodEvent(provider: string, event: Pick<PodEvent, 'type' | 'reason' | 'message' | 'replica'>): RecordedPodEvent {
  const text = oneLine(event.message, maxRelayedMessageChars) || '(no message)';
  return {
    type: event.type === 'Warning' ? 'Warning' : 'Normal',
    reason: eventReason(event.reason),
    message: `replica ${event.replica} on provider ${provider}: ${text}`,
  };
}

/** The latest Warning of the current attempt, for status.message while it is not yet running. */
export interface StuckReason {
  epoch: number;
  message: string;
}

export function stuckMessage(recorded: RecordedPodEvent): string {
  return `${recorded.reason}: ${recorded.message}`;
}

/**
 * status.message with the latest relayed Warning: only while the job is Scheduled and its current
 * attempt (the one the Warning is about) has neither started running nor ended.
 */
export function withStuckReason(status: GpuJobStatus, stuck: StuckReason | undefined): GpuJobStatus {
  if (!stuck || status.phase !== 'Scheduled' || status.currentEpoch !== stuck.epoch) return status;
  const attempt = status.attempts?.find((a) => a.epoch === stuck.epoch);
  if (!attempt || attempt.runningTime || attempt.endTime) return status;
  return { ...status, message: stuck.message };
}

export interface PodEventBoundOptions {
  /** Events one job may record at once. */
  burst: number;
  /** One more per this many ms. */
  refillMs: number;
  /** Jobs tracked; the least recently seen is forgotten first. */
  maxJobs: number;
}

export const defaultPodEventBound: Readonly<PodEventBoundOptions> = Object.freeze({ burst: 20, refillMs: 5_000, maxJobs: 4096 });

/** Per-job token buckets plus the latest stuck reason, bounded in jobs. */
export class PodEventBook {
  private readonly jobs = new Map<string, { bucket: TokenBucket; stuck?: StuckReason; dropped: number }>();
  private readonly bucketOptions: TokenBucketOptions;

  constructor(
    private readonly options: Readonly<PodEventBoundOptions> = defaultPodEventBound,
    now: () => number = Date.now,
  ) {
    this.bucketOptions = { capacity: options.burst, refillPerSecond: 1000 / options.refillMs, now };
  }

  /** Takes a token for one more Event of this job; false when the job is over its rate. */
  admit(jobUid: string): boolean {
    const entry = this.jobs.get(jobUid) ?? { bucket: new TokenBucket(this.bucketOptions), dropped: 0 };
    this.jobs.delete(jobUid);
    this.jobs.set(jobUid, entry);
    for (const oldest of this.jobs.keys()) {
      if (this.jobs.size <= this.options.maxJobs) break;
      this.jobs.delete(oldest);
    }
    if (!entry.bucket.tryTake()) {
      entry.dropped++;
      return false;
    }
    return true;
  }

  setStuck(jobUid: string, stuck: StuckReason): void {
    const entry = this.jobs.get(jobUid);
    if (entry) entry.stuck = stuck;
  }

  stuck(jobUid: string): StuckReason | undefined {
    return this.jobs.get(jobUid)?.stuck;
  }

  forget(jobUid: string): void {
    this.jobs.delete(jobUid);
  }

  get size(): number {
    return this.jobs.size;
  }
}
