import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { Wallet } from 'ethers';
import { pino } from 'pino';
import { parse } from 'yaml';
import { Agent } from '../agent/agent.js';
import type { ProviderSettings } from '../agent/inventory.js';
import { accessSettingsError } from '../agent/access/policy.js';
import { startHub, type RunningHub } from '../hub/hub.js';
import { DEFAULT_JOB_CONCURRENCY } from '../hub/jobs/controller.js';
import { AgentMetrics } from '../metrics/agent-metrics.js';
import { HubMetrics } from '../metrics/hub-metrics.js';
import { CliError, ExitCode } from './errors.js';
import { loadKubeConfig } from './kubeconfig.js';
import { addSettlementFlags, settlementOptionsOf } from './settlement-flags.js';
import { accessEndpointOf, addLeaderElectionFlags, booleanFlag, addMetricsFlags, advertiseAddressOf, durationMs, leaderElectionOf, serveMetrics, untilSignalled } from './operability.js';
import { noIdleCollector, startIdleCollector } from '../runtime/idle-gc.js';
import { parseQuantity, QUANTITY_PATTERN } from '../core/idle.js';
import { EPHEMERAL_STORAGE_DEFAULT, EPHEMERAL_STORAGE_MAX } from '../agent/tenancy/namespace.js';

// `fedgpu hub` and `fedgpu agent`: the two long-running modes of the chart's container.

type Globals = { kubeconfig?: string; context?: string };

