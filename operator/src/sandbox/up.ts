import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ManagedProcess } from '../testbed/processes.js';
import { runKubectl } from '../testbed/kubectl.js';
import { startTestbed, type Testbed } from '../testbed/testbed.js';
import { repoRoot } from '../testbed/tools.js';
import { readSupervisor, supervisorPidLine } from './down.js';
import { sandboxDir, supervisorPidPath, writeStatus, type SandboxStatus } from './state.js';
import type { KubeConfig } from '@kubernetes/client-node';
import { HUB_CLUSTER, providerSettings, providerWalletIndex, REAL_NODE_CLUSTER, SANDBOX_PROVIDER_LOST_AFTER, sandboxProviders, sandboxWallet } from './topology.js';
import { reapRealNodes } from '../testbed/real-node/leftovers.js';
import { busyboxImage, pauseImage } from '../testbed/real-node/images.js';
import { hubPki, installCrds, providerClient, readyStatus, startAgent, startHubProcess, type AgentHandle } from '../testbed/federation.js';
import { waitFor } from '../testbed/wait.js';
import { accessServingCert, registerAccessApi } from '../testbed/access-api.js';
import { freePort } from '../testbed/free-port.js';
import { trainingLog } from './training-log.js';
import { createServer, type Server } from 'node:http';
import { startPrometheus, type Prometheus } from '../testbed/prometheus.js';
import { CONSUMER_DEPOSIT, PROVIDER_STAKE, startSandboxChain, type SandboxChain } from './chain.js';

export interface SandboxOptions {
  /** Start, show the story, and exit cleanly instead of staying up. */
  once?: boolean;
  log?: (line: string) => void;
}

export interface RunningSandbox {
  status: SandboxStatus;
  testbed: Testbed;
  agents: Map<string, AgentHandle>;
  hubKubeConfig: KubeConfig;
  log: (line: string) => void;
  stop(): Promise<void>;
}

