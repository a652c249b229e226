import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { CHECKPOINT_DIR_ENV, CLEANUP_FINALIZER, ProviderConditions } from '../../api/constants.js';
import type { GpuJob, GpuProvider } from '../../api/types.js';
import { AssumedAllocations } from '../../core/scheduling/assumed.js';
import { schedule } from '../../core/scheduling/scheduler.js';
import { DEFAULT_SCHEDULER_CONFIG, type SchedulerConfig } from '../../core/scheduling/config.js';
import type { Decision, JobRequest, ScheduleResult } from '../../core/types.js';
import { parseMoney } from '../../core/money.js';
import { AttemptPhase, HubMessage, type AttemptSecret, type AttemptStatus, type Assign, type Inventory, type PodEvents } from '../../gen/proto/fedgpu/v1/market.js';
import { defaultMaxHubMessageBytes } from '../../protocol/framing.js';
import { type Action, done, requeueAfter, requeueDelay } from '../../runtime/action.js';
import { Controller } from '../../runtime/controller.js';
import { coreEventSink, EventRecorder } from '../../runtime/events.js';
import { applyFinalizer } from '../../runtime/finalizer.js';
import { customResourceSource } from '../../runtime/informer-sources.js';
import { Informer } from '../../runtime/informer.js';
import { gpuJobClient, gpuProviderClient, objectKey } from '../../runtime/kube.js';
import { StatusWriter } from '../../runtime/status-writer.js';
import { endedAttempts, type GpuJobMetrics, timedSchedule } from './metrics.js';
import { FreshJobs } from './fresh-jobs.js';
import { JobIndex } from './job-index.js';
import { type AttemptReport, planJob, type ReportPhase } from './plan.js';
import { nextEpoch } from '../settlement/billing.js';
import { fundingWaitReason } from '../settlement/wait-reason.js';
import type { FundingVerdict } from '../settlement/funding.js';
import { MarketCache } from './market-cache.js';
import { SchedulingBackoff } from './queue.js';
import { desiredAttempts, judgeReport } from './fence.js';
import { HUB_LOST_CONTACT } from '../providers/registry.js';
import { egressOf, providerSnapshot } from './market-view.js';
import { ReclaimNotices, windowClosedBetween } from './reclaim-notices.js';
import { readJobSecrets, type SecretsRead } from './secrets.js';
import { resyncMessages } from './resync.js';
import { egressToMessage } from '../../agent/attempt/egress.js';
import { DEFAULT_EGRESS } from '../../core/egress.js';
import { judgePodEvent, PodEventBook, recordedPodEvent, stuckMessage, withStuckReason } from './pod-events.js';
import { inventoryPrint, providerPrint, RunningHolds } from './running-holds.js';

// The GpuJob controller: thin I/O around planJob. It keeps the latest attempt report per job in
// memory (agents re-send theirs after every reconnect, so a hub restart loses nothing), fences
// reports from old epochs, and hands assignments to agents through the marketplace server.

export interface AgentLink {
  /** Pushes an Assign, Cancel or Resync to a connected agent; false when it is not connected. */
  send(provider: string, message: HubMessage): boolean;
}

export interface GpuJobControllerOptions {
  kubeConfig: KubeConfig;
  agents: AgentLink;
  logger: Logger;
  /** Largest Resync message before it goes in parts (default: the message limit less a margin; tests set it small). */
  resyncMessageBytes?: number;
  schedulerConfig?: SchedulerConfig;
  now?: () => number;
  /**
   * Checks a job's funding before it is placed on `candidate` (where the scheduler would put it
   * now, at its price): `wait` says why it must wait; `wallet` pins the placement to the provider
   * wallet an escrow already open for this attempt pays; `escrowSecondsLeft` is how long that
   * escrow stays open before its settle window (the attempt gets no more GPU-seconds than fit).
   */
  fundingCheck?: (
    job: GpuJob,
    candidate?: { provider: string; wallet: string; pricePerGpuHour: string },
  ) => Promise<FundingVerdict>;
  /** Settlement hooks (hub/settlement.ts); absent when the hub runs without a chain. */
  settlement?: GpuJobSettlementHooks;
  /** The leader's in-memory heartbeat age of a provider (the registry's), fresher than its status. */
  heartbeatAgeMs?: (provider: string, now: number) => number | undefined;
  /** The leader's live measure of a provider's link (the registry's), fresher than its status. */
  link?: (provider: string) => { rttMs?: number; bandwidthMbps?: number } | undefined;
  /** Reconciles at once (never two of one job); decisions stay consistent through one shared snapshot. Default DEFAULT_JOB_CONCURRENCY. */
  concurrency?: number;
  /** Reconcile, scheduler and attempt metrics (see jobs/metrics.ts). */
  metrics?: GpuJobMetrics;
  /** Token units the job's next attempt may spend (see jobs/budget.ts); undefined: no limit. */
  budgetLeft?: (job: GpuJob) => bigint | undefined;
  /** A placement whose budget covers fewer GPU-seconds at the placed price waits (default 60). */
  minimumRunGpuSeconds?: number;
  /** A start timeout shorter than this is nobody's fault (default 300 s, core/fault.ts). */
  startBlameAfterSeconds?: number;
  /** The hub runs without a chain: every job says so (Settled=False, NoChain). */
  noChain?: boolean;
  /** How long a job may wait unplaced on an escrow pinned to one provider before it is given back (default 2 min). */
  unplacedEscrowTimeoutMs?: number;
}

