import type { KubeConfig } from '@kubernetes/client-node';
import { reuseConnections } from '../runtime/connections.js';
import type { Logger } from 'pino';
import type { GpuJob } from '../api/types.js';
import type { TunnelLimits } from '../protocol/tunnel/mux.js';
import type { SchedulerConfig } from '../core/scheduling/config.js';
import type { UsageReceipt } from '../gen/proto/fedgpu/v1/market.js';
import type { HubMetrics } from '../metrics/hub-metrics.js';
import type { Readiness } from '../metrics/http-server.js';
import { installHubMetrics } from '../metrics/settlement-metrics.js';
import { gpuJobMetricsOf } from './jobs/metrics.js';
import { GpuJobController } from './jobs/controller.js';
import { budgetLeftOnChain, budgetLeftWithoutChain } from './jobs/budget.js';
import type { HubLeaderElection } from './leadership.js';
import { HubRoles, type LeaderTask } from './roles.js';
import { MarketServer } from './market/server.js';
import { AccessApiServer } from './access/server.js';
import { type AccessEndpoint, AccessEndpointPublisher, endpointAddressProblem } from './access/leader-endpoint.js';
import type { MarketServerTls } from './market/options.js';
import { KubeProviderRegistry } from './providers/registry.js';
import { KubeProviderStore } from './providers/store.js';
import { HubSettlement, type HubSettlementOptions } from './settlement/leader-task.js';
import type { FundingCandidate } from './settlement/funding.js';

// The hub process: the marketplace gRPC server, with GpuProvider objects as its registry, and the
// heartbeat check that declares providers lost.

export interface HubOptions {
  kubeConfig: KubeConfig;
  tls: MarketServerTls;
  logger: Logger;
  /** Largest Resync message before it goes in parts (tests set it small to exercise the parts). */
  resyncMessageBytes?: number;
  /** The hub's identity, signed into every registration proof. */
  audience?: string;
  /**
   * Whether an agent's client certificate must name its wallet (CommonName = the wallet address,
   * as the chart's provider certificates do; default true). Without it one certificate registers
   * any number of wallets, each a GpuProvider, metric series and per-stream budget.
   */
  certificateNamesWallet?: boolean;
  host?: string;
  port?: number;
  providerLostAfterMs?: number;
  /** At rest, how often a provider's heartbeat time and latency are written (default 60 s). */
  providerStatusPeriodMs?: number;
  heartbeatIntervalMs?: number;
  pingIntervalMs?: number;
  /** Limits of the consumer access tunnels on each agent stream (protocol/tunnel/mux.ts); tests shorten the idle timeout. */
  tunnelLimits?: Partial<TunnelLimits>;
  schedulerConfig?: SchedulerConfig;
  // --- operability (docs/metrics.md, docs/ha.md) ---
  /** This replica's metrics; the hub wires its caches and hooks into them. */
  metrics?: HubMetrics;
  /** HA: only the Lease holder runs controllers and serves agents. Without it, this replica leads. */
  leaderElection?: HubLeaderElection;
  /** host:port agents are redirected to while this replica leads (default host:port). */
  advertiseAddress?: string;
  /** Work that runs only on the leader (e.g. settlement); must end when its signal aborts. */
  leaderTasks?: readonly LeaderTask[];
  /** On-chain settlement (docs/settlement.md). Without it the hub settles nothing: jobs run unpaid. */
  settlement?: HubSettlementOptions;
  /** A placement whose budget covers fewer GPU-seconds at the placed price waits (default 60). */
  minimumRunGpuSeconds?: number;
  /** A start timeout shorter than this is nobody's fault (default 300 s, core/fault.ts). */
  startBlameAfterSeconds?: number;
  /** GpuJob reconciles at once (default DEFAULT_JOB_CONCURRENCY). */
  jobConcurrency?: number;
  /** The Lease was lost while running: leader work has stopped; the process should exit. */
  onLostLeadership?: () => void;
  /** The chain, unreachable at start-up, came back answering as another chain, market or key: exit. */
  onSettlementRefused?: (err: Error) => void;
  /**
   * Consumer access (logs, exec, port-forward) as the aggregated API access.fedgpu.io, served on
   * host:port with this serving certificate (docs/access.md). Without it the hub serves no access API.
   * With `endpoint`, the leader publishes itself as the access Service's one endpoint
   * (hub/access/leader-endpoint.ts; its port defaults to the one served).
   */
  access?: { host?: string; port: number; certPem: string; keyPem: string; maxSessionsPerUser?: number; endpoint?: Omit<AccessEndpoint, 'port'> & { port?: number; reassertMs?: number } };
}

export interface RunningHub {
  port: number;
  server: MarketServer;
  registry: KubeProviderRegistry;
  jobs: GpuJobController;
  roles: HubRoles;
  /** /readyz: caches synced and the marketplace listening (leadership does not matter). */
  readiness(): Readiness;
  settlement?: HubSettlement;
  /** Port of the access API, when served. */
  accessPort?: number;
  stop(): Promise<void>;
}

