import type { KubeConfig } from '@kubernetes/client-node';
import { reuseConnections } from '../runtime/connections.js';
import type { Wallet } from 'ethers';
import type { Logger } from 'pino';
import { type Assign, type AttemptStatus, type HubMessage, type Inventory, NotOfferedReason, type ProviderProfile, type UnisolatedNamespace } from '../gen/proto/fedgpu/v1/market.js';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { isAvailableAt } from '../core/availability.js';
import { attemptState } from './pods/status.js';
import { attemptStatus, type ReportedState } from './attempt/report.js';
import { fitInventory } from './inventory-fit.js';
import { type ClusterChange, type ClusterWatch, watchCluster } from './cluster-watch.js';
import { buildInventory, runtimeClassOf, type InventoryPool, type ProviderSettings } from './inventory.js';
import { placementProblem } from './placement.js';
import { poolHostPerGpu, shareOnNode } from './node-share.js';
import { RuntimeClassOverheads } from './runtime-overhead.js';
import { withoutOverhead } from '../core/isolation/share.js';
import { ownUsername } from './identity.js';
import { GFD_PRODUCT_LABEL } from '../api/constants.js';
import type { AgentMetrics } from '../metrics/agent-metrics.js';
import type { Readiness } from '../metrics/http-server.js';
import { attemptKey, attemptKeyOfPod, PodRunner } from './pods/runner.js';
import { type BudgetStop, budgetStoppedUsage, capToCovered, PodDeletionWatch, shouldStopForBudget } from './pods/watchdog.js';
import { MANAGED_BY, MANAGED_BY_LABEL, TenantNamespaces } from './tenancy/namespace.js';
import { QuotaWatch } from './tenancy/quota-watch.js';
import { AccessServer } from './access/serve.js';
import { poolAccess } from './access/policy.js';
import { RetainedLogs } from './access/retained-logs.js';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { StreamClient, type StreamClientTls } from './stream/client.js';
import { UsageReceiptBook } from './usage-receipts.js';
import { egressToMessage, poolEgress } from './attempt/egress.js';
import type { CoreV1Event } from '@kubernetes/client-node';
import { ReclaimedAttempts } from './reclaimed.js';
import { DEFAULT_DISK_BOUNDS, EPOCH_LABEL, JOB_UID_LABEL, podName, REPLICA_LABEL } from './pods/build.js';
import { parseQuantity } from '../core/idle.js';
import { attemptPodOf, PodEventRelay } from './pod-events/relay.js';
import { PodEventWatch } from './pod-events/watch.js';
import { PendingPodEvents } from './pod-events/pending.js';
import { MAX_RESYNC_PARTS, defaultEdgeLimits } from '../protocol/limits.js';

// The provider agent: watches its own cluster, streams inventory and attempt status to the hub over
// the one outbound stream, and runs what the hub assigns. After every (re)connect it sends its full
// state again: the hub never depends on replaying missed events.

export interface AgentOptions {
  kubeConfig: KubeConfig;
  settings: ProviderSettings;
  /** Prefix of the per-consumer namespaces job pods run in (agent/tenancy). */
  jobNamespace: string;
  /** ClusterRole with the log, exec and port-forward rights, bound to the agent in each tenant namespace (the chart's `<fullname>-tenant-access`). */
  tenantAccessRole?: string;
  /** Allow DNS egress from job pods (default true); everything else is denied. */
  allowDns?: boolean;
  /** Ephemeral storage per job container: what one gets without a limit, and the most one may set (the tenant LimitRange; default 20Gi and 200Gi). */
  ephemeralStorage?: { default: string; max: string };
  hubAddress: string;
  tls: StreamClientTls;
  wallet: Wallet;
  logger: Logger;
  version?: string;
  heartbeatIntervalMs?: number;
  /** Test bed only: emulated network distance to the hub (see StreamClientOptions). */
  simulatedLatencyMs?: number;
  /** Coalesces bursts of cluster changes into one inventory message. */
  debounceMs?: number;
  /** The agent's series (docs/metrics.md): stream state, idle GPUs, job pods. */
  metrics?: AgentMetrics;
  now?: () => number;
  /** Where ended attempts' log tails are kept, how much per replica, and for how long. */
  logRetention?: { dir?: string; maxBytesPerReplica?: number; maxTotalBytes?: number; retentionMs?: number };
}

const REASON_CODES: Record<string, NotOfferedReason> = {
  PriceBelowBreakEven: NotOfferedReason.NOT_OFFERED_REASON_PRICE_BELOW_BREAK_EVEN,
  OutsideAvailabilityWindow: NotOfferedReason.NOT_OFFERED_REASON_OUTSIDE_AVAILABILITY_WINDOW,
  NoPriceSet: NotOfferedReason.NOT_OFFERED_REASON_DISABLED_BY_OWNER,
};