export interface GpuJobSettlementHooks {
  /** A deleted job keeps its finalizer until this is done: every escrow closed on chain. */
  release(job: GpuJob): Promise<Action>;
}

const FIELD_MANAGER = 'fedgpu-gpujob-controller';

/**
 * GpuJob reconciles at once. A placing reconcile waits on the hub apiserver (two writes), not on
 * the CPU (the decision is ~60 µs). On the 2-core bench the apiserver was saturated: 32 at once
 * placed no faster than 8 (each write just took longer) and slowed everyone else's writes, so the
 * default stays 8; --job-concurrency raises it where the apiserver has room (docs/benchmarks.md, issue 15).
 */
export const DEFAULT_JOB_CONCURRENCY = 8;

/** Event writes at once for the GpuJob controller (runtime/events.ts maxInFlight). */
const EVENT_WRITES_IN_FLIGHT = 2;

/** A Running job's assumption is held at most this long waiting for its provider's inventory (running-holds.ts). */
const RUNNING_HOLD_MAX_MS = 30_000;
const PHASES: Record<number, ReportPhase> = {
  [AttemptPhase.ATTEMPT_PHASE_PENDING]: 'Pending',
  [AttemptPhase.ATTEMPT_PHASE_RUNNING]: 'Running',
  [AttemptPhase.ATTEMPT_PHASE_SUCCEEDED]: 'Succeeded',
  [AttemptPhase.ATTEMPT_PHASE_FAILED]: 'Failed',
  [AttemptPhase.ATTEMPT_PHASE_RECLAIMED]: 'Reclaimed',
  [AttemptPhase.ATTEMPT_PHASE_CANCELLED]: 'Cancelled',
};

export class GpuJobController {
  readonly jobs: Informer<GpuJob>;
  /** The hub's own status writes until the informer has them, and jobs by uid (fresh-jobs.ts). */
  private readonly fresh = new FreshJobs();
  /** Waiting jobs, and live jobs by provider (job-index.ts). */
  private readonly index = new JobIndex();
  readonly providers: Informer<GpuProvider>;
  readonly assumed = new AssumedAllocations();
  private readonly market: MarketCache;
  /** Running jobs' assumptions, held until their provider's written inventory counts their pods. */
  private readonly holds = new RunningHolds();
  private readonly backoff = new SchedulingBackoff();
  /** Cordons each agent streamed, to check the reclaims it reports. */
  readonly reclaimNotices = new ReclaimNotices();
  private readonly reports = new Map<string, AttemptReport>();
  /**
   * Until when a start timeout without a report waits for the agent's (plan.ts awaitReportUntilMs),
   * for providers whose agent has not synced with this hub since it started reconciling.
   */
  private reportsAwaitedUntilMs: number | undefined;
  /** Providers whose agent synced (sent its state, got its Resync) since this hub started. */
  private readonly syncedProviders = new Set<string>();
  /** Since when each job has waited unplaced on the escrow of its next epoch (in memory: a restart waits afresh). */
  private readonly pinnedSince = new Map<string, { epoch: number; since: number }>();
  private readonly controller: Controller;
  private readonly statusWriter: StatusWriter<GpuJob>;
  private readonly recorder: EventRecorder;
  /** Provider pod Events relayed by agents: their own source, bounded per job (jobs/pod-events.ts). */
  private readonly podEventRecorder: EventRecorder;
  private readonly podEvents: PodEventBook;
  private readonly jobClient;
  private readonly core: CoreV1Api;
  private readonly now: () => number;
  private readonly config: SchedulerConfig;

