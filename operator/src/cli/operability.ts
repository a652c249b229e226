// Flags and plumbing that `fedgpu hub` and `fedgpu agent` share: the metrics/health endpoint, leader
// election settings, and the graceful SIGTERM path.
import type { Command } from 'commander';
import type { Logger } from 'pino';
import type { HubLeaderElection } from '../hub/leadership.js';
import { type MetricsServer, type Readiness, startMetricsServer } from '../metrics/http-server.js';
import { endpointAddressProblem } from '../hub/access/leader-endpoint.js';
import { CliError, ExitCode } from './errors.js';

export function addMetricsFlags(command: Command): Command {
  return command
    .option('--metrics-bind-address <host>', 'address of /metrics, /healthz and /readyz (0.0.0.0 in a pod)', '127.0.0.1')
    .option('--metrics-port <port>', 'port of /metrics, /healthz and /readyz (0 picks a free one)', '9090');
}

export function addLeaderElectionFlags(command: Command): Command {
  return command
    .option('--leader-elect [bool]', 'run as one of several replicas: only the Lease holder leads (docs/ha.md)', false)
    .option('--lease-name <name>', 'Lease used for leader election', 'fedgpu-hub')
    .option('--leader-election-id <name>', 'alias of --lease-name')
    .option('--lease-namespace <ns>', 'namespace of the Lease (default: $POD_NAMESPACE, else default)')
    .option('--lease-duration <duration>', 'how long a Lease stays valid without renewal', '15s')
    .option('--renew-deadline <duration>', 'how long the leader tries to renew before it gives up', '10s')
    .option('--retry-period <duration>', 'pause between acquire or renew attempts', '2s')
    .option('--advertise-address <host:port>', 'where agents reach this replica when it leads (default: --grpc-host or $POD_IP, and the gRPC port)');
}

export const durationMs = (text: string): number => {
  const m = /^(\d+)(ms|s|m|h)$/.exec(text);
  if (!m) throw new CliError(`bad duration ${text}: use e.g. 500ms, 15s, 2m or 168h`, ExitCode.Usage);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
};

const truthy = (v: unknown) => v === true || v === 'true' || v === '1';

/** A `--flag=true|false` value; anything else is a usage error naming the flag. */
export function booleanFlag(flag: string, value: unknown): boolean {
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new CliError(`${flag} ${String(value)} is neither true nor false`, ExitCode.Usage);
}

interface LeaderElectionFlags {
  leaderElect?: boolean | string;
  leaseName: string;
  leaderElectionId?: string;
  leaseNamespace?: string;
  leaseDuration: string;
  renewDeadline: string;
  retryPeriod: string;
}

export function leaderElectionOf(o: LeaderElectionFlags): HubLeaderElection | undefined {
  if (!truthy(o.leaderElect)) return undefined;
  return {
    name: o.leaderElectionId ?? o.leaseName,
    namespace: o.leaseNamespace ?? process.env.POD_NAMESPACE ?? 'default',
    leaseDurationMs: durationMs(o.leaseDuration),
    renewDeadlineMs: durationMs(o.renewDeadline),
    retryPeriodMs: durationMs(o.retryPeriod),
  };
}

/** Where agents reach this replica: the explicit flag, else a concrete listen host, else the pod IP. */
export function advertiseAddressOf(o: { advertiseAddress?: string; grpcHost: string }, port: number): string {
  if (o.advertiseAddress) return o.advertiseAddress;
  const wildcard = o.grpcHost === '0.0.0.0' || o.grpcHost === '::';
  return `${wildcard ? (process.env.POD_IP ?? o.grpcHost) : o.grpcHost}:${port}`;
}

/**
 * Where the leader publishes itself for --access-service: the Service's namespace ($POD_NAMESPACE,
 * else --lease-namespace) and this pod's IP (--access-advertise-address, else $POD_IP).
 */
export function accessEndpointOf(
  o: { accessService: string; accessAdvertiseAddress?: string; leaseNamespace?: string },
  env: Record<string, string | undefined>,
): { service: string; namespace: string; address: string; podName?: string } {
  const namespace = env.POD_NAMESPACE ?? o.leaseNamespace;
  if (!namespace) throw new CliError("--access-service needs the Service's namespace: set $POD_NAMESPACE (the chart does) or --lease-namespace", ExitCode.Usage);
  const address = o.accessAdvertiseAddress ?? env.POD_IP;
  if (!address) throw new CliError("--access-service needs this replica's pod IP: set $POD_IP (the chart does) or --access-advertise-address", ExitCode.Usage);
  const problem = endpointAddressProblem(address);
  if (problem) throw new CliError(`--access-service: ${problem}`, ExitCode.Usage);
  return { service: o.accessService, namespace, address, ...(env.POD_NAME ? { podName: env.POD_NAME } : {}) };
}

export function serveMetrics(
  o: { metricsBindAddress: string; metricsPort: string },
  metrics: { text(): Promise<string>; contentType: string },
  readiness: () => Readiness,
  logger: Logger,
): Promise<MetricsServer> {
  return startMetricsServer({
    host: o.metricsBindAddress,
    port: Number(o.metricsPort),
    metrics: () => metrics.text(),
    contentType: metrics.contentType,
    readiness,
    logger,
  });
}

/**
 * Runs until SIGINT/SIGTERM, then `stop` (stop taking work, finish in-flight writes) and exits 0;
 * a stop that hangs past `graceMs` exits 1 (the kubelet would SIGKILL at its own grace anyway).
 * A second signal exits at once.
 */
export async function untilSignalled(stop: () => Promise<void>, log: Logger, graceMs = 25_000): Promise<never> {
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    for (const s of ['SIGINT', 'SIGTERM'] as const) process.once(s, () => resolve(s));
  });
  log.info({ signal }, 'shutting down');
  for (const s of ['SIGINT', 'SIGTERM'] as const) process.once(s, () => process.exit(1));
  const timer = setTimeout(() => {
    log.error({ graceMs }, 'graceful shutdown took too long; exiting');
    process.exit(1);
  }, graceMs);
  timer.unref();
  try {
    await stop();
  } catch (err) {
    log.error({ err }, 'graceful shutdown failed');
    process.exit(1);
  }
  log.info('stopped');
  process.exit(0);
}
