import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { Wallet } from 'ethers';
import { pino } from 'pino';
import { stringify } from 'yaml';
import type { ProviderSettings } from '../agent/inventory.js';
import { GPUPROVIDER_PLURAL, GROUP, VERSION, type GpuProvider } from '../api/types.js';
import { startHub, type HubOptions, type RunningHub } from '../hub/hub.js';
import { chartIdentity, sharedChartIdentity, type ChartIdentity } from './chart-identity.js';
import type { Cluster } from './cluster.js';
import { runKubectl } from './kubectl.js';
import { exitedEarly, startProcess, type ManagedProcess } from './processes.js';
import { cliLaunch } from './binary.js';
import { repoRoot } from './tools.js';
import { freePort, onFreshPorts } from './free-port.js';
import { waitFor } from './wait.js';
import { createCa, issueCert, type CertificateAuthority } from '../tls/index.js';

// Pieces the end-to-end tests and the sandbox share: the hub's PKI, a hub in this process or as a
// process of the fedgpu CLI, agents as processes (so a test can kill one by pid), GpuProvider reads.

export interface HubPki {
  ca: CertificateAuthority;
  dir: string;
  caPath: string;
  server: { certPem: string; keyPem: string };
}

export async function hubPki(dir: string): Promise<HubPki> {
  mkdirSync(dir, { recursive: true });
  const ca = await createCa('fedgpu-hub-ca');
  const server = await issueCert(ca, { commonName: 'fedgpu-hub', ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'], usages: ['server'] });
  const caPath = join(dir, 'ca.crt');
  writeFileSync(caPath, ca.certPem);
  return { ca, dir, caPath, server };
}

export async function installCrds(cluster: Cluster): Promise<void> {
  const crds = join(repoRoot, 'crds');
  for (const args of [['apply', '--server-side', '-f', crds], ['wait', '--for=condition=Established', '--timeout=60s', '-f', crds]]) {
    const res = await runKubectl(cluster.kubeconfigPath, args);
    if (res.code !== 0) throw new Error(res.stderr);
  }
}

/** Runs the fedgpu binary as a child process (binary.ts; stopped by its pid like every test-bed process). */
export function startCliProcess(name: string, dir: string, args: string[], nodeFlags: string[] = []): ManagedProcess {
  return startProcess({ name, command: process.execPath, dir, args: [...nodeFlags, ...cliLaunch(), ...args] });
}

/** The hub's release, as `helm install fedgpu -n fedgpu-system` names it (ServiceAccount fedgpu). */
export const HUB_RELEASE = 'fedgpu';
export const HUB_RELEASE_NAMESPACE = 'fedgpu-system';
/** The Lease the chart's hub Role may update (templates/_helpers.tpl fedgpu.hub.leaseName). */
export const HUB_LEASE = { name: `${HUB_RELEASE}-leader`, namespace: HUB_RELEASE_NAMESPACE } as const;

// Hub mode with the access API on: the superset of what the chart grants a hub. The chain and the
// access CA only have to render (the Deployment and APIService are not applied).
const HUB_IDENTITY_VALUES = [
  '--set', 'mode=hub',
  '--set', 'hub.chain.marketAddress=0x0000000000000000000000000000000000000001',
  '--set', 'hub.access.enabled=true',
  '--set-string', `hub.access.caBundle=${Buffer.from('unused: the test bed registers the APIService itself').toString('base64')}`,
];

/**
 * The identity the chart gives the hub (ServiceAccount token, ClusterRoles, Role, bindings rendered
 * by helm in hub mode), installed once per cluster: every hub of a test bed runs with it, not as
 * system:masters, so a permission the chart lacks fails a test.
 */
export function hubIdentity(hubCluster: Pick<Cluster, 'kubeconfigPath'>): Promise<ChartIdentity> {
  return sharedChartIdentity(hubCluster.kubeconfigPath, HUB_RELEASE, HUB_RELEASE_NAMESPACE, HUB_IDENTITY_VALUES);
}

export interface HubProcess {
  process: ManagedProcess;
  grpcAddress: string;
  /** Port of /metrics, /healthz and /readyz (a free one unless extraArgs name --metrics-port). */
  metricsPort: number;
}

/**
 * Starts `fedgpu hub` as a process, with the chart's hub identity, and waits until its marketplace
 * listens. `nodeFlags` go to node itself (a bench's `--inspect`).
 */
export async function startHubProcess(hubCluster: Cluster, pki: HubPki, dir: string, extraArgs: string[] = [], nodeFlags: string[] = []): Promise<HubProcess> {
  writeFileSync(join(pki.dir, 'server.crt'), pki.server.certPem);
  writeFileSync(join(pki.dir, 'server.key'), pki.server.keyPem, { mode: 0o600 });
  const identity = await hubIdentity(hubCluster);
  mkdirSync(dir, { recursive: true });
  const kubeconfig = join(dir, 'hub.kubeconfig');
  writeFileSync(kubeconfig, identity.kubeConfig.exportConfig(), { mode: 0o600 });
  return onFreshPorts(async () => {
    const port = await freePort();
    const proc = startCliProcess('hub', dir, [
      '--kubeconfig', kubeconfig,
      'hub',
      '--tls-ca', pki.caPath,
      '--tls-cert', join(pki.dir, 'server.crt'),
      '--tls-key', join(pki.dir, 'server.key'),
      '--grpc-port', String(port),
      '--metrics-port', '0',
      ...extraArgs,
    ], nodeFlags);
    const ready = await hubReady(proc);
    return { process: proc, grpcAddress: `127.0.0.1:${port}`, metricsPort: ready.metricsPort };
  });
}

/** Waits for a hub process's "hub ready" line (this run's part of its log); PortTaken if it lost its port. */
export function hubReady(proc: ManagedProcess): Promise<{ metricsPort: number }> {
  return waitFor('the hub to listen', () => {
    if (!proc.running()) throw exitedEarly(proc, 'the hub');
    const line = readFileSync(proc.logPath).subarray(proc.logStart ?? 0).toString('utf8').split('\n').find((l) => l.includes('"hub ready"'));
    return line ? (JSON.parse(line) as { metricsPort: number }) : undefined;
  }, { timeoutMs: 60_000 });
}

export async function startTestHub(hubCluster: Cluster, pki: HubPki, dir: string, providerLostAfterMs = 4_000, extra: Partial<HubOptions> = {}): Promise<RunningHub> {
  return startHub({
    ...extra,
    kubeConfig: (await hubIdentity(hubCluster)).kubeConfig,
    tls: { caPem: pki.ca.certPem, certPem: pki.server.certPem, keyPem: pki.server.keyPem },
    logger: pino({ level: 'info' }, pino.destination({ dest: join(dir, 'hub.log'), sync: true, mkdir: true })),
    providerLostAfterMs,
    heartbeatIntervalMs: 500,
    pingIntervalMs: 500,
  });
}

export interface AgentHandle {
  wallet: Wallet;
  process: ManagedProcess;
  restart(): Promise<void>;
}

/** Namespace of the agent's chart identity in each provider cluster (as `helm install -n`). */
export const AGENT_RELEASE_NAMESPACE = 'fedgpu-system';

/** Starts `fedgpu agent` for a provider cluster as a child process. */
export async function startAgent(
  name: string,
  cluster: Cluster,
  pki: HubPki,
  hubAddress: string,
  settings: ProviderSettings,
  wallet: Wallet = Wallet.createRandom() as unknown as Wallet,
  extraArgs: string[] = [],
  nodeFlags: string[] = [],
): Promise<AgentHandle> {
  const dir = join(pki.dir, name);
  mkdirSync(dir, { recursive: true });
  const client = await issueCert(pki.ca, { commonName: wallet.address, usages: ['client'] });
  writeFileSync(join(dir, 'client.crt'), client.certPem);
  writeFileSync(join(dir, 'client.key'), client.keyPem, { mode: 0o600 });
  writeFileSync(join(dir, 'wallet.key'), wallet.privateKey, { mode: 0o600 });
  writeFileSync(join(dir, 'settings.yaml'), stringify(settings));
  // The agent runs with the identity the chart gives it (ServiceAccount token, ClusterRole and
  // admission policy rendered by helm), not as system:masters: a permission the chart lacks fails.
  const identity = await chartIdentity(cluster.kubeconfigPath, 'fedgpu-agent', AGENT_RELEASE_NAMESPACE, [
    '--set', 'mode=provider', '--set', 'hub.address=hub.invalid:443', '--set', `provider.wallet=${wallet.address}`,
    // Only the identity is used; the Deployment (which needs a price to render) is not applied.
    '--set-string', 'provider.settings.defaultPricePerGpuHour=1',
  ]);
  writeFileSync(join(dir, 'agent.kubeconfig'), identity.kubeConfig.exportConfig(), { mode: 0o600 });
  const spawn = () =>
    startCliProcess(`agent-${name}`, dir, [
      '--kubeconfig', join(dir, 'agent.kubeconfig'),
      'agent',
      '--hub-address', hubAddress,
      '--tls-ca', pki.caPath,
      '--tls-cert', join(dir, 'client.crt'),
      '--tls-key', join(dir, 'client.key'),
      '--wallet-key-file', join(dir, 'wallet.key'),
      '--settings', join(dir, 'settings.yaml'),
      '--heartbeat-interval', '500ms',
      // As the chart's Deployment passes it: logs, exec and port-forward only in its tenant namespaces.
      '--tenant-access-role', `${identity.username.split(':').at(-1)}-tenant-access`,
      // Many agents share this machine: each takes a free port for /metrics.
      '--metrics-port', '0',
      ...extraArgs,
    ], nodeFlags);
  const handle: AgentHandle = {
    wallet,
    process: spawn(),
    async restart() {
      handle.process = spawn();
    },
  };
  return handle;
}

export function providerClient(hub: Cluster) {
  const api = hub.kubeConfig.makeApiClient(CustomObjectsApi);
  return {
    async list(): Promise<GpuProvider[]> {
      return ((await api.listClusterCustomObject({ group: GROUP, version: VERSION, plural: GPUPROVIDER_PLURAL })) as { items: GpuProvider[] }).items;
    },
    async byWallet(wallet: string): Promise<GpuProvider | undefined> {
      return (await this.list()).find((p) => p.spec.wallet.toLowerCase() === wallet.toLowerCase());
    },
  };
}

export const readyStatus = (p: GpuProvider | undefined) => p?.status?.conditions?.find((c) => c.type === 'Ready');
export const poolIdle = (p: GpuProvider | undefined, product: string) => p?.status?.pools?.find((x) => x.gpuProduct === product)?.idle;
