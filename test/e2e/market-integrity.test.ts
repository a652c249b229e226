import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Wallet, type JsonRpcProvider } from 'ethers';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StreamClient } from '../../operator/src/agent/stream/client.js';
import { SIM_IMAGE_PULL_ERROR_ANNOTATION } from '../../operator/src/api/constants.js';
import type { GpuJob } from '../../operator/src/api/types.js';
import { attemptEscrowId } from '../../operator/src/chain/attempt-escrow.js';
import { deployMarket, EscrowState, type GpuMarketContract } from '../../operator/src/chain/contracts.js';
import { formatCredits, parseCredits } from '../../operator/src/chain/credits.js';
import { freshProvider } from '../../operator/src/chain/provider.js';
import { DEFAULT_HUB_ID, tenantIdOf } from '../../operator/src/chain/tenant.js';
import { buildUsageReceipt, marketDomain, signUsageReceipt, usageAmount } from '../../operator/src/chain/receipt.js';
import { type Assign, AttemptPhase, type HubMessage, type UsageReceipt } from '../../operator/src/gen/proto/fedgpu/v1/market.js';
import { startAnvil, type Anvil } from '../../operator/src/testbed/anvil.js';
import { type AgentHandle, type HubPki, hubPki, installCrds, providerClient, readyStatus, startAgent, startHubProcess, type HubProcess } from '../../operator/src/testbed/federation.js';
import { reapPidDir } from '../../operator/src/testbed/processes.js';
import { startTestbed, type Testbed } from '../../operator/src/testbed/testbed.js';
import { repoRoot } from '../../operator/src/testbed/tools.js';
import { waitFor } from '../../operator/src/testbed/wait.js';
import { fundWallet, namespaceUid } from './support/credits.js';
import { applyYaml, getGpuJob, gpuJobYaml, waitGpuJob } from './support/gpu-jobs.js';
import { issueCert } from '../../operator/src/tls/index.js';

// Market integrity end to end (docs/settlement.md, "Fault attribution" and "Budget and billing
// bounds"): each attack of issue 11 on the rules side, played against the real hub process, a real
// agent on a kwok provider cluster, a hostile provider speaking the real protocol over mTLS, and
// anvil. Each test shows the attack does not profit and what the honest side ends with.
//   - free compute: a budget too small for the minimum run waits; a long job on a small budget is
//     stopped (BudgetExhausted), the provider is paid for the covered time, the escrow settles;
//   - stake theft by a consumer-caused eviction: the pod's own-limit eviction is the consumer's;
//   - a provider that bills the attempt's lifetime or runs past the budget: bounded by the hub;
//   - a false reclaim: the provider's fault, unpaid, slashed;
//   - a provider that never starts: start timeout, the provider's fault, unpaid; the job moves on.

const PRODUCT = 'NVIDIA-GeForce-RTX-4090';
const PRICE = '3.6';
const SLASH = '5';

let testbed: Testbed;
let pki: HubPki;
let anvil: Anvil;
let rpc: JsonRpcProvider;
let market: GpuMarketContract;
let marketAddress: string;
let hub: HubProcess;
let dir: string;
let consumer: Wallet;
let honestWallet: Wallet;
let liarWallet: Wallet;
let honest: AgentHandle;
let liar: Liar;
const names: Record<'honest' | 'liar', string> = { honest: '', liar: '' };
/** The tenant the consumer authorized: namespace ml as it is. */
let mlTenant = '';
let hubSettler = '';
const root = join(repoRoot, '.testbed', 'e2e-market-integrity');

const hubCluster = () => testbed.cluster('hub');
const providerCluster = () => testbed.cluster('west');
const getJob = (name: string) => getGpuJob(hubCluster(), name);
const condition = (job: GpuJob, type: string) => job.status?.conditions?.find((c) => c.type === type);
const settled = (job: GpuJob) => condition(job, 'Settled')?.status === 'True';
const credits = parseCredits;
const waitJob = (name: string, what: string, probe: (job: GpuJob) => boolean, timeoutMs = 120_000) => waitGpuJob(hubCluster(), name, what, probe, { timeoutMs });
const jobYaml = (name: string, spec: Record<string, unknown>, runFor: string, annotations: Record<string, string> = {}) =>
  gpuJobYaml(
    name,
    { gpu: { products: [PRODUCT] }, budget: { maxPricePerGpuHour: '5', maxTotal: '10' }, faultTolerance: { checkpoint: { gracePeriodSeconds: 2 } }, ...spec },
    { annotations: { 'fedgpu.io/sim-run-for': runFor, ...annotations } },
  );
const apply = (yaml: string) => applyYaml(hubCluster(), yaml);

