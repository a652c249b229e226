// Gas and throughput of GpuMarket settlement against a local anvil. Prints a table; asserts nothing.
// Run: tsx bench/gas.bench.ts
import { Wallet, keccak256, parseUnits, toUtf8Bytes, type TransactionReceipt } from 'ethers';
import { deployMarket, type GpuMarketContract } from '../operator/src/chain/contracts.js';
import { tenantIdOf } from '../operator/src/chain/tenant.js';
import { jobIdOf } from '../operator/src/chain/job-id.js';
import { SettlerNonceManager } from '../operator/src/chain/nonce-manager.js';
import { freshProvider } from '../operator/src/chain/provider.js';
import {
  buildUsageReceipt,
  marketDomain,
  signUsageReceipt,
  toSignedReceipt,
  type SignedReceipt,
} from '../operator/src/chain/receipt.js';
import { startAnvil } from '../operator/src/testbed/anvil.js';
import { allowSettlerFrom } from './provider-consent.js';

const PRICE_PER_GPU_HOUR = '2.75';
const ESCROW = parseUnits('100', 18);
const THROUGHPUT_BATCHES = 5;
const THROUGHPUT_SINGLES = 50;

interface Row {
  operation: string;
  jobs: number;
  gas: bigint;
}

const anvil = await startAnvil({ accounts: 4 });
try {
  const provider = freshProvider(anvil.rpcUrl, { pollingIntervalMs: 20 });
  const [admin, consumerAccount] = anvil.accounts;
  if (!admin || !consumerAccount) throw new Error('anvil gave too few accounts');
  const settler = new SettlerNonceManager(new Wallet(admin.privateKey, provider));
  const consumer = new Wallet(consumerAccount.privateKey, provider);
  const { token, market, marketAddress } = await deployMarket(settler, {
    unbondingDelaySeconds: 7 * 24 * 3600,
    settlers: [admin.address],
  });
  const domain = marketDomain(anvil.chainId, marketAddress);
  // Deterministic throwaway provider keys: they sign receipts, and allow the settler once.
  const providers = Array.from({ length: 120 }, (_, i) => new Wallet(keccak256(toUtf8Bytes(`bench-provider-${i}`))));
  await allowSettlerFrom(provider, market, providers, admin.address);

  const funds = ESCROW * 2_000n;
  await (await token.mint(consumer.address, funds)).wait();
  await (await token.connect(consumer).approve(marketAddress, funds)).wait();
  await (await market.connect(consumer).deposit(funds)).wait();

  let jobCounter = 0;
  // Sent without waiting in between: the nonce manager orders them, anvil mines each at once.
  // The bench market has no slash bond (its throwaway providers hold no stake); the bond's lock and
  // release are measured by the contracts integration test (settleBatch of 100 with bonds).
  const tenant = tenantIdOf('bench', 'default', 'uid-default');
  await (await market.connect(consumer).authorize(tenant, admin.address, funds, BigInt(Math.floor(Date.now() / 1000) + 365 * 24 * 3600))).wait();
  const expiresAt = BigInt(Math.floor(Date.now() / 1000) + 30 * 24 * 3600);
  const openJobs = async (count: number, pickProvider: (i: number) => Wallet): Promise<{ jobIds: string[]; receipts: TransactionReceipt[] }> => {
    const jobIds = Array.from({ length: count }, () => jobIdOf(`bench-job-${jobCounter++}`));
    const sent = jobIds.map((jobId, i) => market.openEscrow(jobId, consumer.address, pickProvider(i).address, tenant, ESCROW, expiresAt));
    const receipts = await Promise.all(sent.map((tx) => mined(tx)));
    return { jobIds, receipts };
  };
  const signFor = async (jobIds: string[], pickProvider: (i: number) => Wallet): Promise<SignedReceipt[]> =>
    Promise.all(
      jobIds.map(async (jobId, i) => {
        const wallet = pickProvider(i);
        const receipt = buildUsageReceipt({
          jobId,
          epoch: 1,
          gpuSeconds: 8 * 3600 + i,
          pricePerGpuHour: PRICE_PER_GPU_HOUR,
          provider: wallet.address,
          usageHash: keccak256(toUtf8Bytes(`usage-${jobId}`)),
        });
        return toSignedReceipt(receipt, await signUsageReceipt(wallet, domain, receipt));
      }),
    );
  const firstProvider = (): Wallet => providers[0] as Wallet;
  const rows: Row[] = [];

  const opened = await openJobs(1, firstProvider);
  rows.push({ operation: 'openEscrow', jobs: 1, gas: gasOf(opened.receipts[0]) });

  // Single settle, first to a provider with no earnings yet (a zero→non-zero write), then warm.
  const [coldSigned] = await signFor(opened.jobIds, firstProvider);
  rows.push({ operation: 'settle (payee had no earnings)', jobs: 1, gas: await settleOne(market, coldSigned) });
  const warm = await openJobs(1, firstProvider);
  const [warmSigned] = await signFor(warm.jobIds, firstProvider);
  rows.push({ operation: 'settle (payee already earning)', jobs: 1, gas: await settleOne(market, warmSigned) });

  // Batches: providers rotate through 10 wallets (a hub batches many jobs of few providers).
  for (const size of [1, 10, 100]) {
    const { jobIds } = await openJobs(size, (i) => providers[1 + (i % 10)] as Wallet);
    const signed = await signFor(jobIds, (i) => providers[1 + (i % 10)] as Wallet);
    const receipt = await mined(market.settleBatch(signed));
    rows.push({ operation: 'settleBatch (10 providers)', jobs: size, gas: gasOf(receipt) });
  }
  // Worst case: every job pays a provider that has never earned before.
  {
    const { jobIds } = await openJobs(100, (i) => providers[20 + i] as Wallet);
    const signed = await signFor(jobIds, (i) => providers[20 + i] as Wallet);
    const receipt = await mined(market.settleBatch(signed));
    rows.push({ operation: 'settleBatch (100 new providers)', jobs: 100, gas: gasOf(receipt) });
  }

  // Throughput: sequential sends, each awaited until mined (automine), signing excluded.
  const batchJobs = await openJobs(100 * THROUGHPUT_BATCHES, (i) => providers[1 + (i % 10)] as Wallet);
  const batchSigned = await signFor(batchJobs.jobIds, (i) => providers[1 + (i % 10)] as Wallet);
  const batchStart = performance.now();
  for (let b = 0; b < THROUGHPUT_BATCHES; b++) {
    await mined(market.settleBatch(batchSigned.slice(b * 100, (b + 1) * 100)));
  }
  const batchRate = (100 * THROUGHPUT_BATCHES) / ((performance.now() - batchStart) / 1000);

  const singleJobs = await openJobs(THROUGHPUT_SINGLES, firstProvider);
  const singleSigned = await signFor(singleJobs.jobIds, firstProvider);
  const singleStart = performance.now();
  for (const s of singleSigned) await settleOne(market, s);
  const singleRate = THROUGHPUT_SINGLES / ((performance.now() - singleStart) / 1000);

  printTable(rows);
  console.log('');
  console.log(`settlements/s via settleBatch(100): ${batchRate.toFixed(0)}  (${THROUGHPUT_BATCHES} batches, automine anvil)`);
  console.log(`settlements/s via settle:           ${singleRate.toFixed(0)}  (${THROUGHPUT_SINGLES} txs, automine anvil)`);
  provider.destroy();
} finally {
  await anvil.stop();
}

async function mined(sent: Promise<{ wait(): Promise<TransactionReceipt | null> }>): Promise<TransactionReceipt> {
  const receipt = await (await sent).wait();
  if (!receipt) throw new Error('transaction was not mined');
  return receipt;
}

async function settleOne(market: GpuMarketContract, signed: SignedReceipt | undefined): Promise<bigint> {
  if (!signed) throw new Error('no receipt to settle');
  const signature = `0x${signed.r.slice(2)}${signed.s.slice(2)}${signed.v.toString(16)}`;
  return gasOf(await mined(market.settle(signed.receipt, signature)));
}

function gasOf(receipt: TransactionReceipt | undefined): bigint {
  if (!receipt) throw new Error('missing receipt');
  return receipt.gasUsed;
}

function printTable(rows: Row[]): void {
  const header = ['operation', 'jobs', 'gas (tx)', 'gas / job'];
  const body = rows.map((r) => [r.operation, String(r.jobs), r.gas.toString(), (r.gas / BigInt(r.jobs)).toString()]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of body) console.log(line(row));
}
