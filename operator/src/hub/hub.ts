import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { SchedulerConfig } from '../core/scheduler-config.js';
import { GpuJobController } from './gpujob.reconciler.js';
import { MarketServer } from './market-server.js';
import type { MarketServerTls } from './market-server-options.js';
import { KubeProviderRegistry } from './provider-registry.js';
import { KubeProviderStore } from './provider-store.js';

// The hub process: the marketplace gRPC server, with GpuProvider objects as its registry, and the
// heartbeat check that declares providers lost.

export interface HubOptions {
  kubeConfig: KubeConfig;
  tls: MarketServerTls;
  logger: Logger;
  /** The hub's identity, signed into every registration proof. */
  audience?: string;
  host?: string;
  port?: number;
  providerLostAfterMs?: number;
  heartbeatIntervalMs?: number;
  pingIntervalMs?: number;
  schedulerConfig?: SchedulerConfig;
}

export interface RunningHub {
  port: number;
  server: MarketServer;
  registry: KubeProviderRegistry;
  jobs: GpuJobController;
  stop(): Promise<void>;
}

export async function startHub(opts: HubOptions): Promise<RunningHub> {
  // The controller needs the server to reach agents, and the server's registry feeds the
  // controller; the link is filled in once the server exists.
  let server: MarketServer | undefined;
  const jobs = new GpuJobController({
    kubeConfig: opts.kubeConfig,
    agents: { send: (provider, message) => server?.send(provider, message) ?? false },
    logger: opts.logger.child({ controller: 'gpujob' }),
    ...(opts.schedulerConfig ? { schedulerConfig: opts.schedulerConfig } : {}),
  });
  const registry = new KubeProviderRegistry({
    store: new KubeProviderStore(opts.kubeConfig),
    logger: opts.logger,
    providerLostAfterMs: opts.providerLostAfterMs,
    onAttemptStatus: (provider, status) => jobs.onAttemptStatus(provider, status),
    onAgentSynced: (provider) => jobs.resync(provider),
  });
  server = new MarketServer({
    tls: opts.tls,
    registry,
    audience: opts.audience ?? 'fedgpu-hub',
    host: opts.host ?? '127.0.0.1',
    port: opts.port ?? 0,
    logger: opts.logger,
    heartbeatIntervalMs: opts.heartbeatIntervalMs,
    pingIntervalMs: opts.pingIntervalMs,
  });
  const port = await server.start();
  await jobs.start();
  let checking = false;
  const health = setInterval(() => {
    if (checking) return;
    checking = true;
    registry
      .checkHeartbeats()
      .catch((err) => opts.logger.error({ err }, 'heartbeat check failed'))
      .finally(() => (checking = false));
  }, 1_000);
  opts.logger.info({ port }, 'hub marketplace listening');
  return {
    port,
    server,
    registry,
    jobs,
    async stop() {
      clearInterval(health);
      await jobs.stop();
      await server?.stop();
    },
  };
}
