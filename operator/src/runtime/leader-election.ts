// Leader election on a coordination.k8s.io/v1 Lease, following client-go's leaderelection:
//  - a candidate tries to acquire every retryPeriod (jittered); the leader renews every
//    retryPeriod and gives up leadership when it has not renewed for renewDeadline;
//  - every write carries the resourceVersion it read (optimistic concurrency), so of two
//    candidates racing for an expired lease exactly one wins;
//  - a lease counts as held while its holder keeps changing it: expiry is measured on *our* clock
//    from when we last saw the record change (observedTime), never from the holder's renewTime,
//    so clock skew between replicas cannot make two of them leaders;
//  - stop() releases the lease (empty holder), so a successor takes over at its next retry
//    instead of waiting out the lease duration.
import { type CoordinationV1Api, V1MicroTime, type V1Lease, type V1LeaseSpec } from '@kubernetes/client-node';
import { type Clock, jittered, sleep, systemClock } from './clock.js';
import { isConflict, isNotFound } from './kube.js';
import { type Logger, stderrLogger } from './logger.js';

export type LeaseApi = Pick<CoordinationV1Api, 'readNamespacedLease' | 'createNamespacedLease' | 'replaceNamespacedLease'>;

export interface LeaderElectionOptions {
  coordination: LeaseApi;
  /** The Lease's namespace and name: one Lease per elected component. */
  namespace: string;
  name: string;
  /** This replica, e.g. the pod name; unique among candidates. */
  identity: string;
  /** How long a lease stays valid without renewal (client-go default 15 s). */
  leaseDurationMs?: number;
  /** How long the leader keeps trying to renew before it gives up leading (default 10 s). */
  renewDeadlineMs?: number;
  /** Pause between attempts to acquire or renew (default 2 s). */
  retryPeriodMs?: number;
  /**
   * Called on becoming leader. `signal` aborts when leadership ends; the work must stop then
   * (a returned promise is awaited, up to the lease duration, before the lease is released).
   */
  onStartedLeading(signal: AbortSignal): void | Promise<void>;
  onStoppedLeading?(): void;
  /** Called when the observed holder changes (including to ourselves). */
  onNewLeader?(identity: string): void;
  /**
   * Annotations the holder writes on the Lease with every acquire and renew, e.g. where it serves
   * (a stand-by reads them with leaderAnnotations()).
   */
  annotations?: Record<string, string>;
  clock?: Clock;
  random?: () => number;
  logger?: Logger;
}

export interface StopOptions {
  /** Hand the lease back so a successor takes over at once (default true). false: as a crash. */
  release?: boolean;
}

/** client-go's JitterFactor: the acquire pause is spread over [retryPeriod, 2.2 × retryPeriod]. */
const JITTER_FACTOR = 1.2;
const TIMED_OUT = Symbol('timed out');

export class LeaderElector {
  private readonly o: Required<Omit<LeaderElectionOptions, 'onStoppedLeading' | 'onNewLeader' | 'annotations'>> &
    Pick<LeaderElectionOptions, 'onStoppedLeading' | 'onNewLeader' | 'annotations'>;
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;
  private leading: { abort: AbortController; work: Promise<void> } | undefined;
  private observed: { resourceVersion: string; holder: string; durationMs: number; at: number } | undefined;
  private lastHolder: string | undefined;
  private lastAnnotations: Record<string, string> = {};

  constructor(options: LeaderElectionOptions) {
    this.o = {
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      clock: systemClock,
      random: Math.random,
      logger: stderrLogger,
      ...options,
    };
    const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = this.o;
    if (!(leaseDurationMs > renewDeadlineMs)) throw new RangeError('leaseDuration must be greater than renewDeadline');
    if (!(renewDeadlineMs > JITTER_FACTOR * retryPeriodMs)) {
      throw new RangeError(`renewDeadline must be greater than ${JITTER_FACTOR} × retryPeriod`);
    }
  }

