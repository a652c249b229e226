import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { freshProvider } from '../chain/provider.js';
import { startSandboxChain, type SandboxChain } from '../sandbox/chain.js';
import { sandboxWallet } from '../sandbox/topology.js';
import { hubPki, installCrds, providerClient, readyStatus, startAgent, startHubProcess, HUB_LEASE, type AgentHandle, type HubPki, type HubProcess } from '../testbed/federation.js';
import type { Cluster } from '../testbed/cluster.js';
import { freePort } from '../testbed/free-port.js';
import { startTestbed, type Testbed } from '../testbed/testbed.js';
import { waitFor } from '../testbed/wait.js';
import { FaultProxy } from './proxy.js';

// The chaos federation: the sandbox's shape with every link a fault can cut made explicit. A hub
// cluster with two hub replicas campaigning for one Lease; N provider clusters of H100 nodes
// (kwok), each agent reaching each replica through its own FaultProxy (a partition cuts exactly one
// provider); anvil with the contracts, reached by the hubs through a FaultProxy (RPC outages and
// slowness). Replicas advertise no address in the Lease, so an agent never leaves its proxies.

export const PRODUCT = 'NVIDIA-H100-80GB-HBM3';
export const JOB_NAMESPACE = 'default'; // the namespace the sandbox chain binds to its consumer
/**
 * The hub's minimum run; a budget must cover it plus the checkpoint grace (2 s) of every GPU for a
 * job to be placed. The tight-budget jobs (one GPU) cover 6–18 GPU-seconds: 3 + 2 places them all.
 */
export const CHAOS_MINIMUM_RUN_GPU_SECONDS = 3;
// The chart's Lease: the hub's Role may update no other.
export const LEASE = { ...HUB_LEASE, durationS: 8, renewDeadlineS: 6, retryPeriodMs: 1_000 };
export const PROVIDER_LOST_AFTER_MS = 12_000;
/** Blocks a settlement transaction must be under; anvil mines a block a second (interval mining). */
export const CONFIRMATIONS = 3;
/** Credits each chaos provider stakes (the sandbox stakes 200; the minimum is 100, a slash 10). */
export const CHAOS_PROVIDER_STAKE = '600';

export interface ChaosProvider {
  cluster: string;
  /** GpuProvider name on the hub (known once registered). */
  name: string;
  wallet: string;
  agent: AgentHandle;
  /** One proxy per hub replica, in replica order. */
  links: FaultProxy[];
}