const fund = (wallet: Wallet, amount: string, deposit: boolean) => fundWallet({ anvil, rpc, market, marketAddress }, wallet, amount, deposit);

/** Lets a job placed on the liar (regions: its own only) move on to the honest provider too. */
async function allowHonest(name: string): Promise<void> {
  const res = await hubCluster().kubectl(['patch', 'gpujob', name, '-n', 'ml', '--type=merge', '-p', JSON.stringify({ spec: { placement: { regions: ['ap-liar', 'eu-west'] } } })]);
  expect(res.code, res.stderr).toBe(0);
}

/** The hub told the liar to stop attempt 1 of a job, for `reason`. */
const cancelled = (jobUid: string, reason: string) =>
  waitFor(`Cancel ${reason} for ${jobUid}`, () => (liar.cancels.some((c) => c.jobUid === jobUid && c.epoch === 1 && c.reason === reason) ? true : undefined), { timeoutMs: 30_000 });

const stakeOf = async (wallet: Wallet) => (await market.stakeOf(wallet.address))[0] as bigint;
const escrowOf = async (job: GpuJob, epoch: number) => market.escrowOf(attemptEscrowId(job.metadata.uid!, epoch));

// ------------------------------------------------------------------------------ the hostile provider

type Behaviour =
  /** Reports Pending for ever: never starts. */
  | 'never-start'
  /** Pending for `pendingMs`, Running for `runningMs` (no pods anywhere), then Succeeded billing the whole lifetime and more. */
  | 'bill-lifetime'
  /** Running, then Reclaimed (OwnerReclaim) though no node was cordoned. */
  | 'false-reclaim'
  /** Running for ever, ignoring the covered GPU-seconds in the Assign. */
  | 'ignore-budget';

/**
 * A provider whose agent lies: the real StreamClient (mTLS, wallet proof), a made-up inventory, and
 * reports chosen per job (by the FEDGPU_JOB env of the Assign) instead of pods.
 */
class Liar {
  readonly client: StreamClient;
  readonly assigns = new Map<string, Assign>();
  readonly cancels: { jobUid: string; epoch: number; reason: string }[] = [];
  readonly acks = new Map<string, { accepted: boolean; reason: string }>();
  readonly behaviour = new Map<string, Behaviour>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly wallet: Wallet, tls: { caPem: string; certPem: string; keyPem: string }, address: string) {
    this.client = new StreamClient({
      address,
      tls,
      wallet,
      agentVersion: 'e2e-liar',
      profile: { displayName: 'liar', region: 'ap-liar', windows: [], utcOffsetMinutes: 0, reservedGpus: 0 },
      heartbeatIntervalMs: 500,
      logger: pino({ level: 'silent' }),
      onConnected: () => {
        this.client.sendInventory(this.inventory());
      },
      onHubMessage: (m) => this.onMessage(m),
    });
  }

  inventory() {
    const nodes = [0, 1].map((i) => ({ name: `liar-${i}`, totalGpus: 8, idleGpus: 8, ready: true, cordoned: false }));
    return {
      pools: [{ gpuProduct: PRODUCT, memoryMib: 24564, cudaDriverMajor: 580, nodes, total: 16, allocatable: 16, idle: 16, pricePerGpuHour: PRICE, breakEvenPricePerGpuHour: '0.1', offered: true, notOfferedReason: 0, runtimeClassName: '', cpuMilliPerGpu: 0, memoryMibPerGpu: 0 }],
      unisolatedNamespaces: [],
    };
  }

  stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    return this.client.close();
  }

  report(assign: Assign, phase: AttemptPhase, gpuSeconds: number, reason = '', message = ''): void {
    this.client.sendAttemptStatus({ jobUid: assign.jobUid, epoch: assign.epoch, phase, gpuSeconds, exitCode: 0, reason, message, podStates: [] });
  }

  /** A receipt the liar's wallet really signs (the chain would accept the signature). */
  async receipt(assign: Assign, gpuSeconds: number): Promise<UsageReceipt> {
    const usageHash = '0x' + '77'.repeat(32);
    const built = buildUsageReceipt({ jobId: attemptEscrowId(assign.jobUid, assign.epoch), epoch: assign.epoch, gpuSeconds, pricePerGpuHour: assign.pricePerGpuHour, provider: this.wallet.address, usageHash });
    return {
      jobUid: assign.jobUid,
      epoch: assign.epoch,
      gpuSeconds,
      pricePerGpuHour: assign.pricePerGpuHour,
      amount: formatCredits(built.amount),
      signature: await signUsageReceipt(this.wallet, marketDomain(anvil.chainId, marketAddress), built),
      providerWallet: this.wallet.address,
      usageHash,
    };
  }

  async sendReceipt(receipt: UsageReceipt): Promise<{ accepted: boolean; reason: string }> {
    const key = `${receipt.jobUid}/${receipt.epoch}`;
    this.acks.delete(key);
    expect(this.client.sendUsageReceipt(receipt)).toBe(true);
    return waitFor(`receipt ${key} acknowledged`, () => this.acks.get(key), { timeoutMs: 30_000 });
  }

  private later(ms: number, f: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      f();
    }, ms);
    this.timers.add(t);
  }

  private onMessage(m: HubMessage): void {
    const body = m.body;
    if (body?.$case === 'receiptAck') this.acks.set(`${body.value.jobUid}/${body.value.epoch}`, { accepted: body.value.accepted, reason: body.value.reason });
    if (body?.$case === 'cancel') this.cancels.push({ jobUid: body.value.jobUid, epoch: body.value.epoch, reason: body.value.reason });
    if (body?.$case !== 'assign') return;
    const assign = body.value;
    const job = assign.env.find((e) => e.name === 'FEDGPU_JOB')?.value.split('/')[1] ?? '';
    this.assigns.set(job, assign);
    const gpus = assign.nodeNames.length * assign.gpusPerReplica;
    switch (this.behaviour.get(job)) {
      case 'never-start':
        this.report(assign, AttemptPhase.ATTEMPT_PHASE_PENDING, 0);
        break;
      case 'bill-lifetime': {
        // Held Pending 4 s, "Running" 3 s, then billed as if it had run 10 minutes longer.
        this.report(assign, AttemptPhase.ATTEMPT_PHASE_PENDING, 0);
        this.later(4_000, () => this.report(assign, AttemptPhase.ATTEMPT_PHASE_RUNNING, 0));
        this.later(7_000, () => this.report(assign, AttemptPhase.ATTEMPT_PHASE_SUCCEEDED, gpus * 607));
        break;
      }
      case 'false-reclaim':
        this.report(assign, AttemptPhase.ATTEMPT_PHASE_RUNNING, 0);
        this.later(3_000, () => this.report(assign, AttemptPhase.ATTEMPT_PHASE_RECLAIMED, gpus * 3, 'OwnerReclaim', 'the owner cordoned node liar-0'));
        break;
      case 'ignore-budget':
        this.report(assign, AttemptPhase.ATTEMPT_PHASE_RUNNING, 0);
        break;
      default:
        break;
    }
  }
}