  constructor(private readonly opts: GpuJobControllerOptions) {
    const custom = opts.kubeConfig.makeApiClient(CustomObjectsApi);
    this.jobClient = gpuJobClient(custom, FIELD_MANAGER);
    this.core = opts.kubeConfig.makeApiClient(CoreV1Api);
    const informerOptions = { kubeConfig: opts.kubeConfig, logger: opts.logger };
    this.jobs = new Informer(customResourceSource(this.jobClient), informerOptions);
    this.providers = new Informer(customResourceSource(gpuProviderClient(custom)), informerOptions);
    this.statusWriter = StatusWriter.forCustomObjects(this.jobClient, FIELD_MANAGER);
    this.recorder = new EventRecorder({
      sink: coreEventSink(opts.kubeConfig.makeApiClient(CoreV1Api)),
      controller: 'fedgpu.io/gpujob-controller',
      logger: opts.logger,
      // A burst records two Events per job (Scheduled, Running): they trail it rather than compete
      // with the placements' own writes for the hub apiserver.
      maxInFlight: EVENT_WRITES_IN_FLIGHT,
    });
    this.now = opts.now ?? Date.now;
    this.podEventRecorder = new EventRecorder({
      sink: coreEventSink(opts.kubeConfig.makeApiClient(CoreV1Api)),
      controller: 'fedgpu.io/provider-pod-events',
      logger: opts.logger,
    });
    this.podEvents = new PodEventBook(undefined, this.now);
    this.config = opts.schedulerConfig ?? DEFAULT_SCHEDULER_CONFIG;
    this.controller = new Controller({
      name: 'gpujob',
      reconcile: (key) => this.reconcile(key),
      logger: opts.logger,
      // Reconciles overlap on their API calls; each decision is synchronous against the one shared
      // snapshot and assumed before the next can run, so assumptions stay consistent.
      concurrency: opts.concurrency ?? DEFAULT_JOB_CONCURRENCY,
      ...(opts.metrics?.controller ? { metrics: opts.metrics.controller } : {}),
    });
    this.market = new MarketCache({
      provider: (name) => this.providers.get(name),
      providers: () => this.providers.list(),
      assumed: this.assumed,
      ...(opts.heartbeatAgeMs ? { heartbeatAgeMs: opts.heartbeatAgeMs } : {}),
      ...(opts.link ? { link: opts.link } : {}),
    });
    for (const event of ['add', 'update', 'delete'] as const) this.providers.on(event, (p) => p.metadata?.name && this.market.providerChanged(p.metadata.name));
    for (const event of ['add', 'update'] as const) this.providers.on(event, (p) => p.metadata?.name && this.confirmHeld(p.metadata.name));
    const facts = (j: GpuJob) => {
      const current = j.status?.attempts?.find((a) => a.epoch === j.status?.currentEpoch);
      const live = current !== undefined && !current.endTime ? current.provider : undefined;
      return { finished: isFinished(j), needsPlacement: needsPlacement(j), ...(live ? { liveOn: live } : {}) };
    };
    this.jobs.on('add', (j) => {
      this.fresh.seen(objectKey(j), j);
      this.index.set(objectKey(j), facts(j));
    });
    this.jobs.on('update', (j) => {
      this.fresh.seen(objectKey(j), j);
      this.index.set(objectKey(j), facts(j));
    });
    this.jobs.on('delete', (j) => {
      this.fresh.gone(objectKey(j), j);
      this.index.delete(objectKey(j));
    });
    this.controller.watch(this.jobs);
    // Any market change may let a pending job fit, or mean a running job's provider was lost.
    // Only the jobs a provider change can affect (job-index.ts): those waiting for a placement,
    // and those whose live attempt runs on that provider. Heartbeats update providers often;
    // waking every job on each one kept the hub reconciling hundreds of idle jobs a second
    // (bench/e2e-throughput). A running job depends on its provider only through liveness (Ready,
    // kept by the registry): an inventory change on a provider with hundreds of running jobs
    // wakes none of them.
    const lastReady = new Map<string, string | undefined>();
    this.controller.watch(this.providers, (provider) => {
      const name = provider.metadata?.name;
      const ready = provider.status?.conditions?.find((c) => c.type === 'Ready')?.status;
      const readyChanged = name !== undefined && (!lastReady.has(name) || lastReady.get(name) !== ready);
      if (name !== undefined) lastReady.set(name, ready);
      const now = this.now();
      const keys = this.index.waiting().filter((key) => !this.backoff.isBackingOff(key, now));
      return readyChanged && name !== undefined ? [...keys, ...this.index.liveOn(name)] : keys;
    });
    // A deleted provider is lost to every job running on it.
    this.providers.on('delete', (provider) => {
      const name = provider.metadata?.name;
      if (name === undefined) return;
      lastReady.delete(name);
      this.holds.providerGone(name);
      for (const key of this.index.liveOn(name)) this.controller.enqueue(key);
    });
  }

  async start(): Promise<void> {
    // Reconciles begin here (leadership): agents reconnect and report from now on.
    this.reportsAwaitedUntilMs = this.now() + REPORT_GRACE_AFTER_START_MS;
    await this.controller.start();
  }

  async stop(): Promise<void> {
    await this.controller.stop();
    await Promise.all([this.jobs.stop(), this.providers.stop()]);
  }

  /** Reconciles a job soon (e.g. the settlement controller opened its escrow). */
  enqueue(key: string): void {
    this.controller.enqueue(key);
  }

