import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { CHECKPOINT_DIR_ENV, CLEANUP_FINALIZER, ProviderConditions } from '../../api/constants.js';
import type { GpuJob, GpuProvider } from '../../api/types.js';
import { AssumedAllocations } from '../../core/scheduling/assumed.js';
import { schedule } from '../../core/scheduling/scheduler.js';
import { DEFAULT_SCHEDULER_CONFIG, type SchedulerConfig } from '../../core/scheduling/config.js';
import type { Decision, JobRequest, ScheduleResult } from '../../core/types.js';
import { AttemptPhase, type AttemptStatus, type Assign, type HubMessage } from '../../gen/proto/fedgpu/v1/market.js';
import { type Action, done, requeueAfter, requeueDelay } from '../../runtime/action.js';
import { Controller } from '../../runtime/controller.js';
import { coreEventSink, EventRecorder } from '../../runtime/events.js';
import { applyFinalizer } from '../../runtime/finalizer.js';
import { customResourceSource } from '../../runtime/informer-sources.js';
import { Informer } from '../../runtime/informer.js';
import { gpuJobClient, gpuProviderClient, objectKey } from '../../runtime/kube.js';
import { StatusWriter } from '../../runtime/status-writer.js';
import { endedAttempts, type GpuJobMetrics, timedSchedule } from './metrics.js';
import { type AttemptReport, planJob, type ReportPhase } from './plan.js';
import { providerSnapshot } from './market-view.js';

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
  schedulerConfig?: SchedulerConfig;
  now?: () => number;
  /**
   * Checks a job's funding before it is placed on `candidate` (where the scheduler would put it
   * now): `wait` says why it must wait; `wallet` pins the placement to the provider wallet an
   * escrow already open for this attempt pays.
   */
  fundingCheck?: (job: GpuJob, candidate?: { provider: string; wallet: string }) => Promise<{ wait?: string; wallet?: string }>;
  /** Settlement hooks (hub/settlement.ts); absent when the hub runs without a chain. */
  settlement?: GpuJobSettlementHooks;
  /** Reconcile, scheduler and attempt metrics (see jobs/metrics.ts). */
  metrics?: GpuJobMetrics;
}

export interface GpuJobSettlementHooks {
  /** A deleted job keeps its finalizer until this is done: every escrow closed on chain. */
  release(job: GpuJob): Promise<Action>;
}