export function inventoryMessage(pools: InventoryPool[], unisolated: readonly UnisolatedNamespace[] = []): Inventory {
  return {
    unisolatedNamespaces: [...unisolated],
    pools: pools.map((p) => ({
      gpuProduct: p.gpuProduct,
      memoryMib: p.memoryMiB,
      cudaDriverMajor: p.cudaDriverMajor,
      nodes: p.nodes.map((n) => ({ name: n.name, totalGpus: n.totalGpus, idleGpus: n.idleGpus, ready: n.ready, cordoned: n.cordoned })),
      total: p.total,
      allocatable: p.allocatable,
      idle: p.idle,
      pricePerGpuHour: p.pricePerGpuHour,
      breakEvenPricePerGpuHour: p.breakEvenPricePerGpuHour,
      offered: p.offered,
      runtimeClassName: p.runtimeClassName ?? '',
      notOfferedReason: p.offered
        ? NotOfferedReason.NOT_OFFERED_REASON_UNSPECIFIED
        : (REASON_CODES[p.notOfferedReason?.split(':')[0] ?? ''] ?? NotOfferedReason.NOT_OFFERED_REASON_DISABLED_BY_OWNER),
      egress: egressToMessage(p.egress),
      access: { exec: p.access.exec, portForward: p.access.portForward },
      cpuMilliPerGpu: p.hostPerGpu?.cpuMilli ?? 0,
      memoryMibPerGpu: p.hostPerGpu?.memoryMiB ?? 0,
    })),
  };
}

/** The owner's declaration, as the hub mirrors it into the GpuProvider spec. */
export function profileOf(settings: ProviderSettings): ProviderProfile {
  const a = settings.availability;
  return {
    displayName: settings.displayName ?? '',
    region: settings.region ?? '',
    windows: (a?.windows ?? []).map((w) => ({ days: w.days ?? [], start: w.start, end: w.end })),
    utcOffsetMinutes: a?.utcOffsetMinutes ?? 0,
    reservedGpus: a?.reservedGpus ?? 0,
  };
}

type RunnerAssignment = PodRunner['assignments'] extends Map<string, infer A> ? A : never;
const isLive = (phase: string) => phase === 'Pending' || phase === 'Running';

/** Why the owner is taking an attempt's GPUs back, if it is. */
export function reclaimCause(
  pods: readonly V1Pod[],
  nodes: readonly V1Node[],
  settings: ProviderSettings,
  now: number,
): { reason: string; message: string } | undefined {
  const cordoned = new Set(nodes.filter((n) => n.spec?.unschedulable).map((n) => n.metadata?.name));
  const node = pods.map((p) => p.spec?.nodeName).find((n) => n && cordoned.has(n));
  if (node) return { reason: 'OwnerReclaim', message: `the owner cordoned node ${node}` };
  if (settings.availability?.windows?.length && !isAvailableAt(settings.availability, now)) {
    return { reason: 'AvailabilityWindowEnded', message: "the owner's lending window closed" };
  }
  return undefined;
}

/** The debounced publish looks at every attempt at most this often (see schedulePublish). */
const FULL_REPORT_EVERY_MS = 1_000;
/** How long pods about to be deleted wait for their log tails to be kept: a slow apiserver never holds a deletion up for long. */
const TAIL_WAIT_MS = 10_000;

/** Resolves once `kept` settles, or after TAIL_WAIT_MS (the timer holds no exit). */
async function tailsKeptOrTimeout(kept: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([kept, new Promise<void>((resolve) => (timer = setTimeout(resolve, TAIL_WAIT_MS).unref()))]);
  clearTimeout(timer);
}

export class Agent {
  private watch?: ClusterWatch;
  private client?: StreamClient;
  private runner: PodRunner;
  private readonly tenancy: TenantNamespaces;
  /** What the last inventory changed to fit the hub's limits (logged when it changes). */
  private lastFitChanges = '';
  private readonly quotaWatch: QuotaWatch;
  private readonly overheads: RuntimeClassOverheads;
  private timer?: NodeJS.Timeout;
  /** A report pass queued for the next turn of the event loop (see schedulePublish). */
  private reportsQueued?: NodeJS.Immediate;
  /** The attempts that pass looks at: those whose pods or messages changed, or all of them. */
  private changed: Set<string> | 'all' = 'all';
  /** Set by stop(): no more passes or publishes are scheduled. */
  private stopped = false;
  /** When the publish last looked at every attempt, and the pass waiting to be due. */
  private fullReportAt = -Infinity;
  private fullReportTimer?: NodeJS.Timeout;
  private receiptTimer?: NodeJS.Timeout;
  private budgetTimer?: NodeJS.Timeout;
  private readonly receipts: UsageReceiptBook;
  private lastInventory?: string;
  private poolsCache?: { atMs: number; pools: InventoryPool[] };
  /** The agent's own username (agent/identity.ts), learned at start when it binds a tenant-access role. */
  private username?: string;
  private readonly lastAttempt = new Map<string, string>();
  private readonly reclaims = new Map<string, { reason: string; message: string; gpuSeconds: number }>();
  /** Attempts stopped because their escrow is spent (the consumer's side), by key. */
  private readonly budgetStops = new Map<string, BudgetStop>();
  private readonly deletions = new PodDeletionWatch();
  /** Attempts whose end was reported: their state no longer changes (pods cleaned up later are not a fault). */
  private readonly ended = new Map<string, ReportedState>();
  /** The parts of a Resync received so far on this stream (ResyncPart), until its last. */
  private resyncParts: { desired: Assign[]; count: number; overflow: boolean } | undefined;
  /** Reclaimed reports sent, kept until the hub stops listing their attempts (reclaimed.ts). */
  private readonly reclaimed = new ReclaimedAttempts();
  private readonly now: () => number;
  private readonly access: AccessServer;
  private readonly retainedAttempts = new Set<string>();
  private readonly retained: RetainedLogs;
  private retentionTimer?: NodeJS.Timeout;
  /** Provider Events about the attempts' pods, relayed to the hub (agent/pod-events). */
  private podEventWatch?: PodEventWatch;
  private readonly podEventRelay = new PodEventRelay(undefined, () => this.now());
  private readonly pendingPodEvents = new PendingPodEvents();

