// Settlements per second the hub's settlement controller sustains against anvil, with a real
// kube-apiserver holding the GpuJobs: N jobs finish at once (status Succeeded, the provider's signed
// receipt recorded, the escrow open on chain) and the controller settles them all. Run once
// without batching (maxBatch 1) and once batched (settleBatch), to show what batching buys.
// Prints numbers only.
// Run: npx tsx bench/settlement.bench.ts [jobs]
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { MaxUint256, Wallet, keccak256, toUtf8Bytes } from 'ethers';
import { pino } from 'pino';
import { CONSUMER_WALLET_LABEL } from '../operator/src/api/constants.js';
import { GPUJOB_PLURAL, GROUP, VERSION, type GpuJob, type GpuProvider } from '../operator/src/api/types.js';
import { tenantIdOf } from '../operator/src/chain/tenant.js';
import { attemptEscrowId } from '../operator/src/chain/attempt-escrow.js';
import { deployMarket } from '../operator/src/chain/contracts.js';
import { formatCredits, parseCredits } from '../operator/src/chain/credits.js';
import { SettlerNonceManager } from '../operator/src/chain/nonce-manager.js';
import { freshProvider } from '../operator/src/chain/provider.js';
import { buildUsageReceipt, marketDomain, signUsageReceipt } from '../operator/src/chain/receipt.js';
import { SettlementChain } from '../operator/src/hub/settlement/chain.js';
import { EscrowFunding } from '../operator/src/hub/settlement/funding.js';
import { SettlementController } from '../operator/src/hub/settlement/controller.js';
import { customResourceSource } from '../operator/src/runtime/informer-sources.js';
import { Informer } from '../operator/src/runtime/informer.js';
import { gpuJobClient, gpuProviderClient } from '../operator/src/runtime/kube.js';
import { startAnvil } from '../operator/src/testbed/anvil.js';
import { installCrds } from '../operator/src/testbed/federation.js';
import { startTestbed } from '../operator/src/testbed/testbed.js';
import { repoRoot } from '../operator/src/testbed/tools.js';
import { allowSettlerFrom } from './provider-consent.js';

