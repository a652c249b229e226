// Every series the hub exports (docs/metrics.md is the contract: names, labels, meaning). Two
// registries: `replica` is what every hub replica exports (leadership, build, reconciles, streams,
// process); `market` is exported by the leader only, so a stand-by never reports stale market state,
// and it is reset the moment this replica stops leading.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { GpuJob, GpuProvider } from '../api/types.js';
import type { ScheduleResult } from '../core/types.js';
import type { RejectReason as EdgeRejectReason } from '../protocol/edge-error.js';
import type { ControllerMetrics, ReconcileSample } from '../runtime/controller.js';
import { registerBuildInfo } from './build-info.js';
import {
  CHAIN_RPC_ERROR_REASONS,
  type ChainRpcErrorReason,
  CONTROLLERS,
  FAULTS,
  type Fault,
  isOneOf,
  MARKET_REJECT_REASONS,
  SCHEDULER_DECISIONS,
  SCHEDULER_REJECT_REASONS,
  SETTLEMENT_FAILURE_REASONS,
  type SettlementFailureReason,
} from './labels.js';
import { jobsByPhase, oldestPendingSeconds, providerSeries, settlementPending } from './market-series.js';
import { marketRejectionLabel, schedulerRejectionLabel } from './reason-maps.js';

/** Where the scrape-time gauges read the market: the leader's informer caches. */
export interface MarketSources {
  providers(): readonly GpuProvider[];
  jobs(): readonly GpuJob[];
  /** When the leader last heard from a provider (its memory; status is written about once a minute). */
  lastHeard?(provider: string): number | undefined;
}

export interface HubMetricsOptions {
  version?: string;
  /** Wall clock for ages (default Date.now). */
  now?: () => number;
  /** prom-client's default process_* and nodejs_* metrics (default true). */
  processMetrics?: boolean;
}

/** A confirmed settlement, as the settlement controller reports it. */
export interface SettlementConfirmed {
  provider: string;
  /** GPU product of the settled attempt(s), for fedgpu_gpu_seconds_total. */
  gpuProduct?: string;
  /** Measured GPU-seconds paid for. */
  gpuSeconds?: number;
  /** Credits paid to the provider (whole credits: the 18-decimal amount / 10^18). */
  paidCredits: number;
  /** From the job's finish to the confirmation. */
  durationSeconds?: number;
}

const IDLE_COLLECTION_OUTCOMES = ['compacted', 'failed'] as const;

const SECONDS_FAST = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
const SECONDS_RECONCILE = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const SECONDS_SETTLEMENT = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600];

export class HubMetrics {
  readonly replica = new Registry();
  readonly market = new Registry();
  private readonly now: () => number;
  private leading = false;
  private sources: MarketSources | undefined;
  private streamCount: () => number = () => 0;
  private settlementEnabled = false;

  // --- every replica ---
  private readonly leader: Gauge;
  private readonly reconciles: Counter<'controller'>;
  private readonly reconcileErrors: Counter<'controller'>;
  private readonly reconcileDuration: Histogram<'controller'>;
  private readonly rejected: Counter<'reason'>;
  private readonly finalizersAdded: Counter;
  private readonly idleCollections: Counter<'outcome'>;
  private readonly idleCollectionPause: Counter;
  private readonly idleCollectionFreed: Counter;
  private readonly chainConnected: Gauge;
  private readonly accessEndpoint: Gauge;

  // --- leader only (market state) ---
  private readonly attempts: Counter<'provider' | 'fault'>;
  private readonly slashed: Counter<'provider'>;
  private readonly minStake: Gauge;
  private readonly decisions: Counter<'reason'>;
  private readonly rejections: Counter<'reason'>;
  private readonly decisionDuration: Histogram;
  private readonly gpuSeconds: Counter<'provider' | 'product'>;
  private readonly settlements: Counter;
  private readonly settlementFailures: Counter<'reason'>;
  private readonly settlementDuration: Histogram;
  private readonly paid: Counter<'provider'>;
  private readonly chainHead: Gauge;
  private readonly rpcErrors: Counter<'reason'>;