export async function startHub(opts: HubOptions): Promise<RunningHub> {
  // The controller needs the server to reach agents, and the server's registry feeds the
  // controller; the link is filled in once the server exists.
  let server: MarketServer | undefined;
  const endpointProblem = opts.access?.endpoint ? endpointAddressProblem(opts.access.endpoint.address) : undefined;
  if (endpointProblem) throw new Error(`the access endpoint: ${endpointProblem}`);
  reuseConnections(opts.kubeConfig);
  if (opts.metrics) installHubMetrics(opts.metrics);
  // A chain that does not answer leaves settlement degraded (retried), never the hub down; one that
  // answers as another chain, market or key is refused here, or later through onSettlementRefused.
  const settlement = opts.settlement
    ? await HubSettlement.start(opts.settlement, opts.logger, { ...(opts.onSettlementRefused ? { onFatal: opts.onSettlementRefused } : {}) })
    : undefined;
  if (!settlement) {
    opts.logger.warn('settlement is OFF: no chain configured, nothing is escrowed or paid; every GpuJob carries Settled=False (NoChain)');
  }
  const jobs = new GpuJobController({
    kubeConfig: opts.kubeConfig,
    agents: { send: (provider, message) => server?.send(provider, message) ?? false },
    logger: opts.logger.child({ controller: 'gpujob' }),
    heartbeatAgeMs: (provider: string, now: number): number | undefined => registry.heartbeatAgeMs(provider, now),
    link: (provider: string) => registry.link(provider),
    ...(settlement ? { fundingCheck: (job: GpuJob, candidate?: FundingCandidate) => settlement.fundingCheck(job, candidate), settlement } : {}),
    ...(opts.schedulerConfig ? { schedulerConfig: opts.schedulerConfig } : {}),
    ...(opts.metrics ? { metrics: gpuJobMetricsOf(opts.metrics) } : {}),
    noChain: !settlement,
    budgetLeft: opts.settlement ? ((hold) => (job: GpuJob) => budgetLeftOnChain(job, hold))(opts.settlement.defaultHold) : budgetLeftWithoutChain,
    ...(opts.minimumRunGpuSeconds !== undefined ? { minimumRunGpuSeconds: opts.minimumRunGpuSeconds } : {}),
    ...(opts.startBlameAfterSeconds !== undefined ? { startBlameAfterSeconds: opts.startBlameAfterSeconds } : {}),
    ...(opts.jobConcurrency !== undefined ? { concurrency: opts.jobConcurrency } : {}),
    ...(opts.resyncMessageBytes !== undefined ? { resyncMessageBytes: opts.resyncMessageBytes } : {}),
  });
  const registry: KubeProviderRegistry = new KubeProviderRegistry({
    store: new KubeProviderStore(opts.kubeConfig, undefined, undefined, jobs.providers),
    logger: opts.logger,
    providerLostAfterMs: opts.providerLostAfterMs,
    ...(opts.providerStatusPeriodMs !== undefined ? { statusPeriodMs: opts.providerStatusPeriodMs } : {}),
    onAttemptStatus: (provider, status) => jobs.onAttemptStatus(provider, status),
    onAgentSynced: (provider) => jobs.resync(provider),
    onInventory: (provider, inventory) => jobs.onInventory(provider, inventory),
    onPodEvents: (provider, events) => jobs.onPodEvents(provider, events),
    ...(settlement ? { onUsageReceipt: (provider: string, receipt: UsageReceipt) => settlement.onUsageReceipt(provider, receipt) } : {}),
  });
  settlement?.attach({ jobs, agents: { send: (provider, message) => server?.send(provider, message) ?? false }, kubeConfig: opts.kubeConfig, registry });
  // Made once the access API listens (its port is known then), before this replica can lead.
  let accessEndpoint: AccessEndpointPublisher | undefined;
  const leaderTasks = [
    ...(opts.leaderTasks ?? []),
    ...(settlement ? [(signal: AbortSignal) => settlement.run(signal)] : []),
    ...(opts.access?.endpoint ? [(signal: AbortSignal) => accessEndpoint?.run(signal)] : []),
  ];
  const roles = new HubRoles({
    kubeConfig: opts.kubeConfig,
    logger: opts.logger,
    jobs,
    registry,
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
    ...(opts.leaderElection ? { leaderElection: opts.leaderElection } : {}),
    leaderTasks,
    ...(opts.onLostLeadership ? { onLostLeadership: opts.onLostLeadership } : {}),
  });
  server = new MarketServer({
    onRejection: (reason) => opts.metrics?.observeRejection(reason),
    admission: () => roles.admission(),
    tls: opts.tls,
    registry,
    audience: opts.audience ?? 'fedgpu-hub',
    ...(opts.certificateNamesWallet === false ? {} : { authorizePeer: certificateNamesWallet }),
    host: opts.host ?? '127.0.0.1',
    port: opts.port ?? 0,
    logger: opts.logger,
    heartbeatIntervalMs: opts.heartbeatIntervalMs,
    pingIntervalMs: opts.pingIntervalMs,
    ...(opts.tunnelLimits ? { tunnelLimits: opts.tunnelLimits } : {}),
    // Read when an agent registers: only the leader admits agents, and it leads only once the
    // chain id is known (configured with --chain-id, or as the chain answered).
    ...(settlement ? { settlementDomain: lateDomain(settlement) } : {}),
  });
  const port = await server.start();
  const market = server;
  const access = opts.access
    ? new AccessApiServer({
        kubeConfig: opts.kubeConfig,
        logger: opts.logger.child({ component: 'access' }),
        host: opts.access.host ?? '127.0.0.1',
        port: opts.access.port,
        certPem: opts.access.certPem,
        keyPem: opts.access.keyPem,
        ...(opts.access.maxSessionsPerUser !== undefined ? { maxSessionsPerUser: opts.access.maxSessionsPerUser } : {}),
        openTunnel: (provider, open) => market.openTunnel(provider, open),
        standby: () => roles.standbyMessage(),
      })
    : undefined;
  const accessPort = await access?.start();
  if (opts.access?.endpoint && accessPort !== undefined) {
    const { reassertMs, ...endpoint } = opts.access.endpoint;
    accessEndpoint = new AccessEndpointPublisher({
      kubeConfig: opts.kubeConfig,
      endpoint: { ...endpoint, port: endpoint.port ?? accessPort },
      logger: opts.logger.child({ component: 'access-endpoint' }),
      ...(reassertMs !== undefined ? { reassertMs } : {}),
      ...(opts.metrics ? { onPublished: (published: boolean) => opts.metrics?.setAccessEndpointPublished(published) } : {}),
    });
    opts.metrics?.setAccessEndpointPublished(false);
  }
  if (opts.metrics) {
    opts.metrics.observeMarket({ providers: () => jobs.providers.list(), jobs: () => jobs.jobs.list(), lastHeard: (provider) => registry.lastHeard(provider) });
    opts.metrics.observeStreams(() => server?.connectedProviders().length ?? 0);
  }
  // Leads at once without election (the controllers are running when this returns); with it,
  // returns once the caches are warm and campaigns in the background. Agents sign receipts for the
  // chain id: a hub that does not know it yet (no --chain-id, the chain away) waits before leading.
  const grpcAddress = opts.advertiseAddress ?? `${opts.host ?? '127.0.0.1'}:${port}`;
  let stopped = false;
  if (!settlement || settlement.domainInfo) {
    await roles.start(grpcAddress);
  } else {
    opts.logger.warn('the settlement chain id is not known yet (no --chain-id, the chain does not answer): this replica waits for the chain before it leads');
    void settlement
      .domainKnown()
      .then(() => (stopped ? undefined : roles.start(grpcAddress)))
      .catch((err: unknown) => !stopped && opts.logger.error({ err }, 'could not start the hub roles'));
  }
  opts.logger.info({ port }, 'hub marketplace listening');
  let listening = true;
  return {
    port,
    server,
    registry,
    jobs,
    ...(settlement ? { settlement } : {}),
    roles,
    ...(accessPort !== undefined ? { accessPort } : {}),
    // The chain does not decide readiness (a hub that leads through a chain outage keeps serving
    // agents); it shows in fedgpu_settlement_chain_connected and the log.
    readiness: () => {
      const checks = { 'informers synced': jobs.jobs.hasSynced() && jobs.providers.hasSynced(), 'marketplace listening': listening };
      return { ready: Object.values(checks).every(Boolean), checks };
    },
    // Graceful: refuse new streams, withdraw the access endpoint, end the open streams once their
    // registry writes are done, then stop the leader work (in-flight reconciles finish) and release
    // the Lease.
    async stop() {
      stopped = true;
      roles.stopServing();
      // The apiserver stops routing access requests here before the access API stops listening.
      await accessEndpoint?.close();
      await access?.stop();
      await server?.stop();
      listening = false;
      await roles.stop();
      settlement?.close();
    },
  };
}

/** The settlement domain as the marketplace reads it at each registration (known before the hub leads). */
function lateDomain(settlement: HubSettlement): { chainId: number; marketAddress: string } {
  return {
    get chainId() {
      return settlement.domainInfo?.chainId ?? 0;
    },
    get marketAddress() {
      return settlement.domainInfo?.marketAddress ?? '';
    },
  };
}

/** Whether the client certificate's CommonName is the wallet the agent proved (any letter case). */
export function certificateNamesWallet(wallet: string, certificate: { subject?: { CN?: string | string[] } } | undefined): boolean {
  const cn = certificate?.subject?.CN;
  const names = Array.isArray(cn) ? cn : cn === undefined ? [] : [cn];
  return names.some((name) => name.toLowerCase() === wallet.toLowerCase());
}