  /** An agent reported on an attempt. Reports for old epochs are fenced: the agent deletes those pods. */
  onAttemptStatus(provider: string, status: AttemptStatus): void {
    const key = this.fresh.keyOf(status.jobUid);
    const job = key ? this.current(key) : undefined;
    const verdict = judgeReport(job, provider, status.epoch);
    if (verdict.kind === 'fence') {
      this.opts.metrics?.reportFenced?.(verdict.why === 'unknown_job' ? 'unknown_job' : 'stale_epoch');
      this.opts.logger.warn({ provider, job: status.jobUid, epoch: status.epoch, why: verdict.why }, 'fenced a report from an attempt that is not current; cancelling it');
      this.opts.agents.send(provider, cancelMessage(status.jobUid, status.epoch, 'Fenced', 0));
    }
    if (verdict.kind !== 'accept' || !job) return;
    const phase = PHASES[status.phase] ?? 'Pending';
    if (phase === 'Running' || phase === 'Succeeded') this.holds.runningReported(status.jobUid, status.epoch, provider);
    // The hub's own clock for billing: when the first Running report of this epoch arrived (a
    // reconcile may run later under load; the arrival is what the hub saw).
    const previous = this.reports.get(status.jobUid);
    const firstRunningAt = previous?.epoch === status.epoch && previous.firstRunningAt !== undefined
      ? previous.firstRunningAt
      : phase === 'Running' || phase === 'Succeeded' ? this.now() : undefined;
    this.reports.set(status.jobUid, {
      ...(firstRunningAt !== undefined ? { firstRunningAt } : {}),
      epoch: status.epoch,
      phase,
      gpuSeconds: status.gpuSeconds,
      exitCode: status.exitCode,
      reason: status.reason,
      message: status.message,
    });
    this.controller.enqueue(objectKey(job));
  }

  /**
   * An agent relayed Events its cluster recorded about an attempt's pods. Only the provider that
   * runs the job's current, live attempt may; each job records a bounded number, and the latest
   * Warning becomes status.message while the attempt has not started (why a job is stuck).
   */
  onPodEvents(provider: string, batch: PodEvents): void {
    for (const event of batch.events) {
      const key = this.fresh.keyOf(event.jobUid);
      const job = key ? this.current(key) : undefined;
      const verdict = judgePodEvent(job, provider, event);
      if (!verdict.ok || !job) {
        this.opts.logger.debug({ provider, job: event.jobUid, epoch: event.epoch, why: verdict.ok ? 'unknown_job' : verdict.why }, 'ignored a relayed pod event');
        continue;
      }
      if (!this.podEvents.admit(event.jobUid)) continue;
      const recorded = recordedPodEvent(provider, event);
      void this.podEventRecorder.record(job, recorded.type, recorded.reason, recorded.message).catch(() => undefined);
      if (recorded.type === 'Warning') {
        this.podEvents.setStuck(event.jobUid, { epoch: event.epoch, message: stuckMessage(recorded) });
        this.controller.enqueue(objectKey(job));
      }
    }
  }

  /** An agent streamed its inventory: remember its cordons (a reclaim must be announced). */
  onInventory(provider: string, inventory: Inventory): void {
    this.reclaimNotices.record(provider, inventory, this.now());
    this.holds.inventory(provider, inventoryPrint(inventory));
    // Unchanged pools are not written again: the informer may already show this inventory.
    this.confirmHeld(provider);
  }

  /** Gives back the held assumptions whose pods the provider's GpuProvider, as cached, counts. */
  private confirmHeld(provider: string): void {
    const p = this.providers.get(provider);
    if (!p) return;
    for (const h of this.holds.confirmed(provider, providerPrint(p))) {
      if (this.market.assumption(h.jobKey)?.assumedAt === h.assumedAt) this.market.forget(h.jobKey);
    }
  }

  /** The job runs: its GPUs stay assumed until its provider's inventory in the informer counts its pod, or a short bound. */
  private holdUntilInventory(key: string, job: GpuJob, now: number): void {
    const a = this.market.assumption(key);
    if (!a) return;
    if (a.expiresAt > now + RUNNING_HOLD_MAX_MS) this.assumed.restore({ ...a, expiresAt: now + RUNNING_HOLD_MAX_MS });
    this.holds.hold({ jobKey: key, provider: a.provider, assumedAt: a.assumedAt }, job.metadata.uid, job.status?.currentEpoch ?? 0);
    this.confirmHeld(a.provider);
  }

  /** After an agent (re)connects: the full set of attempts it should run, level-triggered. */
  resync(provider: string): void {
    this.syncedProviders.add(provider);
    this.resyncWithSecrets(provider).catch((err: unknown) => this.opts.logger.error({ err, provider }, 'resync failed; the agent keeps its attempts until the next one'));
  }