// ------------------------------------------------------------------------------ set-up

beforeAll(async () => {
  reapPidDir(root);
  dir = join(root, String(process.pid));
  testbed = await startTestbed(join(dir, 'clusters'), [
    { name: 'hub', scheduler: false },
    { name: 'west', gpuNodes: [{ prefix: 'west', count: 2, gpusPerNode: 8, product: PRODUCT, memoryMiB: 24564 }] },
  ]);
  await installCrds(hubCluster());
  pki = await hubPki(join(dir, 'pki'));

  anvil = await startAnvil({ accounts: 6, dir: join(dir, 'chain') }); // its pid file lets a later run reap it
  rpc = freshProvider(anvil.rpcUrl, { chainId: anvil.chainId, pollingIntervalMs: 50 });
  const [admin, settler, consumerKey, honestKey, liarKey] = anvil.accounts.map((a) => new Wallet(a.privateKey, rpc));
  const deployment = await deployMarket(admin!, { unbondingDelaySeconds: 3600, settlers: [settler!.address], slashBond: credits(SLASH) });
  market = deployment.market;
  marketAddress = deployment.marketAddress;
  writeFileSync(join(dir, 'settler.key'), settler!.privateKey, { mode: 0o600 });
  consumer = consumerKey!;
  honestWallet = honestKey!;
  liarWallet = liarKey!;
  await fund(consumer, '1000', true);
  for (const w of [honestWallet, liarWallet]) {
    await fund(w, '1000', false);
    await (await market.connect(w).stake(credits('100'))).wait();
    await (await market.connect(w).allowSettler(settler!.address, credits('100'))).wait();
  }
  await hubCluster().kubectl(['create', 'namespace', 'ml']);
  await hubCluster().kubectl(['label', 'namespace', 'ml', `fedgpu.io/consumer-wallet=${consumer.address}`]);
  // Consent on chain: the consumer authorizes its namespace on this hub, for the hub's settler key.
  const year = BigInt(Math.floor(Date.now() / 1000) + 365 * 24 * 3600);
  mlTenant = tenantIdOf(DEFAULT_HUB_ID, 'ml', await namespaceUid(hubCluster(), 'ml'));
  hubSettler = settler!.address;
  await (await market.connect(consumer.connect(rpc)).authorize(mlTenant, hubSettler, credits('1000'), year)).wait();

  // The hub takes a port of its own (startHubProcess retries if another process takes it first).
  hub = await startHubProcess(hubCluster(), pki, join(dir, 'hub'), [
    '--provider-lost-after', '8s',
    '--chain-rpc', anvil.rpcUrl,
    '--market-address', marketAddress,
    '--settler-key-file', join(dir, 'settler.key'),
    '--min-stake', '50',
    '--slash-amount', SLASH,
    '--receipt-timeout', '15s',
    '--drift-interval', '2s',
    '--chain-status-interval', '1s',
    '--minimum-run', '60',
    // The stalled-provider test uses a 5 s start timeout; a hub left at its default blames no
    // provider for a start under 300 s (plan.test.ts covers that default).
    '--start-blame-after', '5s',
  ]);
  const hubAddress = hub.grpcAddress;
  honest = await startAgent('honest', providerCluster(), pki, hubAddress, { displayName: 'honest', region: 'eu-west', pricePerGpuHour: { [PRODUCT]: PRICE } }, honestWallet);
  const cert = await issueCert(pki.ca, { commonName: liarWallet.address, usages: ['client'] });
  liar = new Liar(liarWallet, { caPem: readFileSync(pki.caPath, 'utf8'), certPem: cert.certPem, keyPem: cert.keyPem }, hubAddress);
  liar.client.start();
  for (const [role, wallet] of [['honest', honestWallet], ['liar', liarWallet]] as const) {
    const gp = await waitFor(`${role} Ready and Staked`, async () => {
      const gp = await providerClient(hubCluster()).byWallet(wallet.address);
      const staked = gp?.status?.conditions?.find((c) => c.type === 'Staked');
      return readyStatus(gp)?.status === 'True' && staked?.status === 'True' && gp?.status?.pools?.length ? gp : undefined;
    }, { timeoutMs: 90_000 });
    names[role] = gp.metadata.name!;
  }
});