/** Brings up the local federation. Each step prints its progress; the first run builds tools first. */
export async function sandboxUp(opts: SandboxOptions = {}): Promise<RunningSandbox> {
  const started = Date.now();
  const log = (line: string) =>
    (opts.log ?? console.log)(`[sandbox ${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${line}`);

  const previous = readSupervisor();
  if (previous.state === 'running' && previous.identity.pid !== process.pid) {
    throw new Error(`a sandbox is already running (supervisor pid ${previous.identity.pid}); stop it with 'make sandbox-down'`);
  }
  if (previous.state === 'unverified' && previous.pid !== process.pid) {
    // Starting would delete the folder under a sandbox that may still be running.
    throw new Error(`a sandbox may be running (supervisor pid ${previous.pid}): ${previous.why}. If it is one, stop it ('kill ${previous.pid}'), then 'make sandbox-down' clears what it left`);
  }
  // A sandbox killed too hard may have left a real node's containers, mounts and cgroups behind.
  reapRealNodes(sandboxDir);
  rmSync(sandboxDir, { recursive: true, force: true });
  mkdirSync(sandboxDir, { recursive: true });
  // Who this process is, not just its pid: `sandbox down` signals it only while the pid is still ours.
  writeFileSync(supervisorPidPath, supervisorPidLine());

  const status: SandboxStatus = {
    startedAt: new Date(started).toISOString(),
    supervisorPid: process.pid,
    state: 'starting',
    clusters: [],
  };
  writeStatus(status);

  log(`starting the hub and ${sandboxProviders.length} provider clusters (etcd, kube-apiserver, scheduler, controller-manager, kwok; a real kubelet and containerd for ${REAL_NODE_CLUSTER})`);
  const kubeconfigOf = (name: string) => join(sandboxDir, `${name}.kubeconfig`);
  const testbed = await startTestbed(join(sandboxDir, 'clusters'), [
    { name: HUB_CLUSTER, scheduler: false, kubeconfigPath: kubeconfigOf(HUB_CLUSTER) },
    ...sandboxProviders.map((p) => ({ name: p.cluster, gpuNodes: p.gpuNodes, realNodes: p.realNodes, kubeconfigPath: kubeconfigOf(p.cluster) })),
  ]);
  // The hub and agents are our children too: stop them first, or they keep this process alive.
  const fedgpuProcesses: ManagedProcess[] = [];
  let chain: SandboxChain | undefined;
  let prometheus: Prometheus | undefined;
  const podServers: Server[] = [];
  const stop = async () => {
    for (const s of podServers) s.close();
    await Promise.all(fedgpuProcesses.map((p) => p.stop()));
    await prometheus?.stop();
    await chain?.stop();
    await testbed.stop();
    rmSync(supervisorPidPath, { force: true });
    writeStatus({ ...status, state: 'stopped' });
  };
  try {
    status.clusters = [
      { name: HUB_CLUSTER, role: 'hub', kubeconfig: kubeconfigOf(HUB_CLUSTER), server: testbed.cluster(HUB_CLUSTER).server },
      ...sandboxProviders.map((p) => ({
        name: p.cluster,
        role: 'provider' as const,
        displayName: p.displayName,
        kubeconfig: kubeconfigOf(p.cluster),
        server: testbed.cluster(p.cluster).server,
      })),
    ];
    for (const p of sandboxProviders) {
      const gpus = p.gpuNodes.reduce((n, g) => n + g.count * g.gpusPerNode, 0) + (p.realNodes ?? []).reduce((n, r) => n + r.gpus, 0);
      log(`  ${p.cluster}: ${p.displayName} (${gpus} GPUs) at ${testbed.cluster(p.cluster).server}`);
    }
    log(`  ${REAL_NODE_CLUSTER}'s real node has the images ${busyboxImage()} and ${pauseImage()} (no registry)`);

    log('installing the fedgpu CRDs into the hub');
    const hubKubeconfig = kubeconfigOf(HUB_CLUSTER);
    await installCrds(testbed.cluster(HUB_CLUSTER));

    log('starting anvil, deploying ComputeCredit and GpuMarket, staking the providers and funding a consumer bound to namespace default');
    chain = await startSandboxChain(join(sandboxDir, 'chain'), hubKubeconfig, sandboxProviders.length);
    status.chain = {
      rpcUrl: chain.rpcUrl,
      chainId: chain.chainId,
      contracts: { ComputeCredit: chain.tokenAddress, GpuMarket: chain.marketAddress },
      consumer: chain.consumer,
      consumerKeyFile: chain.consumerKeyFile,
    };
    log(`  GpuMarket ${chain.marketAddress} on ${chain.rpcUrl}; consumer ${chain.consumer} deposited ${CONSUMER_DEPOSIT} credits; each provider staked ${PROVIDER_STAKE}`);

    log('starting the hub (marketplace gRPC over mutual TLS, settlement on chain) and one agent per provider');
    const pki = await hubPki(join(sandboxDir, 'pki'));
    // Consumer access (fedgpu logs/exec/port-forward): the hub's aggregated API, registered below.
    const accessPort = await freePort();
    const serving = await accessServingCert(pki);
    writeFileSync(join(pki.dir, 'access.crt'), serving.certPem);
    writeFileSync(join(pki.dir, 'access.key'), serving.keyPem, { mode: 0o600 });
    // kwok serves this file as every job pod's log: a training run as the demo jobs would print it.
    for (const p of sandboxProviders) {
      writeFileSync(testbed.cluster(p.cluster).access.logFile, trainingLog(p.cluster));
      // What a job's port answers (kwok forwards every pod port here): fedgpu port-forward reaches it.
      podServers.push(createServer((req, res) => res.end(`hello from a job pod on ${p.cluster} (${req.method} ${req.url})\n`)).listen(testbed.cluster(p.cluster).access.forwardPort, '127.0.0.1'));
    }
    const hub = await startHubProcess(testbed.cluster(HUB_CLUSTER), pki, join(sandboxDir, 'hub'), [
      '--provider-lost-after', SANDBOX_PROVIDER_LOST_AFTER,
      '--access-port', String(accessPort),
      '--access-cert', join(pki.dir, 'access.crt'),
      '--access-key', join(pki.dir, 'access.key'),
      ...chain.hubArgs,
    ]);
    fedgpuProcesses.push(hub.process);
    await registerAccessApi(testbed.cluster(HUB_CLUSTER), pki.ca.certPem, accessPort);
    log(`  the hub serves fedgpu logs/exec/port-forward as APIService v1alpha1.access.fedgpu.io (port ${accessPort})`);
    status.hub = { grpcAddress: hub.grpcAddress, metricsUrl: `http://127.0.0.1:${hub.metricsPort}/metrics` };
    prometheus = await startPrometheus({
      dir: join(sandboxDir, 'prometheus'),
      targets: [`127.0.0.1:${hub.metricsPort}`],
      ruleFiles: [join(repoRoot, 'deploy', 'prometheus', 'fedgpu-alerts.yaml')],
      interval: '5s',
    });
    status.prometheus = { url: prometheus.url };
    log(`  Prometheus ${prometheus.url} scrapes the hub's ${status.hub.metricsUrl} with the shipped alert rules`);
    const providers = providerClient(testbed.cluster(HUB_CLUSTER));
    const agents = await Promise.all(
      sandboxProviders.map((p, i) =>
        startAgent(p.cluster, testbed.cluster(p.cluster), pki, hub.grpcAddress, providerSettings(p), sandboxWallet(providerWalletIndex(i)), [
          '--simulated-latency', p.latency,
        ]),
      ),
    );
    // Agents are restarted by the demo, so stop whichever process each runs now.
    fedgpuProcesses.push(...agents.map((a) => ({ stop: (ms?: number) => a.process.stop(ms) }) as ManagedProcess));
    for (const [i, agent] of agents.entries()) {
      await waitFor(`${sandboxProviders[i]!.cluster} to join the market, staked`, async () => {
        const gp = await providers.byWallet(agent.wallet.address);
        const staked = gp?.status?.conditions?.find((c) => c.type === 'Staked')?.status === 'True';
        return readyStatus(gp)?.status === 'True' && staked ? true : undefined;
      }, { timeoutMs: 90_000 });
    }
    log('every provider is connected and Ready:');
    for (const line of (await runKubectl(hubKubeconfig, ['get', 'gp', '-o', 'wide'])).stdout.trimEnd().split('\n')) log(`  ${line}`);

    status.state = 'running';
    writeStatus(status);
    log('the federation is up');
    const agentsByCluster = new Map(sandboxProviders.map((p, i) => [p.cluster, agents[i]!]));
    return { status, testbed, stop, agents: agentsByCluster, hubKubeConfig: testbed.cluster(HUB_CLUSTER).kubeConfig, log };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The closing lines: where things are and what to try next. */
export function nextSteps(status: SandboxStatus): string {
  const hub = status.clusters.find((c) => c.role === 'hub');
  const provider = status.clusters.find((c) => c.role === 'provider');
  const rel = (p: string) => p.replace(`${repoRoot}/`, '');
  return [
    '',
    'Kubeconfigs:',
    ...status.clusters.map((c) => `  ${c.name.padEnd(12)} ${rel(c.kubeconfig)}`),
    '',
    'Try:',
    `  bin/kubectl --kubeconfig ${rel(provider?.kubeconfig ?? '')} get nodes -L nvidia.com/gpu.product`,
    ...status.clusters.filter((c) => c.name === REAL_NODE_CLUSTER).map((c) =>
      `  bin/kubectl --kubeconfig ${rel(c.kubeconfig)} get pod -A -o wide   # real containers: containerd:// IDs`),
    `  bin/kubectl --kubeconfig ${rel(hub?.kubeconfig ?? '')} apply -f examples/gpujob-single.yaml`,
    `  bin/kubectl --kubeconfig ${rel(hub?.kubeconfig ?? '')} get gj,gp`,
    '  npx fedgpu market                 # idle pools, prices, reputation, RTT',
    '  npx fedgpu explain failover-demo   # where it ran, why, and what it cost',
    '  npx fedgpu logs train-gang --replica 2      # a job\'s log, from the provider that ran it, through the hub',
    '  npx fedgpu logs failover-demo --attempt 1   # the log tail of the attempt that was lost or reclaimed',
    // The demo jobs have ended by now: exec and port-forward need a running one.
    `  bin/kubectl --kubeconfig ${rel(hub?.kubeconfig ?? '')} apply -f examples/gpujob-notebook.yaml   # runs 30 min`,
    "  npx fedgpu exec notebook -- sh -c 'echo hello from the pod'",
    '  npx fedgpu port-forward notebook 8080:8080   # then: curl localhost:8080',
    ...(status.chain
      ? [`  npx fedgpu balance ${status.chain.consumer}   # the consumer's deposit, escrow and payments`]
      : []),
    ...(status.prometheus ? [`  open ${status.prometheus.url}/alerts   # Prometheus with the shipped alert rules`] : []),
    '  npx fedgpu sandbox status -o json',
    '',
    "Stop everything with 'make sandbox-down' (or Ctrl-C here).",
  ].join('\n');
}