  // Secrets are read again for the attempts re-sent: an agent that lost its copy (or never got the
  // Assign, when the hub died between status and send) needs them. If one cannot be read now, the
  // attempt is re-sent without it, marked so: the agent keeps the copy it has, and starts nothing
  // without one (it refuses the attempt as SecretsUnavailable and the hub places it again).
  private async resyncWithSecrets(provider: string): Promise<void> {
    const desired: Assign[] = [];
    for (const { job, attempt } of desiredAttempts(this.jobs.list().map((j) => this.fresh.freshest(objectKey(j), j)), provider)) {
      // Only the Secrets the attempt was assigned with (status.attempts[].secretNames), read as the
      // spec maps them: exec and port-forward are checked against those names, so a Secret added
      // to the spec since must not reach the attempt by a resync. Any of them unreadable, or no
      // longer in the spec to say how it is mapped, and the re-send is marked withheld (as is an
      // attempt from before the names were recorded whose job names Secrets).
      const names = attempt.secretNames ?? [];
      const entries = (job.spec.secrets ?? []).filter((s) => names.includes(s.name));
      const read = entries.length > 0 ? await readJobSecrets(this.core, { ...job, spec: { ...job.spec, secrets: entries } }).catch(() => undefined) : undefined;
      const got = read && 'secrets' in read && new Set(entries.map((e) => e.name)).size === new Set(names).size ? read.secrets : undefined;
      const withheld = names.length > 0 ? got === undefined : attempt.secretNames === undefined && (job.spec.secrets?.length ?? 0) > 0;
      desired.push(assignOf(job, attempt.epoch, attempt.nodes ?? [], attempt.pricePerGpuHour ?? '0', attempt.coveredGpuSeconds ?? 0, got ?? [], withheld));
    }
    const result = resyncMessages(desired, this.opts.resyncMessageBytes ?? defaultMaxHubMessageBytes - RESYNC_MARGIN_BYTES);
    if ('tooLarge' in result) {
      this.opts.logger.error({ provider, attempts: desired.length, job: result.tooLarge.jobUid, epoch: result.tooLarge.epoch }, 'an attempt is too large for any message; resync not sent (the agent keeps running what it has)');
      return;
    }
    if ('tooManyParts' in result) {
      this.opts.logger.error({ provider, attempts: desired.length, parts: result.tooManyParts }, 'resync needs more parts than an agent gathers; not sent (the agent keeps running what it has)');
      return;
    }
    if (result.messages.length > 1) this.opts.logger.info({ provider, attempts: desired.length, parts: result.messages.length }, 'resync sent in parts');
    for (const message of result.messages) this.opts.agents.send(provider, message);
  }

  /** The cached job with this uid (agents name jobs by uid): an index lookup, not a scan of every job. */
  jobByUid(uid: string): GpuJob | undefined {
    const key = this.fresh.keyOf(uid);
    const job = key ? this.jobs.get(key) : undefined;
    return job?.metadata.uid === uid ? job : undefined;
  }

  /** The job as the hub last knew it: the cache, or the hub's own newer write over it. */
  private current(key: string): GpuJob | undefined {
    const cached = this.jobs.get(key);
    return cached && this.fresh.freshest(key, cached);
  }

  private async reconcile(key: string): Promise<Action> {
    const job = this.current(key);
    if (!job) return done;
    return applyFinalizer(job, CLEANUP_FINALIZER, { apply: (j) => this.apply(j), cleanup: (j) => this.cleanup(j) }, async (obj, patch) => {
      const patched = await this.jobClient.patch(obj.metadata.name!, obj.metadata.namespace, patch);
      this.fresh.wrote(key, obj.metadata.resourceVersion, patched);
      // Where the chart's policy puts the finalizer on at create, this stays at 0 (docs/metrics.md).
      if (!obj.metadata.finalizers?.includes(CLEANUP_FINALIZER) && patched.metadata.finalizers?.includes(CLEANUP_FINALIZER)) this.opts.metrics?.finalizerAdded?.();
      return patched;
    });
  }