afterAll(async () => {
  await liar?.stop();
  await honest?.process.stop();
  await hub?.process.stop();
  rpc?.destroy();
  await anvil?.stop();
  await testbed?.stop();
});

// ------------------------------------------------------------------------------ the attacks

describe('market integrity: no free compute', () => {
  it('a budget that cannot cover the minimum run waits, saying so, and its escrow is refunded when the job goes', async () => {
    await apply(jobYaml('crumbs', { gpusPerReplica: 8, budget: { maxPricePerGpuHour: '5', maxTotal: '0.000001' }, placement: { regions: ['eu-west'] } }, '60s'));
    const waiting = await waitJob('crumbs', 'waiting for budget', (j) => j.status?.message?.startsWith('waiting for budget') ?? false);
    expect(waiting.status?.message).toBe(
      `waiting for budget: the 0.000001 credits left for attempt 1 cover 0 GPU-seconds at ${PRICE}/GPU-hour on ${names.honest}, less than the hub's minimum run of 60 GPU-seconds plus 2 s of checkpoint grace on 8 GPU(s), 76 GPU-seconds (0.076 credits); raise spec.budget.maxTotal`,
    );
    expect(waiting.status?.phase).toBe('Pending');
    expect(condition(waiting, 'Scheduled')).toMatchObject({ status: 'False', reason: 'BudgetBelowMinimumRun' });
    expect(waiting.status?.attempts ?? []).toEqual([]);
    // Nothing runs on the provider for it.
    const pods = await providerCluster().kubectl(['get', 'pods', '-A', '-l', `fedgpu.io/job-uid=${waiting.metadata.uid}`, '-o', 'name']);
    expect(pods.stdout.trim()).toBe('');
    // Deleting it leaves nothing locked: the escrow opened for attempt 1 is refunded, the finalizer goes.
    const uid = waiting.metadata.uid!;
    const del = await hubCluster().kubectl(['delete', 'gpujob', 'crumbs', '-n', 'ml', '--wait=true', '--timeout=90s']);
    expect(del.code, del.stderr).toBe(0);
    const [, , state] = await market.escrowOf(attemptEscrowId(uid, 1));
    expect([EscrowState.None, EscrowState.Refunded]).toContain(state);
  });

  it('a long job on a small budget is stopped when the escrow is spent (BudgetExhausted); the provider is paid the covered time and the escrow settles', async () => {
    const earningsBefore = await market.earningsOf(honestWallet.address);
    const freeBefore = await market.freeBalanceOf(consumer.address);
    // 0.1 credits at 3.6/GPU-hour cover 100 GPU-seconds: 12.5 s on 8 GPUs, of a 10-minute job.
    await apply(jobYaml('freeloader', { gpusPerReplica: 8, budget: { maxPricePerGpuHour: '5', maxTotal: '0.1' }, placement: { regions: ['eu-west'] } }, '10m'));
    const running = await waitJob('freeloader', 'Running', (j) => j.status?.phase === 'Running');
    expect(running.status?.attempts?.[0]).toMatchObject({ provider: names.honest, coveredGpuSeconds: 100 });
    expect(running.status?.budget).toMatchObject({ limit: '0.1' });
    const stopped = await waitJob('freeloader', 'Failed', (j) => j.status?.phase === 'Failed', 90_000);
    expect(condition(stopped, 'Finished')).toMatchObject({ status: 'True', reason: 'BudgetExhausted' });
    const attempt = stopped.status!.attempts![0]!;
    expect(attempt).toMatchObject({ outcome: 'Failed', faultOf: 'user', reason: 'BudgetExhausted' });
    // The agent stops it (its message names the escrow); the hub's clock would stop it too, later.
    expect(attempt.message).toContain('covers 100 GPU-seconds');
    expect(attempt.gpuSeconds).toBeLessThanOrEqual(100);
    expect(attempt.gpuSeconds).toBeGreaterThanOrEqual(80);
    // The pods are gone from the provider: the job got no more than it paid for.
    await waitFor('freeloader pods gone', async () => {
      const res = await providerCluster().kubectl(['get', 'pods', '-A', '-l', `fedgpu.io/job-uid=${stopped.metadata.uid}`, '-o', 'name']);
      return res.stdout.trim() === '' ? true : undefined;
    }, { timeoutMs: 30_000 });
    const done = await waitJob('freeloader', 'Settled', settled, 90_000);
    const record = done.status!.settlement!.attempts!.find((r) => r.epoch === 1)!;
    const owed = usageAmount(record.receipt!.gpuSeconds, PRICE);
    expect(record.receipt!.gpuSeconds).toBeLessThanOrEqual(100);
    expect(owed).toBeLessThanOrEqual(credits('0.1'));
    expect(record).toMatchObject({ state: 'Settled', paid: formatCredits(owed), refunded: formatCredits(credits('0.1') - owed) });
    const [, paid, state] = await escrowOf(done, 1);
    expect(state).toBe(EscrowState.Settled);
    expect(paid).toBe(owed);
    expect((await market.earningsOf(honestWallet.address)) - earningsBefore).toBe(owed);
    expect(freeBefore - (await market.freeBalanceOf(consumer.address))).toBe(owed);
    expect(await stakeOf(honestWallet)).toBe(credits('100'));
  });

  it('an agent that ignores the budget is stopped by the hub\'s own clock and cannot sign past what is covered', async () => {
    liar.behaviour.set('overrun', 'ignore-budget');
    await apply(jobYaml('overrun', { gpusPerReplica: 8, budget: { maxPricePerGpuHour: '5', maxTotal: '0.1' }, placement: { regions: ['ap-liar'] } }, '10m'));
    const stopped = await waitJob('overrun', 'Failed', (j) => j.status?.phase === 'Failed', 90_000);
    const attempt = stopped.status!.attempts![0]!;
    expect(attempt).toMatchObject({ provider: names.liar, outcome: 'Failed', faultOf: 'user', reason: 'BudgetExhausted' });
    expect(attempt.message).toContain("by the hub's clock they are used");
    // The status is written before the Cancel is sent: wait for it to reach the liar.
    await cancelled(stopped.metadata.uid!, 'BudgetExhausted');
    // 8 GPUs × (12.5 s covered + 2 s grace + 5 s slack) of wall time: billed no more than covered.
    expect(attempt.gpuSeconds).toBeLessThanOrEqual(100);
    const greedy = await liar.sendReceipt(await liar.receipt(liar.assigns.get('overrun')!, 8 * 20));
    expect(greedy.accepted).toBe(false);
    expect(greedy.reason).toBe('160 GPU-seconds is more than the 100 the budget of attempt 1 covers');
  });
});

