// Scheduling backoff for jobs that did not fit, in the manner of kube-scheduler's queues: the
// controller's work queue is the active queue; a job found unschedulable waits out a per-job
// exponential backoff (1 s, 2 s, 4 s, capped at 5 s, the old fixed retry) before it is tried
// again; while it waits, market changes do not wake it (it is retried when its backoff ends), so
// a stream of GpuProvider updates cannot make thousands of pending jobs re-run the scheduler each.
// A placement, or the job leaving, clears its backoff.

export interface SchedulingBackoffOptions {
  initialMs?: number;
  maxMs?: number;
}

export const DEFAULT_SCHEDULING_BACKOFF = { initialMs: 1_000, maxMs: 5_000 };

export class SchedulingBackoff {
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly waiting = new Map<string, { failures: number; untilMs: number }>();

  constructor(options: SchedulingBackoffOptions = {}) {
    this.initialMs = options.initialMs ?? DEFAULT_SCHEDULING_BACKOFF.initialMs;
    this.maxMs = options.maxMs ?? DEFAULT_SCHEDULING_BACKOFF.maxMs;
  }

  /** The job did not fit at `now`: returns how long it waits before its next try. */
  unschedulable(key: string, now: number): number {
    const failures = (this.waiting.get(key)?.failures ?? 0) + 1;
    const delay = Math.min(this.initialMs * 2 ** Math.min(failures - 1, 30), this.maxMs);
    this.waiting.set(key, { failures, untilMs: now + delay });
    return delay;
  }

  /** Whether a market change should leave the job alone for now. */
  isBackingOff(key: string, now: number): boolean {
    const entry = this.waiting.get(key);
    return entry !== undefined && entry.untilMs > now;
  }

  /** Placed, finished or deleted: the next failure starts from the initial delay again. */
  clear(key: string): void {
    this.waiting.delete(key);
  }

  get size(): number {
    return this.waiting.size;
  }
}
