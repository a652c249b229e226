import type { KubeConfig } from '@kubernetes/client-node';
import type { Wallet } from 'ethers';
import type { Logger } from 'pino';
import { AttemptPhase, type AttemptStatus, type HubMessage, type Inventory, NotOfferedReason, PodPhase, type ProviderProfile } from '../gen/proto/fedgpu/v1/market.js';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { isAvailableAt } from '../core/availability.js';
import { attemptState, type AttemptState } from './pods/status.js';
import { type ClusterWatch, watchCluster } from './cluster-watch.js';
import { buildInventory, runtimeClassOf, type InventoryPool, type ProviderSettings } from './inventory.js';
import { GFD_PRODUCT_LABEL } from '../api/constants.js';
import type { AgentMetrics } from '../metrics/agent-metrics.js';
import type { Readiness } from '../metrics/http-server.js';
import { PodRunner } from './pods/runner.js';
import { TenantNamespaces } from './tenancy/namespace.js';
import { StreamClient, type StreamClientTls } from './stream/client.js';
import { UsageReceiptBook } from './usage-receipts.js';

// The provider agent: watches its own cluster, streams inventory and attempt status to the hub over
// the one outbound stream, and runs what the hub assigns. After every (re)connect it sends its full
// state again: the hub never depends on replaying missed events.

export interface AgentOptions {
  kubeConfig: KubeConfig;
  settings: ProviderSettings;
  /** Prefix of the per-consumer namespaces job pods run in (agent/tenancy). */
  jobNamespace: string;
  /** Allow DNS egress from job pods (default true); everything else is denied. */
  allowDns?: boolean;
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
}

const REASON_CODES: Record<string, NotOfferedReason> = {
  PriceBelowBreakEven: NotOfferedReason.NOT_OFFERED_REASON_PRICE_BELOW_BREAK_EVEN,
  OutsideAvailabilityWindow: NotOfferedReason.NOT_OFFERED_REASON_OUTSIDE_AVAILABILITY_WINDOW,
  NoPriceSet: NotOfferedReason.NOT_OFFERED_REASON_DISABLED_BY_OWNER,
};