describe('market integrity: no stake theft by blaming the provider', () => {
  it('a pod evicted for exceeding its own emptyDir limit is the consumer\'s fault: no slash, no retry, the provider paid for its time', async () => {
    const stakeBefore = await stakeOf(honestWallet);
    const earningsBefore = await market.earningsOf(honestWallet.address);
    await apply(jobYaml('stuffer', { gpusPerReplica: 2, placement: { regions: ['eu-west'] }, faultTolerance: { maxAttempts: 20 } }, '10m'));
    const running = await waitJob('stuffer', 'Running', (j) => j.status?.phase === 'Running');
    const podName = `${(await providerCluster().kubectl(['get', 'pods', '-A', '-l', `fedgpu.io/job-uid=${running.metadata.uid}`, '-o', 'jsonpath={.items[0].metadata.name}'])).stdout}`;
    const podNamespace = (await providerCluster().kubectl(['get', 'pods', '-A', '-l', `fedgpu.io/job-uid=${running.metadata.uid}`, '-o', 'jsonpath={.items[0].metadata.namespace}'])).stdout;
    expect(podName).not.toBe('');
    // What the kubelet writes when a pod fills its emptyDir.sizeLimit (pkg/kubelet/eviction).
    const pod = JSON.parse((await providerCluster().kubectl(['get', 'pod', podName, '-n', podNamespace, '-o', 'json'])).stdout);
    const startedAt = pod.status.containerStatuses?.[0]?.state?.running?.startedAt ?? pod.status.startTime;
    const evicted = {
      status: {
        phase: 'Failed',
        reason: 'Evicted',
        message: 'Usage of EmptyDir volume "scratch" exceeds the limit "1Gi". ',
        containerStatuses: [{ name: pod.status.containerStatuses[0].name, image: 'example/train', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 137, reason: 'Error', startedAt, finishedAt: new Date().toISOString() } } }],
      },
    };
    const patched = await providerCluster().kubectl(['patch', 'pod', podName, '-n', podNamespace, '--subresource=status', '--type=merge', '-p', JSON.stringify(evicted)]);
    expect(patched.code, patched.stderr).toBe(0);
    const failed = await waitJob('stuffer', 'Failed', (j) => j.status?.phase === 'Failed');
    expect(failed.status?.attempts).toHaveLength(1);
    expect(failed.status?.attempts?.[0]).toMatchObject({ provider: names.honest, outcome: 'Failed', faultOf: 'user', reason: 'EvictedOverLimit' });
    expect(condition(failed, 'Finished')?.reason).toBe('EvictedOverLimit');
    const done = await waitJob('stuffer', 'Settled', settled, 90_000);
    expect(done.status?.settlement?.slashed ?? '0').toBe('0');
    const record = done.status!.settlement!.attempts!.find((r) => r.epoch === 1)!;
    expect(record.state).toBe('Settled');
    expect(await stakeOf(honestWallet)).toBe(stakeBefore);
    expect(await market.isSlashed(attemptEscrowId(done.metadata.uid!, 1))).toBe(false);
    expect((await market.earningsOf(honestWallet.address)) - earningsBefore).toBe(credits(record.paid ?? '0'));
    const gp = await providerClient(hubCluster()).byWallet(honestWallet.address);
    expect(gp?.status?.stake).toMatchObject({ amount: '100', slashed: '0' });
  });

  it('an image that cannot be pulled cannot get the provider slashed through a short start timeout: nobody\'s fault, the escrow refunded', async () => {
    const stakeBefore = await stakeOf(honestWallet);
    const earningsBefore = await market.earningsOf(honestWallet.address);
    // The kubelet (kwok here) reports the container waiting in ErrImagePull; the job chose both the
    // image and a start timeout far shorter than the default (30 s: room for the agent's report).
    await apply(jobYaml('unpullable', { gpusPerReplica: 2, placement: { regions: ['eu-west'] }, faultTolerance: { startTimeoutSeconds: 30, maxAttempts: 1, checkpoint: { gracePeriodSeconds: 2 } } }, '10m',
      { [SIM_IMAGE_PULL_ERROR_ANNOTATION]: 'true' }));
    const failed = await waitJob('unpullable', 'Failed', (j) => j.status?.phase === 'Failed', 90_000);
    const first = failed.status!.attempts![0]!;
    expect(first).toMatchObject({ provider: names.honest, outcome: 'Failed', faultOf: 'unattributed', reason: 'ImagePullFailed', gpuSeconds: 0 });
    expect(first.message).toContain('ErrImagePull');
    expect(condition(failed, 'Finished')?.reason).toBe('MaxAttemptsReached');
    const done = await waitJob('unpullable', 'Settled', settled, 90_000);
    expect(done.status?.settlement?.slashed ?? '0').toBe('0');
    // A start that never happened is paid to no one: the escrow goes back whole.
    expect(done.status!.settlement!.attempts!.find((r) => r.epoch === 1)).toMatchObject({ state: 'Refunded', refunded: '10' });
    expect(await market.isSlashed(attemptEscrowId(done.metadata.uid!, 1))).toBe(false);
    expect(await stakeOf(honestWallet)).toBe(stakeBefore);
    expect(await market.earningsOf(honestWallet.address)).toBe(earningsBefore);
  });
});