  private async apply(job: GpuJob): Promise<Action> {
    const now = this.now();
    const key = objectKey(job);
    const placing = needsPlacement(job);
    const budgetLeft = placing ? this.opts.budgetLeft?.(job) : undefined;
    const previous = this.market.assumption(key);
    const base: Omit<Parameters<typeof planJob>[1], 'schedule'> = {
      now,
      isProviderLost: (name) => isLost(this.providers.get(name)),
      isLossBlamed: (name) => readyReason(this.providers.get(name)) !== HUB_LOST_CONTACT,
      report: job.metadata.uid ? this.reports.get(job.metadata.uid) : undefined,
      ...(this.opts.noChain ? { noChain: true } : {}),
      ...(budgetLeft !== undefined ? { budgetLeft } : {}),
      ...(this.opts.minimumRunGpuSeconds !== undefined ? { minimumRunGpuSeconds: this.opts.minimumRunGpuSeconds } : {}),
      ...(this.opts.startBlameAfterSeconds !== undefined ? { startBlameAfterSeconds: this.opts.startBlameAfterSeconds } : {}),
      // Until its agent is back (or lost): a provider synced since then has sent what it knows.
      ...(this.reportsAwaitedUntilMs !== undefined && !this.syncedProviders.has(liveProviderOf(job) ?? '') ? { awaitReportUntilMs: this.reportsAwaitedUntilMs } : {}),
      reclaimAnnounced: (name, cause, nodes, sinceMs) => {
        if (cause === 'owner-cordon') return this.reclaimNotices.cordonSeen(name, nodes, sinceMs);
        const p = this.providers.get(name);
        return p !== undefined && windowClosedBetween(providerSnapshot(p, now).availability, sinceMs, now);
      },
    };
    // `assume`: take the decision's GPUs at once, before any await, so a concurrent reconcile's
    // decision sees them. `wallet`: only that provider (an escrow already open for this attempt pays it).
    const scheduleOn = (wallet: string | undefined, assume: boolean, priceCap?: string) => (asked: JobRequest): ScheduleResult => {
      this.market.forget(key);
      const request = withPriceCap(asked, priceCap);
      const market = wallet ? this.pinnedTo(wallet, now) : this.market.view(now);
      const result = timedSchedule(this.opts.metrics, () => schedule(market, request, this.config, now));
      if (result.kind === 'decision' && assume) this.market.assume(key, result, now);
      if (!wallet || result.kind !== 'unschedulable') return result;
      return { ...result, message: `the escrow of this attempt pays provider wallet ${wallet} only: ${result.message}` };
    };
    // Funding comes after a trial placement: an escrow is opened for (and pays only) one provider.
    let funding: FundingVerdict = {};
    let trialResult: ScheduleResult | undefined;
    let trial: ReturnType<typeof planJob>['assign'];
    let secretsRead: SecretsRead | undefined;
    const needsEscrow = placing && this.opts.fundingCheck !== undefined;
    if (placing && this.opts.fundingCheck) {
      trial = planJob(job, { ...base, schedule: (request) => (trialResult = scheduleOn(undefined, false)(request)) }).assign;
      const wallet = trial ? this.providers.get(trial.provider)?.spec.wallet : undefined;
      // Secrets the hub cannot read would hold the placement anyway: no escrow is opened until they
      // can be (each locks one of the provider's stake bonds, and a job left waiting on an ungranted
      // Secret could lock one after another). An escrow already open is still found.
      if (trial && job.spec.secrets?.length) secretsRead = await readJobSecrets(this.core, job);
      const candidate = trial && wallet && !(secretsRead && 'waiting' in secretsRead)
        ? { provider: trial.provider, wallet, pricePerGpuHour: trial.decision.pricePerGpuHour }
        : undefined;
      funding = trial && !wallet
        ? { wait: `provider ${trial.provider} has no wallet to open an escrow for` }
        : await this.opts.fundingCheck(job, candidate);
    }
    const secretsBlock = secretsRead && 'waiting' in secretsRead ? waitingForSecrets(secretsRead.waiting) : {};
    const pinnedEscrow = funding.wallet ? this.pinnedWait(key, job, funding.wallet, now, funding.openedAtGeneration) : (this.pinnedSince.delete(key), undefined);
    const inputs: Parameters<typeof planJob>[1] = {
      ...base,
      // With settlement on, only an open escrow (funding.wallet) places a job. Without one, the plan
      // replays the trial's result instead of scheduling again: GPUs freed while the chain was read
      // would otherwise be placed with no escrow behind them (the trial found no fit, so no escrow
      // was asked for). A trial placement the funding check opened nothing for (it judged the job
      // ends unplaced) waits too.
      ...fundingBlock(funding.wait ?? (needsEscrow && trial && !funding.wallet ? 'waiting for escrow: none is open for this attempt' : undefined)),
      ...secretsBlock,
      // On an open escrow, at no more than the price of the trial placement it was opened for.
      schedule: needsEscrow && !funding.wallet ? replayed(trialResult) : scheduleOn(funding.wallet, !funding.wait, funding.wallet ? funding.openedAtPrice : undefined),
      ...(pinnedEscrow ? { pinnedEscrow } : {}),
      ...(funding.wallet && funding.escrowSecondsLeft !== undefined ? { escrowSecondsLeft: funding.escrowSecondsLeft } : {}),
      // Never more than the open escrow holds: the spec's hold may have grown since it opened, and
      // the settlement controller's record of the escrow may not be in the job yet.
      ...(funding.wallet ? cappedBudget(budgetLeft, funding.escrowAmount) : {}),
      ...(this.opts.unplacedEscrowTimeoutMs !== undefined ? { unplacedEscrowTimeoutMs: this.opts.unplacedEscrowTimeoutMs } : {}),
    };
    let plan = planJob(job, inputs);
    // The invariant the lines above keep, checked where it matters: with settlement on, nothing is
    // placed but on the provider an open escrow pays.
    if (needsEscrow && plan.assign && !this.escrowPays(funding.wallet, plan.assign.provider)) {
      const provider = plan.assign.provider;
      this.opts.logger.error({ job: key, provider, escrowWallet: funding.wallet ?? null }, 'placement without an escrow for its provider refused');
      plan = planJob(job, { ...inputs, ...fundingBlock(`waiting for escrow: none open pays provider ${provider}`) });
    }
    // Secrets are read only once a placement is decided, and go to that Assign alone. Without them
    // (no grant, no Secret, no key) the job waits, saying which.
    let secrets: AttemptSecret[] = [];
    if (plan.assign && job.spec.secrets?.length) {
      const read = secretsRead ?? (await readJobSecrets(this.core, job));
      if ('waiting' in read) plan = planJob(job, { ...inputs, ...waitingForSecrets(read.waiting) });
      else secrets = read.secrets;
    }
    // While the current attempt waits on its provider, the latest relayed Warning says why.
    if (job.metadata.uid) plan = { ...plan, status: withStuckReason(plan.status, this.podEvents.stuck(job.metadata.uid)) };
    // A decision the plan did not act on (the budget short of a minimum run, say) holds no GPUs.
    if (placing && !plan.assign) this.market.forget(key);
    let written;
    const writeStartMs = performance.now();
    try {
      written = await this.statusWriter.write(job, plan.status);
    } catch (err) {
      if (plan.assign) this.market.restore(key, previous);
      throw err;
    }
    if (written.outcome !== 'written' && written.outcome !== 'unchanged' && plan.assign) this.market.restore(key, previous);
    // The status is written before anything is sent: a hub that dies after this line re-sends the
    // same (idempotent) assignment on restart; one that dies before it decides again.
    if (written.outcome === 'conflict') return written.action;
    if (written.outcome === 'written') this.fresh.wrote(key, job.metadata.resourceVersion, written.object);
    if (written.outcome === 'gone') return done;
    const target = written.outcome === 'written' ? written.object : job;
    if (written.outcome === 'written') for (const a of endedAttempts(job, target)) this.opts.metrics?.attemptEnded?.(a);
    for (const c of plan.cancel) this.opts.agents.send(c.provider, cancelMessage(job.metadata.uid!, c.epoch, c.reason, 0));
    if (plan.assign || !needsPlacement(target)) this.pinnedSince.delete(key);
    if (plan.assign) {
      this.backoff.clear(key);
      const delivered = this.opts.agents.send(plan.assign.provider, { seq: 0, body: { $case: 'assign', value: assignOf(job, plan.assign.epoch, nodesOf(plan.assign.decision), plan.assign.decision.pricePerGpuHour, plan.assign.coveredGpuSeconds, secrets) } });
      if (!delivered) this.opts.logger.warn({ job: key, provider: plan.assign.provider }, 'agent not connected; it gets the assignment on reconnect');
      // writeMs: the status write that had to land before the Assign went (bench/stage-times.ts).
      else this.opts.logger.info({ job: key, uid: job.metadata.uid, epoch: plan.assign.epoch, provider: plan.assign.provider, writeMs: Math.round((performance.now() - writeStartMs) * 10) / 10 }, 'assigned');
    }
    if (isFinished(target)) {
      this.market.forget(key);
      this.holds.release(key);
      this.backoff.clear(key);
    } else if (plan.status.phase === 'Running') {
      this.holdUntilInventory(key, target, now);
      this.backoff.clear(key);
    }
    // Events are recorded without holding up the next reconcile (the recorder logs its failures).
    for (const e of plan.events) void this.recorder.record(target, e.type, e.reason, e.message).catch(() => undefined);
    if (!plan.assign && needsPlacement(target) && plan.requeueAfterMs) return requeueAfter(this.backoff.unschedulable(key, now));
    return plan.requeueAfterMs ? requeueAfter(plan.requeueAfterMs) : done;
  }

