import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { JOB_UID_LABEL } from '../agent/pods/build.js';
import { startProcess } from '../testbed/processes.js';
import { waitFor } from '../testbed/wait.js';
import type { FaultPlan } from './schedule.js';
import { CONFIRMATIONS, type ChaosProvider, type ChaosTopology } from './topology.js';

// Carrying out one planned fault on the chaos topology. Each injector starts the fault and returns
// how to end it, plus a detail for the history (which node, which replica). Injectors act only on
// processes and proxies this run started, by pid.

export interface Injection {
  detail: string;
  end(): Promise<void>;
}

type Injector = (fault: FaultPlan, topology: ChaosTopology) => Promise<Injection>;

const signal = (pid: number, sig: NodeJS.Signals) => {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
};

function providerOf(fault: FaultPlan, t: ChaosTopology): ChaosProvider {
  const cluster = fault.target.replace(/^provider:/, '');
  const p = t.providers.find((x) => x.cluster === cluster);
  if (!p) throw new Error(`no provider cluster ${cluster}`);
  return p;
}

/** A node of the provider running a job pod now (the interesting victim), else any GPU node. */
async function busyNode(p: ChaosProvider, t: ChaosTopology): Promise<string> {
  const core = t.testbed.cluster(p.cluster).kubeConfig.makeApiClient(CoreV1Api);
  const pods = await core.listPodForAllNamespaces({ labelSelector: JOB_UID_LABEL });
  const running = pods.items.filter((x) => x.status?.phase === 'Running' && x.spec?.nodeName).map((x) => x.spec!.nodeName!);
  if (running.length) return running[0]!;
  const nodes = await core.listNode();
  return nodes.items.map((n) => n.metadata!.name!).find((n) => n.includes('h100')) ?? nodes.items[0]!.metadata!.name!;
}

const injectors: Record<FaultPlan['kind'], Injector> = {
  async 'agent-kill'(f, t) {
    const p = providerOf(f, t);
    signal(p.agent.process.pid, 'SIGKILL');
    await p.agent.process.exited;
    return { detail: `agent of ${p.cluster} pid ${p.agent.process.pid}`, end: () => p.agent.restart() };
  },
  async 'agent-pause'(f, t) {
    const p = providerOf(f, t);
    const pid = p.agent.process.pid;
    signal(pid, 'SIGSTOP');
    return { detail: `agent of ${p.cluster} pid ${pid}`, end: async () => signal(pid, 'SIGCONT') };
  },
  async partition(f, t) {
    const p = providerOf(f, t);
    const direction = f.direction === 'to-hub' ? 'to-target' : f.direction === 'from-hub' ? 'from-target' : 'both';
    for (const link of p.links) (f.delayMs ? link.delay(f.delayMs, direction) : link.blackhole(direction));
    return {
      detail: `${p.cluster} ${f.delayMs ? `delayed ${f.delayMs} ms` : 'blackholed'} ${f.direction ?? 'both'}`,
      end: async () => void (await Promise.all(p.links.map((l) => l.heal()))),
    };
  },
  async 'hub-leader-kill'(_f, t) {
    const leader = await waitFor('a hub leader', () => t.leader(), { timeoutMs: 30_000 });
    signal(leader.process.process.pid, 'SIGKILL');
    await leader.process.process.exited;
    return { detail: `replica ${leader.index} pid ${leader.process.process.pid}`, end: () => leader.restart() };
  },
  async 'hub-leader-term'(_f, t) {
    const leader = await waitFor('a hub leader', () => t.leader(), { timeoutMs: 30_000 });
    const pid = leader.process.process.pid;
    await leader.process.process.stop(20_000);
    return { detail: `replica ${leader.index} pid ${pid}`, end: () => leader.restart() };
  },
  async 'hub-leader-pause'(_f, t) {
    const leader = await waitFor('a hub leader', () => t.leader(), { timeoutMs: 30_000 });
    const pid = leader.process.process.pid;
    signal(pid, 'SIGSTOP');
    return { detail: `replica ${leader.index} pid ${pid}`, end: async () => signal(pid, 'SIGCONT') };
  },
  async 'apiserver-restart'(f, t) {
    const p = providerOf(f, t);
    const cluster = t.testbed.cluster(p.cluster);
    const i = cluster.processes.findIndex((x) => x.name === 'kube-apiserver');
    const old = cluster.processes[i]!;
    // Same binary and flags (port, certificates, etcd prefix): read back from /proc before the kill.
    const argv = readFileSync(`/proc/${old.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    await old.stop(5_000);
    return {
      detail: `${p.cluster} kube-apiserver pid ${old.pid}`,
      async end() {
        cluster.processes[i] = startProcess({ name: 'kube-apiserver', command: argv[0]!, args: argv.slice(1), dir: dirname(old.logPath) });
      },
    };
  },
  async 'node-notready'(f, t) {
    const p = providerOf(f, t);
    const cluster = t.testbed.cluster(p.cluster);
    const node = await busyNode(p, t);
    await cluster.kubectl(['label', 'node', node, 'fedgpu.io/sim-node-down=true', '--overwrite']);
    return { detail: `${p.cluster} node ${node}`, end: async () => void (await cluster.kubectl(['label', 'node', node, 'fedgpu.io/sim-node-down-'])) };
  },
  async 'owner-cordon'(f, t) {
    const p = providerOf(f, t);
    const cluster = t.testbed.cluster(p.cluster);
    const node = await busyNode(p, t);
    await cluster.kubectl(['cordon', node]);
    return { detail: `${p.cluster} node ${node}`, end: async () => void (await cluster.kubectl(['uncordon', node])) };
  },
  async 'rpc-outage'(_f, t) {
    await t.rpcProxy.refuse();
    return { detail: 'chain RPC refused', end: () => t.rpcProxy.heal() };
  },
  async 'rpc-slow'(f, t) {
    t.rpcProxy.delay(f.delayMs ?? 1_000);
    return { detail: `chain RPC ${f.delayMs} ms late`, end: () => t.rpcProxy.heal() };
  },
  async 'chain-reorg'(f, t) {
    // Straight to anvil, not through the hubs' proxy. Blocks mined after the snapshot vanish on
    // revert: a reorganisation as deep as the blocks mined during the fault.
    const rpc = async (method: string, params: unknown[] = []) => {
      const res = await fetch(t.chain.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
      const body = (await res.json()) as { result?: unknown; error?: { message: string } };
      if (body.error) throw new Error(`${method}: ${body.error.message}`);
      return body.result;
    };
    const snapshot = await rpc('evm_snapshot');
    const from = Number(await rpc('eth_blockNumber'));
    const fault = { detail: `snapshot at block ${from}`, end: async () => {} };
    fault.end = async () => {
      const to = Number(await rpc('eth_blockNumber'));
      // The hub records a transaction once it is CONFIRMATIONS deep: a deeper reorganisation is
      // outside what it promises (finality), so the fault stays within it.
      if (to - from >= CONFIRMATIONS) {
        fault.detail = `not reverted: ${to - from} blocks deep ≥ ${CONFIRMATIONS} confirmations`;
        return;
      }
      await rpc('evm_revert', [snapshot]);
      fault.detail = `reverted blocks ${from + 1}..${to} (${to - from} deep)`;
    };
    return fault;
  },
};

export function inject(fault: FaultPlan, topology: ChaosTopology): Promise<Injection> {
  return injectors[fault.kind](fault, topology);
}