const read = (path: string, what: string) => {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${what} ${path}: ${(err as Error).message}`, ExitCode.Usage);
  }
};

export function hubCommand(globals: () => Globals): Command {
  const command = new Command('hub')
    .description('run the hub: marketplace gRPC server and controllers')
    .requiredOption('--tls-ca <file>', 'CA certificate that signs agent client certificates')
    .requiredOption('--tls-cert <file>', "the hub's serving certificate")
    .requiredOption('--tls-key <file>', "the hub's serving key")
    .option('--grpc-host <host>', 'listen address', '127.0.0.1')
    .option('--grpc-port <port>', 'listen port (0 picks a free one)', '8443')
    .option('--audience <name>', 'hub identity signed into registration proofs', 'fedgpu-hub')
    .option('--certificate-names-wallet <bool>', "refuse an agent whose client certificate's CommonName is not the wallet it proves (one certificate, one provider)", 'true')
    .option('--provider-lost-after <duration>', 'heartbeat silence after which a provider is lost', '15s')
    .option('--provider-status-period <duration>', 'at rest, how often a provider\'s heartbeat time is written to its status (liveness itself is kept in memory)', '60s')
    .option('--job-concurrency <n>', 'GpuJob reconciles at once (never two of one job); a burst waits on the apiserver, not on the CPU', String(DEFAULT_JOB_CONCURRENCY))
    .option('--idle-compaction <bool>', 'once quiet after a burst, compact the heap the burst grew (a pause of a few hundred ms; runtime/idle-gc.ts)', 'true')
    .option('--minimum-run <gpu-seconds>', "a job waits while its budget covers fewer GPU-seconds than this at the placed price", '60')
    .option('--start-blame-after <duration>', "an attempt not Running within a start timeout shorter than this is nobody's fault (retried, never slashed): a job cannot make a provider fail by asking for a start no one can make", '300s')
    .option('--access-port <port>', 'serve the consumer access API (aggregated API access.fedgpu.io) on this port; 0 picks a free one')
    .option('--access-host <host>', 'listen address of the access API', '127.0.0.1')
    .option('--access-cert <file>', 'serving certificate of the access API (valid for <service>.<namespace>.svc)')
    .option('--access-key <file>', 'serving key of the access API')
    .option('--access-sessions-per-user <n>', "access sessions (log follows, exec, port-forward connections) one user may hold open to one provider, of the 64 its agent's stream carries", '16')
    .option('--access-service <name>', "while leading, publish this replica as the one endpoint of this Service (the chart's <fullname>-access, in $POD_NAMESPACE or --lease-namespace), so the apiserver's access requests reach the leader")
    .option('--access-advertise-address <ip>', 'the address published with --access-service (default $POD_IP)')
    .option('--log-level <level>', 'log level', 'info');
  return addSettlementFlags(addLeaderElectionFlags(addMetricsFlags(command)))
    .action(async (o) => {
      const settlement = settlementOptionsOf(o);
      const minimumRunGpuSeconds = Number(o.minimumRun);
      if (!Number.isSafeInteger(minimumRunGpuSeconds) || minimumRunGpuSeconds < 0) {
        throw new CliError(`--minimum-run ${o.minimumRun} is not a whole number of GPU-seconds`, ExitCode.Usage);
      }
      const startBlameAfterSeconds = durationMs(o.startBlameAfter) / 1000;
      const jobConcurrency = Number(o.jobConcurrency);
      if (!Number.isSafeInteger(jobConcurrency) || jobConcurrency < 1 || jobConcurrency > 1024) {
        throw new CliError(`--job-concurrency ${o.jobConcurrency} is not a whole number from 1 to 1024`, ExitCode.Usage);
      }
      const sessionsPerUser = Number(o.accessSessionsPerUser);
      if (!Number.isSafeInteger(sessionsPerUser) || sessionsPerUser < 1 || sessionsPerUser > 64) {
        throw new CliError(`--access-sessions-per-user ${o.accessSessionsPerUser} is not a whole number from 1 to 64 (an agent's stream carries 64 sessions)`, ExitCode.Usage);
      }
      const idleCompaction = booleanFlag('--idle-compaction', o.idleCompaction);
      const logger = pino({ level: o.logLevel, base: { component: 'hub' } });
      // No shared slab for small Buffers in the hub: each of its agents' TLS sockets keeps a small
      // copy of the server's ALPN list (node's TLSSocket does), and a copy cut from the 8 KiB
      // slab keeps that whole slab alive, 7 MiB at 1,000 agents (docs/benchmarks.md). Small
      // Buffers then cost an allocation each, which the hub's message rates do not notice.
      Buffer.poolSize = 0;
      // Served first: probes answer while the caches fill; ready once the hub has started.
      const metrics = new HubMetrics();
      let hub: RunningHub | undefined;
      const http = await serveMetrics(o, metrics, () => hub?.readiness() ?? { ready: false, checks: { 'hub started': false } }, logger);
      hub = await startHub({
        kubeConfig: loadKubeConfig(globals()),
        tls: { caPem: read(o.tlsCa, 'CA'), certPem: read(o.tlsCert, 'certificate'), keyPem: read(o.tlsKey, 'key') },
        logger,
        audience: o.audience,
        certificateNamesWallet: booleanFlag('--certificate-names-wallet', o.certificateNamesWallet),
        host: o.grpcHost,
        port: Number(o.grpcPort),
        providerLostAfterMs: durationMs(o.providerLostAfter),
        providerStatusPeriodMs: durationMs(o.providerStatusPeriod),
        ...(o.accessPort !== undefined
          ? {
              access: {
                host: o.accessHost,
                port: Number(o.accessPort),
                certPem: read(o.accessCert ?? o.tlsCert, 'access certificate'),
                keyPem: read(o.accessKey ?? o.tlsKey, 'access key'),
                maxSessionsPerUser: sessionsPerUser,
                ...(o.accessService ? { endpoint: accessEndpointOf(o, process.env) } : {}),
              },
            }
          : {}),
        ...(settlement ? { settlement } : {}),
        minimumRunGpuSeconds,
        startBlameAfterSeconds,
        jobConcurrency,
        metrics,
        leaderElection: leaderElectionOf(o),
        advertiseAddress: Number(o.grpcPort) > 0 ? advertiseAddressOf(o, Number(o.grpcPort)) : undefined,
        onSettlementRefused: (err) => {
          logger.error({ err: err.message }, 'the settlement chain is not the configured one; exiting');
          process.exit(1);
        },
        onLostLeadership: () => {
          // Controllers cannot restart in this process: exit, and let a fresh one campaign again.
          logger.error('lost the leader Lease; exiting');
          process.exit(1);
        },
      });
      const running = hub;
      // After a burst, hand back the heap it grew once the hub is quiet (runtime/idle-gc.ts).
      const idleCollector = idleCompaction ? startIdleCollector({ logger, onCollection: (c) => metrics.observeIdleCollection(c) }) : noIdleCollector;
      console.log(JSON.stringify({ msg: 'hub ready', grpcPort: running.port, metricsPort: http.port, accessPort: running.accessPort, identity: running.roles.identity }));
      await untilSignalled(async () => {
        idleCollector.stop();
        await running.stop();
        await http.close();
      }, logger);
    });
}