const FIELD_MANAGER = 'fedgpu-gpujob-controller';
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
  readonly providers: Informer<GpuProvider>;
  readonly assumed = new AssumedAllocations();
  private readonly reports = new Map<string, AttemptReport>();
  private readonly controller: Controller;
  private readonly statusWriter: StatusWriter<GpuJob>;
  private readonly recorder: EventRecorder;
  private readonly jobClient;
  private readonly now: () => number;
  private readonly config: SchedulerConfig;

  constructor(private readonly opts: GpuJobControllerOptions) {
    const custom = opts.kubeConfig.makeApiClient(CustomObjectsApi);
    this.jobClient = gpuJobClient(custom, FIELD_MANAGER);
    const informerOptions = { kubeConfig: opts.kubeConfig, logger: opts.logger };
    this.jobs = new Informer(customResourceSource(this.jobClient), informerOptions);
    this.providers = new Informer(customResourceSource(gpuProviderClient(custom)), informerOptions);
    this.statusWriter = StatusWriter.forCustomObjects(this.jobClient, FIELD_MANAGER);
    this.recorder = new EventRecorder({
      sink: coreEventSink(opts.kubeConfig.makeApiClient(CoreV1Api)),
      controller: 'fedgpu.io/gpujob-controller',
      logger: opts.logger,
    });
    this.now = opts.now ?? Date.now;
    this.config = opts.schedulerConfig ?? DEFAULT_SCHEDULER_CONFIG;
    this.controller = new Controller({
      name: 'gpujob',
      reconcile: (key) => this.reconcile(key),
      logger: opts.logger,
      concurrency: 1, // one scheduler decision at a time: assumptions stay consistent
      ...(opts.metrics?.controller ? { metrics: opts.metrics.controller } : {}),
    });
    this.controller.watch(this.jobs);
    // Any market change may let a pending job fit, or mean a running job's provider was lost.
    // Only the jobs a provider change can affect: those waiting for a placement, and those whose
    // live attempt runs on that provider. Heartbeats update providers often; waking every job on
    // each one kept the hub reconciling hundreds of idle jobs a second (bench/e2e-throughput).
    this.controller.watch(this.providers, (provider) =>
      this.jobs
        .list()
        .filter((j) => !isFinished(j) && (needsPlacement(j) || liveAttemptOn(j, provider.metadata?.name)))
        .map(objectKey),
    );
  }

  async start(): Promise<void> {
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
    const job = this.jobs.list().find((j) => j.metadata.uid === status.jobUid);
    const current = job?.status?.attempts?.find((a) => a.epoch === job.status?.currentEpoch);
    const live = current && current.provider === provider && current.epoch === status.epoch && !current.endTime;
    if (!job || !live) {
      const done = current?.provider === provider && current.epoch === status.epoch && current.outcome === 'Succeeded';
      if (!done) {
        this.opts.metrics?.reportFenced?.(job ? 'stale_epoch' : 'unknown_job');
        this.opts.logger.warn({ provider, job: status.jobUid, epoch: status.epoch }, 'fenced a report from an attempt that is not current; cancelling it');
        this.opts.agents.send(provider, cancelMessage(status.jobUid, status.epoch, 'Fenced', 0));
      }
      return;
    }
    this.reports.set(status.jobUid, {
      epoch: status.epoch,
      phase: PHASES[status.phase] ?? 'Pending',
      gpuSeconds: status.gpuSeconds,
      exitCode: status.exitCode,
      reason: status.reason,
      message: status.message,
    });
    this.controller.enqueue(objectKey(job));
  }

  /** After an agent (re)connects: the full set of attempts it should run, level-triggered. */
  resync(provider: string): void {
    const desired: Assign[] = [];
    for (const job of this.jobs.list()) {
      const current = job.status?.attempts?.find((a) => a.epoch === job.status?.currentEpoch);
      if (current && !current.endTime && current.provider === provider && !job.metadata.deletionTimestamp) {
        desired.push(assignOf(job, current.epoch, current.nodes ?? [], current.pricePerGpuHour ?? '0'));
      }
    }
    this.opts.agents.send(provider, { seq: 0, body: { $case: 'resync', value: { desired } } });
  }

  private async reconcile(key: string): Promise<Action> {
    const job = this.jobs.get(key);
    if (!job) return done;
    return applyFinalizer(job, CLEANUP_FINALIZER, { apply: (j) => this.apply(j), cleanup: (j) => this.cleanup(j) }, (obj, patch) =>
      this.jobClient.patch(obj.metadata.name!, obj.metadata.namespace, patch),
    );
  }

  private async apply(job: GpuJob): Promise<Action> {
    const now = this.now();
    const key = objectKey(job);
    const providers = new Map(this.providers.list().map((p) => [p.metadata.name!, p]));
    const inputs = {
      now,
      isProviderLost: (name: string) => isLost(providers.get(name)),
      report: job.metadata.uid ? this.reports.get(job.metadata.uid) : undefined,
    };
    const scheduleOn = (wallet: string | undefined) => (request: JobRequest): ScheduleResult => {
      this.assumed.forget(key);
      const eligible = [...providers.values()].filter((p) => !wallet || p.spec.wallet.toLowerCase() === wallet.toLowerCase());
      // A pinned attempt's escrow already holds its provider's bond: locked stake does not exclude it.
      const snapshots = this.assumed.applyTo(eligible.map((p) => (wallet ? { ...providerSnapshot(p, now), staked: true } : providerSnapshot(p, now))), now);
      const result = timedSchedule(this.opts.metrics, () => schedule(snapshots, request, this.config, now));
      if (!wallet || result.kind !== 'unschedulable') return result;
      return { ...result, message: `the escrow of this attempt pays provider wallet ${wallet} only: ${result.message}` };
    };
    // Funding comes after a trial placement: an escrow is opened for (and pays only) one provider.
    let funding: { wait?: string; wallet?: string } = {};
    if (needsPlacement(job) && this.opts.fundingCheck) {
      const trial = planJob(job, { ...inputs, schedule: scheduleOn(undefined) }).assign;
      const wallet = trial ? providers.get(trial.provider)?.spec.wallet : undefined;
      funding = trial && !wallet
        ? { wait: `provider ${trial.provider} has no wallet to open an escrow for` }
        : await this.opts.fundingCheck(job, trial && wallet ? { provider: trial.provider, wallet } : undefined);
    }
    const plan = planJob(job, { ...inputs, blockedBy: funding.wait, schedule: scheduleOn(funding.wallet) });
    // The status is written before anything is sent: a hub that dies after this line re-sends the
    // same (idempotent) assignment on restart; one that dies before it decides again.
    const written = await this.statusWriter.write(job, plan.status);
    if (written.outcome === 'conflict') return written.action;
    if (written.outcome === 'gone') return done;
    const target = written.outcome === 'written' ? written.object : job;
    if (written.outcome === 'written') for (const a of endedAttempts(job, target)) this.opts.metrics?.attemptEnded?.(a);
    for (const c of plan.cancel) this.opts.agents.send(c.provider, cancelMessage(job.metadata.uid!, c.epoch, c.reason, 0));
    if (plan.assign) {
      this.assumed.assume(key, plan.assign.decision, now);
      const delivered = this.opts.agents.send(plan.assign.provider, { seq: 0, body: { $case: 'assign', value: assignOf(job, plan.assign.epoch, nodesOf(plan.assign.decision), plan.assign.decision.pricePerGpuHour) } });
      if (!delivered) this.opts.logger.warn({ job: key, provider: plan.assign.provider }, 'agent not connected; it gets the assignment on reconnect');
    }
    if (isFinished(target) || plan.status.phase === 'Running') this.assumed.forget(key);
    for (const e of plan.events) await this.recorder.record(target, e.type, e.reason, e.message);
    return plan.requeueAfterMs ? requeueAfter(plan.requeueAfterMs) : done;
  }

  private async cleanup(job: GpuJob): Promise<Action> {
    // Every provider that ever ran an attempt is told to delete its pods; one that is offline
    // deletes them at its next resync, which no longer lists this job.
    for (const a of job.status?.attempts ?? []) {
      this.opts.agents.send(a.provider, cancelMessage(job.metadata.uid!, a.epoch, 'JobDeleted', 0));
    }
    this.assumed.forget(objectKey(job));
    // The finalizer also guards open escrow: it stays until settlement has closed every escrow.
    const released = await this.opts.settlement?.release(job);
    if (released && requeueDelay(released) !== undefined) return released;
    if (job.metadata.uid) this.reports.delete(job.metadata.uid);
    return done;
  }
}

