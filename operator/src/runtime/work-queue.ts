// A keyed work queue in the manner of client-go's workqueue: a key is queued at most once, is never
// handed to two workers at the same time, and a key added while it is being processed is queued
// again, once, when its worker calls done(). Delayed adds and per-key failure backoff sit on top.
import { type Clock, type TimerHandle, systemClock } from './clock.js';

export interface BackoffOptions {
  /** First retry delay after a failure. */
  baseMs?: number;
  /** The delay doubles per consecutive failure up to this cap. */
  maxMs?: number;
}

export interface WorkQueueOptions {
  clock?: Clock;
  backoff?: BackoffOptions;
}

export interface ShutDownOptions {
  /**
   * true (default): keys already queued are still handed out, and shutDown resolves once they and
   * the keys in flight are done. false: keys not yet started are dropped; only in-flight work is
   * awaited. Delayed adds are dropped either way, and adds after shutDown are ignored.
   */
  drain?: boolean;
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = { baseMs: 100, maxMs: 300_000 };

export class WorkQueue {
  private readonly clock: Clock;
  private readonly backoff: Required<BackoffOptions>;
  /** Keys ready to hand out, in order. */
  private readonly queue: string[] = [];
  /** Keys that need processing: queued, or re-added while in flight. */
  private readonly dirty = new Set<string>();
  /** Keys a worker holds now. */
  private readonly processing = new Set<string>();
  /** Workers blocked in get(). */
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  /** Delayed adds: key → due time. Only the earliest due time per key is kept. */
  private readonly delayed = new Map<string, number>();
  private delayTimer: { handle: TimerHandle; due: number } | undefined;
  private readonly failures = new Map<string, number>();
  private shuttingDown = false;
  private drained: Promise<void> | undefined;
  private resolveDrained: (() => void) | undefined;

  constructor(options: WorkQueueOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
  }

  /** Queues `key` now. A pending delayed add of the key is superseded (now is the earliest). */
  add(key: string): void {
    if (this.shuttingDown) return;
    this.delayed.delete(key);
    if (this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return; // done() queues it again
    this.enqueue(key);
  }

  /** Queues `key` after `ms`; when the key is already due sooner (queued or delayed), the earlier wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    if (this.dirty.has(key)) return; // already queued, or queued again when its worker is done: sooner
    const due = this.clock.now() + ms;
    const existing = this.delayed.get(key);
    if (existing !== undefined && existing <= due) return;
    this.delayed.set(key, due);
    this.armDelayTimer();
  }

  /** Queues `key` after its backoff: baseMs · 2^(failures so far), capped at maxMs. Returns the delay. */
  addRateLimited(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = Math.min(this.backoff.baseMs * 2 ** Math.min(n, 52), this.backoff.maxMs);
    this.addAfter(key, delay);
    return delay;
  }

  /** Clears the failure count of `key` (call on success), so its next failure starts at baseMs. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** How many times in a row `key` has failed. */
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /**
   * The next key to process; waits while the queue is empty. Resolves undefined once the queue is
   * shut down and has nothing left to hand out: the worker should exit. Every key returned must be
   * handed back with done().
   */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) return Promise.resolve(this.startProcessing(key));
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks `key` finished; if it was added meanwhile, it is queued again now. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key)) this.enqueue(key);
    this.checkDrained();
  }

  /** Keys waiting to be handed out (not counting delayed ones or those in flight). */
  len(): number {
    return this.queue.length;
  }

  /** Keys scheduled for later. */
  delayedLen(): number {
    return this.delayed.size;
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Stops accepting keys and resolves when the queue has drained (see ShutDownOptions). */
  shutDown(options: ShutDownOptions = {}): Promise<void> {
    const drain = options.drain ?? true;
    this.shuttingDown = true;
    this.drained ??= new Promise((resolve) => (this.resolveDrained = resolve));
    this.delayed.clear();
    if (this.delayTimer) this.clock.clearTimer(this.delayTimer.handle);
    this.delayTimer = undefined;
    if (!drain) {
      this.queue.length = 0;
      this.dirty.clear();
    }
    // Idle workers are released now; busy ones find the queue empty (or drain it) and exit.
    if (this.queue.length === 0) for (const wake of this.waiters.splice(0)) wake(undefined);
    this.checkDrained();
    return this.drained;
  }

  private enqueue(key: string): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(this.startProcessing(key));
    else this.queue.push(key);
  }

  private startProcessing(key: string): string {
    this.dirty.delete(key);
    this.processing.add(key);
    return key;
  }

  private checkDrained(): void {
    if (!this.shuttingDown || this.queue.length > 0 || this.processing.size > 0) return;
    for (const wake of this.waiters.splice(0)) wake(undefined);
    this.resolveDrained?.();
  }

  /** Keeps one timer, set for the earliest delayed key. */
  private armDelayTimer(): void {
    let earliest: number | undefined;
    for (const due of this.delayed.values()) if (earliest === undefined || due < earliest) earliest = due;
    if (earliest === undefined) return;
    if (this.delayTimer && this.delayTimer.due <= earliest) return;
    if (this.delayTimer) this.clock.clearTimer(this.delayTimer.handle);
    const due = earliest;
    this.delayTimer = { due, handle: this.clock.setTimer(() => this.fireDelayed(), due - this.clock.now()) };
  }

  private fireDelayed(): void {
    this.delayTimer = undefined;
    const now = this.clock.now();
    const ready = [...this.delayed].filter(([, due]) => due <= now).sort((a, b) => a[1] - b[1]);
    for (const [key] of ready) this.add(key);
    this.armDelayTimer();
  }
}