export function inventoryMessage(pools: InventoryPool[]): Inventory {
  return {
    pools: pools.map((p) => ({
      gpuProduct: p.gpuProduct,
      memoryMib: p.memoryMiB,
      cudaDriverMajor: p.cudaDriverMajor,
      nodes: p.nodes,
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

type ReportedState = Omit<AttemptState, 'phase'> & { phase: AttemptState['phase'] | 'Reclaimed' };
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

const PHASES = {
  Reclaimed: AttemptPhase.ATTEMPT_PHASE_RECLAIMED,
  Pending: AttemptPhase.ATTEMPT_PHASE_PENDING,
  Running: AttemptPhase.ATTEMPT_PHASE_RUNNING,
  Succeeded: AttemptPhase.ATTEMPT_PHASE_SUCCEEDED,
  Failed: AttemptPhase.ATTEMPT_PHASE_FAILED,
} as const;
const POD_PHASES: Record<string, PodPhase> = {
  Pending: PodPhase.POD_PHASE_PENDING,
  Running: PodPhase.POD_PHASE_RUNNING,
  Succeeded: PodPhase.POD_PHASE_SUCCEEDED,
  Failed: PodPhase.POD_PHASE_FAILED,
};

export class Agent {
  private watch?: ClusterWatch;
  private client?: StreamClient;
  private runner: PodRunner;
  private timer?: NodeJS.Timeout;
  private receiptTimer?: NodeJS.Timeout;
  private readonly receipts: UsageReceiptBook;
  private lastInventory?: string;
  private readonly lastAttempt = new Map<string, string>();
  private readonly reclaims = new Map<string, { reason: string; message: string; gpuSeconds: number }>();
  private readonly now: () => number;

  constructor(private readonly opts: AgentOptions) {
    const tenancy = new TenantNamespaces(opts.kubeConfig, {
      prefix: opts.jobNamespace,
      allowDns: opts.allowDns,
      onNotRestricted: () => opts.metrics?.onNamespaceNotRestricted(),
    }, opts.logger);
    // The owner's RuntimeClass for the pool of the node each pod goes to.
    const runtimeClassFor = (node: string) =>
      runtimeClassOf(opts.settings, this.watch?.nodes().find((n) => n.metadata?.name === node)?.metadata?.labels?.[GFD_PRODUCT_LABEL]);
    this.runner = new PodRunner(opts.kubeConfig, tenancy, opts.logger, { runtimeClassFor });
    this.receipts = new UsageReceiptBook(opts.wallet, opts.logger);
    this.now = opts.now ?? Date.now;
  }

  async start(): Promise<void> {
    this.watch = await watchCluster(this.opts.kubeConfig, this.opts.logger, () => this.schedulePublish());
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
        // Level-triggered: after any reconnect the hub gets our whole state again.
        this.lastInventory = undefined;
        this.lastAttempt.clear();
        this.publish();
        this.flushReceipts();
      },
      onHubMessage: (m) => this.onHubMessage(m),
    });
    this.client.start();
    // Receipts the hub has not acknowledged go again now and then, not only after reconnects.
    this.receiptTimer = setInterval(() => this.flushReceipts(), 15_000);
  }

  /** /readyz: the cluster watch has listed (the hub stream may come and go; see docs/metrics.md). */
  readiness(): Readiness {
    const synced = this.watch !== undefined;
    return { ready: synced, checks: { 'cluster watch synced': synced } };
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
    if (this.timer) clearTimeout(this.timer);
    if (this.receiptTimer) clearInterval(this.receiptTimer);
    this.runner.stop();
    await this.client?.close();
    await this.watch?.stop();
  }

  private schedulePublish(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.publish();
    }, this.opts.debounceMs ?? 100);
  }

  private publish(): void {
    if (!this.watch || !this.client) return;
    const now = this.now();
    const inventory = inventoryMessage(buildInventory(this.watch.nodes(), this.watch.pods(), this.opts.settings, now));
    const text = JSON.stringify(inventory);
    if (text !== this.lastInventory && this.client.sendInventory(inventory)) this.lastInventory = text;
    this.reportAttempts(now);
  }

  private reportAttempts(now: number): void {
    const managed = this.runner.managed(this.watch!.pods());
    for (const [key, assignment] of this.runner.assignments) {
      const pods = managed.filter((p) => `${p.metadata?.labels?.['fedgpu.io/job-uid']}/${p.metadata?.labels?.['fedgpu.io/epoch']}` === key);
      const refused = this.runner.refused.get(key);
      let state: ReportedState = refused
        ? { phase: 'Failed' as const, gpuSeconds: 0, reason: refused.split(':')[0], message: refused, pods: [] }
        : attemptState(pods, assignment.podTemplates.length, assignment.gpusPerReplica, now);
      // Owner reclaim: the owner cordoned a node under the attempt, or its lending window closed.
      // The pods get their checkpoint grace; once they are gone the attempt is reported reclaimed.
      const reclaim = this.reclaims.get(key) ?? (isLive(state.phase) ? reclaimCause(pods, this.watch!.nodes(), this.opts.settings, now) : undefined);
      if (reclaim) {
        if (!this.reclaims.has(key)) {
          this.reclaims.set(key, { ...reclaim, gpuSeconds: state.gpuSeconds });
          this.opts.logger.info({ job: assignment.jobUid, epoch: assignment.epoch, reason: reclaim.reason }, 'owner reclaim: giving pods their checkpoint grace');
          this.runner.reclaim(assignment.jobUid, assignment.epoch, assignment.gracePeriodSeconds ?? 30).catch((err) =>
            this.opts.logger.error({ err }, 'failed to delete reclaimed pods; retrying on the next change'),
          );
        }
        if (pods.length > 0) continue;
        const done = this.reclaims.get(key)!;
        state = { phase: 'Reclaimed', gpuSeconds: done.gpuSeconds, reason: done.reason, message: done.message, pods: [] };
      }
      if (state.phase === 'Succeeded' || state.phase === 'Failed' || state.phase === 'Reclaimed') {
        this.attemptEnded(assignment.jobUid, assignment.epoch, state.gpuSeconds, assignment.pricePerGpuHour, state.phase);
      }
      const status: AttemptStatus = {
        jobUid: assignment.jobUid,
        epoch: assignment.epoch,
        phase: PHASES[state.phase],
        gpuSeconds: state.gpuSeconds,
        exitCode: state.exitCode ?? 0,
        reason: state.reason ?? '',
        message: state.message ?? '',
        podStates: state.pods.map((p) => ({
          name: p.name,
          nodeName: p.nodeName ?? '',
          phase: POD_PHASES[p.phase] ?? PodPhase.POD_PHASE_UNKNOWN,
          ready: p.phase === 'Running',
          restartCount: 0,
          reason: '',
          exitCode: p.exitCode ?? 0,
        })),
      };
      // GPU-seconds grow every second while running; report phase changes at once and usage
      // with the heartbeat-paced publishes, not on every tick.
      const fingerprint = JSON.stringify({ ...status, gpuSeconds: state.phase === 'Running' ? 0 : status.gpuSeconds });
      if (fingerprint !== this.lastAttempt.get(key) && this.client!.sendAttemptStatus(status)) {
        this.lastAttempt.set(key, fingerprint);
        if (state.phase === 'Reclaimed') {
          this.runner.assignments.delete(key);
          this.reclaims.delete(key);
        }
      }
    }
  }

  /** An attempt ended: its provider signs the final usage once; it is sent until acknowledged. */
  private attemptEnded(jobUid: string, epoch: number, gpuSeconds: number, pricePerGpuHour: string, ended: string): void {
    if (this.receipts.has(jobUid, epoch)) return;
    this.receipts.record({ jobUid, epoch, gpuSeconds, pricePerGpuHour, ended });
    this.flushReceipts();
  }

  /** The hub stopped a running attempt (job deleted, deadline): the usage so far is receipted too. */
  private cancelled(jobUid: string, epoch: number, reason: string): void {
    const key = `${jobUid}/${epoch}`;
    const assignment = this.runner.assignments.get(key);
    if (!assignment || !this.watch || this.receipts.has(jobUid, epoch)) return;
    const pods = this.runner.managed(this.watch.pods()).filter((p) => `${p.metadata?.labels?.['fedgpu.io/job-uid']}/${p.metadata?.labels?.['fedgpu.io/epoch']}` === key);
    const state = attemptState(pods, assignment.podTemplates.length, assignment.gpusPerReplica, this.now());
    this.attemptEnded(jobUid, epoch, state.gpuSeconds, assignment.pricePerGpuHour, `Cancelled:${reason}`);
  }

  private flushReceipts(): void {
    this.receipts
      .sendAll((receipt) => this.client?.sendUsageReceipt(receipt) ?? false)
      .catch((err: unknown) => this.opts.logger.error({ err }, 'could not sign or send usage receipts; retrying later'));
  }

  private async onHubMessage(message: HubMessage): Promise<void> {
    const body = message.body;
    if (!body) return;
    try {
      switch (body.$case) {
        case 'assign':
          await this.runner.apply(body.value);
          break;
        case 'cancel':
          this.cancelled(body.value.jobUid, body.value.epoch, body.value.reason);
          this.reclaims.delete(`${body.value.jobUid}/${body.value.epoch}`);
          await this.runner.cancel(body.value.jobUid, body.value.epoch, body.value.gracePeriodSeconds);
          this.lastAttempt.delete(`${body.value.jobUid}/${body.value.epoch}`);
          break;
        case 'resync':
          await this.runner.resync(body.value.desired, this.runner.managed(this.watch?.pods() ?? []));
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
    this.schedulePublish();
  }
}