export function agentCommand(globals: () => Globals): Command {
  const command = new Command('agent')
    .description("run a provider's agent against its own cluster")
    .requiredOption('--hub-address <host:port,...>', 'the hub marketplace address; several hub replicas comma-separated (docs/ha.md)')
    .requiredOption('--tls-ca <file>', "the hub's CA certificate")
    .requiredOption('--tls-cert <file>', "this provider's client certificate")
    .requiredOption('--tls-key <file>', "this provider's client key")
    .requiredOption('--wallet-key-file <file>', "file holding the provider wallet's private key (hex)")
    .requiredOption('--settings <file>', 'YAML: pricePerGpuHour, electricity, availability')
    .option('--hub-server-name <name>', 'name to verify in the hub certificate')
    .option('--job-namespace <prefix>', 'prefix of the per-consumer namespaces the agent creates for job pods', 'fedgpu-jobs')
    .option('--tenant-access-role <clusterrole>', "bind this ClusterRole (the chart's <fullname>-tenant-access: pod logs, exec, port-forward) to the agent in each tenant namespace it makes")
    .option('--runtime-class <name>', 'RuntimeClass set on every job pod (e.g. gvisor, kata)')
    .option('--no-tenant-dns', 'deny DNS egress from job pods too (the default allows only DNS)')
    .option('--default-ephemeral-storage <quantity>', "ephemeral storage a job container gets without a limit (less where its replica's share of the node's disk is less)", EPHEMERAL_STORAGE_DEFAULT)
    .option('--max-ephemeral-storage <quantity>', 'the most ephemeral storage one job container, or one emptyDir, may ask', EPHEMERAL_STORAGE_MAX)
    .option('--heartbeat-interval <duration>', 'heartbeat interval', '2s')
    .option('--log-retention-dir <dir>', 'where log tails of ended attempts are kept (default: a directory under the system temp dir)')
    .option('--log-retention <duration>', 'how long log tails of ended attempts are kept', '168h')
    .option('--log-tail-bytes <bytes>', 'bytes of log kept per replica of an ended attempt', '1048576')
    .option('--log-retention-bytes <bytes>', 'bytes of log tails kept in all, the oldest dropped first (keep it under the size of the retention directory)', '33554432')
    .option('--simulated-latency <duration>', 'test bed only: answer hub pings this much later, to emulate distance', '0ms')
    .option('--log-level <level>', 'log level', 'info');
  return addMetricsFlags(command)
    .action(async (o) => {
      const logger = pino({ level: o.logLevel, base: { component: 'agent' } });
      let wallet: Wallet;
      try {
        wallet = new Wallet(read(o.walletKeyFile, 'wallet key').trim());
      } catch (err) {
        if (err instanceof CliError) throw err;
        throw new CliError(`the wallet key in ${o.walletKeyFile} is not a valid private key`, ExitCode.Usage);
      }
      const settings = parse(read(o.settings, 'settings')) as ProviderSettings;
      if (!settings?.pricePerGpuHour) throw new CliError(`${o.settings} has no pricePerGpuHour map`, ExitCode.Usage);
      const badAccess = accessSettingsError(settings as unknown as Record<string, unknown>);
      if (badAccess) throw new CliError(`${o.settings}: ${badAccess}`, ExitCode.Usage);
      if (o.runtimeClass) settings.runtimeClassName ??= o.runtimeClass;
      const metrics = new AgentMetrics();
      const agent = new Agent({
        kubeConfig: loadKubeConfig(globals()),
        settings,
        jobNamespace: o.jobNamespace,
        ...(o.tenantAccessRole ? { tenantAccessRole: o.tenantAccessRole } : {}),
        allowDns: o.tenantDns !== false,
        ephemeralStorage: ephemeralStorageOf(o.defaultEphemeralStorage, o.maxEphemeralStorage),
        hubAddress: o.hubAddress,
        tls: {
          caPem: read(o.tlsCa, 'CA'),
          certPem: read(o.tlsCert, 'certificate'),
          keyPem: read(o.tlsKey, 'key'),
          ...(o.hubServerName ? { serverName: o.hubServerName } : {}),
        },
        wallet,
        logger,
        heartbeatIntervalMs: durationMs(o.heartbeatInterval),
        simulatedLatencyMs: durationMs(o.simulatedLatency),
        metrics,
        logRetention: {
          ...(o.logRetentionDir ? { dir: o.logRetentionDir } : {}),
          retentionMs: durationMs(o.logRetention),
          maxBytesPerReplica: Number(o.logTailBytes),
          maxTotalBytes: Number(o.logRetentionBytes),
        },
      });
      const http = await serveMetrics(o, metrics, () => agent.readiness(), logger);
      await agent.start();
      logger.info({ wallet: wallet.address, hub: o.hubAddress, metricsPort: http.port }, 'agent started');
      await untilSignalled(async () => {
        await agent.stop();
        await http.close();
      }, logger);
    });
}

/** The two ephemeral-storage flags, checked: quantities of at least 1Mi, the default no more than the max. */
export function ephemeralStorageOf(defaultText: string, maxText: string): { default: string; max: string } {
  const bytes = (flag: string, text: string) => {
    const q = String(text).trim();
    if (!QUANTITY_PATTERN.test(q)) throw new CliError(`--${flag}: ${JSON.stringify(text)} is not a quantity (e.g. 20Gi)`, ExitCode.Usage);
    const n = parseQuantity(q);
    if (n < 2 ** 20) throw new CliError(`--${flag}: ${q} is less than 1Mi`, ExitCode.Usage);
    return { q, n };
  };
  const d = bytes('default-ephemeral-storage', defaultText);
  const m = bytes('max-ephemeral-storage', maxText);
  if (d.n > m.n) throw new CliError(`--default-ephemeral-storage ${d.q} is more than --max-ephemeral-storage ${m.q}`, ExitCode.Usage);
  return { default: d.q, max: m.q };
}