const JOBS = Math.max(20, Number(process.argv[2] ?? 0) || 200);
const PRICE = '2.4';
const GPU_SECONDS = 3_600;
const RUNS = [
  { name: 'one settle per tx', maxBatch: 1, batchWindowMs: 0 },
  { name: 'settleBatch (≤ 50, 200 ms)', maxBatch: 50, batchWindowMs: 200 },
];
const logger = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dir = join(repoRoot, '.testbed', 'bench-settlement');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const testbed = await startTestbed(join(dir, 'clusters'), [{ name: 'hub', scheduler: false }]);
const anvil = await startAnvil({ accounts: 4 });
try {
  const hub = testbed.cluster('hub');
  await installCrds(hub);
  await hub.kubectl(['create', 'namespace', 'bench']);
  const rpc = freshProvider(anvil.rpcUrl, { chainId: anvil.chainId, pollingIntervalMs: 20 });
  const [adminKey, settlerKey, consumerKey] = anvil.accounts;
  const admin = new SettlerNonceManager(new Wallet(adminKey!.privateKey, rpc));
  const consumer = new Wallet(consumerKey!.privateKey, rpc);
  // The admin opens escrows for the bench (a second settler), so the controller's key is its own.
  const { token, market, marketAddress } = await deployMarket(admin, { unbondingDelaySeconds: 3600, settlers: [adminKey!.address, settlerKey!.address] });
  const funds = parseCredits('1000000');
  await (await token.mint(consumer.address, funds)).wait();
  await (await token.connect(consumer).approve(marketAddress, MaxUint256)).wait();
  await (await market.connect(consumer).deposit(funds)).wait();
  const tenant = tenantIdOf('bench', 'bench', 'uid-bench');
  await (await market.connect(consumer).authorize(tenant, adminKey!.address, funds, BigInt(Math.floor(Date.now() / 1000) + 365 * 24 * 3600))).wait();
  const expiresAt = BigInt(Math.floor(Date.now() / 1000) + 30 * 24 * 3600);
  const domain = marketDomain(anvil.chainId, marketAddress);
  const providers = Array.from({ length: 10 }, (_, i) => new Wallet(keccak256(toUtf8Bytes(`bench-provider-${i}`))));
  await allowSettlerFrom(rpc, market, providers, adminKey!.address);
  const custom = hub.kubeConfig.makeApiClient(CustomObjectsApi);
  const jobs = gpuJobClient(custom);

  console.log(`settlement controller throughput: ${JOBS} jobs finishing at once per run, anvil (automine), 1 confirmation, one kube-apiserver`);
  for (const [runIndex, run] of RUNS.entries()) {
    // 1. N finished jobs, each with its provider's signed receipt recorded and its escrow open.
    const label = `run-${runIndex}`;
    const created: GpuJob[] = [];
    for (let i = 0; i < JOBS; i++) {
      created.push(await jobs.create({
        apiVersion: 'fedgpu.io/v1alpha1',
        kind: 'GpuJob',
        metadata: { name: `${label}-${i}`, namespace: 'bench', labels: { bench: label } },
        spec: { template: { spec: { containers: [{ name: 'main', image: 'x' }] } }, budget: { maxPricePerGpuHour: '3', maxTotal: '10' } },
      }));
    }
    const end = Date.now();
    await Promise.all(created.map(async (job, i) => {
      const wallet = providers[i % providers.length]!;
      const escrowId = attemptEscrowId(job.metadata.uid!, 1);
      const usageHash = keccak256(toUtf8Bytes(`usage-${job.metadata.uid}`));
      const receipt = buildUsageReceipt({ jobId: escrowId, epoch: 1, gpuSeconds: GPU_SECONDS, pricePerGpuHour: PRICE, provider: wallet.address, usageHash });
      const signature = await signUsageReceipt(wallet, domain, receipt);
      await (await market.openEscrow(escrowId, consumer.address, wallet.address, tenant, parseCredits('10'), expiresAt)).wait();
      await jobs.patchStatus(job.metadata.name!, 'bench', {
        status: {
          phase: 'Succeeded',
          completionTime: new Date(end).toISOString(),
          attempts: [{ epoch: 1, provider: `gp-bench-${i % providers.length}`, startTime: new Date(end - GPU_SECONDS * 1000).toISOString(), endTime: new Date(end).toISOString(), outcome: 'Succeeded', faultOf: 'none', gpuSeconds: GPU_SECONDS, pricePerGpuHour: PRICE }],
          settlement: { consumer: consumer.address, attempts: [{ epoch: 1, receipt: { gpuSeconds: GPU_SECONDS, amount: formatCredits(receipt.amount), usageHash, signature, wallet: wallet.address } }] },
        },
      });
    }));

    // 2. The controller, on its own chain connection and nonce manager, settles them.
    const chain = await SettlementChain.connect({ rpcUrl: anvil.rpcUrl, marketAddress, settlerKey: settlerKey!.privateKey, confirmations: 1, chainId: Number(anvil.chainId), pollingIntervalMs: 20, logger });
    const jobInformer = new Informer<GpuJob>(customResourceSource(jobs, { namespace: 'bench', labelSelector: `bench=${label}` }), { kubeConfig: hub.kubeConfig, logger });
    const providerInformer = new Informer<GpuProvider>(customResourceSource(gpuProviderClient(custom)), { kubeConfig: hub.kubeConfig, logger });
    await providerInformer.start();
    const funding = new EscrowFunding({
      chain, defaultHold: parseCredits('10'), consumerOf: () => ({ wallet: consumer.address, namespaceUid: 'uid-bench' }), wake: () => {}, logger,
      hubId: 'bench', escrowLifetimeSeconds: 3600, walletOf: () => undefined,
    });
    const controller = new SettlementController({
      chain,
      funding,
      jobs: { jobs: jobInformer, providers: providerInformer, jobByUid: (uid) => jobInformer.list().find((j) => j.metadata.uid === uid), enqueue: () => {} },
      agents: { send: () => false },
      kubeConfig: hub.kubeConfig,
      logger,
      slashAmount: 0n,
      maxBatch: run.maxBatch,
      batchWindowMs: run.batchWindowMs,
    });
    const started = performance.now();
    await controller.start();
    let settled = 0;
    for (let i = 0; i < 6_000 && settled < JOBS; i++) {
      await sleep(50);
      settled = jobInformer.list().filter((j) => j.status?.conditions?.some((c) => c.type === 'Settled' && c.status === 'True')).length;
    }
    const seconds = (performance.now() - started) / 1000;
    await controller.stop();
    await jobInformer.stop();
    await providerInformer.stop();

    // 3. What it cost on chain.
    const txs = new Set(jobInformer.list().map((j) => j.status?.settlement?.attempts?.[0]?.txHash).filter((h): h is string => !!h));
    let gas = 0n;
    for (const hash of txs) gas += (await rpc.getTransactionReceipt(hash))!.gasUsed;
    chain.close();
    console.log(
      `  ${run.name.padEnd(28)} settled ${settled}/${JOBS} in ${seconds.toFixed(2)} s: ${(settled / seconds).toFixed(1)} settlements/s, ` +
        `${txs.size} transactions (${(settled / Math.max(1, txs.size)).toFixed(1)} per tx), ${(Number(gas) / Math.max(1, settled)).toFixed(0)} gas per settlement`,
    );
  }
  rpc.destroy();
} finally {
  await anvil.stop();
  await testbed.stop();
}