export interface HubReplica {
  index: number;
  port: number;
  process: HubProcess;
  /** Times the supervisor restarted it after it exited on its own. */
  selfRestarts: number;
  /** Keeps the supervisor from restarting it (a fault holds it down) until restart(). */
  hold(): void;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface ChaosTopology {
  dir: string;
  testbed: Testbed;
  chain: SandboxChain;
  rpcProxy: FaultProxy;
  hubs: HubReplica[];
  providers: ChaosProvider[];
  /** The replica holding the Lease now, if any (read from the Lease). */
  leader(): Promise<HubReplica | undefined>;
  stop(): Promise<void>;
}

export async function startChaosTopology(dir: string, providerCount: number, log: (line: string) => void): Promise<ChaosTopology> {
  const clusters = Array.from({ length: providerCount }, (_, i) => `p${i + 1}`);
  log(`starting the hub cluster and ${providerCount} provider clusters`);
  const testbed = await startTestbed(join(dir, 'clusters'), [
    { name: 'hub', scheduler: false },
    ...clusters.map((name) => ({ name, gpuNodes: [{ prefix: `${name}-h100`, count: 3, gpusPerNode: 4, product: PRODUCT, memoryMiB: 81559 }] })),
  ]);
  const proxies: FaultProxy[] = [];
  const hubs: HubReplica[] = [];
  const providers: ChaosProvider[] = [];
  let chain: SandboxChain | undefined;
  const stop = async () => {
    await Promise.all(providers.map((p) => p.agent.process.stop()));
    await Promise.all(hubs.map((h) => h.stop()));
    await Promise.all(proxies.map((p) => p.stop()));
    await chain?.stop();
    await testbed.stop();
  };
  try {
    const hubCluster = testbed.cluster('hub');
    await installCrds(hubCluster);
    log('starting anvil with the contracts; staking the providers; funding the consumer');
    // Each provider stakes for the volume it serves: a real loss (an agent gone past providerLostAfter)
    // slashes every attempt it ran, 10 credits each (DESIGN §7: one slash per escrow), and a run of
    // 200 jobs loses dozens; with the sandbox's 200 credits against a 100-credit minimum, a few
    // losses would drain the market and leave the soak's later jobs nowhere to run.
    chain = await startSandboxChain(join(dir, 'chain'), hubCluster.kubeconfigPath, providerCount, CHAOS_PROVIDER_STAKE);
    // A block a second, as a real chain: transactions wait to be mined, confirmations accrue with
    // time, and a reorganisation shallower than CONFIRMATIONS drops unconfirmed transactions only.
    const rpc = freshProvider(chain.rpcUrl);
    await rpc.send('evm_setAutomine', [false]);
    await rpc.send('evm_setIntervalMining', [1]);
    const chainId = (await rpc.getNetwork()).chainId;
    rpc.destroy();
    const rpcUrl = new URL(chain.rpcUrl);
    const rpcProxy = await FaultProxy.start({ host: rpcUrl.hostname, port: Number(rpcUrl.port) });
    proxies.push(rpcProxy);
    const hubArgs = [
      ...withRpc(chain.hubArgs, rpcProxy.url),
      '--confirmations', String(CONFIRMATIONS),
      // Known up front, as the chart's hub.chain.chainId: a replica restarted during an RPC outage
      // leads at once instead of waiting for the chain.
      '--chain-id', String(chainId),
      '--provider-lost-after', `${PROVIDER_LOST_AFTER_MS / 1000}s`,
      // Tight-budget jobs cover a few GPU-seconds on purpose (they must be stopped by their escrow,
      // not wait for ever): the hub's minimum run is lowered to match.
      '--minimum-run', String(CHAOS_MINIMUM_RUN_GPU_SECONDS),
      '--leader-elect',
      '--lease-name', LEASE.name,
      '--lease-namespace', LEASE.namespace,
      '--lease-duration', `${LEASE.durationS}s`,
      '--renew-deadline', `${LEASE.renewDeadlineS}s`,
      '--retry-period', `${LEASE.retryPeriodMs}ms`,
    ];
    const pki = await hubPki(join(dir, 'pki'));
    for (const index of [0, 1]) hubs.push(await startReplica(hubCluster, pki, dir, index, hubArgs, log));
    log(`hub replicas on ${hubs.map((h) => h.port).join(', ')}; chain RPC through ${rpcProxy.url}`);
    for (const [i, cluster] of clusters.entries()) {
      const links = await Promise.all(hubs.map((h) => FaultProxy.start({ host: '127.0.0.1', port: h.port })));
      proxies.push(...links);
      const wallet = sandboxWallet(i + 1);
      const agent = await startAgent(cluster, testbed.cluster(cluster), pki, links.map((l) => l.address).join(','), { displayName: cluster, region: 'eu-west', pricePerGpuHour: { [PRODUCT]: (2 + i * 0.4).toFixed(2) } }, wallet);
      providers.push({ cluster, name: '', wallet: wallet.address.toLowerCase(), agent, links });
    }
    const gps = providerClient(hubCluster);
    for (const p of providers) {
      const gp = await waitFor(`${p.cluster} Ready and Staked`, async () => {
        const found = await gps.byWallet(p.wallet);
        const staked = found?.status?.conditions?.find((c) => c.type === 'Staked')?.status === 'True';
        return readyStatus(found)?.status === 'True' && staked ? found : undefined;
      }, { timeoutMs: 180_000 });
      p.name = gp.metadata.name!;
    }
    log(`providers Ready: ${providers.map((p) => `${p.cluster}=${p.name}`).join(', ')}`);
    const leases = hubCluster.kubeConfig.makeApiClient(CoordinationV1Api);
    return {
      dir,
      testbed,
      chain,
      rpcProxy,
      hubs,
      providers,
      async leader() {
        const lease = await leases.readNamespacedLease({ name: LEASE.name, namespace: LEASE.namespace });
        const holder = lease.spec?.holderIdentity;
        return hubs.find((h) => h.process.process.running() && holder === `${hostname()}_${h.process.process.pid}`);
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function withRpc(args: string[], url: string): string[] {
  const out = [...args];
  const i = out.indexOf('--chain-rpc');
  if (i >= 0) out[i + 1] = url;
  return out;
}

async function startReplica(hubCluster: Cluster, pki: HubPki, dir: string, index: number, hubArgs: string[], log: (line: string) => void): Promise<HubReplica> {
  const port = await freePort();
  let runs = 0;
  // Restarted on the same port with the same arguments, as a pod behind its address would be. A
  // wildcard advertise address publishes none in the Lease: agents stay on their own proxies.
  const start = () => startHubProcess(hubCluster, pki, join(dir, `hub-${index}-run-${++runs}`), [...hubArgs, '--grpc-port', String(port), '--advertise-address', `0.0.0.0:${port}`]);
  return superviseReplica(index, port, start, log);
}

/** Failed starts in a row after which a replica's supervisor gives up (it stays down, and logs so). */
export const MAX_REPLICA_STARTS = 10;

export interface SuperviseOptions {
  /** The wait before the n-th (from 0) start of a revival; a capped exponential back-off by default. */
  backoffMs?: (tries: number) => number;
}

/**
 * A hub replica under a supervisor like a pod's restartPolicy Always: a replica that exits on its
 * own (a leader that lost its Lease exits by design; one whose chain answers as another chain exits
 * too) is started again with a capped back-off, at most MAX_REPLICA_STARTS tries, unless a fault
 * holds it down. Revivals and restarts run one at a time; stop() waits for the one in flight, so
 * no process started for the replica outlives it.
 */
export async function superviseReplica(
  index: number,
  port: number,
  start: () => Promise<HubProcess>,
  log: (line: string) => void,
  opts: SuperviseOptions = {},
): Promise<HubReplica> {
  const backoffMs = opts.backoffMs ?? ((tries: number) => Math.min(1_000 * 2 ** tries, 10_000));
  let held = false;
  let stopping = false;
  // The revival or restart in flight, and those queued behind it: each checks the state afresh.
  let queue: Promise<void> = Promise.resolve();
  const serially = (op: () => Promise<void>): Promise<void> =>
    (queue = queue.then(op).catch((err: unknown) => log(`hub replica ${index}: ${(err as Error).message}`)));
  // Ends a back-off early (restart() or stop() need no wait).
  let wake: (() => void) | undefined;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    }).finally(() => (wake = undefined));
  // Nothing to start: a fault holds it down, it is stopping, or a start queued earlier brought it up.
  const noStartNeeded = () => held || stopping || replica.process.process.running();

  /** Starts a process and makes it the replica's; one that comes up after stop() began is stopped at once. */
  const launch = async (attempt: string): Promise<boolean> => {
    let proc: HubProcess;
    try {
      proc = await start();
    } catch (err) {
      log(`hub replica ${index} did not start (${attempt}): ${(err as Error).message}`);
      return false;
    }
    if (stopping) {
      await proc.process.stop();
      return true;
    }
    replica.process = proc;
    supervise(proc);
    return true;
  };
  const revive = async () => {
    for (let tries = 0; tries < MAX_REPLICA_STARTS; tries++) {
      if (noStartNeeded()) return;
      await pause(backoffMs(tries));
      if (noStartNeeded()) return;
      if (await launch(`try ${tries + 1} of ${MAX_REPLICA_STARTS}`)) return;
    }
    log(`hub replica ${index} did not start in ${MAX_REPLICA_STARTS} tries; giving up: it stays down`);
  };
  const supervise = (proc: HubProcess) => {
    void proc.process.exited.then(() => {
      if (held || stopping || replica.process !== proc) return;
      log(`hub replica ${index} exited on its own; restarting it`);
      replica.selfRestarts++;
      void serially(revive);
    });
  };
  const replica: HubReplica = {
    index,
    port,
    process: await start(),
    selfRestarts: 0,
    hold() {
      held = true;
    },
    async restart() {
      held = false;
      wake?.();
      await serially(async () => {
        if (noStartNeeded()) return;
        if (!(await launch('restart'))) void serially(revive);
      });
    },
    async stop() {
      stopping = true;
      wake?.();
      await queue;
      await replica.process.process.stop();
    },
  };
  supervise(replica.process);
  return replica;
}

/** Lines of a replica's log containing every text, for the report. */
export function countInLog(h: HubReplica, text: string): number {
  try {
    return readFileSync(h.process.process.logPath, 'utf8').split('\n').filter((l) => l.includes(text)).length;
  } catch {
    return 0;
  }
}