  constructor(private readonly opts: AgentOptions) {
    reuseConnections(opts.kubeConfig);
    this.quotaWatch = new QuotaWatch(opts.kubeConfig, opts.logger, { labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY}` });
    const tenancy = new TenantNamespaces(opts.kubeConfig, {
      prefix: opts.jobNamespace,
      quotas: this.quotaWatch,
      ...(opts.tenantAccessRole ? { accessRole: { clusterRole: opts.tenantAccessRole, user: () => this.username } } : {}),
      allowDns: opts.allowDns,
      ...(opts.ephemeralStorage ? { defaultEphemeralStorage: opts.ephemeralStorage.default, maxEphemeralStorage: opts.ephemeralStorage.max } : {}),
      onNotRestricted: () => opts.metrics?.onNamespaceNotRestricted(),
      // The hub shows refused namespaces as the GpuProvider's TenantIsolation condition.
      onIsolationChanged: () => this.schedulePublish(),
    }, opts.logger);
    this.tenancy = tenancy;
    const classes = [opts.settings.runtimeClassName, ...Object.values(opts.settings.runtimeClassByProduct ?? {})].filter((c): c is string => !!c);
    this.overheads = new RuntimeClassOverheads(opts.kubeConfig, classes, opts.logger);
    const productOf = (node: string) => this.watch?.nodes().find((n) => n.metadata?.name === node)?.metadata?.labels?.[GFD_PRODUCT_LABEL];
    // The owner's RuntimeClass and egress for the pool of the node each pod goes to.
    const runtimeClassFor = (node: string) => runtimeClassOf(opts.settings, productOf(node));
    this.runner = new PodRunner(
      opts.kubeConfig,
      tenancy,
      opts.logger,
      {
        runtimeClassFor,
        // Every job container gets CPU and memory limits within its replica's share of the node,
        // less its RuntimeClass's pod overhead.
        shareFor: (node, gpus) => {
          const share = shareOnNode(this.watch?.nodes() ?? [], this.watch?.pods() ?? [], (p) => this.runner.isManaged(p), node, gpus);
          return share && withoutOverhead(share, this.overheads.of(runtimeClassFor(node)));
        },
        // ...and ephemeral-storage limits within its share of the node's disk (core/isolation/disk.ts).
        ...(opts.ephemeralStorage ? {
          diskBounds: { ...DEFAULT_DISK_BOUNDS, defaultBytes: parseQuantity(opts.ephemeralStorage.default), maxBytes: parseQuantity(opts.ephemeralStorage.max) },
          maxEmptyDirBytes: parseQuantity(opts.ephemeralStorage.max),
        } : {}),
      },
      (node) => poolEgress(opts.settings, productOf(node) ?? ''),
      (key) => this.schedulePublish(key),
      (assign) => placementProblem(assign, this.currentPools()),
    );
    const retention = opts.logRetention ?? {};
    this.retained = new RetainedLogs({
      dir: retention.dir ?? join(tmpdir(), `fedgpu-agent-logs-${opts.wallet.address.toLowerCase()}`),
      maxBytesPerReplica: retention.maxBytesPerReplica ?? 1024 * 1024,
      // Half the chart's 64Mi /tmp, the default place of the tails.
      maxTotalBytes: retention.maxTotalBytes ?? 32 * 1024 * 1024,
      retentionMs: retention.retentionMs ?? 7 * 24 * 3600_000,
    });
    this.access = new AccessServer({
      kubeConfig: opts.kubeConfig,
      logger: opts.logger,
      policyFor: (pool) => poolAccess(opts.settings, pool),
      retained: this.retained,
      attempt: (jobUid, epoch) => {
        const assignment = this.runner.assignments.get(attemptKey(jobUid, epoch));
        if (!assignment) return undefined;
        const live = this.runner.managed(this.watch?.pods() ?? []).some(
          (p) => p.metadata?.labels?.['fedgpu.io/job-uid'] === jobUid && p.metadata?.labels?.['fedgpu.io/epoch'] === String(epoch) && p.status?.phase === 'Running',
        );
        const pools = assignment.podTemplates.map((_, i) => {
          const node = assignment.nodeNames[i];
          return node ? productOf(node) : undefined;
        });
        return { replicas: assignment.podTemplates.length, containers: containersOf(assignment), live, namespace: assignment.namespace, pools };
      },
    });
    this.receipts = new UsageReceiptBook(opts.wallet, opts.logger);
    this.now = opts.now ?? Date.now;
  }

  async start(): Promise<void> {
    // Log tails past their retention go at start and then every few minutes (or sooner for short retentions).
    this.sweepRetained();
    const retentionMs = this.opts.logRetention?.retentionMs ?? 7 * 24 * 3600_000;
    this.retentionTimer = setInterval(() => this.sweepRetained(), Math.max(1_000, Math.min(retentionMs, 10 * 60_000)));
    this.retentionTimer.unref();
    this.podEventWatch = new PodEventWatch(this.opts.kubeConfig, this.opts.logger, (event) => this.onProviderEvent(event));
    // The quota watch only speeds assignments up (agent/tenancy/quota-watch.ts): not awaited. One
    // the apiserver refuses (an older chart's RBAC) keeps retrying with a logged backoff, and until
    // it has listed, a pod refused on a bound not yet in force is retried, as before.
    this.quotaWatch.start().catch(() => undefined);
    if (this.opts.tenantAccessRole) {
      try {
        this.username = await ownUsername(this.opts.kubeConfig);
      } catch (err) {
        this.opts.logger.error({ err }, 'could not learn the agent\'s own username: tenant namespaces get no access binding, and consumers\' logs, exec and port-forward are refused');
      }
    }
    // Before the first assignment can come: a replica's share is net of its RuntimeClass's overhead.
    await this.overheads.start();
    this.watch = await watchCluster(this.opts.kubeConfig, this.opts.logger, (change) => this.schedulePublish(attemptOfChange(change)));
    this.opts.metrics?.observeAgent({ idleGpus: () => this.idleGpus(), jobPods: () => this.runner.managed(this.watch?.pods() ?? []) });
    this.client = new StreamClient({
      address: this.opts.hubAddress,
      tls: this.opts.tls,
      wallet: this.opts.wallet,
      agentVersion: this.opts.version ?? '0.1.0',
      profile: profileOf(this.opts.settings),
      heartbeatIntervalMs: this.opts.heartbeatIntervalMs,
      simulatedLatencyMs: this.opts.simulatedLatencyMs,
      logger: this.opts.logger,
      onDisconnected: (info) => this.opts.metrics?.onDisconnected(info.code),
      onConnected: (info) => {
        this.receipts.setChain(info.settlement);
        this.opts.metrics?.onConnected();
        this.resyncParts = undefined; // parts of a Resync cut off with the last stream are void
        // Level-triggered: after any reconnect the hub gets our whole state again.
        this.lastInventory = undefined;
        this.lastAttempt.clear();
        this.fullReportAt = -Infinity;
        this.publish();
        this.flushReceipts();
        this.flushPodEvents();
      },
      onHubMessage: (m) => this.onHubMessage(m),
      onTunnelOpen: (session, open) => this.access.serve(session, open),
    });
    this.client.start();
    // Receipts the hub has not acknowledged go again now and then, not only after reconnects.
    this.receiptTimer = setInterval(() => this.flushReceipts(), 15_000);
    // Budget-limited attempts are looked at every second (their pods change nothing in the cluster
    // while they use up the escrow), so the stop comes within a second of the covered GPU-seconds.
    // So are all attempts where the owner lends in windows: a window closes with no event at all.
    const windows = (this.opts.settings.availability?.windows?.length ?? 0) > 0;
    this.budgetTimer = setInterval(() => {
      if (!this.watch || !this.client || this.runner.assignments.size === 0) return;
      if (windows || [...this.runner.assignments.values()].some((a) => a.coveredGpuSeconds > 0)) this.reportEveryAttempt(this.now());
    }, 1_000);
  }

  /** /readyz: the cluster watch has listed (the hub stream may come and go; see docs/metrics.md). */
  readiness(): Readiness {
    const synced = this.watch !== undefined;
    return { ready: synced, checks: { 'cluster watch synced': synced } };
  }

  /**
   * The pools as the inventory sees them now, for judging a placement (agent/placement.ts); one
   * computation serves a burst of Assigns for up to 250 ms. Before the cluster watch has listed:
   * no pool, so nothing is placed.
   */
  private currentPools(): InventoryPool[] {
    const now = this.now();
    if (this.poolsCache && now - this.poolsCache.atMs < 250) return this.poolsCache.pools;
    const pools = this.watch ? this.inventoryOf(this.watch, now) : [];
    this.poolsCache = { atMs: now, pools };
    return pools;
  }

  /** The pools of the cluster at `now`, with what a GPU brings of its node's CPU and memory (node-share.ts). */
  private inventoryOf(watch: ClusterWatch, now: number): InventoryPool[] {
    return buildInventory(watch.nodes(), watch.pods(), this.opts.settings, now, (names, product) => {
      const host = poolHostPerGpu(watch.nodes(), watch.pods(), (p) => this.runner.isManaged(p), names);
      if (!host) return undefined;
      // Net of the pool's RuntimeClass overhead, as the runner bounds a one-GPU replica there.
      const overhead = this.overheads.of(runtimeClassOf(this.opts.settings, product));
      // Never 0 (on the wire: not said); 1m and 1Mi when the overhead leaves nothing: no replica fits.
      return { cpuMilli: Math.max(1, host.cpuMilli - overhead.cpuMilli), memoryMiB: Math.max(1, host.memoryMiB - Math.ceil(overhead.memoryBytes / (1024 * 1024))) };
    });
  }

  /** Idle GPUs per product as the inventory reports them (computed at scrape time). */
  idleGpus(): Map<string, number> {
    const idle = new Map<string, number>();
    if (!this.watch) return idle;
    for (const pool of buildInventory(this.watch.nodes(), this.watch.pods(), this.opts.settings, this.now())) {
      idle.set(pool.gpuProduct, (idle.get(pool.gpuProduct) ?? 0) + pool.idle);
    }
    return idle;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.reportsQueued) clearImmediate(this.reportsQueued);
    if (this.fullReportTimer) clearTimeout(this.fullReportTimer);
    if (this.receiptTimer) clearInterval(this.receiptTimer);
    if (this.budgetTimer) clearInterval(this.budgetTimer);
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    await this.podEventWatch?.stop();
    this.runner.stop();
    this.overheads.stop();
    await this.client?.close();
    await this.watch?.stop();
    await this.quotaWatch.stop();
  }

  // Two paces: attempt reports go out on the next turn of the event loop (a pod turning Running
  // is what the consumer waits for, and every event of one burst still coalesces into one pass);
  // the inventory, a roll-up of every node, is debounced. The next-turn pass looks only at the
  // attempts whose pods or messages changed (`attempt`, an attempt key; undefined: anything else,
  // a node say, and then every attempt; null, a pod of no attempt: none): in a burst of 500
  // assignments, a pass over every attempt on each pod event was a fifth of the agent's CPU
  // (bench/e2e-throughput, BENCH_CPU_PROFILE). The debounced publish looks at every attempt at
  // most once a second (what changes with time alone: a lending window closing, and node cordons).
  private schedulePublish(attempt?: string | null): void {
    if (this.stopped) return;
    if (attempt === undefined) this.changed = 'all';
    else if (attempt !== null && this.changed !== 'all') this.changed.add(attempt);
    if (!this.reportsQueued) {
      this.reportsQueued = setImmediate(() => {
        this.reportsQueued = undefined;
        const changed = this.changed;
        this.changed = new Set();
        if (this.watch && this.client) this.reportAttempts(this.now(), changed);
      });
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.publish();
    }, this.opts.debounceMs ?? 100);
  }

  private publish(): void {
    if (!this.watch || !this.client || this.stopped) return;
    const now = this.now();
    const fitted = fitInventory(inventoryMessage(this.inventoryOf(this.watch, now), this.tenancy.unisolated()));
    const inventory = fitted.inventory;
    const changed = fitted.changes.join('; ');
    if (changed && changed !== this.lastFitChanges) this.opts.logger.warn({ changes: fitted.changes }, 'inventory made to fit the hub\'s limits');
    this.lastFitChanges = changed;
    const text = JSON.stringify(inventory);
    if (text !== this.lastInventory && this.client.sendInventory(inventory)) this.lastInventory = text;
    this.reportEveryAttempt(now);
    this.podEventWatch?.watchNamespaces(new Set([...this.liveAttempts()].map((a) => a.namespace)));
  }

  /** A pass over every attempt, at most once a second: one that is not due yet comes when it is. */
  private reportEveryAttempt(now: number): void {
    // A wall clock stepped back counts as due: the pass never waits for the clock to catch up.
    const wait = now < this.fullReportAt ? 0 : this.fullReportAt + FULL_REPORT_EVERY_MS - now;
    if (wait > 0) {
      if (!this.fullReportTimer) {
        this.fullReportTimer = setTimeout(() => {
          this.fullReportTimer = undefined;
          if (this.watch && this.client && !this.stopped) this.reportEveryAttempt(this.now());
        }, wait);
        this.fullReportTimer.unref();
      }
      return;
    }
    this.fullReportAt = now;
    this.reportAttempts(now);
  }

  /** Attempts the agent runs whose end it has not reported: the only ones whose Events are relayed. */
  private *liveAttempts(): Iterable<{ jobUid: string; epoch: number; namespace: string; replicas: number }> {
    for (const [key, a] of this.runner.assignments) {
      if (!this.ended.has(key)) yield { jobUid: a.jobUid, epoch: a.epoch, namespace: a.namespace, replicas: a.podTemplates.length };
    }
  }

  /** A provider Event: relayed when it is about a pod of a live attempt and passes dedup and rate. */
  private onProviderEvent(event: CoreV1Event): void {
    const pod = attemptPodOf(this.liveAttempts(), { namespace: event.metadata?.namespace, involvedObject: event.involvedObject }, podName);
    if (!pod) return;
    const relayed = this.podEventRelay.offer(pod, {
      type: event.type ?? '',
      reason: event.reason ?? '',
      message: event.message ?? '',
      count: event.count ?? event.series?.count ?? 1,
    });
    if (relayed && !this.client?.sendPodEvents({ events: [relayed] })) {
      this.pendingPodEvents.add(relayed);
      this.opts.logger.debug({ job: pod.jobUid, epoch: pod.epoch, reason: relayed.reason }, 'hub not connected: a pod event waits for the stream');
    }
  }

  /** Pod Events that came while the stream was down, for attempts still live. */
  private flushPodEvents(): void {
    const live = new Set([...this.liveAttempts()].map((a) => attemptKey(a.jobUid, a.epoch)));
    const dropped = this.pendingPodEvents.dropped;
    const batches = this.pendingPodEvents.take((jobUid, epoch) => live.has(attemptKey(jobUid, epoch)), defaultEdgeLimits.maxPodEventsPerMessage);
    if (batches.length || dropped) this.opts.logger.debug({ events: batches.flat().length, pushedOut: dropped }, 'relaying pod events kept while the stream was down');
    for (const [i, events] of batches.entries()) {
      if (this.client?.sendPodEvents({ events })) continue;
      // The stream went again: what is left waits for the next one.
      for (const e of batches.slice(i).flat()) this.pendingPodEvents.add(e);
      return;
    }
  }

  /** The agent's job pods whose attempt ("jobUid/epoch") passes `which`. */
  private podsOf(which: (attemptKey: string) => boolean): V1Pod[] {
    return this.runner.managed(this.watch?.pods() ?? []).filter((p) => which(attemptKeyOfPod(p)));
  }

  /**
   * Keeps the log tails of pods about to be deleted whose tails are not kept yet; waits at most
   * TAIL_WAIT_MS.
   */
  private async keepTailsBefore(pods: readonly V1Pod[]): Promise<void> {
    const attempts = new Map<string, { namespace: string; jobUid: string; epoch: number; containers: string[][] }>();
    for (const pod of pods) {
      const labels = pod.metadata?.labels ?? {};
      const jobUid = labels[JOB_UID_LABEL] ?? '';
      const epoch = Number(labels[EPOCH_LABEL]);
      const replica = Number(labels[REPLICA_LABEL]);
      const namespace = pod.metadata?.namespace ?? '';
      if (!jobUid || !namespace || !Number.isSafeInteger(epoch) || !Number.isSafeInteger(replica) || replica < 0 || replica > 255) continue;
      if (this.retained.has(jobUid, epoch, replica)) continue;
      const key = `${namespace}/${jobUid}/${epoch}`;
      const entry = attempts.get(key) ?? { namespace, jobUid, epoch, containers: [] };
      entry.containers[replica] = (pod.spec?.containers ?? []).map((c) => c.name);
      attempts.set(key, entry);
    }
    if (attempts.size === 0) return;
    const kept = Promise.all(
      [...attempts.values()].map((a) =>
        this.access.retain(a.namespace, a.jobUid, a.epoch, Array.from(a.containers, (c) => c ?? [])).catch((err: unknown) =>
          this.opts.logger.warn({ err, job: a.jobUid, epoch: a.epoch }, 'could not keep the log tail of pods about to be deleted'),
        ),
      ),
    );
    await tailsKeptOrTimeout(kept);
  }

  private sweepRetained(): void {
    try {
      this.retained.sweep();
    } catch (err) {
      this.opts.logger.warn({ err }, 'could not sweep expired log tails');
    }
  }

  /** Reports the attempts in `which` (default all) whose state changed since they were last reported. */
  private reportAttempts(now: number, which: ReadonlySet<string> | 'all' = 'all'): void {
    const podsByAttempt = new Map<string, V1Pod[]>();
    for (const pod of this.runner.managed(this.watch!.pods())) {
      const key = attemptKeyOfPod(pod);
      if (which !== 'all' && !which.has(key)) continue;
      const list = podsByAttempt.get(key);
      if (list) list.push(pod);
      else podsByAttempt.set(key, [pod]);
    }
    for (const key of [...this.ended.keys(), ...this.budgetStops.keys()]) {
      if (!this.runner.assignments.has(key)) this.forgetAttempt(key);
    }
    const attempts = which === 'all' ? this.runner.assignments : [...which].flatMap((key) => {
      const assignment = this.runner.assignments.get(key);
      return assignment ? [[key, assignment] as const] : [];
    });
    for (const [key, assignment] of attempts) {
      const pods = podsByAttempt.get(key) ?? [];
      const state = this.ended.get(key) ?? this.currentState(key, assignment, pods, now);
      if (!state) continue; // pods still in their checkpoint grace
      let retaining: Promise<void> | undefined;
      if ((state.phase === 'Succeeded' || state.phase === 'Failed') && !this.retainedAttempts.has(key)) {
        // Logs outlive the pod: keep each replica's tail before anyone deletes the pods.
        this.retainedAttempts.add(key);
        retaining = this.access.retain(assignment.namespace, assignment.jobUid, assignment.epoch, containersOf(assignment)).catch((err: unknown) =>
          this.opts.logger.warn({ err, job: assignment.jobUid, epoch: assignment.epoch }, 'could not keep the log tail of an ended attempt'),
        );
      }
      if (state.phase === 'Failed' && !this.ended.has(key)) {
        // The attempt is over once one pod failed: the rest of a gang must not keep its GPUs. Their
        // tails are kept first (the collective's timeout trace is often the useful one).
        void tailsKeptOrTimeout(retaining ?? Promise.resolve())
          .then(() => this.runner.stopSurvivors(assignment.jobUid, assignment.epoch, pods, assignment.gracePeriodSeconds ?? 30))
          .catch((err: unknown) =>
            this.opts.logger.error({ err, job: assignment.jobUid, epoch: assignment.epoch }, 'could not stop the pods left of a failed attempt; its cancel or the next resync deletes them'),
          );
      }
      if (state.phase === 'Succeeded' || state.phase === 'Failed' || state.phase === 'Reclaimed') {
        this.ended.set(key, state);
        this.attemptEnded(assignment.jobUid, assignment.epoch, state.gpuSeconds, assignment.pricePerGpuHour, state.phase);
        this.runner.release(assignment.jobUid, assignment.epoch).catch((err: unknown) =>
          this.opts.logger.error({ err, job: assignment.jobUid, epoch: assignment.epoch }, 'could not delete the ended attempt\'s objects; retrying on the next change'),
        );
      }
      const status: AttemptStatus = attemptStatus(assignment.jobUid, assignment.epoch, state);
      // GPU-seconds grow every second while running; report phase changes at once and usage
      // with the heartbeat-paced publishes, not on every tick.
      const fingerprint = JSON.stringify({ ...status, gpuSeconds: state.phase === 'Running' ? 0 : status.gpuSeconds });
      if (fingerprint !== this.lastAttempt.get(key) && this.client!.sendAttemptStatus(status)) {
        this.lastAttempt.set(key, fingerprint);
        if (state.phase === 'Reclaimed') {
          this.reclaimed.record(status);
          this.runner.assignments.delete(key);
          this.forgetAttempt(key);
        }
      }
    }
  }

  /**
   * The attempt's state now: its pods' roll-up, unless the owner is reclaiming it, its escrow is
   * spent, or someone other than the agent removed its pods. undefined while pods are still in the
   * checkpoint grace of a stop the agent began.
   */
  private currentState(key: string, assignment: RunnerAssignment, pods: V1Pod[], now: number): ReportedState | undefined {
    const refused = this.runner.refused.get(key);
    const gpus = assignment.podTemplates.length * assignment.gpusPerReplica;
    const covered = assignment.coveredGpuSeconds;
    const grace = assignment.gracePeriodSeconds ?? 30;
    const stopping = this.reclaims.has(key) || this.budgetStops.has(key);
    const removed = this.deletions.removedByOthers(key, pods, stopping);
    const measured: ReportedState = refused
      ? { phase: 'Failed' as const, gpuSeconds: 0, reason: refused.split(':')[0], message: refused, pods: [] }
      : attemptState(pods, assignment.podTemplates.length, assignment.gpusPerReplica, now, this.watch?.nodes() ?? []);
    // 1. Owner reclaim: the owner cordoned a node under the attempt, or its lending window closed.
    // The pods get their checkpoint grace; once they are gone the attempt is reported reclaimed.
    const reclaim = this.reclaims.get(key) ?? (isLive(measured.phase) && !this.budgetStops.has(key) ? reclaimCause(pods, this.watch!.nodes(), this.opts.settings, now) : undefined);
    if (reclaim) {
      if (!this.reclaims.has(key)) {
        this.reclaims.set(key, { ...reclaim, gpuSeconds: capToCovered(measured.gpuSeconds, covered) });
        this.opts.logger.info({ job: assignment.jobUid, epoch: assignment.epoch, reason: reclaim.reason }, 'owner reclaim: giving pods their checkpoint grace');
        this.stopPods(assignment, grace);
      }
      if (pods.length > 0) return undefined;
      const done = this.reclaims.get(key)!;
      return { phase: 'Reclaimed', gpuSeconds: done.gpuSeconds, reason: done.reason, message: done.message, pods: [] };
    }
    // 2. The escrow is spent: stop early enough that the checkpoint grace is covered too.
    let stop = this.budgetStops.get(key);
    if (!stop && isLive(measured.phase) && shouldStopForBudget(measured.gpuSeconds, covered, gpus, grace)) {
      stop = { gpuSeconds: measured.gpuSeconds, atMs: now };
      this.budgetStops.set(key, stop);
      this.opts.logger.info({ job: assignment.jobUid, epoch: assignment.epoch, covered }, 'budget spent: stopping the pods with their checkpoint grace');
      this.stopPods(assignment, grace);
    }
    if (stop) {
      if (pods.length > 0) return undefined;
      const message = `the escrow covers ${covered} GPU-seconds at ${assignment.pricePerGpuHour} credits/GPU-hour; they are used`;
      return { phase: 'Failed', reason: 'BudgetExhausted', message, gpuSeconds: budgetStoppedUsage(stop, gpus, now, covered), pods: [] };
    }
    // 3. Pods gone that the agent did not delete: only the provider's admins can do that.
    if (removed.length > 0 && isLive(measured.phase)) {
      const message = `pod(s) ${removed.join(', ')} deleted by someone other than the agent`;
      return { ...measured, phase: 'Failed', reason: 'PodsDeleted', message, gpuSeconds: capToCovered(measured.gpuSeconds, covered) };
    }
    return { ...measured, gpuSeconds: capToCovered(measured.gpuSeconds, covered) };
  }

  private stopPods(assignment: RunnerAssignment, grace: number): void {
    // Keep the log tails first (the pods are about to go), then give the grace.
    this.retainedAttempts.add(attemptKey(assignment.jobUid, assignment.epoch));
    this.access
      .retain(assignment.namespace, assignment.jobUid, assignment.epoch, containersOf(assignment))
      .catch((err: unknown) => this.opts.logger.warn({ err }, 'could not keep the log tail of a stopped attempt'))
      .then(() => this.runner.reclaim(assignment.jobUid, assignment.epoch, grace))
      .catch((err) => this.opts.logger.error({ err }, 'failed to delete the pods of a stopped attempt; retrying on the next change'));
  }

  private forgetAttempt(key: string): void {
    this.ended.delete(key);
    this.budgetStops.delete(key);
    this.reclaims.delete(key);
    this.deletions.forget(key);
    this.podEventRelay.forget(key);
  }

  /** An attempt ended: its provider signs the final usage once; it is sent until acknowledged. */
  private attemptEnded(jobUid: string, epoch: number, gpuSeconds: number, pricePerGpuHour: string, ended: string): void {
    if (this.receipts.has(jobUid, epoch)) return;
    this.receipts.record({ jobUid, epoch, gpuSeconds, pricePerGpuHour, ended });
    this.flushReceipts();
  }

  /** The hub stopped a running attempt (job deleted, deadline): the usage so far is receipted too. */
  private cancelled(jobUid: string, epoch: number, reason: string): void {
    const key = attemptKey(jobUid, epoch);
    const assignment = this.runner.assignments.get(key);
    if (!assignment || !this.watch || this.receipts.has(jobUid, epoch)) return;
    const pods = this.runner.managed(this.watch.pods()).filter((p) => attemptKeyOfPod(p) === key);
    const state = attemptState(pods, assignment.podTemplates.length, assignment.gpusPerReplica, this.now());
    this.attemptEnded(jobUid, epoch, capToCovered(state.gpuSeconds, assignment.coveredGpuSeconds), assignment.pricePerGpuHour, `Cancelled:${reason}`);
  }

  private flushReceipts(): void {
    this.receipts
      .sendAll((receipt) => this.client?.sendUsageReceipt(receipt) ?? false)
      .catch((err: unknown) => this.opts.logger.error({ err }, 'could not sign or send usage receipts; retrying later'));
  }

  /** Converges to the hub's desired set (a Resync, or the union of its parts). */
  private async applyResync(listed: readonly Assign[]): Promise<void> {
    // Attempts reclaimed here that the hub still lists: reported again, not run again.
    const { run: desired, resend } = this.reclaimed.resync(listed);
    for (const report of resend) this.client?.sendAttemptStatus(report);
    // Pods of attempts the hub no longer wants (a zombie fenced after a reconnect, say) are
    // deleted by the resync: their logs are kept first, so `fedgpu logs --attempt N` still works.
    const wanted = new Set(desired.map((a) => attemptKey(a.jobUid, a.epoch)));
    await this.keepTailsBefore(this.podsOf((key) => !wanted.has(key)));
    // An attempt the resync drops (its job deleted, or moved, while the stream was down) is
    // receipted first, as a Cancel would: that Cancel may come after the resync forgot the
    // attempt, or never, and the provider would go unpaid for what ran. The hub decides
    // whether it is owed (a fenced attempt's receipt is refused).
    for (const [key, assignment] of [...this.runner.assignments]) {
      if (!wanted.has(key)) this.cancelled(assignment.jobUid, assignment.epoch, 'NotWanted');
    }
    await this.runner.resync(desired, this.runner.managed(this.watch?.pods() ?? []));
  }

  private async onHubMessage(message: HubMessage): Promise<void> {
    const body = message.body;
    if (!body) return;
    try {
      switch (body.$case) {
        case 'assign':
          // An attempt already reclaimed here: said again, never run again.
          const reclaimed = this.reclaimed.reportOf(body.value.jobUid, body.value.epoch);
          if (reclaimed) {
            this.client?.sendAttemptStatus(reclaimed);
            return;
          }
          await this.runner.apply(body.value);
          break;
        case 'cancel':
          // The job is gone: so are the log tails its attempts left here (retention covers the rest).
          // Otherwise (fenced, lost, timed out) the pods' logs are kept before the pods go.
          if (body.value.reason === 'JobDeleted') this.retained.forgetJob(body.value.jobUid);
          else await this.keepTailsBefore(this.podsOf((key) => key === attemptKey(body.value.jobUid, body.value.epoch)));
          this.cancelled(body.value.jobUid, body.value.epoch, body.value.reason);
          this.reclaimed.forget(body.value.jobUid, body.value.epoch);
          this.forgetAttempt(attemptKey(body.value.jobUid, body.value.epoch));
          await this.runner.cancel(body.value.jobUid, body.value.epoch, body.value.gracePeriodSeconds);
          this.lastAttempt.delete(attemptKey(body.value.jobUid, body.value.epoch));
          break;
        case 'resyncPart': {
          // A Resync too large for one message: gathered, bounded, and applied once on its last part.
          // One over the bound is dropped whole, up to its last part: applying only its tail as the
          // full desired set would delete every attempt of the parts before.
          const parts = (this.resyncParts ??= { desired: [], count: 0, overflow: false });
          parts.count++;
          if (!parts.overflow && parts.count > MAX_RESYNC_PARTS) {
            parts.overflow = true;
            parts.desired = [];
            this.opts.logger.error({ parts: parts.count }, `a resync in more than ${MAX_RESYNC_PARTS} parts; ignored (the agent keeps what it runs)`);
          }
          if (!parts.overflow) parts.desired.push(...body.value.desired);
          if (!body.value.last) return;
          this.resyncParts = undefined;
          if (parts.overflow) return;
          await this.applyResync(parts.desired);
          break;
        }
        case 'resync':
          this.resyncParts = undefined;
          await this.applyResync(body.value.desired);
          break;
        case 'receiptAck':
          this.receipts.acknowledge(body.value.jobUid, body.value.epoch, body.value.accepted, body.value.reason);
          return;
        default:
          return;
      }
    } catch (err) {
      this.opts.logger.error({ err, message: body.$case }, 'failed to apply hub message; the next resync retries');
    }
    this.schedulePublish(body.$case === 'assign' || body.$case === 'cancel' ? attemptKey(body.value.jobUid, body.value.epoch) : undefined);
  }
}

/**
 * The attempt a change is about: "jobUid/epoch" from a pod's labels; null for a node or a pod of
 * no attempt (the owner's own workloads change the inventory, no report); undefined for a relist.
 */
function attemptOfChange(change: ClusterChange): string | null | undefined {
  if (!change) return undefined;
  // A node's change reaches the reports (a cordon is a reclaim) through the publish's full pass.
  if ('node' in change) return null;
  const labels = change.pod.metadata?.labels;
  return labels?.[JOB_UID_LABEL] && labels[EPOCH_LABEL] !== undefined ? attemptKeyOfPod(change.pod) : null;
}

/** Container names of each replica, first = main. */
function containersOf(assignment: RunnerAssignment): string[][] {
  return assignment.podTemplates.map((t) => (t.spec?.containers ?? []).map((c) => c.name));
}