describe('market integrity: providers do not grade themselves', () => {
  it('a provider that reports Running without pods and bills the attempt lifetime is bounded by what the hub saw', async () => {
    const earningsBefore = await market.earningsOf(liarWallet.address);
    liar.behaviour.set('lifetime', 'bill-lifetime');
    await apply(jobYaml('lifetime', { gpusPerReplica: 4, placement: { regions: ['ap-liar'] } }, '3s'));
    const done = await waitJob('lifetime', 'Succeeded', (j) => j.status?.phase === 'Succeeded');
    const attempt = done.status!.attempts![0]!;
    // Running was seen for ~3 s on 4 GPUs; the liar claimed 4 × 607. Billed: the hub-seen interval + slack.
    expect(attempt.runningTime).toBeDefined();
    const seen = (Date.parse(attempt.endTime!) - Date.parse(attempt.runningTime!)) / 1000;
    expect(attempt.gpuSeconds).toBeLessThanOrEqual(4 * (Math.ceil(seen) + 5));
    expect(attempt.gpuSeconds).toBeLessThan(4 * 607);
    const claimed = await liar.sendReceipt(await liar.receipt(liar.assigns.get('lifetime')!, 4 * 607));
    expect(claimed.accepted).toBe(false);
    expect(claimed.reason).toMatch(/^2428 GPU-seconds is more than attempt 1 could use: the hub saw it running for \d+ GPU-seconds \(\+20 slack\)$/);
    // No receipt within the bound came: after the receipt timeout the consumer gets the escrow back.
    const refunded = await waitJob('lifetime', 'Settled', settled, 90_000);
    expect(refunded.status?.settlement?.attempts?.[0]).toMatchObject({ state: 'Refunded', refunded: '10' });
    expect(await market.earningsOf(liarWallet.address)).toBe(earningsBefore);
  });

  it('a reclaim the provider never announced (no cordon in its inventory) is its fault: unpaid, slashed once, the job moves on', async () => {
    const stakeBefore = await stakeOf(liarWallet);
    const earningsBefore = await market.earningsOf(liarWallet.address);
    liar.behaviour.set('relabel', 'false-reclaim');
    await apply(jobYaml('relabel', { gpusPerReplica: 2, placement: { regions: ['ap-liar'] } }, '3s'));
    await waitJob('relabel', 'attempt 1 ended', (j) => j.status?.attempts?.[0]?.endTime !== undefined, 90_000);
    await allowHonest('relabel');
    const moved = await waitJob('relabel', 'attempt 2', (j) => (j.status?.attempts?.length ?? 0) >= 2, 90_000);
    expect(moved.status?.attempts?.[0]).toMatchObject({ provider: names.liar, outcome: 'Failed', faultOf: 'provider', reason: 'ReclaimWithoutNotice' });
    expect(moved.status?.attempts?.[0]?.message).toContain('no node of the attempt');
    expect(moved.status?.attempts?.[1]?.provider).toBe(names.honest);
    const done = await waitJob('relabel', 'Succeeded and Settled', (j) => j.status?.phase === 'Succeeded' && settled(j), 120_000);
    expect(done.status?.settlement?.attempts?.find((r) => r.epoch === 1)).toMatchObject({ state: 'Refunded', slashed: SLASH });
    expect(await stakeOf(liarWallet)).toBe(stakeBefore - credits(SLASH));
    expect(await market.earningsOf(liarWallet.address)).toBe(earningsBefore);
    // A receipt for the relabelled attempt is refused: the provider is not paid for its own fault.
    const ack = await liar.sendReceipt(await liar.receipt(liar.assigns.get('relabel')!, 6));
    expect(ack).toEqual({ accepted: false, reason: 'attempt 1 ended Failed (ReclaimWithoutNotice): the provider is not paid for it' });
  });

  it('a provider that never starts the attempt is at fault after the start timeout: unpaid, slashed, the job runs elsewhere', async () => {
    const stakeBefore = await stakeOf(liarWallet);
    const earningsBefore = await market.earningsOf(liarWallet.address);
    liar.behaviour.set('stalled', 'never-start');
    await apply(jobYaml('stalled', { gpusPerReplica: 2, placement: { regions: ['ap-liar'] }, faultTolerance: { startTimeoutSeconds: 5, checkpoint: { gracePeriodSeconds: 2 } } }, '3s'));
    await waitJob('stalled', 'attempt 1 ended', (j) => j.status?.attempts?.[0]?.endTime !== undefined, 90_000);
    await allowHonest('stalled');
    const moved = await waitJob('stalled', 'attempt 2', (j) => (j.status?.attempts?.length ?? 0) >= 2, 90_000);
    const first = moved.status!.attempts![0]!;
    expect(first).toMatchObject({ provider: names.liar, outcome: 'Failed', faultOf: 'provider', reason: 'StartTimeout', gpuSeconds: 0 });
    expect(first.runningTime).toBeUndefined();
    expect(Date.parse(first.endTime!) - Date.parse(first.startTime!)).toBeGreaterThanOrEqual(5_000);
    await cancelled(moved.metadata.uid!, 'StartTimeout');
    const done = await waitJob('stalled', 'Succeeded and Settled', (j) => j.status?.phase === 'Succeeded' && settled(j), 120_000);
    expect(done.status?.attempts?.[1]).toMatchObject({ provider: names.honest, outcome: 'Succeeded' });
    expect(done.status?.settlement?.attempts?.find((r) => r.epoch === 1)).toMatchObject({ state: 'Refunded', slashed: SLASH });
    expect(await stakeOf(liarWallet)).toBe(stakeBefore - credits(SLASH));
    expect(await market.earningsOf(liarWallet.address)).toBe(earningsBefore);
  });

  // Last in the file: it moves the chain's clock on by a week.
  it('an escrow outlives the run its budget buys: the consumer cannot take it back while the pods still run', async () => {
    // 800 credits at 3.6/GPU-hour on one GPU buy 800,000 GPU-seconds, 9¼ days. The escrow used to
    // expire 7 days after it opened whatever the budget: the consumer then called reclaimExpired
    // and had its money back from under an attempt still running, the provider unpaid.
    await fund(consumer, '800', true);
    const year = BigInt(Math.floor(Date.now() / 1000) + 365 * 24 * 3600);
    await (await market.connect(consumer.connect(rpc)).authorize(mlTenant, hubSettler, credits('2000'), year)).wait();
    const earningsBefore = await market.earningsOf(honestWallet.address);
    await apply(jobYaml('marathon', { gpusPerReplica: 1, budget: { maxPricePerGpuHour: '5', maxTotal: '800' }, placement: { regions: ['eu-west'] } }, '1h'));
    const running = await waitJob('marathon', 'Running', (j) => j.status?.phase === 'Running');
    expect(running.status?.attempts?.[0]).toMatchObject({ provider: names.honest, coveredGpuSeconds: 800_000 });
    const escrowId = attemptEscrowId(running.metadata.uid!, 1);
    const [, expiresAt] = await market.escrowTermsOf(escrowId);
    const chainNow = BigInt((await rpc.getBlock('latest'))!.timestamp);
    const week = 7n * 24n * 3600n;

    // The attack: wait out the old 7-day expiry, then take the escrow back.
    await rpc.send('evm_increaseTime', [Number(week) + 3600]);
    await rpc.send('evm_mine', []);
    let failure: unknown;
    try {
      await (await market.connect(consumer.connect(rpc)).reclaimExpired(escrowId)).wait();
    } catch (err) {
      failure = err;
    }
    const data = [failure, (failure as { info?: { error?: unknown } })?.info?.error].map((c) => (c as { data?: unknown })?.data).find((d) => typeof d === 'string');
    expect(data, `expected a revert, got ${String(failure)}`).toBeDefined();
    expect(market.interface.parseError(data as string)?.name).toBe('EscrowNotExpired');
    const [, , state] = await market.escrowOf(escrowId);
    expect(state).toBe(EscrowState.Open);
    // Open for the whole run (its 800,000 s, start and stop) and the 7-day settle window after it.
    expect(expiresAt - chainNow).toBeGreaterThanOrEqual(800_000n + week);

    // The job goes on; deleting it pays the provider for the time it ran, from the same escrow.
    expect((await getJob('marathon'))?.status?.phase).toBe('Running');
    // Billing is by time: let the hub's own clock see a few seconds of running (the receipt floors
    // to whole GPU-seconds at 0.001 credits each).
    const runningSince = Date.parse(running.status!.attempts![0]!.runningTime!);
    await waitFor('3 s of running by the hub\'s clock', async () => (Date.now() - runningSince >= 3_000 ? true : undefined), { timeoutMs: 10_000 });
    const del = await hubCluster().kubectl(['delete', 'gpujob', 'marathon', '-n', 'ml', '--wait=true', '--timeout=120s']);
    expect(del.code, del.stderr).toBe(0);
    const [, paid, settledState] = await market.escrowOf(escrowId);
    expect(settledState).toBe(EscrowState.Settled);
    expect(paid).toBeGreaterThan(0n);
    expect((await market.earningsOf(honestWallet.address)) - earningsBefore).toBe(paid);
  });
});