const isFinished = (j: GpuJob) => j.status?.phase === 'Succeeded' || j.status?.phase === 'Failed';

function needsPlacement(job: GpuJob): boolean {
  if (isFinished(job)) return false;
  const current = job.status?.attempts?.find((a) => a.epoch === job.status?.currentEpoch);
  return !current || current.endTime !== undefined;
}

function liveAttemptOn(job: GpuJob, provider: string | undefined): boolean {
  const current = job.status?.attempts?.find((a) => a.epoch === job.status?.currentEpoch);
  return current !== undefined && !current.endTime && current.provider === provider;
}

/** Lost: gone, or NotReady because heartbeats stopped (not merely never seen). */
function isLost(provider: GpuProvider | undefined): boolean {
  if (!provider) return true;
  const ready = provider.status?.conditions?.find((c) => c.type === ProviderConditions.Ready);
  return ready?.status === 'False';
}

const nodesOf = (d: Decision) => [...d.assignments].sort((a, b) => a.replica - b.replica).map((a) => a.node);

function assignOf(job: GpuJob, epoch: number, nodes: string[], price: string): Assign {
  const template = Buffer.from(JSON.stringify(job.spec.template));
  const checkpointDir = job.spec.faultTolerance?.checkpoint?.dir ?? '';
  return {
    jobUid: job.metadata.uid!,
    epoch,
    namespace: '',
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
  };
}

function cancelMessage(jobUid: string, epoch: number, reason: string, gracePeriodSeconds: number): HubMessage {
  return { seq: 0, body: { $case: 'cancel', value: { jobUid, epoch, reason, gracePeriodSeconds } } };
}