  /** Hooks for the runtime Controller (fedgpu_reconcile_*). */
  readonly controllerMetrics: ControllerMetrics = { reconciled: (s) => this.observeReconcile(s) };

  constructor(options: HubMetricsOptions = {}) {
    this.now = options.now ?? Date.now;
    const replica = [this.replica];
    const market = [this.market];
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.replica });
    registerBuildInfo(this.replica, options.version);

    this.leader = new Gauge({ name: 'fedgpu_hub_leader', help: '1 while this replica holds the leader Lease, else 0.', registers: replica });
    this.reconciles = new Counter({ name: 'fedgpu_reconcile_total', help: 'Reconcile calls.', labelNames: ['controller'], registers: replica });
    this.reconcileErrors = new Counter({
      name: 'fedgpu_reconcile_errors_total',
      help: 'Reconciles that ended in the error policy (backoff).',
      labelNames: ['controller'],
      registers: replica,
    });
    this.reconcileDuration = new Histogram({
      name: 'fedgpu_reconcile_duration_seconds',
      help: 'Time per reconcile.',
      labelNames: ['controller'],
      buckets: SECONDS_RECONCILE,
      registers: replica,
    });
    const streams = () => this.streamCount();
    new Gauge({
      name: 'fedgpu_marketplace_streams',
      help: 'Open agent streams on this replica.',
      registers: replica,
      collect() {
        this.set(streams());
      },
    });
    this.chainConnected = new Gauge({
      name: 'fedgpu_settlement_chain_connected',
      help: '1 once this replica has reached its settlement chain, 0 while settlement is degraded (the chain does not answer; retried with back-off). Absent without a chain.',
      registers: [], // registered by the first setChainConnected: a hub without a chain has none
    });
    this.accessEndpoint = new Gauge({
      name: 'fedgpu_hub_access_endpoint_published',
      help: "1 while this replica is the access Service's endpoint (it leads and its last read or write of the EndpointSlice named it), else 0. Absent without --access-service.",
      registers: [], // registered by the first setAccessEndpointPublished: a hub without the access endpoint has none
    });
    this.finalizersAdded = new Counter({
      name: 'fedgpu_gpujob_finalizers_added_total',
      help: "GpuJob finalizers the hub wrote itself, where the chart's finalizer-at-create policy had not put one on.",
      registers: replica,
    });
    this.idleCollections = new Counter({
      name: 'fedgpu_hub_idle_collections_total',
      help: 'Compacting garbage collections the hub ran once quiet after its heap grew (runtime/idle-gc.ts), by outcome.',
      labelNames: ['outcome'],
      registers: replica,
    });
    this.idleCollectionPause = new Counter({
      name: 'fedgpu_hub_idle_collection_pause_seconds_total',
      help: 'Time the event loop stood still in those collections.',
      registers: replica,
    });
    this.idleCollectionFreed = new Counter({
      name: 'fedgpu_hub_idle_collection_freed_bytes_total',
      help: "Bytes of the V8 old generation's committed size those collections handed back.",
      registers: replica,
    });
    this.rejected = new Counter({
      name: 'fedgpu_marketplace_rejected_messages_total',
      help: 'Agent messages refused at the edge, by reason.',
      labelNames: ['reason'],
      registers: replica,
    });

    this.registerProviderGauges();
    this.registerJobGauges();
    const providers = () => this.sources?.providers() ?? [];
    this.attempts = new Counter({
      name: 'fedgpu_provider_attempts_total',
      help: 'Attempts that ended, by fault attribution (none = succeeded).',
      labelNames: ['provider', 'fault'],
      registers: market,
      // Every known provider gets all four series at 0, so increase() sees the first event.
      collect() {
        for (const p of providers()) for (const fault of FAULTS) if (p.metadata.name) this.inc({ provider: p.metadata.name, fault }, 0);
      },
    });
    this.slashed = new Counter({
      name: 'fedgpu_provider_slashed_credits_total',
      help: 'Credits slashed on chain.',
      labelNames: ['provider'],
      registers: market,
      collect() {
        for (const p of providers()) if (p.metadata.name) this.inc({ provider: p.metadata.name }, 0);
      },
    });
    this.minStake = new Gauge({ name: 'fedgpu_provider_min_stake_credits', help: "The market's minimum stake, in credits.", registers: market });
    this.decisions = new Counter({ name: 'fedgpu_scheduler_decisions_total', help: 'Scheduling decisions.', labelNames: ['reason'], registers: market });
    this.rejections = new Counter({
      name: 'fedgpu_scheduler_rejections_total',
      help: 'Provider pools filtered out, by filter.',
      labelNames: ['reason'],
      registers: market,
    });
    this.decisionDuration = new Histogram({
      name: 'fedgpu_scheduler_decision_duration_seconds',
      help: 'Time for one schedule() call.',
      buckets: SECONDS_FAST,
      registers: market,
    });
    this.gpuSeconds = new Counter({
      name: 'fedgpu_gpu_seconds_total',
      help: 'Measured GPU-seconds of settled attempts.',
      labelNames: ['provider', 'product'],
      registers: market,
    });
    this.settlements = new Counter({ name: 'fedgpu_settlements_total', help: 'Settlements confirmed on chain.', registers: market });
    this.settlementFailures = new Counter({
      name: 'fedgpu_settlement_failures_total',
      help: 'Settlements that failed terminally (after retries, or reverted).',
      labelNames: ['reason'],
      registers: market,
    });
    this.settlementDuration = new Histogram({
      name: 'fedgpu_settlement_duration_seconds',
      help: "From a job's finish to its settlement's confirmation.",
      buckets: SECONDS_SETTLEMENT,
      registers: market,
    });
    this.paid = new Counter({ name: 'fedgpu_paid_credits_total', help: 'Credits paid to providers.', labelNames: ['provider'], registers: market });
    this.chainHead = new Gauge({ name: 'fedgpu_chain_head_block', help: 'Latest block the hub has seen.', registers: market });
    this.rpcErrors = new Counter({
      name: 'fedgpu_chain_rpc_errors_total',
      help: 'Individual RPC errors, retried or not.',
      labelNames: ['reason'],
      registers: market,
    });
    this.zeroReplicaCounters();
    this.zeroMarketCounters();
  }

  /** The informer caches the market gauges read at scrape time. */
  observeMarket(sources: MarketSources): void {
    this.sources = sources;
  }

  /** How many agent streams this replica has open (read at scrape time). */
  observeStreams(count: () => number): void {
    this.streamCount = count;
  }

  /** Export fedgpu_settlement_pending (only meaningful when this hub settles on chain). */
  enableSettlementPending(): void {
    this.settlementEnabled = true;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Leadership changed: a replica that stops leading drops every market series at once. */
  setLeader(leading: boolean): void {
    this.leader.set(leading ? 1 : 0);
    if (this.leading && !leading) {
      this.market.resetMetrics();
      this.zeroMarketCounters();
    }
    this.leading = leading;
  }

  /** An edge refusal (MarketServerOptions.onRejection). Reasons outside the label set are not counted. */
  observeRejection(reason: EdgeRejectReason): void {
    const label = marketRejectionLabel(reason);
    if (label) this.rejected.inc({ reason: label });
  }

  /** An attempt report the GpuJob controller fenced: for an unknown job, or a stale epoch. */
  observeFencedReport(reason: 'stale_epoch' | 'unknown_job'): void {
    this.rejected.inc({ reason });
  }

  /** The hub wrote its finalizer onto a GpuJob (no admission policy had). */
  observeFinalizerAdded(): void {
    this.finalizersAdded.inc();
  }

  /** A compacting collection the hub ran when quiet (runtime/idle-gc.ts). */
  observeIdleCollection(collection: { outcome: (typeof IDLE_COLLECTION_OUTCOMES)[number]; pauseMs: number; freedBytes: number }): void {
    this.idleCollections.inc({ outcome: collection.outcome });
    this.idleCollectionPause.inc(Math.max(0, collection.pauseMs) / 1000);
    this.idleCollectionFreed.inc(Math.max(0, collection.freedBytes));
  }

  /** One schedule() call and its result. */
  observeSchedule(result: ScheduleResult, seconds: number): void {
    this.decisionDuration.observe(seconds);
    if (result.kind === 'decision') {
      this.decisions.inc({ reason: 'scheduled' });
      return;
    }
    this.decisions.inc({ reason: 'unschedulable' });
    for (const [reason, count] of Object.entries(result.reasons)) {
      const label = schedulerRejectionLabel(reason);
      if (label) this.rejections.inc({ reason: label }, count);
    }
  }

  /** An attempt ended (written to the GpuJob status), attributed to `faultOf`. */
  observeAttemptEnded(provider: string, faultOf: string | undefined): void {
    // An attribution outside the label set is not counted: never blame a provider on a guess.
    if (isOneOf<Fault>(FAULTS, faultOf)) this.attempts.inc({ provider, fault: faultOf });
  }

  // --- settlement and chain (see settlement-metrics.ts for the functions the controller calls) ---

  observeSettlementConfirmed(s: SettlementConfirmed): void {
    this.settlements.inc();
    if (s.paidCredits > 0) this.paid.inc({ provider: s.provider }, s.paidCredits);
    if (s.gpuProduct && s.gpuSeconds !== undefined && s.gpuSeconds > 0) this.gpuSeconds.inc({ provider: s.provider, product: s.gpuProduct }, s.gpuSeconds);
    if (s.durationSeconds !== undefined && s.durationSeconds >= 0) this.settlementDuration.observe(s.durationSeconds);
  }

  observeSettlementFailure(reason: SettlementFailureReason): void {
    if (isOneOf(SETTLEMENT_FAILURE_REASONS, reason)) this.settlementFailures.inc({ reason });
  }

  observeSlash(provider: string, credits: number): void {
    if (credits > 0) this.slashed.inc({ provider }, credits);
  }

  observeChainHead(block: number): void {
    this.chainHead.set(block);
  }

  observeChainRpcError(reason: ChainRpcErrorReason): void {
    if (isOneOf(CHAIN_RPC_ERROR_REASONS, reason)) this.rpcErrors.inc({ reason });
  }

  setChainConnected(connected: boolean): void {
    if (!this.replica.getSingleMetric('fedgpu_settlement_chain_connected')) this.replica.registerMetric(this.chainConnected);
    this.chainConnected.set(connected ? 1 : 0);
  }

  /** Whether this replica is the access Service's endpoint now (hub/access/leader-endpoint.ts). */
  setAccessEndpointPublished(published: boolean): void {
    if (!this.replica.getSingleMetric('fedgpu_hub_access_endpoint_published')) this.replica.registerMetric(this.accessEndpoint);
    this.accessEndpoint.set(published ? 1 : 0);
  }

  setMinStakeCredits(credits: number): void {
    this.minStake.set(credits);
  }

  // --- exposition ---

  readonly contentType = this.replica.contentType;

  /** The text exposition: the replica's series, plus the market's while leading. */
  async text(): Promise<string> {
    const parts = [await this.replica.metrics()];
    if (this.leading) parts.push(await this.market.metrics());
    return parts.map((p) => (p.endsWith('\n') ? p : `${p}\n`)).join('');
  }

  private observeReconcile(sample: ReconcileSample): void {
    if (!isOneOf(CONTROLLERS, sample.controller)) return;
    const labels = { controller: sample.controller };
    this.reconciles.inc(labels);
    if (sample.outcome === 'error') this.reconcileErrors.inc(labels);
    this.reconcileDuration.observe(labels, sample.durationMs / 1000);
  }

  private zeroReplicaCounters(): void {
    for (const controller of CONTROLLERS) {
      this.reconciles.inc({ controller }, 0);
      this.reconcileErrors.inc({ controller }, 0);
      this.reconcileDuration.zero({ controller });
    }
    for (const reason of MARKET_REJECT_REASONS) this.rejected.inc({ reason }, 0);
    for (const outcome of IDLE_COLLECTION_OUTCOMES) this.idleCollections.inc({ outcome }, 0);
  }

  private zeroMarketCounters(): void {
    for (const reason of SCHEDULER_DECISIONS) this.decisions.inc({ reason }, 0);
    for (const reason of SCHEDULER_REJECT_REASONS) this.rejections.inc({ reason }, 0);
    for (const reason of SETTLEMENT_FAILURE_REASONS) this.settlementFailures.inc({ reason }, 0);
    for (const reason of CHAIN_RPC_ERROR_REASONS) this.rpcErrors.inc({ reason }, 0);
  }

  // Provider gauges are rebuilt from the GpuProvider cache on every scrape: a provider that is gone
  // from the cache is gone from the metrics.
  private registerProviderGauges(): void {
    const registers = [this.market];
    const rows = () => (this.sources ? providerSeries(this.sources.providers(), this.sources.jobs(), this.now(), this.sources.lastHeard?.bind(this.sources)) : []);
    const perProvider = (name: string, help: string, value: (r: ReturnType<typeof rows>[number]) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ['provider'],
        registers,
        collect() {
          this.reset();
          for (const r of rows()) {
            const v = value(r);
            if (v !== undefined) this.set({ provider: r.provider }, v);
          }
        },
      });
    perProvider('fedgpu_provider_ready', "1 when the GpuProvider's Ready condition is True, else 0.", (r) => r.ready);
    perProvider('fedgpu_provider_heartbeat_age_seconds', 'Now minus the last heartbeat the leader heard (else status.lastHeartbeatTime).', (r) => r.heartbeatAgeSeconds);
    perProvider('fedgpu_provider_reputation_score', 'status.reputation.score, 0..1.', (r) => r.reputationScore);
    perProvider('fedgpu_provider_stake_credits', 'Stake on chain (status.stake.amount), in credits.', (r) => r.stakeCredits);
    perProvider('fedgpu_provider_rtt_seconds', 'EWMA of the hub-agent round trip.', (r) => r.rttSeconds);
    perProvider('fedgpu_provider_running_jobs', 'Attempts running on the provider.', (r) => r.runningJobs);
    const perProduct = (name: string, help: string, pick: 'total' | 'idle') =>
      new Gauge({
        name,
        help,
        labelNames: ['provider', 'product'],
        registers,
        collect() {
          this.reset();
          for (const r of rows()) for (const [product, n] of r.gpus) this.set({ provider: r.provider, product }, n[pick]);
        },
      });
    perProduct('fedgpu_provider_gpus', "GPUs the provider's pools report.", 'total');
    perProduct('fedgpu_provider_gpus_idle', 'Idle GPUs offered to the market.', 'idle');
  }

  private registerJobGauges(): void {
    const registers = [this.market];
    const jobs = () => this.sources?.jobs() ?? [];
    const now = () => this.now();
    const settling = () => this.settlementEnabled;
    new Gauge({
      name: 'fedgpu_jobs',
      help: 'GpuJobs per status.phase.',
      labelNames: ['phase'],
      registers,
      collect() {
        for (const [phase, n] of Object.entries(jobsByPhase(jobs()))) this.set({ phase }, n);
      },
    });
    new Gauge({
      name: 'fedgpu_jobs_pending_oldest_seconds',
      help: 'Age of the oldest Pending GpuJob; 0 when none is Pending.',
      registers,
      collect() {
        this.set(oldestPendingSeconds(jobs(), now()));
      },
    });
    new Gauge({
      name: 'fedgpu_settlement_pending',
      help: 'Finished GpuJobs whose escrow is not settled yet.',
      registers,
      collect() {
        this.set(settling() ? settlementPending(jobs()) : 0);
      },
    });
  }
}