  /** Whether an escrow open for `wallet` pays `provider` (GpuMarket pays one provider wallet per escrow). */
  private escrowPays(wallet: string | undefined, provider: string): boolean {
    const payee = this.providers.get(provider)?.spec.wallet;
    return wallet !== undefined && payee !== undefined && payee.toLowerCase() === wallet.toLowerCase();
  }

  /** How long the job has waited unplaced on the escrow its next epoch already has (pinned to `wallet`). */
  private pinnedWait(key: string, job: GpuJob, wallet: string, now: number, openedAtGeneration?: number): { epoch: number; provider: string; waitedMs: number; specChanged: boolean } {
    const epoch = nextEpoch(job);
    let pin = this.pinnedSince.get(key);
    if (!pin || pin.epoch !== epoch) this.pinnedSince.set(key, (pin = { epoch, since: now }));
    const provider = this.providers.list().find((p) => p.spec.wallet?.toLowerCase() === wallet.toLowerCase())?.metadata.name ?? wallet;
    const specChanged = openedAtGeneration !== undefined && job.metadata.generation !== undefined && job.metadata.generation !== openedAtGeneration;
    return { epoch, provider, waitedMs: now - pin.since, specChanged };
  }

  /**
   * The market as one provider wallet's snapshots (the rare attempt whose escrow is already open):
   * built apart from the shared snapshot, with the assumptions of other jobs applied. Its escrow
   * already holds the provider's bond, so locked stake does not exclude it.
   */
  private pinnedTo(wallet: string, now: number) {
    const eligible = this.providers.list().filter((p) => p.spec.wallet.toLowerCase() === wallet.toLowerCase());
    return this.assumed.applyTo(eligible.map((p) => ({ ...providerSnapshot(p, now), staked: true })), now);
  }

  private async cleanup(job: GpuJob): Promise<Action> {
    // Every provider that ever ran an attempt is told to delete its pods; one that is offline
    // deletes them at its next resync, which no longer lists this job.
    for (const a of job.status?.attempts ?? []) {
      this.opts.agents.send(a.provider, cancelMessage(job.metadata.uid!, a.epoch, 'JobDeleted', 0));
    }
    this.market.forget(objectKey(job));
    this.holds.release(objectKey(job), job.metadata.uid);
    this.backoff.clear(objectKey(job));
    // The finalizer also guards open escrow: it stays until settlement has closed every escrow.
    const released = await this.opts.settlement?.release(job);
    if (released && requeueDelay(released) !== undefined) return released;
    if (job.metadata.uid) {
      this.reports.delete(job.metadata.uid);
      this.podEvents.forget(job.metadata.uid);
    }
    this.pinnedSince.delete(objectKey(job));
    return done;
  }
}