  /** Starts campaigning in the background. Idempotent. */
  start(): void {
    if (this.stopping.signal.aborted) throw new Error('leader elector is stopped');
    this.loop ??= this.campaign();
  }

  isLeader(): boolean {
    return this.leading !== undefined;
  }

  /** The holder we last observed (possibly ourselves), if any. */
  leader(): string | undefined {
    return this.lastHolder || undefined;
  }

  /** The Lease's annotations as last observed (those of the holder that wrote it last). */
  leaderAnnotations(): Readonly<Record<string, string>> {
    return this.lastAnnotations;
  }

  /** Whether the observed holder is someone else whose lease has not expired by our clock. */
  isHeldByOther(): boolean {
    return this.heldByOther();
  }

  /** Stops campaigning; if leading, ends the leader's work and (by default) releases the lease. */
  async stop(options: StopOptions = {}): Promise<void> {
    if (this.stopping.signal.aborted) return this.loop;
    this.stopping.abort();
    await this.loop;
    const release = options.release ?? true;
    if (this.leading) await this.stepDown(release);
    // Stopped in the instant between winning the lease and starting to lead: still hand it back.
    else if (release && this.lastHolder === this.o.identity) await this.release();
  }

  private async campaign(): Promise<void> {
    const { retryPeriodMs, renewDeadlineMs, clock } = this.o;
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      // 1. Candidate: try until we hold the lease.
      while (!signal.aborted && !(await this.attempt(renewDeadlineMs))) {
        await sleep(jittered(retryPeriodMs, JITTER_FACTOR, this.o.random), signal, clock);
      }
      if (signal.aborted) return;
      this.becomeLeader();
      // 2. Leader: renew every retryPeriod; give up after renewDeadline without a renewal.
      let lastRenew = clock.now();
      while (!signal.aborted) {
        await sleep(retryPeriodMs, signal, clock);
        if (signal.aborted) return; // stop() steps down (and releases)
        const left = lastRenew + renewDeadlineMs - clock.now();
        if (left > 0 && (await this.attempt(left))) lastRenew = clock.now();
        else if (clock.now() - lastRenew >= renewDeadlineMs || this.heldByOther()) break;
      }
      if (signal.aborted) return;
      this.o.logger.warn({ lease: this.o.name, identity: this.o.identity }, 'lost leadership');
      await this.stepDown(false);
    }
  }

  /** One try to acquire or renew, bounded by `timeoutMs`. True when we hold the lease after it. */
  private async attempt(timeoutMs: number): Promise<boolean> {
    const timeout = new AbortController();
    try {
      const result = await Promise.race([
        this.tryAcquireOrRenew(),
        sleep(timeoutMs, timeout.signal, this.o.clock).then(() => TIMED_OUT),
      ]);
      return result === true;
    } catch (err) {
      this.o.logger.warn({ lease: this.o.name, identity: this.o.identity, err }, 'lease update failed');
      return false;
    } finally {
      timeout.abort();
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { coordination, namespace, name, identity, leaseDurationMs, clock } = this.o;
    const now = new V1MicroTime(clock.now());
    const leaseDurationSeconds = Math.ceil(leaseDurationMs / 1000);
    let current: V1Lease;
    try {
      current = await coordination.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      const body: V1Lease = {
        metadata: { name, namespace, ...(this.o.annotations ? { annotations: this.o.annotations } : {}) },
        spec: { holderIdentity: identity, leaseDurationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 },
      };
      return this.write(() => coordination.createNamespacedLease({ namespace, body }));
    }
    this.observe(current);
    if (this.heldByOther()) return false;
    const old = current.spec ?? {};
    const renewing = old.holderIdentity === identity;
    const spec: V1LeaseSpec = {
      ...old,
      holderIdentity: identity,
      leaseDurationSeconds,
      renewTime: now,
      acquireTime: renewing && old.acquireTime ? new V1MicroTime(old.acquireTime) : now,
      leaseTransitions: (old.leaseTransitions ?? 0) + (renewing ? 0 : 1),
    };
    // The resourceVersion we read makes this a compare-and-swap: a concurrent writer wins, we get 409.
    const metadata = this.o.annotations
      ? { ...current.metadata, annotations: { ...current.metadata?.annotations, ...this.o.annotations } }
      : current.metadata;
    const body: V1Lease = { ...current, metadata, spec };
    return this.write(() => coordination.replaceNamespacedLease({ name, namespace, body }));
  }

  private async write(send: () => Promise<V1Lease>): Promise<boolean> {
    try {
      this.observe(await send());
      return true;
    } catch (err) {
      if (isConflict(err)) return false; // another candidate wrote first (409: conflict or already exists)
      throw err;
    }
  }

  /** Records when (on our clock) we last saw the lease record change. */
  private observe(lease: V1Lease): void {
    const resourceVersion = lease.metadata?.resourceVersion ?? '';
    const holder = lease.spec?.holderIdentity ?? '';
    this.lastAnnotations = lease.metadata?.annotations ?? {};
    if (this.observed?.resourceVersion !== resourceVersion) {
      const durationMs = (lease.spec?.leaseDurationSeconds ?? Math.ceil(this.o.leaseDurationMs / 1000)) * 1000;
      this.observed = { resourceVersion, holder, durationMs, at: this.o.clock.now() };
    }
    if (holder !== this.lastHolder) {
      this.lastHolder = holder;
      if (holder) this.safely(() => this.o.onNewLeader?.(holder), 'onNewLeader');
    }
  }

  /** Someone else holds a lease that has not expired by our clock. */
  private heldByOther(): boolean {
    const o = this.observed;
    if (!o || !o.holder || o.holder === this.o.identity) return false;
    return o.at + o.durationMs > this.o.clock.now();
  }

  private becomeLeader(): void {
    const abort = new AbortController();
    this.o.logger.info({ lease: this.o.name, identity: this.o.identity }, 'became leader');
    const work = (async () => {
      try {
        await this.o.onStartedLeading(abort.signal);
      } catch (err) {
        this.o.logger.error({ lease: this.o.name, err }, 'onStartedLeading failed');
      }
    })();
    this.leading = { abort, work };
  }

  /** Ends the leader's work (waiting up to the lease duration for it), then optionally releases. */
  private async stepDown(release: boolean): Promise<void> {
    const leading = this.leading;
    if (!leading) return;
    leading.abort.abort();
    const bound = new AbortController();
    await Promise.race([leading.work, sleep(this.o.leaseDurationMs, bound.signal, this.o.clock)]);
    bound.abort();
    if (release) await this.release();
    this.leading = undefined;
    this.safely(() => this.o.onStoppedLeading?.(), 'onStoppedLeading');
  }

  /** Empties the holder if it is still us, so candidates acquire at their next retry. */
  private async release(): Promise<void> {
    const { coordination, namespace, name, identity, clock } = this.o;
    try {
      const current = await coordination.readNamespacedLease({ name, namespace });
      if (current.spec?.holderIdentity !== identity) return;
      const now = new V1MicroTime(clock.now());
      const spec: V1LeaseSpec = {
        ...current.spec,
        holderIdentity: '',
        leaseDurationSeconds: 1,
        acquireTime: now,
        renewTime: now,
      };
      await coordination.replaceNamespacedLease({ name, namespace, body: { ...current, spec } });
    } catch (err) {
      // Not fatal: the lease then expires after its duration, as after a crash.
      this.o.logger.warn({ lease: name, identity, err }, 'could not release lease');
    }
  }

  private safely(fn: () => void, what: string): void {
    try {
      fn();
    } catch (err) {
      this.o.logger.error({ lease: this.o.name, err }, `${what} threw`);
    }
  }
}
