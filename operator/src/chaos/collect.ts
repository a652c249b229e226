import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { CoreV1Api, NetworkingV1Api } from '@kubernetes/client-node';
import type { JsonRpcProvider } from 'ethers';
import { EPOCH_LABEL, JOB_UID_LABEL } from '../agent/pods/build.js';
import type { GpuJob } from '../api/types.js';
import { attachComputeCredit, attachGpuMarket, EscrowState } from '../chain/contracts.js';
import { MarketTopics, parseMarketLogs, queryLogs } from '../chain/market-events.js';
import type { CustomObjectClient } from '../runtime/kube.js';
import { providerClient } from '../testbed/federation.js';
import { repoRoot } from '../testbed/tools.js';
import type { ChainEvent, Holdings, JobRecord, Leftover, ReputationPair } from './history.js';
import { JOB_NAMESPACE, type ChaosTopology } from './topology.js';

// Reading the end state of a run for the checker: the hub's GpuJobs and GpuProviders, every
// provider cluster's leftovers, the market's events and holdings, and each provider's reputation
// recomputed by `fedgpu reputation --from-chain`.

export async function finalJobs(jobs: CustomObjectClient<GpuJob>, records: JobRecord[]): Promise<void> {
  const list = await jobs.list({ namespace: JOB_NAMESPACE });
  const byUid = new Map(list.items.map((j) => [j.metadata.uid, j]));
  for (const r of records) {
    r.final = r.uid ? byUid.get(r.uid) : undefined;
    if (r.final) r.lastSeen = r.final;
  }
}

export async function chainEvents(rpc: JsonRpcProvider, market: string): Promise<ChainEvent[]> {
  const latest = await rpc.getBlockNumber();
  const logs = await queryLogs(rpc, { address: market, topics: [[MarketTopics.EscrowOpened, MarketTopics.Settled, MarketTopics.Refunded, MarketTopics.Slashed]], fromBlock: 0, toBlock: latest });
  return parseMarketLogs(logs, market).map((l) => {
    const a = l.args;
    const base = { name: l.name as ChainEvent['name'], escrowId: String(a.jobId), block: l.block, txHash: l.txHash, amount: String(a.amount) };
    switch (l.name) {
      case 'Settled':
        return { ...base, provider: String(a.provider).toLowerCase(), consumer: String(a.consumer).toLowerCase(), epoch: Number(a.epoch), gpuSeconds: Number(a.gpuSeconds), refunded: String(a.refunded) };
      case 'Slashed':
        return { ...base, provider: String(a.provider).toLowerCase(), consumer: String(a.consumer).toLowerCase(), epoch: Number(a.epoch), requested: String(a.requested), compensated: String(a.compensated) };
      default:
        return { ...base, consumer: String(a.consumer).toLowerCase() };
    }
  });
}

export async function holdings(t: ChaosTopology, rpc: JsonRpcProvider, escrowIds: readonly string[]): Promise<Holdings> {
  const block = await rpc.getBlockNumber();
  const at = { blockTag: block };
  const token = attachComputeCredit(t.chain.tokenAddress, rpc);
  const market = attachGpuMarket(t.chain.marketAddress, rpc);
  const consumer = t.chain.consumer.toLowerCase();
  const providerStake: Record<string, string> = {};
  const providerEarnings: Record<string, string> = {};
  for (const p of t.providers) {
    const [active, unbonding] = await market.stakeOf(p.wallet, at);
    providerStake[p.wallet] = (active + unbonding).toString();
    providerEarnings[p.wallet] = (await market.earningsOf(p.wallet, at)).toString();
  }
  let openEscrowed = 0n;
  for (const id of new Set(escrowIds)) {
    const [, amount, state] = await market.escrowOf(id, at);
    if (state === EscrowState.Open) openEscrowed += amount;
  }
  return {
    block,
    totalSupply: (await token.totalSupply(at)).toString(),
    marketBalance: (await token.balanceOf(t.chain.marketAddress, at)).toString(),
    consumerFree: { [consumer]: (await market.freeBalanceOf(consumer, at)).toString() },
    providerStake,
    providerEarnings,
    openEscrowed: openEscrowed.toString(),
    burned: (await market.burned(at)).toString(),
  };
}

/** Everything of an attempt still in a provider cluster: running pods, Secrets, Services, NetworkPolicies. */
export async function leftovers(t: ChaosTopology, rpc: JsonRpcProvider, escrowIds: readonly string[]): Promise<Leftover[]> {
  const out: Leftover[] = [];
  for (const p of t.providers) {
    const kc = t.testbed.cluster(p.cluster).kubeConfig;
    const core = kc.makeApiClient(CoreV1Api);
    const net = kc.makeApiClient(NetworkingV1Api);
    const selector = { labelSelector: JOB_UID_LABEL };
    const tag = (kind: Leftover['kind'], o: { metadata?: { name?: string; labels?: Record<string, string> } }): Leftover => ({
      cluster: p.cluster,
      kind,
      name: o.metadata?.name ?? '?',
      jobUid: o.metadata?.labels?.[JOB_UID_LABEL],
      epoch: o.metadata?.labels?.[EPOCH_LABEL] !== undefined ? Number(o.metadata.labels[EPOCH_LABEL]) : undefined,
    });
    // A finished pod holds no GPU; one still Pending or Running does.
    for (const pod of (await core.listPodForAllNamespaces(selector)).items) if (pod.status?.phase === 'Pending' || pod.status?.phase === 'Running') out.push(tag('Pod', pod));
    for (const s of (await core.listSecretForAllNamespaces(selector)).items) out.push(tag('Secret', s));
    for (const s of (await core.listServiceForAllNamespaces(selector)).items) out.push(tag('Service', s));
    for (const n of (await net.listNetworkPolicyForAllNamespaces(selector)).items) out.push(tag('NetworkPolicy', n));
  }
  const market = attachGpuMarket(t.chain.marketAddress, rpc);
  for (const id of new Set(escrowIds)) {
    const [, , state] = await market.escrowOf(id);
    if (state === EscrowState.Open) out.push({ cluster: 'chain', kind: 'Escrow', name: id });
  }
  return out;
}

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(repoRoot, 'operator', 'src', 'cli', 'main.ts'), ...args], { cwd: repoRoot, timeout: 120_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

export async function reputations(t: ChaosTopology): Promise<ReputationPair[]> {
  const gps = await providerClient(t.testbed.cluster('hub')).list();
  const out: ReputationPair[] = [];
  for (const p of t.providers) {
    const gp = gps.find((g) => g.spec.wallet.toLowerCase() === p.wallet);
    const status = gp?.status?.reputation;
    const pair: ReputationPair = { provider: p.name, wallet: p.wallet };
    if (status) {
      pair.status = { score: status.score!, successes: status.successes!, failures: status.failures!, asOfBlock: status.asOfBlock };
      const res = await cli(['reputation', '--from-chain', p.wallet, '--block', String(status.asOfBlock), '--chain-rpc', t.chain.rpcUrl, '--market-address', t.chain.marketAddress, '-o', 'json']);
      if (res.code === 0) {
        const r = JSON.parse(res.stdout) as { score: number; successes: number; failures: number; asOfBlock: number };
        pair.fromChain = { score: r.score, successes: r.successes, failures: r.failures, asOfBlock: r.asOfBlock };
      }
    }
    out.push(pair);
  }
  return out;
}