const isFinished = (j: GpuJob) => j.status?.phase === 'Succeeded' || j.status?.phase === 'Failed';

function needsPlacement(job: GpuJob): boolean {
  if (isFinished(job)) return false;
  const current = job.status?.attempts?.find((a) => a.epoch === job.status?.currentEpoch);
  return !current || current.endTime !== undefined;
}

/** Lost: gone, or NotReady because heartbeats stopped (not merely never seen). */
function readyReason(provider: GpuProvider | undefined): string | undefined {
  return provider?.status?.conditions?.find((c) => c.type === ProviderConditions.Ready)?.reason;
}

function isLost(provider: GpuProvider | undefined): boolean {
  if (!provider) return true;
  const ready = provider.status?.conditions?.find((c) => c.type === ProviderConditions.Ready);
  return ready?.status === 'False';
}

/** The trial's schedule result again, computed on the market as the trial saw it. */
const replayed = (result: ScheduleResult | undefined) => (): ScheduleResult =>
  result ?? { kind: 'unschedulable', reasons: {}, message: 'not scheduled: the trial placement never reached the scheduler' };

const nodesOf = (d: Decision) => [...d.assignments].sort((a, b) => a.replica - b.replica).map((a) => a.node);

/**
 * The request with its price cap lowered to `cap` (credits per GPU-hour), when that is lower. An
 * escrow is opened for a trial placement at one price; a provider that raised its price after seeing
 * the escrow open (still within the consumer's cap) would be paid more for the same GPUs.
 */
export function withPriceCap(request: JobRequest, cap: string | undefined): JobRequest {
  if (cap === undefined || !request.budget) return request;
  const current = request.budget.maxPricePerGpuHour;
  if (current !== undefined && parseMoney(current) <= parseMoney(cap)) return request;
  return { ...request, budget: { ...request.budget, maxPricePerGpuHour: cap } };
}

/**
 * At most how long after this hub starts reconciling a start timeout with no report waits for the
 * attempt's agent to sync: one that has not by then is declared lost anyway (the registry's
 * adoption grace is providerLostAfter plus the agents' longest reconnect backoff).
 */
const REPORT_GRACE_AFTER_START_MS = 120_000;

const liveProviderOf = (job: GpuJob) => job.status?.attempts?.find((a) => !a.endTime)?.provider;

/** Room left in a message for its envelope (seq, framing) beyond the encoded Resync. */
const RESYNC_MARGIN_BYTES = 64 * 1024;

function assignOf(job: GpuJob, epoch: number, nodes: string[], price: string, coveredGpuSeconds: number, secrets: AttemptSecret[], secretsWithheld = false): Assign {
  const template = Buffer.from(JSON.stringify(job.spec.template));
  const checkpointDir = job.spec.faultTolerance?.checkpoint?.dir ?? '';
  return {
    jobUid: job.metadata.uid!,
    epoch,
    // The consumer: each gets a namespace of its own on the provider.
    namespace: job.metadata.namespace ?? '',
    podTemplates: nodes.map(() => template),
    nodeNames: nodes,
    gpusPerReplica: job.spec.gpusPerReplica ?? 1,
    checkpointDir,
    gracePeriodSeconds: job.spec.faultTolerance?.checkpoint?.gracePeriodSeconds ?? 30,
    env: [
      { name: 'FEDGPU_JOB', value: `${job.metadata.namespace}/${job.metadata.name}` },
      ...(checkpointDir ? [{ name: CHECKPOINT_DIR_ENV, value: checkpointDir }] : []),
    ],
    pricePerGpuHour: price,
    coveredGpuSeconds,
    egress: egressToMessage(job.spec.network?.egress ? egressOf(job.spec.network.egress) : DEFAULT_EGRESS),
    secrets,
    secretsWithheld,
  };
}

function cancelMessage(jobUid: string, epoch: number, reason: string, gracePeriodSeconds: number): HubMessage {
  return { seq: 0, body: { $case: 'cancel', value: { jobUid, epoch, reason, gracePeriodSeconds } } };
}

/** The plan inputs of a job held until its Secrets can be read, saying why. */
function waitingForSecrets(waiting: string): { blockedBy: string; blockedReason: string } {
  return { blockedBy: waiting, blockedReason: 'WaitingForSecrets' };
}

/** planJob's inputs for a job the funding check holds back: the message and its condition reason. */
function fundingBlock(wait: string | undefined): { blockedBy?: string; blockedReason?: string } {
  return wait === undefined ? {} : { blockedBy: wait, blockedReason: fundingWaitReason(wait) };
}

/** The budget a placement on an open escrow may spend: the smaller of the two, where known. */
function cappedBudget(budgetLeft: bigint | undefined, escrowAmount: bigint | undefined): { budgetLeft?: bigint } {
  if (escrowAmount === undefined) return budgetLeft !== undefined ? { budgetLeft } : {};
  return { budgetLeft: budgetLeft !== undefined && budgetLeft < escrowAmount ? budgetLeft : escrowAmount };
}
