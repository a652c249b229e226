// GpuMarket and ComputeCredit against a real anvil: every revert path, exact balances on the happy
// paths, the gas budget of batched settlement, reentrancy with a hostile token, and a seeded random
// walk that checks the market's books after every step. Needs no Kubernetes cluster.
import {
  Contract,
  ContractFactory,
  Interface,
  MaxUint256,
  Wallet,
  ZeroAddress,
  concat,
  encodeBytes32String,
  keccak256,
  toBeHex,
  toUtf8Bytes,
  zeroPadValue,
  type ContractTransactionResponse,
  type JsonRpcProvider,
  type Result,
  type TransactionReceipt,
} from 'ethers';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { compileSolidity } from '../../hack/compile-contracts.js';
import {
  EscrowState,
  attachGpuMarket,
  deployComputeCredit,
  deployGpuMarket,
  type ComputeCreditContract,
  type GpuMarketContract,
} from '../../operator/src/chain/contracts.js';
import { parseCredits } from '../../operator/src/chain/credits.js';
import { readOutcomeLogs, reputationAt } from '../../operator/src/chain/market-events.js';
import { jobIdOf } from '../../operator/src/chain/job-id.js';
import { tenantIdOf } from '../../operator/src/chain/tenant.js';
import { SettlerNonceManager } from '../../operator/src/chain/nonce-manager.js';
import { freshProvider } from '../../operator/src/chain/provider.js';
import {
  buildUsageReceipt,
  marketDomain,
  signUsageReceipt,
  toSignedReceipt,
  usageReceiptDigest,
  type SignedReceipt,
  type UsageReceipt,
} from '../../operator/src/chain/receipt.js';
import { ComputeCreditAbi, ComputeCreditBytecode, GpuMarketAbi } from '../../operator/src/gen/contracts/index.js';
import { startAnvil, type Anvil } from '../../operator/src/testbed/anvil.js';

const DELAY = 7 * 24 * 3600;
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const MAX_ESCROW = 2n ** 88n - 1n;
const credits = parseCredits;
/** The stake each open escrow locks, and the most one slash takes, on the market under test. */
const BOND = parseCredits('10');
/** The hub tenant the consumers authorize (a hub id and a namespace). */
const TENANT = tenantIdOf('integration-hub', 'default', 'uid-default');
const SETTLER_DELAY = 2 * 24 * 3600;

// ------------------------------------------------------------------------------------------ setup

let anvil: Anvil;
let rpc: JsonRpcProvider;
let admin: Wallet;
let settlerWallet: Wallet;
let settler: SettlerNonceManager;
let consumers: Wallet[];
let providers: Wallet[];
let outsider: Wallet;
let consumerA: Wallet;
let consumerB: Wallet;
let providerA: Wallet;
let providerB: Wallet;
let token: ComputeCreditContract;
let market: GpuMarketContract;
let asSettler: GpuMarketContract;
let marketAddress: string;
let tokenAddress: string;
let domain: ReturnType<typeof marketDomain>;
let snapshotId: string;
/** Escrow expiry for the test at hand: 30 days after its first block. */
let expiry: bigint;

function at<T>(items: T[], index: number): T {
  const item = items[index];
  if (item === undefined) throw new Error(`no item at ${index}`);
  return item;
}

beforeAll(async () => {
  anvil = await startAnvil({ accounts: 10 });
  rpc = freshProvider(anvil.rpcUrl, { pollingIntervalMs: 20 });
  const wallets = anvil.accounts.map((a) => new Wallet(a.privateKey, rpc));
  admin = at(wallets, 0);
  settlerWallet = at(wallets, 1);
  consumers = wallets.slice(2, 5);
  providers = wallets.slice(5, 8);
  outsider = at(wallets, 8);
  [consumerA, consumerB, providerA, providerB] = [at(consumers, 0), at(consumers, 1), at(providers, 0), at(providers, 1)];
  settler = new SettlerNonceManager(settlerWallet);

  token = await deployComputeCredit(admin);
  tokenAddress = await token.getAddress();
  market = await deployGpuMarket(admin, { tokenAddress, unbondingDelaySeconds: DELAY, slashBond: BOND, settlers: [settlerWallet.address] });
  marketAddress = await market.getAddress();
  domain = marketDomain(anvil.chainId, marketAddress);
  asSettler = market.connect(settler);
  for (const w of [...consumers, ...providers, outsider]) {
    await mined(token.mint(w.address, credits('1000000')));
    await mined(token.connect(w).approve(marketAddress, MaxUint256));
  }
  // Every consumer lets the test hub's settler lock up to 1M credits for its tenant for a year.
  const year = (await latestTimestamp()) + 365n * 24n * 3600n;
  for (const c of [...consumers, outsider]) await mined(market.connect(c).authorize(TENANT, settlerWallet.address, credits('1000000'), year));
  // Every provider serves the test hub and lets it slash up to 1M credits (bounded below by the
  // stake; the stolen-key tests set tighter bounds).
  for (const p of [...providers, outsider]) await mined(market.connect(p).allowSettler(settlerWallet.address, credits('1000000')));
  snapshotId = (await rpc.send('evm_snapshot', [])) as string;
});

// Every test starts from the same chain state: deployed, funded, approved, nothing else.
beforeEach(async () => {
  expect(await rpc.send('evm_revert', [snapshotId])).toBe(true);
  snapshotId = (await rpc.send('evm_snapshot', [])) as string;
  settler.resync(); // the revert rolled the settler's nonce back
  expiry = (await latestTimestamp()) + 30n * 24n * 3600n;
});

afterAll(async () => {
  rpc?.destroy();
  await anvil?.stop();
});

// ---------------------------------------------------------------------------------------- helpers

async function mined(sent: Promise<ContractTransactionResponse>): Promise<TransactionReceipt> {
  const receipt = await (await sent).wait();
  if (!receipt || receipt.status !== 1) throw new Error('transaction failed');
  return receipt;
}

const knownErrors = new Interface(
  dedupe([...GpuMarketAbi, ...ComputeCreditAbi].filter((f) => f.type === 'error')),
);

function dedupe<T>(fragments: T[]): T[] {
  const seen = new Set<string>();
  return fragments.filter((f) => {
    const key = JSON.stringify(f);
    return seen.has(key) ? false : (seen.add(key), true);
  });
}

/** The custom error a failed call reverted with, decoded with both contracts' ABIs. */
function decodeRevert(err: unknown): { name: string; args: unknown[] } | undefined {
  const candidates = [err, (err as { error?: unknown })?.error, (err as { info?: { error?: unknown } })?.info?.error];
  for (const c of candidates) {
    const data = (c as { data?: unknown })?.data;
    if (typeof data === 'string' && data.startsWith('0x') && data.length >= 10) {
      const parsed = knownErrors.parseError(data);
      if (parsed) return { name: parsed.name, args: [...(parsed.args as Result)] };
      return { name: `unknown ${data.slice(0, 10)}`, args: [] };
    }
  }
  return undefined;
}

async function expectRevert(action: Promise<unknown>, name: string, args?: unknown[]): Promise<void> {
  let failure: unknown;
  try {
    await action;
  } catch (err) {
    failure = err;
  }
  expect(failure, `expected a revert with ${name}`).toBeDefined();
  const decoded = decodeRevert(failure);
  expect(decoded?.name, `reverted with ${String(failure)}`).toBe(name);
  if (args) expect(decoded?.args).toEqual(args);
}

/** Decoded events of one kind from a receipt. */
/** Decoded events of one kind from a receipt, as {argName: value} objects. */
function eventsOf(receipt: TransactionReceipt, name: string): Record<string, unknown>[] {
  const events: Record<string, unknown>[] = [];
  for (const log of receipt.logs) {
    const emitter = log.address === marketAddress ? market : log.address === tokenAddress ? token : undefined;
    const parsed = emitter?.interface.parseLog(log);
    if (parsed?.name === name) events.push(parsed.args.toObject());
  }
  return events;
}

let jobSeq = 0;
function newJobId(): string {
  return jobIdOf(`integration-job-${++jobSeq}`);
}

async function deposit(consumer: Wallet, amount: bigint): Promise<void> {
  await mined(market.connect(consumer).deposit(amount));
}

/** Opens an escrow for `provider`, staking the bond it locks first when the provider's free stake is short. */
async function openJob(consumer: Wallet, amount: bigint, jobId = newJobId(), provider: Wallet = providerA): Promise<string> {
  await ensureFreeStake(provider);
  await mined(asSettler.openEscrow(jobId, consumer.address, provider.address, TENANT, amount, expiry));
  return jobId;
}

/**
 * A thief holding a second settler key and a consumer wallet of its own (outsider is both), with
 * 200 credits of providerA staked; `tiny()` opens a 1-wei escrow of its own toward providerA.
 */
async function thiefWithOwnConsumer(): Promise<{ thief: GpuMarketContract; tiny: () => Promise<string> }> {
  await addSettler(outsider.address);
  const thief = market.connect(outsider);
  await deposit(outsider, credits('1'));
  await mined(market.connect(outsider).authorize(TENANT, outsider.address, credits('1'), expiry));
  await mined(market.connect(providerA).stake(credits('200')));
  const tiny = async () => {
    const jobId = newJobId();
    await mined(thief.openEscrow(jobId, outsider.address, providerA.address, TENANT, 1n, expiry));
    return jobId;
  };
  return { thief, tiny };
}

/** Makes `account` a settler the only way the owner can: propose, wait out the delay, accept. */
async function addSettler(account: string): Promise<void> {
  const proposed = await mined(market.proposeSettler(account));
  await setNextTimestamp((await blockTime(proposed)) + BigInt(SETTLER_DELAY));
  await mined(market.acceptSettler(account));
}

async function ensureFreeStake(provider: Wallet, bonds = 1n): Promise<void> {
  const free = await market.freeStakeOf(provider.address);
  if (free < BOND * bonds) await mined(market.connect(provider).stake(BOND * bonds - free));
}

/** A receipt for `gpuSeconds` at 3.6 credits/GPU-hour, i.e. 0.001 credit per GPU-second. */
function usage(jobId: string, provider: Wallet, gpuSeconds: number, epoch = 1): UsageReceipt {
  return buildUsageReceipt({
    jobId,
    epoch,
    gpuSeconds,
    pricePerGpuHour: '3.6',
    provider: provider.address,
    usageHash: keccak256(toUtf8Bytes(`usage ${jobId} ${epoch}`)),
  });
}

function sign(receipt: UsageReceipt, signer: Wallet, onDomain = domain): Promise<string> {
  return signUsageReceipt(signer, onDomain, receipt);
}

async function signed(receipt: UsageReceipt, signer: Wallet): Promise<SignedReceipt> {
  return toSignedReceipt(receipt, await sign(receipt, signer));
}

async function escrowOf(jobId: string): Promise<{ consumer: string; amount: bigint; state: bigint }> {
  const [consumer, amount, state] = await market.escrowOf(jobId);
  return { consumer, amount, state };
}

async function stakeOf(provider: Wallet): Promise<{ active: bigint; unbonding: bigint; unlockTime: bigint; locked: bigint }> {
  const [active, unbonding, unlockTime, locked] = await market.stakeOf(provider.address);
  return { active, unbonding, unlockTime, locked };
}

async function blockTime(receipt: TransactionReceipt): Promise<bigint> {
  const block = await rpc.getBlock(receipt.blockNumber);
  if (!block) throw new Error(`block ${receipt.blockNumber} not found`);
  return BigInt(block.timestamp);
}

async function latestTimestamp(): Promise<bigint> {
  const block = await rpc.getBlock('latest');
  if (!block) throw new Error('no latest block');
  return BigInt(block.timestamp);
}

async function setNextTimestamp(timestamp: bigint): Promise<void> {
  await rpc.send('evm_setNextBlockTimestamp', [Number(timestamp)]);
}

// ---------------------------------------------------------------------------------- ComputeCredit

describe('ComputeCredit', () => {
  it('has ERC-20 metadata and mints only for its owner', async () => {
    expect(await token.name()).toBe('Compute Credit');
    expect(await token.symbol()).toBe('CCR');
    expect(await token.decimals()).toBe(18n);
    expect(await token.totalSupply()).toBe(credits('7000000'));
    await expectRevert(token.connect(outsider).mint(outsider.address, 1n), 'NotOwner', [outsider.address]);
    await expectRevert(token.mint(ZeroAddress, 1n), 'ERC20InvalidReceiver', [ZeroAddress]);
    const receipt = await mined(token.mint(outsider.address, 5n));
    expect(eventsOf(receipt, 'Transfer')).toEqual([{ from: ZeroAddress, to: outsider.address, value: 5n }]);
    expect(await token.totalSupply()).toBe(credits('7000000') + 5n);
  });

  it('transfers exact amounts and refuses overdrafts and the zero address', async () => {
    const before = await token.balanceOf(outsider.address);
    const receipt = await mined(token.connect(consumerA).transfer(outsider.address, 123n));
    expect(eventsOf(receipt, 'Transfer')).toEqual([{ from: consumerA.address, to: outsider.address, value: 123n }]);
    expect(await token.balanceOf(outsider.address)).toBe(before + 123n);
    expect(await token.balanceOf(consumerA.address)).toBe(credits('1000000') - 123n);
    const balance = await token.balanceOf(consumerB.address);
    await expectRevert(token.connect(consumerB).transfer(outsider.address, balance + 1n), 'ERC20InsufficientBalance', [
      consumerB.address,
      balance,
      balance + 1n,
    ]);
    await expectRevert(token.connect(consumerB).transfer(ZeroAddress, 1n), 'ERC20InvalidReceiver', [ZeroAddress]);
  });

  it('spends a finite allowance, keeps an infinite one, and refuses beyond it', async () => {
    await mined(token.connect(consumerA).approve(outsider.address, 100n));
    await mined(token.connect(outsider).transferFrom(consumerA.address, consumerB.address, 60n));
    expect(await token.allowance(consumerA.address, outsider.address)).toBe(40n);
    await expectRevert(
      token.connect(outsider).transferFrom(consumerA.address, consumerB.address, 41n),
      'ERC20InsufficientAllowance',
      [outsider.address, 40n, 41n],
    );
    await mined(token.connect(consumerA).approve(outsider.address, MaxUint256));
    await mined(token.connect(outsider).transferFrom(consumerA.address, consumerB.address, 1_000n));
    expect(await token.allowance(consumerA.address, outsider.address)).toBe(MaxUint256);
    expect(await token.balanceOf(consumerB.address)).toBe(credits('1000000') + 1_060n);
    await expectRevert(
      token.connect(providerA).transferFrom(consumerA.address, providerA.address, 1n),
      'ERC20InsufficientAllowance',
      [providerA.address, 0n, 1n],
    );
  });

  it('refuses a zero spender; ownership moves only by the owner and never to zero', async () => {
    await expectRevert(token.connect(consumerA).approve(ZeroAddress, 1n), 'ERC20InvalidSpender', [ZeroAddress]);
    await expectRevert(token.connect(outsider).transferOwnership(outsider.address), 'NotOwner', [outsider.address]);
    await expectRevert(token.transferOwnership(ZeroAddress), 'InvalidOwner', [ZeroAddress]);
    await mined(token.transferOwnership(outsider.address));
    expect(await token.owner()).toBe(outsider.address);
    await expectRevert(token.mint(admin.address, 1n), 'NotOwner', [admin.address]);
    await mined(token.connect(outsider).mint(outsider.address, 1n));
  });

  it('cannot be deployed without an owner', async () => {
    const factory = new ContractFactory(ComputeCreditAbi, ComputeCreditBytecode, admin);
    await expectRevert(factory.deploy(ZeroAddress), 'InvalidOwner', [ZeroAddress]);
  });
});

// ------------------------------------------------------------------------------- admin and roles

describe('GpuMarket roles', () => {
  it('cannot be deployed over a token without code, without an owner, or with an endless delay', async () => {
    await expectRevert(deployGpuMarket(admin, { tokenAddress: outsider.address, unbondingDelaySeconds: 3600 }), 'InvalidToken', [
      outsider.address,
    ]);
    await expectRevert(deployGpuMarket(admin, { tokenAddress, unbondingDelaySeconds: 3600, owner: ZeroAddress }), 'ZeroAddress');
    const year = 365 * 24 * 3600;
    await expectRevert(deployGpuMarket(admin, { tokenAddress, unbondingDelaySeconds: year + 1 }), 'UnbondingDelayTooLong', [
      BigInt(year + 1),
      BigInt(year),
    ]);
    const longest = await deployGpuMarket(admin, { tokenAddress, unbondingDelaySeconds: year });
    expect(await longest.unbondingDelay()).toBe(BigInt(year));
  });

  it('adds a settler only in two steps with a delay, revokes at once, all by the owner', async () => {
    await expectRevert(market.connect(outsider).proposeSettler(outsider.address), 'NotOwner', [outsider.address]);
    await expectRevert(market.proposeSettler(ZeroAddress), 'ZeroAddress');
    await expectRevert(market.acceptSettler(outsider.address), 'NoProposal', [outsider.address]);
    const proposed = await mined(market.proposeSettler(outsider.address));
    const eta = (await blockTime(proposed)) + BigInt(SETTLER_DELAY);
    expect(eventsOf(proposed, 'SettlerProposed')).toEqual([{ account: outsider.address, eta }]);
    // Not a settler yet, and cannot be accepted a second early.
    expect(await market.isSettler(outsider.address)).toBe(false);
    await expectRevert(market.acceptSettler(outsider.address), 'SettlerDelayNotElapsed', [outsider.address, eta]);
    await setNextTimestamp(eta - 1n);
    await expectRevert(market.acceptSettler(outsider.address), 'SettlerDelayNotElapsed', [outsider.address, eta]);
    await expectRevert(market.connect(outsider).acceptSettler(outsider.address), 'NotOwner', [outsider.address]);
    await setNextTimestamp(eta);
    const granted = await mined(market.acceptSettler(outsider.address));
    expect(eventsOf(granted, 'SettlerSet')).toEqual([{ account: outsider.address, enabled: true }]);
    expect(await market.isSettler(outsider.address)).toBe(true);
    await expectRevert(market.acceptSettler(outsider.address), 'NoProposal', [outsider.address]);
    await deposit(consumerA, credits('10'));
    await ensureFreeStake(providerA);
    const later = (await latestTimestamp()) + 3600n;
    // A settler spends only what a consumer authorized it, by address, toward a provider that allows it.
    await mined(market.connect(consumerA).authorize(TENANT, outsider.address, credits('1'), later));
    await mined(market.connect(providerA).allowSettler(outsider.address, BOND));
    await mined(market.connect(outsider).openEscrow(newJobId(), consumerA.address, providerA.address, TENANT, credits('1'), later));
    await expectRevert(market.connect(outsider).revokeSettler(outsider.address), 'NotOwner', [outsider.address]);
    const revoked = await mined(market.revokeSettler(outsider.address));
    expect(eventsOf(revoked, 'SettlerSet')).toEqual([{ account: outsider.address, enabled: false }]);
    await expectRevert(market.connect(outsider).openEscrow(newJobId(), consumerA.address, providerA.address, TENANT, credits('1'), later), 'NotSettler', [
      outsider.address,
    ]);
    // Revoking a pending proposal cancels it.
    await mined(market.proposeSettler(consumerB.address));
    await mined(market.revokeSettler(consumerB.address));
    await expectRevert(market.acceptSettler(consumerB.address), 'NoProposal', [consumerB.address]);
    // A proposal left standing expires: whoever steals the owner key a year later cannot accept it at
    // once. Accepted at the last second of its window, it still works.
    const window = await market.SETTLER_ACCEPT_WINDOW();
    expect(window).toBe(7n * 24n * 3600n);
    const stale = await mined(market.proposeSettler(consumerB.address));
    const staleEta = (await blockTime(stale)) + BigInt(SETTLER_DELAY);
    await setNextTimestamp(staleEta + window + 1n);
    await expectRevert(market.acceptSettler(consumerB.address), 'SettlerProposalExpired', [consumerB.address, staleEta]);
    expect(await market.isSettler(consumerB.address)).toBe(false);
    const fresh = await mined(market.proposeSettler(consumerB.address));
    const freshEta = (await blockTime(fresh)) + BigInt(SETTLER_DELAY);
    await setNextTimestamp(freshEta + window);
    await mined(market.acceptSettler(consumerB.address));
    expect(await market.isSettler(consumerB.address)).toBe(true);
    await mined(market.revokeSettler(consumerB.address));
  });

  it('moves ownership only by the owner and never to zero', async () => {
    await expectRevert(market.connect(outsider).transferOwnership(outsider.address), 'NotOwner', [outsider.address]);
    await expectRevert(market.transferOwnership(ZeroAddress), 'ZeroAddress');
    const receipt = await mined(market.transferOwnership(outsider.address));
    expect(eventsOf(receipt, 'OwnershipTransferred')).toEqual([{ previousOwner: admin.address, newOwner: outsider.address }]);
    await expectRevert(market.proposeSettler(consumerA.address), 'NotOwner', [admin.address]);
    await mined(market.connect(outsider).proposeSettler(consumerA.address));
  });

  it('refuses an unbonding delay under the floor and a zero initial settler', async () => {
    await expectRevert(deployGpuMarket(admin, { tokenAddress, unbondingDelaySeconds: 3599 }), 'UnbondingDelayTooShort', [3599n, 3600n]);
    await expectRevert(deployGpuMarket(admin, { tokenAddress, unbondingDelaySeconds: 0 }), 'UnbondingDelayTooShort', [0n, 3600n]);
    await expectRevert(deployGpuMarket(admin, { tokenAddress, unbondingDelaySeconds: 3600, settlers: [ZeroAddress] }), 'ZeroAddress');
    const floor = await deployGpuMarket(admin, { tokenAddress, unbondingDelaySeconds: 3600 });
    expect(await floor.unbondingDelay()).toBe(3600n);
  });

  it('refuses settler functions to everyone else', async () => {
    await deposit(consumerA, credits('10'));
    const jobId = await openJob(consumerA, credits('5'));
    const r = usage(jobId, providerA, 1000);
    const sig = await sign(r, providerA);
    const asOutsider = market.connect(outsider);
    const refused = [outsider.address];
    await expectRevert(asOutsider.openEscrow(newJobId(), consumerA.address, providerA.address, TENANT, 1n, expiry), 'NotSettler', refused);
    await expectRevert(asOutsider.settle(r, sig), 'NotSettler', refused);
    await expectRevert(asOutsider.settleBatch([toSignedReceipt(r, sig)]), 'NotSettler', refused);
    await expectRevert(asOutsider.refund(jobId), 'NotSettler', refused);
    await expectRevert(asOutsider.slash(providerA.address, 1n, jobId, 1, encodeBytes32String('NodeLost')), 'NotSettler', refused);
    // Not even the provider or the consumer of the job.
    await expectRevert(market.connect(providerA).settle(r, sig), 'NotSettler', [providerA.address]);
    await expectRevert(market.connect(consumerA).refund(jobId), 'NotSettler', [consumerA.address]);
  });
});

// --------------------------------------------------------------------------------- provider stake

describe('provider stake', () => {
  it('stakes, unbonds and withdraws after the delay with exact balances and events', async () => {
    const asProvider = market.connect(providerA);
    const tokenBefore = await token.balanceOf(providerA.address);
    const staked = await mined(asProvider.stake(credits('100')));
    expect(eventsOf(staked, 'Staked')).toEqual([{ provider: providerA.address, amount: credits('100'), active: credits('100') }]);
    const requested = await mined(asProvider.requestUnstake(credits('30')));
    const unlockTime = (await blockTime(requested)) + BigInt(DELAY);
    expect(eventsOf(requested, 'UnstakeRequested')).toEqual([
      { provider: providerA.address, amount: credits('30'), unbonding: credits('30'), unlockTime },
    ]);
    expect(await stakeOf(providerA)).toEqual({ active: credits('70'), unbonding: credits('30'), unlockTime, locked: 0n });

    await setNextTimestamp(unlockTime);
    const withdrawn = await mined(asProvider.withdrawStake());
    expect(eventsOf(withdrawn, 'StakeWithdrawn')).toEqual([{ provider: providerA.address, amount: credits('30') }]);
    expect(await stakeOf(providerA)).toEqual({ active: credits('70'), unbonding: 0n, unlockTime: 0n, locked: 0n });
    expect(await token.balanceOf(providerA.address)).toBe(tokenBefore - credits('70'));
    expect(await token.balanceOf(marketAddress)).toBe(credits('70'));
  });

  it('refuses zero amounts, unstaking more than is active, and withdrawing nothing', async () => {
    const asProvider = market.connect(providerA);
    await expectRevert(asProvider.stake(0n), 'ZeroAmount');
    await expectRevert(asProvider.requestUnstake(0n), 'ZeroAmount');
    await expectRevert(asProvider.withdrawStake(), 'NothingToWithdraw');
    await mined(asProvider.stake(credits('10')));
    await expectRevert(asProvider.requestUnstake(credits('10') + 1n), 'InsufficientStake', [credits('10'), credits('10') + 1n]);
    await mined(asProvider.requestUnstake(credits('10')));
    await expectRevert(asProvider.requestUnstake(1n), 'InsufficientStake', [0n, 1n]);
  });

  it('refuses withdrawStake until the unlock time, to the second', async () => {
    const asProvider = market.connect(providerA);
    await mined(asProvider.stake(credits('10')));
    const requested = await mined(asProvider.requestUnstake(credits('4')));
    const unlockTime = (await blockTime(requested)) + BigInt(DELAY);
    await expectRevert(asProvider.withdrawStake(), 'UnbondingNotElapsed', [unlockTime]);
    // One second early is still too early; at the unlock time exactly it pays out.
    await setNextTimestamp(unlockTime - 1n);
    await expectRevert(asProvider.withdrawStake(), 'UnbondingNotElapsed', [unlockTime]);
    await setNextTimestamp(unlockTime);
    await mined(asProvider.withdrawStake());
    expect(await stakeOf(providerA)).toEqual({ active: credits('6'), unbonding: 0n, unlockTime: 0n, locked: 0n });
  });

  it('restarts the delay for all unbonding stake on a new request', async () => {
    const asProvider = market.connect(providerA);
    await mined(asProvider.stake(credits('10')));
    const first = await mined(asProvider.requestUnstake(credits('2')));
    const firstUnlock = (await blockTime(first)) + BigInt(DELAY);
    await setNextTimestamp(firstUnlock - 10n);
    const second = await mined(asProvider.requestUnstake(credits('3')));
    const secondUnlock = (await blockTime(second)) + BigInt(DELAY);
    expect(secondUnlock).toBe(firstUnlock - 10n + BigInt(DELAY));
    expect(await stakeOf(providerA)).toEqual({ active: credits('5'), unbonding: credits('5'), unlockTime: secondUnlock, locked: 0n });
    await setNextTimestamp(firstUnlock);
    await expectRevert(asProvider.withdrawStake(), 'UnbondingNotElapsed', [secondUnlock]);
  });

  it('needs an allowance: the token error surfaces through the market', async () => {
    await mined(token.connect(outsider).approve(marketAddress, 0n));
    await expectRevert(market.connect(outsider).stake(5n), 'ERC20InsufficientAllowance', [marketAddress, 0n, 5n]);
    await expectRevert(market.connect(outsider).deposit(5n), 'ERC20InsufficientAllowance', [marketAddress, 0n, 5n]);
  });
});

// ------------------------------------------------------------------------------ consumer balance

describe('consumer balance', () => {
  it('deposits and withdraws exact amounts', async () => {
    const asConsumer = market.connect(consumerA);
    const deposited = await mined(asConsumer.deposit(credits('50')));
    expect(eventsOf(deposited, 'Deposited')).toEqual([{ consumer: consumerA.address, amount: credits('50') }]);
    const withdrawn = await mined(asConsumer.withdraw(credits('20')));
    expect(eventsOf(withdrawn, 'Withdrawn')).toEqual([{ consumer: consumerA.address, amount: credits('20') }]);
    expect(await market.freeBalanceOf(consumerA.address)).toBe(credits('30'));
    expect(await token.balanceOf(consumerA.address)).toBe(credits('1000000') - credits('30'));
    expect(await token.balanceOf(marketAddress)).toBe(credits('30'));
  });

  it('refuses zero amounts and withdrawing more than the free balance', async () => {
    const asConsumer = market.connect(consumerA);
    await expectRevert(asConsumer.deposit(0n), 'ZeroAmount');
    await expectRevert(asConsumer.withdraw(0n), 'ZeroAmount');
    await expectRevert(asConsumer.withdraw(1n), 'InsufficientBalance', [0n, 1n]);
    await deposit(consumerA, credits('5'));
    await openJob(consumerA, credits('3'));
    // Escrowed credits are not free: only 2 can leave.
    await expectRevert(asConsumer.withdraw(credits('2') + 1n), 'InsufficientBalance', [credits('2'), credits('2') + 1n]);
    await mined(asConsumer.withdraw(credits('2')));
    const balance = await token.balanceOf(consumerB.address);
    await expectRevert(market.connect(consumerB).deposit(balance + 1n), 'ERC20InsufficientBalance', [
      consumerB.address,
      balance,
      balance + 1n,
    ]);
  });
});

// ----------------------------------------------------------------------------------------- escrow

describe('escrow', () => {
  it('moves the budget from the free balance into the job escrow', async () => {
    await deposit(consumerA, credits('100'));
    const jobId = newJobId();
    await ensureFreeStake(providerA);
    const receipt = await mined(asSettler.openEscrow(jobId, consumerA.address, providerA.address, TENANT, credits('40'), expiry));
    expect(eventsOf(receipt, 'EscrowOpened')).toEqual([
      { jobId, consumer: consumerA.address, provider: providerA.address, amount: credits('40'), tenant: TENANT, expiresAt: expiry, authorizationLeft: credits('1000000') - credits('40'), settler: settlerWallet.address },
    ]);
    expect(await market.escrowTermsOf(jobId)).toEqual([providerA.address, expiry, false, settlerWallet.address]);
    expect(await escrowOf(jobId)).toEqual({ consumer: consumerA.address, amount: credits('40'), state: EscrowState.Open });
    expect(await market.freeBalanceOf(consumerA.address)).toBe(credits('60'));
    expect(await escrowOf(newJobId())).toEqual({ consumer: ZeroAddress, amount: 0n, state: EscrowState.None });
  });

  it('refuses more than the free balance, zero, more than MAX_ESCROW, and an open jobId', async () => {
    await deposit(consumerA, credits('10'));
    await expectRevert(asSettler.openEscrow(newJobId(), consumerA.address, providerA.address, TENANT, credits('10') + 1n, expiry), 'InsufficientBalance', [
      credits('10'),
      credits('10') + 1n,
    ]);
    await expectRevert(asSettler.openEscrow(newJobId(), consumerB.address, providerA.address, TENANT, 1n, expiry), 'InsufficientBalance', [0n, 1n]);
    await expectRevert(asSettler.openEscrow(newJobId(), consumerA.address, providerA.address, TENANT, 0n, expiry), 'ZeroAmount');
    expect(await market.MAX_ESCROW()).toBe(MAX_ESCROW);
    await expectRevert(asSettler.openEscrow(newJobId(), consumerA.address, providerA.address, TENANT, MAX_ESCROW + 1n, expiry), 'EscrowTooLarge', [
      MAX_ESCROW + 1n,
      MAX_ESCROW,
    ]);
    const jobId = await openJob(consumerA, credits('1'));
    await expectRevert(asSettler.openEscrow(jobId, consumerA.address, providerA.address, TENANT, credits('1'), expiry), 'EscrowExists', [jobId, EscrowState.Open]);
  });

  it('refunds the whole escrow once; unknown and closed jobs are refused', async () => {
    await deposit(consumerA, credits('10'));
    const jobId = await openJob(consumerA, credits('7'));
    const receipt = await mined(asSettler.refund(jobId));
    expect(eventsOf(receipt, 'Refunded')).toEqual([{ jobId, consumer: consumerA.address, amount: credits('7') }]);
    expect(await market.freeBalanceOf(consumerA.address)).toBe(credits('10'));
    expect(await escrowOf(jobId)).toEqual({ consumer: consumerA.address, amount: credits('7'), state: EscrowState.Refunded });
    await expectRevert(asSettler.refund(jobId), 'EscrowClosed', [jobId, EscrowState.Refunded]);
    const unknown = newJobId();
    await expectRevert(asSettler.refund(unknown), 'UnknownJob', [unknown]);
    const settledJob = await openJob(consumerA, credits('1'));
    const r = usage(settledJob, providerA, 100);
    await mined(asSettler.settle(r, await sign(r, providerA)));
    await expectRevert(asSettler.refund(settledJob), 'EscrowClosed', [settledJob, EscrowState.Settled]);
  });

  it('never reopens a settled or refunded jobId', async () => {
    await deposit(consumerA, credits('10'));
    const settledJob = await openJob(consumerA, credits('1'));
    const r = usage(settledJob, providerA, 100);
    await mined(asSettler.settle(r, await sign(r, providerA)));
    await expectRevert(asSettler.openEscrow(settledJob, consumerA.address, providerA.address, TENANT, credits('1'), expiry), 'EscrowExists', [
      settledJob,
      EscrowState.Settled,
    ]);
    const refundedJob = await openJob(consumerA, credits('1'));
    await mined(asSettler.refund(refundedJob));
    await expectRevert(asSettler.openEscrow(refundedJob, consumerB.address, providerA.address, TENANT, credits('1'), expiry), 'EscrowExists', [
      refundedJob,
      EscrowState.Refunded,
    ]);
  });
});

// ----------------------------------------------------------------------------------------- settle

describe('settle', () => {
  it('pays the provider what it signed, refunds the rest, and lets it claim once', async () => {
    await deposit(consumerA, credits('100'));
    const jobId = await openJob(consumerA, credits('40'));
    const r = usage(jobId, providerA, 7_200, 3); // 7200 GPU-s at 3.6/h = 7.2 credits
    expect(r.amount).toBe(credits('7.2'));
    const receipt = await mined(asSettler.settle(r, await sign(r, providerA)));
    expect(eventsOf(receipt, 'Settled')).toEqual([
      {
        jobId,
        provider: providerA.address,
        consumer: consumerA.address,
        epoch: 3n,
        gpuSeconds: 7_200n,
        amount: credits('7.2'),
        refunded: credits('32.8'),
        usageHash: r.usageHash,
      },
    ]);
    expect(await escrowOf(jobId)).toEqual({ consumer: consumerA.address, amount: credits('7.2'), state: EscrowState.Settled });
    expect(await market.earningsOf(providerA.address)).toBe(credits('7.2'));
    expect(await market.freeBalanceOf(consumerA.address)).toBe(credits('92.8'));

    const tokenBefore = await token.balanceOf(providerA.address);
    const claimed = await mined(market.connect(providerA).claimEarnings());
    expect(eventsOf(claimed, 'EarningsClaimed')).toEqual([{ provider: providerA.address, amount: credits('7.2') }]);
    expect(await token.balanceOf(providerA.address)).toBe(tokenBefore + credits('7.2'));
    expect(await market.earningsOf(providerA.address)).toBe(0n);
    expect(await token.balanceOf(marketAddress)).toBe(credits('92.8') + BOND); // the provider's stake stays
    await expectRevert(market.connect(providerA).claimEarnings(), 'NothingToClaim');
  });

  it('pays a whole escrow with nothing to refund, and zero usage refunds everything', async () => {
    await deposit(consumerA, credits('10'));
    const full = await openJob(consumerA, credits('5'));
    const r = usage(full, providerA, 5_000);
    await mined(asSettler.settle(r, await sign(r, providerA)));
    const none = await openJob(consumerA, credits('5'), newJobId(), providerB);
    const zero = usage(none, providerB, 0);
    const receipt = await mined(asSettler.settle(zero, await sign(zero, providerB)));
    expect(eventsOf(receipt, 'Settled').map((e) => e.refunded)).toEqual([credits('5')]);
    expect(await market.earningsOf(providerA.address)).toBe(credits('5'));
    expect(await market.earningsOf(providerB.address)).toBe(0n);
    expect(await market.freeBalanceOf(consumerA.address)).toBe(credits('5'));
  });

  it('refuses unknown, settled and refunded jobs', async () => {
    await deposit(consumerA, credits('10'));
    const unknown = newJobId();
    const u = usage(unknown, providerA, 10);
    await expectRevert(asSettler.settle(u, await sign(u, providerA)), 'UnknownJob', [unknown]);
    const jobId = await openJob(consumerA, credits('1'));
    const r = usage(jobId, providerA, 10);
    const sig = await sign(r, providerA);
    await mined(asSettler.settle(r, sig));
    await expectRevert(asSettler.settle(r, sig), 'EscrowClosed', [jobId, EscrowState.Settled]);
    const refunded = await openJob(consumerA, credits('1'));
    await mined(asSettler.refund(refunded));
    const rr = usage(refunded, providerA, 10);
    await expectRevert(asSettler.settle(rr, await sign(rr, providerA)), 'EscrowClosed', [refunded, EscrowState.Refunded]);
  });

  it('pays a receipt above the escrow what the escrow covers, never more', async () => {
    await deposit(consumerA, credits('10'));
    const jobId = await openJob(consumerA, credits('1'));
    const r = usage(jobId, providerA, 1_001); // 1.001 credits
    const receipt = await mined(asSettler.settle(r, await sign(r, providerA)));
    expect(eventsOf(receipt, 'Settled').map((e) => [e.gpuSeconds, e.amount, e.refunded])).toEqual([[1_001n, credits('1'), 0n]]);
    expect(await market.earningsOf(providerA.address)).toBe(credits('1'));
    expect(await market.freeBalanceOf(consumerA.address)).toBe(credits('9'));
  });

  it('refuses an amount that disagrees with gpuSeconds × price', async () => {
    await deposit(consumerA, credits('10'));
    const jobId = await openJob(consumerA, credits('5'));
    const r = { ...usage(jobId, providerA, 1_000), amount: credits('1') + 1n };
    await expectRevert(asSettler.settle(r, await sign(r, providerA)), 'AmountMismatch', [jobId, credits('1') + 1n, credits('1')]);
  });

  it('refuses a signature by another wallet, over other fields, or under another domain', async () => {
    await deposit(consumerA, credits('10'));
    const jobId = await openJob(consumerA, credits('5'));
    const r = usage(jobId, providerA, 1_000);
    // The hub signs for the provider: the recovered signer is the hub.
    await expectRevert(asSettler.settle(r, await sign(r, settlerWallet)), 'WrongSigner', [jobId, settlerWallet.address]);
    // Another provider's signature over a receipt naming providerA.
    await expectRevert(asSettler.settle(r, await sign(r, providerB)), 'WrongSigner', [jobId, providerB.address]);
    // The provider's signature, but the hub changed what it claims was measured.
    const sig = await sign(r, providerA);
    const forged = { ...r, usageHash: keccak256(toUtf8Bytes('something else')) };
    await expectRevert(asSettler.settle(forged, sig), 'WrongSigner');
    const redirected = { ...r, provider: providerB.address };
    await expectRevert(asSettler.settle(redirected, sig), 'WrongProvider', [jobId, providerB.address, providerA.address]);
    // Signed for another chain or another market deployment.
    await expectRevert(asSettler.settle(r, await sign(r, providerA, marketDomain(1n, marketAddress))), 'WrongSigner');
    await expectRevert(asSettler.settle(r, await sign(r, providerA, marketDomain(anvil.chainId, tokenAddress))), 'WrongSigner');
    expect((await escrowOf(jobId)).state).toBe(EscrowState.Open);
    await mined(asSettler.settle(r, sig));
  });

  it('refuses malformed signatures: wrong length, bad v, r = 0', async () => {
    await deposit(consumerA, credits('10'));
    const jobId = await openJob(consumerA, credits('5'));
    const r = usage(jobId, providerA, 1_000);
    const sig = await sign(r, providerA);
    const invalid = [jobId];
    await expectRevert(asSettler.settle(r, sig.slice(0, 130)), 'InvalidSignature', invalid); // 64 bytes
    await expectRevert(asSettler.settle(r, `${sig}00`), 'InvalidSignature', invalid); // 66 bytes
    await expectRevert(asSettler.settle(r, `${sig.slice(0, 130)}1d`), 'InvalidSignature', invalid); // v = 29
    await expectRevert(asSettler.settle(r, `${sig.slice(0, 130)}00`), 'InvalidSignature', invalid); // v = 0
    await expectRevert(asSettler.settle(r, concat([zeroPadValue('0x', 32), `0x${sig.slice(66)}`])), 'InvalidSignature', invalid);
    const bad = { ...toSignedReceipt(r, sig), v: 26 };
    await expectRevert(asSettler.settleBatch([bad]), 'InvalidSignature', invalid);
  });

  it('refuses the high-s twin of a valid signature although ecrecover accepts it', async () => {
    await deposit(consumerA, credits('10'));
    const jobId = await openJob(consumerA, credits('5'));
    const r = usage(jobId, providerA, 1_000);
    const { v, r: sigR, s } = toSignedReceipt(r, await sign(r, providerA));
    const highS = toBeHex(SECP256K1_N - BigInt(s), 32);
    const twinV = v === 27 ? 28 : 27;
    // The twin is a valid signature for the EVM's ecrecover precompile…
    const digest = usageReceiptDigest(domain, r);
    const recovered = await rpc.call({
      to: '0x0000000000000000000000000000000000000001',
      data: concat([digest, zeroPadValue(toBeHex(twinV), 32), sigR, highS]),
    });
    expect(`0x${recovered.slice(26)}`.toLowerCase()).toBe(providerA.address.toLowerCase());
    // …and the market still refuses it, in both entry points.
    await expectRevert(asSettler.settle(r, concat([sigR, highS, toBeHex(twinV)])), 'MalleableSignature', [jobId]);
    await expectRevert(asSettler.settleBatch([{ receipt: r, v: twinV, r: sigR, s: highS }]), 'MalleableSignature', [jobId]);
  });

  it('cannot replay a receipt on another job or twice on the same job', async () => {
    await deposit(consumerA, credits('10'));
    const first = await openJob(consumerA, credits('2'));
    const second = await openJob(consumerA, credits('2'));
    const r = usage(first, providerA, 1_000);
    const sig = await sign(r, providerA);
    await mined(asSettler.settle(r, sig));
    await expectRevert(asSettler.settle({ ...r, jobId: second }, sig), 'WrongSigner');
    await expectRevert(asSettler.settle(r, sig), 'EscrowClosed', [first, EscrowState.Settled]);
    expect(await market.earningsOf(providerA.address)).toBe(credits('1'));
  });

  it('computes the same receipt digest as the off-chain signer', async () => {
    const r = usage(newJobId(), providerA, 12_345, 7);
    expect(await market.receiptDigest(r)).toBe(usageReceiptDigest(domain, r));
    expect(await market.USAGE_RECEIPT_TYPEHASH()).toBe(
      keccak256(
        toUtf8Bytes(
          'UsageReceipt(bytes32 jobId,uint32 epoch,uint64 gpuSeconds,uint256 pricePerGpuHour,uint256 amount,address provider,bytes32 usageHash)',
        ),
      ),
    );
  });
});

// ------------------------------------------------------------------------------------ settleBatch

describe('settleBatch', () => {
  it('sums credits per provider and consumer with exact balances and one event per job', async () => {
    await deposit(consumerA, credits('100'));
    await deposit(consumerB, credits('100'));
    await mined(market.connect(providerA).stake(credits('1'))); // stake does not mix with earnings
    const plan: [Wallet, Wallet, number][] = [
      [consumerA, providerA, 1_000],
      [consumerB, providerA, 2_000],
      [consumerA, providerB, 3_000],
      [consumerB, providerB, 0],
      [consumerA, providerA, 10_000],
    ];
    const batch: SignedReceipt[] = [];
    for (const [consumer, provider, seconds] of plan) {
      const jobId = await openJob(consumer, credits('10'), newJobId(), provider);
      batch.push(await signed(usage(jobId, provider, seconds), provider));
    }
    const receipt = await mined(asSettler.settleBatch(batch));
    const settledEvents = eventsOf(receipt, 'Settled');
    expect(settledEvents.map((e) => [e.jobId, e.provider, e.amount])).toEqual(
      batch.map((b) => [b.receipt.jobId, b.receipt.provider, b.receipt.amount]),
    );
    expect(await market.earningsOf(providerA.address)).toBe(credits('13'));
    expect(await market.earningsOf(providerB.address)).toBe(credits('3'));
    expect(await market.freeBalanceOf(consumerA.address)).toBe(credits('100') - credits('14'));
    expect(await market.freeBalanceOf(consumerB.address)).toBe(credits('100') - credits('2'));
    for (const b of batch) expect((await escrowOf(b.receipt.jobId)).state).toBe(EscrowState.Settled);
  });

  it('is atomic: one bad receipt reverts the batch and names its job', async () => {
    await deposit(consumerA, credits('100'));
    const jobs = [await openJob(consumerA, credits('5')), await openJob(consumerA, credits('5')), await openJob(consumerA, credits('5'))];
    const batch = [
      await signed(usage(at(jobs, 0), providerA, 100), providerA),
      await signed(usage(at(jobs, 1), providerA, 100), providerB), // wrong signer
      await signed(usage(at(jobs, 2), providerA, 100), providerA),
    ];
    await expectRevert(asSettler.settleBatch(batch), 'WrongSigner', [jobs[1], providerB.address]);
    for (const jobId of jobs) expect((await escrowOf(jobId)).state).toBe(EscrowState.Open);
    expect(await market.earningsOf(providerA.address)).toBe(0n);
  });

  it('refuses an empty batch, a job twice in one batch, and an already settled job', async () => {
    await expectRevert(asSettler.settleBatch([]), 'EmptyBatch');
    await deposit(consumerA, credits('100'));
    const jobId = await openJob(consumerA, credits('5'));
    const item = await signed(usage(jobId, providerA, 100), providerA);
    await expectRevert(asSettler.settleBatch([item, item]), 'EscrowClosed', [jobId, EscrowState.Settled]);
    await mined(asSettler.settleBatch([item]));
    await expectRevert(asSettler.settleBatch([item]), 'EscrowClosed', [jobId, EscrowState.Settled]);
    const unknown = newJobId();
    await expectRevert(asSettler.settleBatch([await signed(usage(unknown, providerA, 1), providerA)]), 'UnknownJob', [unknown]);
  });

  it('costs at most 30,000 gas per job in a batch of 100', async () => {
    await deposit(consumerA, credits('1000'));
    await deposit(consumerB, credits('1000'));
    const pending: Promise<ContractTransactionResponse>[] = [];
    const jobIds = Array.from({ length: 100 }, () => newJobId());
    for (const p of providers) await ensureFreeStake(p, 34n);
    // The nonce manager serialises these concurrent sends.
    jobIds.forEach((jobId, i) =>
      pending.push(asSettler.openEscrow(jobId, (i % 2 ? consumerB : consumerA).address, at(providers, i % providers.length).address, TENANT, credits('5'), expiry)),
    );
    await Promise.all(pending.map((p) => mined(p)));
    const batch = await Promise.all(
      jobIds.map((jobId, i) => {
        const provider = at(providers, i % providers.length);
        return signed(usage(jobId, provider, 3_600 + i), provider);
      }),
    );
    const receipt = await mined(asSettler.settleBatch(batch));
    const perJob = receipt.gasUsed / 100n;
    console.log(`settleBatch(100), 3 providers, 2 consumers: ${perJob} gas per job`);
    expect(perJob).toBeLessThanOrEqual(30_000n);
    expect(eventsOf(receipt, 'Settled')).toHaveLength(100);
  });
});

// ------------------------------------------------------------------------------------------ slash

describe('slash', () => {
  const reason = encodeBytes32String('NodeLost');

  it('takes at most the bond from the escrow provider, compensates at most what the escrow holds, burns the rest', async () => {
    await deposit(consumerA, credits('10'));
    await mined(market.connect(providerA).stake(credits('30')));
    const jobId = await openJob(consumerA, credits('4'));
    expect(await stakeOf(providerA)).toEqual({ active: credits('30'), unbonding: 0n, unlockTime: 0n, locked: BOND });
    const receipt = await mined(asSettler.slash(providerA.address, credits('8'), jobId, 2, reason));
    expect(eventsOf(receipt, 'Slashed')).toEqual([
      {
        provider: providerA.address,
        jobId,
        consumer: consumerA.address,
        epoch: 2n,
        requested: credits('8'),
        amount: credits('8'),
        compensated: credits('4'),
        reason,
      },
    ]);
    // The bond the escrow locked is released and the slash came out of it.
    expect(await stakeOf(providerA)).toEqual({ active: credits('22'), unbonding: 0n, unlockTime: 0n, locked: 0n });
    expect(await market.freeBalanceOf(consumerA.address)).toBe(credits('10'));
    expect(await market.burned()).toBe(credits('4'));
    expect(await market.isSlashed(jobId)).toBe(true);
    // The escrow is untouched: the attempt is refunded or settled separately.
    expect(await escrowOf(jobId)).toEqual({ consumer: consumerA.address, amount: credits('4'), state: EscrowState.Open });
    await mined(asSettler.refund(jobId));
    expect(await stakeOf(providerA)).toEqual({ active: credits('22'), unbonding: 0n, unlockTime: 0n, locked: 0n });
  });

  it('refuses more than the bond, another provider, a second slash, unknown jobs and zero', async () => {
    await deposit(consumerA, credits('10'));
    const jobId = await openJob(consumerA, credits('5'));
    await expectRevert(asSettler.slash(providerA.address, BOND + 1n, jobId, 1, reason), 'SlashTooLarge', [BOND + 1n, BOND]);
    await expectRevert(asSettler.slash(providerB.address, credits('1'), jobId, 1, reason), 'WrongProvider', [
      jobId,
      providerB.address,
      providerA.address,
    ]);
    await mined(asSettler.slash(providerA.address, credits('1'), jobId, 1, reason));
    await expectRevert(asSettler.slash(providerA.address, credits('1'), jobId, 1, reason), 'AlreadySlashed', [jobId]);
    // Another epoch number does not make it another fault: once per escrow.
    await expectRevert(asSettler.slash(providerA.address, credits('1'), jobId, 2, reason), 'AlreadySlashed', [jobId]);
    const unknown = newJobId();
    await expectRevert(asSettler.slash(providerA.address, credits('1'), unknown, 1, reason), 'UnknownJob', [unknown]);
    await expectRevert(asSettler.slash(providerA.address, 0n, jobId, 3, reason), 'ZeroAmount');
  });

  it('gives the consumer nothing for a refunded escrow and at most the paid amount for a settled one', async () => {
    await deposit(consumerA, credits('10'));
    await mined(market.connect(providerA).stake(credits('40')));
    const refundedJob = await openJob(consumerA, credits('3'));
    await mined(asSettler.refund(refundedJob));
    const free = await market.freeBalanceOf(consumerA.address);
    const first = await mined(asSettler.slash(providerA.address, credits('5'), refundedJob, 1, reason));
    expect(eventsOf(first, 'Slashed').map((e) => [e.amount, e.compensated])).toEqual([[credits('5'), 0n]]);
    expect(await market.freeBalanceOf(consumerA.address)).toBe(free);
    const settledJob = await openJob(consumerA, credits('3'));
    const r = usage(settledJob, providerA, 2_000); // 2 credits paid
    await mined(asSettler.settle(r, await sign(r, providerA)));
    const second = await mined(asSettler.slash(providerA.address, credits('10'), settledJob, 1, reason));
    expect(eventsOf(second, 'Slashed').map((e) => [e.amount, e.compensated])).toEqual([[credits('10'), credits('2')]]);
    expect(await market.freeBalanceOf(consumerA.address)).toBe(free - credits('3') + credits('1') + credits('2'));
    expect(await market.burned()).toBe(credits('5') + credits('8'));
  });

  it('takes what a closed escrow’s provider still has, unbonding stake included', async () => {
    await deposit(consumerA, credits('10'));
    const jobId = await openJob(consumerA, credits('5'));
    await mined(asSettler.refund(jobId)); // the bond is free again
    const asProvider = market.connect(providerA);
    await mined(asProvider.requestUnstake(credits('7')));
    const receipt = await mined(asSettler.slash(providerA.address, credits('9'), jobId, 1, reason));
    // 3 active, then 6 of the 7 unbonding.
    expect(eventsOf(receipt, 'Slashed').map((e) => [e.requested, e.amount])).toEqual([[credits('9'), credits('9')]]);
    expect((await stakeOf(providerA)).unbonding).toBe(credits('1'));
    expect((await stakeOf(providerA)).active).toBe(0n);
  });
});

describe('stake locking', () => {
  it('backs only as many open escrows as the stake covers, and releases on settle, refund and slash', async () => {
    await deposit(consumerA, credits('100'));
    await mined(market.connect(providerA).stake(credits('35')));
    const first = await openJob(consumerA, credits('5'));
    const second = await openJob(consumerA, credits('5'));
    const third = await openJob(consumerA, credits('5'));
    expect(await market.freeStakeOf(providerA.address)).toBe(credits('5'));
    await expectRevert(
      asSettler.openEscrow(newJobId(), consumerA.address, providerA.address, TENANT, credits('5'), expiry),
      'InsufficientFreeStake',
      [providerA.address, credits('5'), BOND],
    );
    // Locked stake cannot start unbonding.
    await expectRevert(market.connect(providerA).requestUnstake(credits('6')), 'InsufficientStake', [credits('5'), credits('6')]);
    const r = usage(first, providerA, 100);
    await mined(asSettler.settle(r, await sign(r, providerA)));
    expect(await market.freeStakeOf(providerA.address)).toBe(credits('15'));
    await mined(asSettler.refund(second));
    expect(await market.freeStakeOf(providerA.address)).toBe(credits('25'));
    await mined(asSettler.slash(providerA.address, credits('2'), third, 1, reason()));
    expect(await market.freeStakeOf(providerA.address)).toBe(credits('33'));
    expect(await stakeOf(providerA)).toEqual({ active: credits('33'), unbonding: 0n, unlockTime: 0n, locked: 0n });
    // A slashed escrow that is then refunded does not release its bond twice.
    await mined(asSettler.refund(third));
    expect(await stakeOf(providerA)).toEqual({ active: credits('33'), unbonding: 0n, unlockTime: 0n, locked: 0n });
  });

  it('releases one bond per escrow in a batch, per provider', async () => {
    await deposit(consumerA, credits('100'));
    await mined(market.connect(providerA).stake(credits('30')));
    await mined(market.connect(providerB).stake(credits('10')));
    const jobs = [await openJob(consumerA, credits('5')), await openJob(consumerA, credits('5')), await openJob(consumerA, credits('5'), newJobId(), providerB)];
    expect(await market.freeStakeOf(providerA.address)).toBe(credits('10'));
    expect(await market.freeStakeOf(providerB.address)).toBe(0n);
    await mined(asSettler.settleBatch([
      await signed(usage(at(jobs, 0), providerA, 10), providerA),
      await signed(usage(at(jobs, 1), providerA, 10), providerA),
      await signed(usage(at(jobs, 2), providerB, 10), providerB),
    ]));
    expect(await stakeOf(providerA)).toMatchObject({ active: credits('30'), locked: 0n });
    expect(await stakeOf(providerB)).toMatchObject({ active: credits('10'), locked: 0n });
  });
});

function reason(): string {
  return encodeBytes32String('ProviderFault');
}

// ------------------------------------------------------------------------------- authorizations

describe('authorization', () => {
  it('is drawn down by each escrow, replaced by a new authorize, and emits events', async () => {
    await deposit(consumerB, credits('100'));
    const tenant = tenantIdOf('integration-hub', 'team-b', 'uid-team-b');
    const until = (await latestTimestamp()) + 86_400n;
    const authorized = await mined(market.connect(consumerB).authorize(tenant, settlerWallet.address, credits('12'), until));
    expect(eventsOf(authorized, 'Authorized')).toEqual([{ consumer: consumerB.address, tenant, settler: settlerWallet.address, cap: credits('12'), expiresAt: until }]);
    await ensureFreeStake(providerA, 2n);
    const jobId = newJobId();
    const opened = await mined(asSettler.openEscrow(jobId, consumerB.address, providerA.address, tenant, credits('5'), expiry));
    expect(eventsOf(opened, 'EscrowOpened')).toEqual([
      { jobId, consumer: consumerB.address, provider: providerA.address, amount: credits('5'), tenant, expiresAt: expiry, authorizationLeft: credits('7'), settler: settlerWallet.address },
    ]);
    expect(await market.authorizationOf(consumerB.address, settlerWallet.address, tenant)).toEqual([credits('7'), until]);
    await expectRevert(
      asSettler.openEscrow(newJobId(), consumerB.address, providerA.address, tenant, credits('8'), expiry),
      'AuthorizationExceeded',
      [consumerB.address, tenant, credits('7'), credits('8')],
    );
    // A refund does not give the cap back: the cap bounds what the hub can ever lock.
    await mined(asSettler.refund(jobId));
    expect((await market.authorizationOf(consumerB.address, settlerWallet.address, tenant))[0]).toBe(credits('7'));
    await mined(market.connect(consumerB).authorize(tenant, settlerWallet.address, credits('20'), until));
    expect(await market.authorizationOf(consumerB.address, settlerWallet.address, tenant)).toEqual([credits('20'), until]);
  });

  it('refuses a tenant never authorized, another tenant, an expired one and a revoked one', async () => {
    await deposit(consumerB, credits('100'));
    await ensureFreeStake(providerA);
    const tenant = tenantIdOf('integration-hub', 'team-b', 'uid-team-b');
    await expectRevert(
      asSettler.openEscrow(newJobId(), consumerB.address, providerA.address, tenant, credits('1'), expiry),
      'NotAuthorized',
      [consumerB.address, settlerWallet.address, tenant],
    );
    const until = (await latestTimestamp()) + 100n;
    await mined(market.connect(consumerB).authorize(tenant, settlerWallet.address, credits('10'), until));
    // consumerA never authorized team-b: the hub cannot spend A's deposit through it.
    await deposit(consumerA, credits('10'));
    await expectRevert(
      asSettler.openEscrow(newJobId(), consumerA.address, providerA.address, tenant, credits('1'), expiry),
      'NotAuthorized',
      [consumerA.address, settlerWallet.address, tenant],
    );
    await setNextTimestamp(until + 1n);
    await expectRevert(
      asSettler.openEscrow(newJobId(), consumerB.address, providerA.address, tenant, credits('1'), expiry),
      'AuthorizationExpired',
      [consumerB.address, tenant, until],
    );
    await mined(market.connect(consumerB).authorize(tenant, settlerWallet.address, credits('10'), until + 1000n));
    const revoked = await mined(market.connect(consumerB).revoke(tenant, settlerWallet.address));
    expect(eventsOf(revoked, 'AuthorizationRevoked')).toEqual([{ consumer: consumerB.address, tenant, settler: settlerWallet.address }]);
    await expectRevert(
      asSettler.openEscrow(newJobId(), consumerB.address, providerA.address, tenant, credits('1'), expiry),
      'NotAuthorized',
      [consumerB.address, settlerWallet.address, tenant],
    );
    expect(await market.freeBalanceOf(consumerB.address)).toBe(credits('100'));
  });

  it('refuses a zero cap, a past expiry, no settler, and bad escrow terms', async () => {
    const tenant = tenantIdOf('integration-hub', 'team-b', 'uid-team-b');
    const now = await latestTimestamp();
    await expectRevert(market.connect(consumerB).authorize(tenant, settlerWallet.address, 0n, now + 100n), 'ZeroAmount');
    await expectRevert(market.connect(consumerB).authorize(tenant, ZeroAddress, 1n, now + 100n), 'ZeroAddress');
    await setNextTimestamp(now + 10n);
    await expectRevert(market.connect(consumerB).authorize(tenant, settlerWallet.address, 1n, now + 10n), 'InvalidExpiry');
    await deposit(consumerA, credits('10'));
    await ensureFreeStake(providerA);
    await expectRevert(asSettler.openEscrow(newJobId(), consumerA.address, ZeroAddress, TENANT, credits('1'), expiry), 'ZeroAddress');
    const tooLate = (await latestTimestamp()) + 91n * 86_400n;
    await expectRevert(asSettler.openEscrow(newJobId(), consumerA.address, providerA.address, TENANT, credits('1'), tooLate), 'InvalidExpiry');
    const past = await latestTimestamp();
    await expectRevert(asSettler.openEscrow(newJobId(), consumerA.address, providerA.address, TENANT, credits('1'), past), 'InvalidExpiry');
  });
});

// --------------------------------------------------------------------------------- expiry reclaim

describe('expired escrows', () => {
  it('can be released to their consumer by anyone, only after expiry, only while open', async () => {
    await deposit(consumerA, credits('10'));
    await ensureFreeStake(providerA);
    const jobId = newJobId();
    const until = (await latestTimestamp()) + 600n;
    await mined(asSettler.openEscrow(jobId, consumerA.address, providerA.address, TENANT, credits('6'), until));
    expect(await market.escrowTermsOf(jobId)).toEqual([providerA.address, until, false, settlerWallet.address]);
    await expectRevert(market.connect(consumerA).reclaimExpired(jobId), 'EscrowNotExpired', [jobId, until]);
    await setNextTimestamp(until + 1n);
    // The provider, whose bond the escrow locks, releases it: the money goes to the consumer only.
    const reclaimed = await mined(market.connect(providerA).reclaimExpired(jobId));
    expect(eventsOf(reclaimed, 'EscrowReclaimed')).toEqual([{ jobId, consumer: consumerA.address, amount: credits('6') }]);
    expect(eventsOf(reclaimed, 'Refunded')).toEqual([{ jobId, consumer: consumerA.address, amount: credits('6') }]);
    expect(await market.freeBalanceOf(consumerA.address)).toBe(credits('10'));
    expect((await stakeOf(providerA)).locked).toBe(0n);
    await expectRevert(market.connect(consumerA).reclaimExpired(jobId), 'EscrowClosed', [jobId, EscrowState.Refunded]);
    const unknown = newJobId();
    await expectRevert(market.connect(consumerA).reclaimExpired(unknown), 'UnknownJob', [unknown]);
  });

  it('stays settleable past expiry until the consumer reclaims it', async () => {
    await deposit(consumerA, credits('10'));
    await ensureFreeStake(providerA);
    const jobId = newJobId();
    const until = (await latestTimestamp()) + 600n;
    await mined(asSettler.openEscrow(jobId, consumerA.address, providerA.address, TENANT, credits('6'), until));
    await setNextTimestamp(until + 100n);
    const r = usage(jobId, providerA, 1_000);
    await mined(asSettler.settle(r, await sign(r, providerA)));
    await expectRevert(market.connect(consumerA).reclaimExpired(jobId), 'EscrowClosed', [jobId, EscrowState.Settled]);
  });
});

// ------------------------------------------------------------------------ a stolen settler key

describe('a stolen settler key', () => {
  // The thief holds the settler key (asSettler) and nothing else; each trick must fail or be bounded.
  it('cannot pay a provider other than the escrow’s, even with that provider’s own signature', async () => {
    await deposit(consumerA, credits('10'));
    const jobId = await openJob(consumerA, credits('5'));
    // The thief controls providerB's wallet too (its own provider) and signs a receipt naming itself.
    const r = usage(jobId, providerB, 5_000);
    await expectRevert(asSettler.settle(r, await sign(r, providerB)), 'WrongProvider', [jobId, providerB.address, providerA.address]);
    await expectRevert(asSettler.settleBatch([await signed(r, providerB)]), 'WrongProvider', [jobId, providerB.address, providerA.address]);
    expect(await market.earningsOf(providerB.address)).toBe(0n);
    expect((await escrowOf(jobId)).state).toBe(EscrowState.Open);
  });

  it('cannot open an escrow toward itself on a consumer who never authorized its tenant', async () => {
    await deposit(consumerB, credits('50'));
    await ensureFreeStake(providerB);
    const stranger = tenantIdOf('thief-hub', 'default', 'uid-default');
    await expectRevert(
      asSettler.openEscrow(newJobId(), consumerB.address, providerB.address, stranger, credits('50'), expiry),
      'NotAuthorized',
      [consumerB.address, settlerWallet.address, stranger],
    );
    expect(await market.freeBalanceOf(consumerB.address)).toBe(credits('50'));
  });

  it("cannot spend what consumers authorized another settler of the same market, and draws only on its own", async () => {
    // Two hubs settle on one market. The thief holds the second one's key (a hub it runs, or one it
    // broke into) and a provider wallet of its own; consumerA authorized only the first hub.
    await addSettler(outsider.address);
    const thief = market.connect(outsider);
    await deposit(consumerA, credits('50'));
    await ensureFreeStake(providerB);
    await mined(market.connect(providerB).allowSettler(outsider.address, BOND));
    const until = (await latestTimestamp()) + 3600n;
    await expectRevert(thief.openEscrow(newJobId(), consumerA.address, providerB.address, TENANT, credits('50'), until), 'NotAuthorized', [
      consumerA.address,
      outsider.address,
      TENANT,
    ]);
    // A consent of its own to the second hub is drawn apart from the first one's.
    await mined(market.connect(consumerA).authorize(TENANT, outsider.address, credits('3'), until));
    await mined(thief.openEscrow(newJobId(), consumerA.address, providerB.address, TENANT, credits('3'), until));
    await expectRevert(thief.openEscrow(newJobId(), consumerA.address, providerB.address, TENANT, credits('1'), until), 'AuthorizationExceeded', [
      consumerA.address,
      TENANT,
      0n,
      credits('1'),
    ]);
    expect(await market.freeBalanceOf(consumerA.address)).toBe(credits('47'));
    // Revoking one settler leaves the other's consent as it was, and the revoked one can open nothing.
    await mined(market.connect(consumerA).revoke(TENANT, outsider.address));
    expect((await market.authorizationOf(consumerA.address, outsider.address, TENANT))[1]).toBe(0n);
    expect((await market.authorizationOf(consumerA.address, settlerWallet.address, TENANT))[0]).toBe(credits('1000000'));
    await expectRevert(thief.openEscrow(newJobId(), consumerA.address, providerB.address, TENANT, credits('1'), until), 'NotAuthorized', [
      consumerA.address,
      outsider.address,
      TENANT,
    ]);
    await openJob(consumerA, credits('2'));
    expect(await market.freeBalanceOf(consumerA.address)).toBe(credits('45'));
  });

  it("cannot refund, settle or slash another settler's escrows while that settler holds its role; takes them over once it is revoked", async () => {
    // The thief holds a second settler key of the market. The first hub's escrow runs an attempt on
    // providerA: refunding it would leave providerA unpaid for the run, slashing it would burn
    // providerA's stake, and settling it would close it on the thief's terms.
    await addSettler(outsider.address);
    const thief = market.connect(outsider);
    await deposit(consumerA, credits('10'));
    const jobId = await openJob(consumerA, credits('5'));
    const stakeBefore = await stakeOf(providerA);
    const refused = [jobId, outsider.address, settlerWallet.address];
    await expectRevert(thief.refund(jobId), 'NotEscrowSettler', refused);
    await expectRevert(thief.slash(providerA.address, BOND, jobId, 1, reason()), 'NotEscrowSettler', refused);
    const r = usage(jobId, providerA, 1_000);
    await expectRevert(thief.settle(r, await sign(r, providerA)), 'NotEscrowSettler', refused);
    await expectRevert(thief.settleBatch([await signed(r, providerA)]), 'NotEscrowSettler', refused);
    expect(await escrowOf(jobId)).toEqual({ consumer: consumerA.address, amount: credits('5'), state: EscrowState.Open });
    expect(await stakeOf(providerA)).toEqual(stakeBefore);
    // The thief's own escrows are its own: the first hub cannot close them either.
    await mined(market.connect(consumerA).authorize(TENANT, outsider.address, credits('2'), expiry));
    await mined(market.connect(providerA).allowSettler(outsider.address, BOND * 4n));
    const theirs = newJobId();
    await ensureFreeStake(providerA);
    await mined(thief.openEscrow(theirs, consumerA.address, providerA.address, TENANT, credits('1'), expiry));
    expect((await market.escrowTermsOf(theirs))[3]).toBe(outsider.address);
    await expectRevert(asSettler.refund(theirs), 'NotEscrowSettler', [theirs, settlerWallet.address, outsider.address]);
    await ensureFreeStake(providerA);
    const alsoTheirs = newJobId();
    await mined(thief.openEscrow(alsoTheirs, consumerA.address, providerA.address, TENANT, credits('1'), expiry));
    // The owner revokes the stolen key: its escrows are not stranded, the first hub closes them,
    // but never slashes through them (the provider allowed the slash to the key that opened them).
    await mined(market.revokeSettler(outsider.address));
    await expectRevert(asSettler.slash(providerA.address, BOND, theirs, 1, reason()), 'NotEscrowSettler', [theirs, settlerWallet.address, outsider.address]);
    await mined(asSettler.refund(theirs));
    await expectRevert(asSettler.slash(providerA.address, BOND, theirs, 1, reason()), 'NotEscrowSettler', [theirs, settlerWallet.address, outsider.address]);
    expect((await escrowOf(theirs)).state).toBe(EscrowState.Refunded);
    // A revoked key keeps its number: accepted again, its old escrows are its own again.
    expect(await market.settlerIdOf(outsider.address)).toBe(2n);
    await addSettler(outsider.address);
    expect(await market.settlerIdOf(outsider.address)).toBe(2n);
    await expectRevert(asSettler.refund(alsoTheirs), 'NotEscrowSettler', [alsoTheirs, settlerWallet.address, outsider.address]);
    await mined(thief.refund(alsoTheirs));
    await mined(asSettler.settle(r, await sign(r, providerA)));
    expect((await escrowOf(jobId)).state).toBe(EscrowState.Settled);
  });

  it('cannot slash someone else, twice, or more than the bond', async () => {
    await deposit(consumerA, credits('10'));
    await mined(market.connect(providerB).stake(credits('100')));
    const jobId = await openJob(consumerA, credits('5')); // providerA's escrow
    await expectRevert(asSettler.slash(providerB.address, credits('1'), jobId, 1, reason()), 'WrongProvider', [
      jobId,
      providerB.address,
      providerA.address,
    ]);
    await expectRevert(asSettler.slash(providerA.address, credits('1000'), jobId, 1, reason()), 'SlashTooLarge', [credits('1000'), BOND]);
    await mined(asSettler.slash(providerA.address, BOND, jobId, 1, reason()));
    await expectRevert(asSettler.slash(providerA.address, 1n, jobId, 7, reason()), 'AlreadySlashed', [jobId]);
    expect((await stakeOf(providerB)).active).toBe(credits('100'));
    // The consumer (perhaps the thief's accomplice) got at most the escrow, the rest is burned.
    expect(await market.freeBalanceOf(consumerA.address)).toBe(credits('10'));
    expect(await market.burned()).toBe(credits('5'));
  });

  it("cannot lock or slash a provider that does not allow it, and slashes one that does at most what it allowed, in all", async () => {
    // The thief holds a second settler key and a consumer wallet of its own (outsider is both). With
    // the old contract it opened 1-wei escrows toward any staked provider and slashed each one bond:
    // all of a provider's stake, burned or paid to its own consumer wallet.
    const { thief, tiny } = await thiefWithOwnConsumer();
    const refusedOpen = (name: string, args: unknown[]) => expectRevert(thief.openEscrow(newJobId(), outsider.address, providerA.address, TENANT, 1n, expiry), name, args);
    const allowanceOf = async () => [...(await market.settlerAllowanceOf(providerA.address, outsider.address))];
    await refusedOpen('SettlerNotAllowed', [providerA.address, outsider.address]);
    expect(await allowanceOf()).toEqual([false, 0n, 0n, 0n, 0n]);
    // providerA serves the second hub too, and lets it slash 1.5 bonds in all.
    const allowed = await mined(market.connect(providerA).allowSettler(outsider.address, credits('15')));
    expect(eventsOf(allowed, 'SettlerAllowed')).toEqual([{ provider: providerA.address, settler: outsider.address, slashable: credits('15'), effectiveAt: await blockTime(allowed) }]);
    // The first hub's escrows toward providerA do not count against the second key's bound.
    await deposit(consumerA, credits('10'));
    await openJob(consumerA, credits('1'));
    await openJob(consumerA, credits('1'));
    const closed = await tiny();
    await mined(thief.refund(closed));
    const open = await tiny();
    expect(await allowanceOf()).toEqual([true, credits('15'), 0n, 0n, 1n]);
    // A second escrow of this key at once would need two bonds of slash: each is covered in full.
    await refusedOpen('SlashAllowanceTooLow', [providerA.address, outsider.address, credits('15'), BOND * 2n]);
    const first = await mined(thief.slash(providerA.address, BOND, open, 1, reason()));
    expect(eventsOf(first, 'Slashed').map((e) => [e.requested, e.amount, e.compensated])).toEqual([[BOND, BOND, 1n]]);
    // A fault of a closed escrow takes what is left, and no more.
    const second = await mined(thief.slash(providerA.address, BOND, closed, 1, reason()));
    expect(eventsOf(second, 'Slashed').map((e) => [e.requested, e.amount, e.compensated])).toEqual([[BOND, credits('5'), 0n]]);
    await refusedOpen('SlashAllowanceTooLow', [providerA.address, outsider.address, 0n, BOND]);
    expect((await stakeOf(providerA)).active).toBe(credits('185'));
    expect(await allowanceOf()).toEqual([true, 0n, 0n, 0n, 0n]);
    // The first hub's allowance is its own: untouched.
    expect([...(await market.settlerAllowanceOf(providerA.address, settlerWallet.address))]).toEqual([true, credits('1000000'), 0n, 0n, 2n]);
  });

  it('lowers a slash bound only after the unbonding delay and once the key has no escrow open, so a thief cannot drain the old bound', async () => {
    const { thief, tiny } = await thiefWithOwnConsumer();
    const allowanceOf = async () => [...(await market.settlerAllowanceOf(providerA.address, outsider.address))];
    await mined(market.connect(providerA).allowSettler(outsider.address, BOND * 10n));
    const e1 = await tiny();
    const e2 = await tiny();
    // The provider lowers the bound to two bonds; asking the same again keeps the clock.
    const asked = await mined(market.connect(providerA).allowSettler(outsider.address, BOND * 2n));
    const lowerAt = (await blockTime(asked)) + BigInt(DELAY);
    expect(eventsOf(asked, 'SettlerAllowed')).toEqual([{ provider: providerA.address, settler: outsider.address, slashable: BOND * 2n, effectiveAt: lowerAt }]);
    const again = await mined(market.connect(providerA).allowSettler(outsider.address, BOND * 2n));
    expect(eventsOf(again, 'SettlerAllowed')[0]?.effectiveAt).toBe(lowerAt);
    expect(await allowanceOf()).toEqual([true, BOND * 10n, BOND * 2n, lowerAt, 2n]);
    // Checked against the lower bound at once: two open, a third needs three bonds.
    await expectRevert(thief.openEscrow(newJobId(), outsider.address, providerA.address, TENANT, 1n, expiry), 'SlashAllowanceTooLow', [providerA.address, outsider.address, BOND * 2n, BOND * 3n]);
    // Due, with escrows still open: the open ones are slashed in full from the old bound, and no
    // new one opens (the thief kept one open at all times to keep draining it).
    await setNextTimestamp(lowerAt);
    await rpc.send('evm_mine', []);
    expect(await allowanceOf()).toEqual([true, BOND * 10n, BOND * 2n, lowerAt, 2n]);
    await expectRevert(thief.openEscrow(newJobId(), outsider.address, providerA.address, TENANT, 1n, expiry), 'LoweringDue', [providerA.address, outsider.address, lowerAt]);
    await mined(thief.slash(providerA.address, BOND, e1, 1, reason()));
    await expectRevert(thief.openEscrow(newJobId(), outsider.address, providerA.address, TENANT, 1n, expiry), 'LoweringDue', [providerA.address, outsider.address, lowerAt]);
    await mined(thief.slash(providerA.address, BOND, e2, 1, reason()));
    // Nothing of the key open now: the lower bound holds (min of what is left and the bound).
    expect(await allowanceOf()).toEqual([true, BOND * 2n, 0n, 0n, 0n]);
    const e3 = await tiny();
    await mined(thief.slash(providerA.address, BOND, e3, 1, reason()));
    const e4 = await tiny();
    await mined(thief.slash(providerA.address, BOND, e4, 1, reason()));
    await expectRevert(thief.openEscrow(newJobId(), outsider.address, providerA.address, TENANT, 1n, expiry), 'SlashAllowanceTooLow', [providerA.address, outsider.address, 0n, BOND]);
    // Four bonds in all: two under the old bound while open, two under the new one. Not ten.
    expect((await stakeOf(providerA)).active).toBe(credits('160'));
    // A raise holds at once and drops a waiting lowering; disallowing falls to 0 after the delay.
    await mined(market.connect(providerA).allowSettler(outsider.address, BOND * 3n));
    const e5 = await tiny();
    const stopped = await mined(market.connect(providerA).disallowSettler(outsider.address));
    const until = (await blockTime(stopped)) + BigInt(DELAY);
    expect(eventsOf(stopped, 'SettlerDisallowed')).toEqual([{ provider: providerA.address, settler: outsider.address, slashable: BOND * 3n, until }]);
    await expectRevert(thief.openEscrow(newJobId(), outsider.address, providerA.address, TENANT, 1n, expiry), 'SettlerNotAllowed', [providerA.address, outsider.address]);
    await mined(thief.refund(e5));
    await setNextTimestamp(until);
    await rpc.send('evm_mine', []);
    expect(await allowanceOf()).toEqual([false, 0n, 0n, 0n, 0n]);
  });

  it('cannot add a settler (only the owner can, and only after the delay)', async () => {
    await expectRevert(asSettler.proposeSettler(outsider.address), 'NotOwner', [settlerWallet.address]);
    await expectRevert(asSettler.acceptSettler(outsider.address), 'NotOwner', [settlerWallet.address]);
    await expectRevert(asSettler.revokeSettler(settlerWallet.address), 'NotOwner', [settlerWallet.address]);
    // Even a stolen owner key needs SETTLER_DELAY, visible as an event, before a new settler acts.
    await mined(market.proposeSettler(outsider.address));
    await expectRevert(market.acceptSettler(outsider.address), 'SettlerDelayNotElapsed');
    expect(await market.isSettler(outsider.address)).toBe(false);
  });

  it('cannot keep an escrow hostage past its expiry, nor drain it by reclaiming', async () => {
    await deposit(consumerA, credits('10'));
    await ensureFreeStake(providerA);
    const jobId = newJobId();
    const until = (await latestTimestamp()) + 60n;
    await mined(asSettler.openEscrow(jobId, consumerA.address, providerA.address, TENANT, credits('8'), until));
    await setNextTimestamp(until + 1n);
    // Releasing it, even by the thief, sends the money to the consumer and nowhere else.
    await mined(asSettler.reclaimExpired(jobId));
    expect(await market.freeBalanceOf(consumerA.address)).toBe(credits('10'));
    expect(await market.freeBalanceOf(settlerWallet.address)).toBe(0n);
    expect((await stakeOf(providerA)).locked).toBe(0n);
  });

  it('cannot make an escrow unsettleable with a receipt above it: the provider gets what it covers', async () => {
    await deposit(consumerA, credits('10'));
    const jobId = await openJob(consumerA, credits('1'));
    const r = usage(jobId, providerA, 1_500); // asks 1.5, the escrow holds 1
    const receipt = await mined(asSettler.settle(r, await sign(r, providerA)));
    expect(eventsOf(receipt, 'Settled').map((e) => [e.amount, e.refunded])).toEqual([[credits('1'), 0n]]);
    expect(await market.earningsOf(providerA.address)).toBe(credits('1'));
    expect(await escrowOf(jobId)).toEqual({ consumer: consumerA.address, amount: credits('1'), state: EscrowState.Settled });
  });
});

// --------------------------------------------------------------------------- events as the record

describe('events', () => {
  it('are enough to recompute each provider’s record of successes and faults', async () => {
    const why = encodeBytes32String('GpuError');
    await deposit(consumerA, credits('100'));
    await mined(market.connect(providerA).stake(credits('30')));
    await mined(market.connect(providerB).stake(credits('30')));
    // Attempt 1 of job 0 on B (lost), attempt 2 on A; job 1 on A; job 2 attempt 1 on A (lost), 2 on B.
    const id = [newJobId(), newJobId(), newJobId()];
    const escrow = (job: number, epoch: number) => jobIdOf(`${at(id, job)}:${epoch}`);
    await openJob(consumerA, credits('5'), escrow(0, 1), providerB);
    await openJob(consumerA, credits('5'), escrow(0, 2), providerA);
    await openJob(consumerA, credits('5'), escrow(1, 1), providerA);
    await openJob(consumerA, credits('5'), escrow(2, 1), providerA);
    await openJob(consumerA, credits('5'), escrow(2, 2), providerB);
    await mined(asSettler.slash(providerB.address, credits('1'), escrow(0, 1), 1, why));
    await mined(asSettler.settleBatch([
      await signed(usage(escrow(0, 2), providerA, 500, 2), providerA),
      await signed(usage(escrow(1, 1), providerA, 700, 1), providerA),
    ]));
    await mined(asSettler.slash(providerA.address, credits('1'), escrow(2, 1), 1, why));
    const r = usage(escrow(2, 2), providerB, 900, 2);
    await mined(asSettler.settle(r, await sign(r, providerB)));

    // Anyone can rebuild this from logs alone: (provider, escrow, epoch) of each success and fault.
    const fromBlock = 0;
    const settledLogs = await market.queryFilter('Settled', fromBlock);
    const slashedLogs = await market.queryFilter('Slashed', fromBlock);
    const record = new Map<string, { successes: string[]; faults: string[] }>();
    const add = (log: (typeof settledLogs)[number], kind: 'successes' | 'faults'): void => {
      const args = market.interface.parseLog(log)?.args.toObject();
      if (!args) throw new Error('undecodable market log');
      const provider = String(args.provider);
      const entry = record.get(provider) ?? { successes: [], faults: [] };
      entry[kind].push(`${String(args.jobId)}#${String(args.epoch)}`);
      record.set(provider, entry);
    };
    for (const log of settledLogs) add(log, 'successes');
    for (const log of slashedLogs) add(log, 'faults');
    expect(record.get(providerA.address)).toEqual({ successes: [`${escrow(0, 2)}#2`, `${escrow(1, 1)}#1`], faults: [`${escrow(2, 1)}#1`] });
    expect(record.get(providerB.address)).toEqual({ successes: [`${escrow(2, 2)}#2`], faults: [`${escrow(0, 1)}#1`] });
  });

  it('recompute reputation with each settle weighted by what it paid and each slash by what it took, against slashBond', async () => {
    const why = encodeBytes32String('GpuError');
    await deposit(consumerA, credits('100'));
    await deposit(consumerB, credits('100'));
    // providerA farms: ten escrows of 0.001 credit from a consumer wallet, each settled for one GPU-second.
    const farm: SignedReceipt[] = [];
    for (let i = 0; i < 10; i++) farm.push(await signed(usage(await openJob(consumerB, credits('0.001'), newJobId(), providerA), providerA, 1), providerA));
    await mined(asSettler.settleBatch(farm));
    // providerB is paid a full bond (10 000 GPU-seconds = 10 credits), half a bond, and slashed 2.5.
    const full = await openJob(consumerA, credits('10'), newJobId(), providerB);
    const half = await openJob(consumerA, credits('5'), newJobId(), providerB);
    const lost = await openJob(consumerA, credits('5'), newJobId(), providerB);
    await mined(asSettler.settleBatch([await signed(usage(full, providerB, 10_000), providerB), await signed(usage(half, providerB, 5_000), providerB)]));
    await mined(asSettler.slash(providerB.address, credits('2.5'), lost, 1, why));

    const latest = await rpc.getBlock('latest');
    if (!latest) throw new Error('no latest block');
    const logs = await readOutcomeLogs(rpc, marketAddress, 0, latest.number);
    const at = { number: latest.number, timestamp: latest.timestamp };
    const bond = await market.slashBond();
    expect(bond).toBe(BOND);
    // Seconds of decay against a 7-day half-life are below the tolerance.
    const a = reputationAt(providerA.address, logs, at, bond);
    expect(logs.filter((l) => l.provider === providerA.address.toLowerCase() && l.outcome === 'success')).toHaveLength(10);
    expect(a.successes).toBeCloseTo(10 * 0.0001, 4);
    expect(a.score).toBeCloseTo(reputationAt(providerA.address, [], at, bond).score, 3); // as if it had no history
    const b = reputationAt(providerB.address, logs, at, bond);
    expect(b.successes).toBeCloseTo(1.5, 4);
    expect(b.failures).toBeCloseTo(0.25, 4);
  });
});

// ------------------------------------------------------------------------- hostile tokens, nonces

describe('reentrancy and hostile tokens', () => {
  // A token that calls back into the market from inside transfer/transferFrom, or returns false.
  const HOSTILE_TOKEN = `// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;
contract HostileToken {
    mapping(address => uint256) public balanceOf;
    address public target;
    bytes public reentry;
    bool public returnFalse;
    function mint(address to, uint256 value) external { balanceOf[to] += value; }
    function arm(address target_, bytes calldata reentry_) external { target = target_; reentry = reentry_; }
    function setReturnFalse(bool value) external { returnFalse = value; }
    function transfer(address to, uint256 value) external returns (bool) { return _move(msg.sender, to, value); }
    function transferFrom(address from, address to, uint256 value) external returns (bool) { return _move(from, to, value); }
    function _move(address from, address to, uint256 value) private returns (bool) {
        if (reentry.length != 0) {
            (bool ok, bytes memory ret) = target.call(reentry);
            if (!ok) assembly { revert(add(ret, 32), mload(ret)) }
        }
        if (returnFalse) return false;
        balanceOf[from] -= value;
        balanceOf[to] += value;
        return true;
    }
}
`;

  it('stops a token that re-enters the market, and one that returns false', async () => {
    const [compiled] = compileSolidity({ 'test/HostileToken.sol': HOSTILE_TOKEN });
    if (!compiled) throw new Error('fixture did not compile');
    const hostileFactory = new ContractFactory(compiled.abi as never, compiled.bytecode, admin);
    const hostileDeployed = await hostileFactory.deploy();
    await hostileDeployed.waitForDeployment();
    const hostileAddress = await hostileDeployed.getAddress();
    const hostile = new Contract(hostileAddress, compiled.abi as never, admin);
    const hostileMarket = await deployGpuMarket(admin, { tokenAddress: hostileAddress, unbondingDelaySeconds: DELAY });
    const hostileMarketAddress = await hostileMarket.getAddress();
    const call = async (method: string, ...args: unknown[]): Promise<void> => {
      const fn = hostile.getFunction(method);
      await (await (fn(...args) as Promise<ContractTransactionResponse>)).wait();
    };
    await call('mint', consumerA.address, 100n);
    const asConsumer = attachGpuMarket(hostileMarketAddress, consumerA);
    await mined(asConsumer.deposit(50n));
    expect(await asConsumer.freeBalanceOf(consumerA.address)).toBe(50n);

    // Re-entering withdraw from inside the pull of a deposit, and from inside the push of a withdraw.
    await call('arm', hostileMarketAddress, hostileMarket.interface.encodeFunctionData('withdraw', [1n]));
    await expectRevert(asConsumer.deposit(10n), 'Reentrancy');
    await expectRevert(asConsumer.withdraw(10n), 'Reentrancy');
    await expectRevert(attachGpuMarket(hostileMarketAddress, providerA).claimEarnings(), 'NothingToClaim');
    await call('arm', ZeroAddress, '0x');

    await call('setReturnFalse', true);
    await expectRevert(asConsumer.withdraw(10n), 'TokenTransferFailed');
    await expectRevert(asConsumer.deposit(10n), 'TokenTransferFailed');
    await call('setReturnFalse', false);
    await mined(asConsumer.withdraw(10n));
    expect(await asConsumer.freeBalanceOf(consumerA.address)).toBe(40n);
  });
});

describe('settler nonce manager on a real chain', () => {
  it('sends concurrent transactions with consecutive nonces and recovers from a foreign send', async () => {
    await deposit(consumerA, credits('100'));
    await ensureFreeStake(providerA, 20n);
    const start = await rpc.getTransactionCount(settlerWallet.address, 'pending');
    const jobIds = Array.from({ length: 12 }, () => newJobId());
    const responses = await Promise.all(jobIds.map((jobId) => asSettler.openEscrow(jobId, consumerA.address, providerA.address, TENANT, credits('1'), expiry)));
    expect(responses.map((r) => r.nonce)).toEqual(jobIds.map((_, i) => start + i));
    await Promise.all(responses.map((r) => r.wait()));
    for (const jobId of jobIds) expect((await escrowOf(jobId)).state).toBe(EscrowState.Open);

    // Someone uses the settler key behind the manager's back: anvil refuses the stale nonce
    // ("nonce too low") and the manager resends with a fresh one.
    await mined(market.connect(settlerWallet).openEscrow(newJobId(), consumerA.address, providerA.address, TENANT, credits('1'), expiry));
    expect(settler.nextNonce).toBe(start + 12);
    const resent = await asSettler.openEscrow(newJobId(), consumerA.address, providerA.address, TENANT, credits('1'), expiry);
    expect(resent.nonce).toBe(start + 13);
    await resent.wait();
    // A send that reverts in estimation consumes no nonce, and the next one still goes through.
    await expectRevert(asSettler.openEscrow(newJobId(), consumerA.address, providerA.address, TENANT, credits('1000'), expiry), 'InsufficientBalance');
    const after = await asSettler.openEscrow(newJobId(), consumerA.address, providerA.address, TENANT, credits('1'), expiry);
    expect(after.nonce).toBe(start + 14);
    await after.wait();
    expect(await market.freeBalanceOf(consumerA.address)).toBe(credits('85'));
  });
});

// ---------------------------------------------------------------- property: random operation walks

/** mulberry32: a small seeded PRNG, so any failing walk replays exactly from its seed. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

interface JobModel {
  consumer: string;
  provider: string;
  amount: bigint;
  state: bigint;
  expiresAt: bigint;
  slashed: boolean;
  /** The settler key that opened it: only it closes or slashes it while it is a settler. */
  opener: string;
}

interface StakeModel {
  active: bigint;
  unbonding: bigint;
  unlockTime: bigint;
  locked: bigint;
}

/** What the market and token should hold, updated only by operations the chain accepted. */
class MarketModel {
  readonly tokens = new Map<string, bigint>();
  readonly free = new Map<string, bigint>();
  readonly earnings = new Map<string, bigint>();
  readonly stakes = new Map<string, StakeModel>();
  readonly jobs = new Map<string, JobModel>();
  /** The property tenant's authorization per consumer and settler (`consumer/settler`). */
  readonly authorizations = new Map<string, { remaining: bigint; expiresAt: bigint }>();
  /** The walk's two settler keys that hold the role now. */
  readonly settlers = new Set<string>();
  /** What each provider still lets each settler slash (`provider/settler`). */
  readonly slashable = new Map<string, bigint>();
  burned = 0n;

  static value(map: Map<string, bigint>, key: string): bigint {
    return map.get(key) ?? 0n;
  }

  static add(map: Map<string, bigint>, key: string, delta: bigint): void {
    map.set(key, MarketModel.value(map, key) + delta);
  }

  stake(provider: string): StakeModel {
    let s = this.stakes.get(provider);
    if (!s) this.stakes.set(provider, (s = { active: 0n, unbonding: 0n, unlockTime: 0n, locked: 0n }));
    return s;
  }
}

type OperationKind =
  | 'deposit'
  | 'withdraw'
  | 'stake'
  | 'requestUnstake'
  | 'withdrawStake'
  | 'warp'
  | 'openEscrow'
  | 'settle'
  | 'settleBatch'
  | 'refund'
  | 'slash'
  | 'claim'
  | 'authorize'
  | 'revoke'
  | 'reclaim'
  | 'settlerRole';

interface Operation {
  label: string;
  /** Jobs the operation names, checked against the chain right after it. */
  jobs?: string[];
  /** The custom error the chain must revert with, or undefined when it must succeed. */
  expected: string | undefined;
  send(): Promise<TransactionReceipt | undefined>;
  apply(receipt: TransactionReceipt | undefined): Promise<void> | void;
}

const WEIGHTS: [OperationKind, number][] = [
  ['deposit', 10],
  ['withdraw', 6],
  ['stake', 8],
  ['requestUnstake', 6],
  ['withdrawStake', 5],
  ['warp', 4],
  ['openEscrow', 22],
  ['settle', 12],
  ['settleBatch', 8],
  ['refund', 5],
  ['slash', 8],
  ['claim', 6],
  ['authorize', 12],
  ['revoke', 1],
  ['reclaim', 5],
];

const PROPERTY_TENANT = tenantIdOf('property-hub', 'default', 'uid-default');

describe('property: random operation sequences', () => {
  const seed = Number(process.env.FEDGPU_PROPERTY_SEED ?? 20261125);
  const steps = 400;
  const UNITS_PER_GPU_SECOND = credits('0.001'); // at 3.6 credits per GPU-hour

  it(
    `keep the market's books balanced after every step (seed ${seed}, ${steps} steps)`,
    async () => {
      const random = seededRandom(seed);
      const model = new MarketModel();
      const actors = [...consumers, ...providers];
      const holders = [...actors.map((w) => w.address), admin.address, settlerWallet.address, outsider.address];
      for (const w of actors) model.tokens.set(w.address, await token.balanceOf(w.address));
      // Two settler keys: the hub's and a second one (another hub, or a thief holding its key).
      // Each opens escrows on the consents that name it; only an escrow's opener closes or slashes
      // it while it holds the role; the walk revokes the second one halfway.
      await addSettler(outsider.address);
      model.settlers.add(settlerWallet.address).add(outsider.address);
      const settlerKeys = [settlerWallet, outsider];
      // Every provider serves both; the second key may slash each provider four bonds in all, so
      // its escrows open only while that covers every bond the provider has locked and one more.
      for (const p of providers) {
        await mined(market.connect(p).allowSettler(outsider.address, BOND * 4n));
        model.slashable.set(`${p.address}/${settlerWallet.address}`, credits('1000000'));
        model.slashable.set(`${p.address}/${outsider.address}`, BOND * 4n);
      }
      // Each consumer starts with a consent to each key, so both open escrows from the start.
      const firstUntil = (await latestTimestamp()) + BigInt(DELAY * 4);
      for (const c of consumers) {
        for (const k of settlerKeys) {
          await mined(market.connect(c).authorize(PROPERTY_TENANT, k.address, credits('5000'), firstUntil));
          model.authorizations.set(`${c.address}/${k.address}`, { remaining: credits('5000'), expiresAt: firstUntil });
        }
      }
      const as = (w: Wallet): GpuMarketContract => (w === settlerWallet ? asSettler : market.connect(w));
      const successes = new Map<OperationKind, number>();
      const reverts = new Map<OperationKind, number>();
      const refusedWith = new Map<string, number>();
      /** Escrows closed or slashed by a key that did not open them (its opener had lost the role). */
      let takenOver = 0;
      let freshJobs = 0;

      // ---- random choices
      const pick = <T>(items: T[]): T => at(items, Math.floor(random() * items.length));
      const below = (limit: bigint): bigint => {
        if (limit <= 0n) return 0n;
        const bits = (BigInt(Math.floor(random() * 2 ** 32)) << 64n) | (BigInt(Math.floor(random() * 2 ** 32)) << 32n) | BigInt(Math.floor(random() * 2 ** 32));
        return bits % limit;
      };
      /** Mostly a valid amount in [1, min(limit, cap)]; sometimes 0 or just over the limit. */
      const amountUpTo = (limit: bigint, cap = limit): bigint => {
        const roll = random();
        if (roll < 0.08) return 0n;
        if (roll < 0.16 || limit === 0n) return limit + 1n + below(credits('10'));
        const top = limit < cap ? limit : cap;
        return 1n + below(top);
      };
      const kindOf = (): OperationKind => {
        const total = WEIGHTS.reduce((sum, [, w]) => sum + w, 0);
        let roll = random() * total;
        for (const [kind, weight] of WEIGHTS) {
          if ((roll -= weight) < 0) return kind;
        }
        return 'deposit';
      };
      const newJob = (): string => jobIdOf(`property-${seed}-${++freshJobs}`);
      const jobsIn = (state: bigint): string[] => [...model.jobs].filter(([, j]) => j.state === state).map(([id]) => id);
      /** An open job most of the time, else any known job, else one that was never opened. */
      const someJob = (): string => {
        const roll = random();
        const open = jobsIn(EscrowState.Open);
        if (roll < 0.7 && open.length > 0) return pick(open);
        if (roll < 0.85 && model.jobs.size > 0) return pick([...model.jobs.keys()]);
        return newJob();
      };
      const wallet = (address: string): Wallet => actors.find((w) => w.address === address) as Wallet;
      const closedOrUnknown = (jobId: string): string | undefined => {
        const job = model.jobs.get(jobId);
        if (!job) return 'UnknownJob';
        return job.state === EscrowState.Open ? undefined : 'EscrowClosed';
      };
      const send = async (tx: Promise<ContractTransactionResponse>): Promise<TransactionReceipt> => mined(tx);
      const keyOf = (address: string): Wallet => settlerKeys.find((w) => w.address === address) as Wallet;
      /** The settler key that calls: mostly the escrow's opener, or a key with the role once the opener lost it; else either key. */
      const callerFor = (jobId?: string): Wallet => {
        const opener = jobId === undefined ? undefined : model.jobs.get(jobId)?.opener;
        if (opener && random() < 0.65) return model.settlers.has(opener) ? keyOf(opener) : pick(settlerKeys.filter((k) => model.settlers.has(k.address)));
        return pick(settlerKeys);
      };
      const notSettler = (caller: Wallet): string | undefined => (model.settlers.has(caller.address) ? undefined : 'NotSettler');
      /** Whether `caller` may close the job: its opener, or any settler once the opener lost the role. */
      const notOpener = (jobId: string, caller: Wallet): string | undefined => {
        const opener = model.jobs.get(jobId)?.opener;
        return opener && opener !== caller.address && model.settlers.has(opener) ? 'NotEscrowSettler' : undefined;
      };
      /** Only the opener slashes, whether or not it still holds the role: a takeover never does. */
      const notSlasher = (jobId: string, caller: Wallet): string | undefined => {
        const opener = model.jobs.get(jobId)?.opener;
        return opener && opener !== caller.address ? 'NotEscrowSettler' : undefined;
      };
      const consent = (consumer: string, settlerAddress: string) => model.authorizations.get(`${consumer}/${settlerAddress}`);
      /** A key's escrows open toward a provider, each holding a bond (GpuMarket counts them per key). */
      const openBy = (provider: string, key: string) =>
        [...model.jobs.values()].filter((j) => j.provider === provider && j.opener === key && j.state === EscrowState.Open && !j.slashed).length;

      /** A receipt for a random share (0–115 %) of the job's escrow, sometimes naming or signed by the wrong provider. */
      const randomReceipt = async (jobId: string): Promise<{ item: SignedReceipt; signer: Wallet }> => {
        const own = model.jobs.get(jobId)?.provider;
        const provider = own && random() < 0.9 ? wallet(own) : pick(providers);
        const signer = random() < 0.1 ? pick(providers.filter((p) => p !== provider)) : provider;
        const escrow = model.jobs.get(jobId)?.amount ?? credits('1');
        const seconds = (escrow * BigInt(Math.floor(random() * 1_150))) / 1_000n / UNITS_PER_GPU_SECOND;
        const receipt = usage(jobId, provider, Number(seconds), 1 + Math.floor(random() * 3));
        return { item: await signed(receipt, signer), signer };
      };
      /** The error settling these items in order must raise, on a copy of the job states. */
      const batchError = (items: { item: SignedReceipt; signer: Wallet }[], caller: Wallet): string | undefined => {
        const refused = notSettler(caller);
        if (refused) return refused;
        const settled = new Set<string>();
        for (const { item, signer } of items) {
          const job = model.jobs.get(item.receipt.jobId);
          if (!job) return 'UnknownJob';
          if (job.state !== EscrowState.Open || settled.has(item.receipt.jobId)) return 'EscrowClosed';
          if (notOpener(item.receipt.jobId, caller)) return 'NotEscrowSettler';
          if (item.receipt.provider !== job.provider) return 'WrongProvider';
          if (signer.address !== item.receipt.provider) return 'WrongSigner';
          settled.add(item.receipt.jobId);
        }
        return undefined;
      };
      const applySettlement = (item: SignedReceipt): void => {
        const job = model.jobs.get(item.receipt.jobId) as JobModel;
        const paid = item.receipt.amount < job.amount ? item.receipt.amount : job.amount;
        MarketModel.add(model.earnings, item.receipt.provider, paid);
        MarketModel.add(model.free, job.consumer, job.amount - paid);
        if (!job.slashed) model.stake(job.provider).locked -= BOND;
        job.state = EscrowState.Settled;
        job.amount = paid;
      };

      // ---- one operation of each kind: what to send, what must happen, how the model changes
      const plan = async (kind: OperationKind): Promise<Operation> => {
        switch (kind) {
          case 'deposit': {
            const c = pick(consumers);
            const balance = MarketModel.value(model.tokens, c.address);
            const amount = amountUpTo(balance, credits('1000'));
            return {
              label: `deposit ${amount}`,
              expected: amount === 0n ? 'ZeroAmount' : amount > balance ? 'ERC20InsufficientBalance' : undefined,
              send: () => send(market.connect(c).deposit(amount)),
              apply: () => {
                MarketModel.add(model.tokens, c.address, -amount);
                MarketModel.add(model.free, c.address, amount);
              },
            };
          }
          case 'withdraw': {
            const c = pick(consumers);
            const free = MarketModel.value(model.free, c.address);
            const amount = amountUpTo(free);
            return {
              label: `withdraw ${amount}`,
              expected: amount === 0n ? 'ZeroAmount' : amount > free ? 'InsufficientBalance' : undefined,
              send: () => send(market.connect(c).withdraw(amount)),
              apply: () => {
                MarketModel.add(model.free, c.address, -amount);
                MarketModel.add(model.tokens, c.address, amount);
              },
            };
          }
          case 'stake': {
            const p = pick(providers);
            const balance = MarketModel.value(model.tokens, p.address);
            const amount = amountUpTo(balance, credits('100'));
            return {
              label: `stake ${amount}`,
              expected: amount === 0n ? 'ZeroAmount' : amount > balance ? 'ERC20InsufficientBalance' : undefined,
              send: () => send(market.connect(p).stake(amount)),
              apply: () => {
                MarketModel.add(model.tokens, p.address, -amount);
                model.stake(p.address).active += amount;
              },
            };
          }
          case 'requestUnstake': {
            const p = pick(providers);
            const s = model.stake(p.address);
            const amount = amountUpTo(s.active - s.locked);
            const expected = amount === 0n ? 'ZeroAmount' : amount > s.active - s.locked ? 'InsufficientStake' : undefined;
            return {
              label: `requestUnstake ${amount}`,
              expected,
              // A set gas limit where it must succeed: anvil estimates at the latest block's time,
              // and once the walk's warps put the chain ahead of the clock, a second request in the
              // next block wrote the same unlockTime there (a cheap no-op store) and ran out of gas
              // when mined. (A refusal is left to the estimate, which decodes its error.)
              send: () => send(market.connect(p).requestUnstake(amount, expected ? {} : { gasLimit: 150_000 })),
              apply: async (receipt) => {
                s.active -= amount;
                s.unbonding += amount;
                s.unlockTime = (await blockTime(receipt as TransactionReceipt)) + BigInt(DELAY);
              },
            };
          }
          case 'withdrawStake': {
            const p = pick(providers);
            const s = model.stake(p.address);
            // Pin the block the call lands in, so "has the delay passed" has one exact answer.
            const landsAt = (await latestTimestamp()) + 1n;
            await setNextTimestamp(landsAt);
            return {
              label: `withdrawStake at ${landsAt} (unlock ${s.unlockTime})`,
              expected: s.unbonding === 0n ? 'NothingToWithdraw' : landsAt < s.unlockTime ? 'UnbondingNotElapsed' : undefined,
              send: () => send(market.connect(p).withdrawStake()),
              apply: () => {
                MarketModel.add(model.tokens, p.address, s.unbonding);
                s.unbonding = 0n;
                s.unlockTime = 0n;
              },
            };
          }
          case 'warp': {
            const seconds = pick([DELAY / 4, DELAY / 2, DELAY, DELAY + 1]);
            return {
              label: `warp ${seconds}s`,
              expected: undefined,
              send: async () => {
                await setNextTimestamp((await latestTimestamp()) + BigInt(seconds));
                await rpc.send('evm_mine', []);
                return undefined;
              },
              apply: () => undefined,
            };
          }
          case 'openEscrow': {
            const c = pick(consumers);
            // Mostly a provider whose free stake backs one more escrow, so settlements happen.
            const backed = providers.filter((w) => model.stake(w.address).active - model.stake(w.address).locked >= BOND);
            const p = backed.length > 0 && random() < 0.8 ? pick(backed) : pick(providers);
            const jobId = random() < 0.15 && model.jobs.size > 0 ? pick([...model.jobs.keys()]) : newJob();
            const free = MarketModel.value(model.free, c.address);
            const amount = amountUpTo(free, credits('500'));
            const s = model.stake(p.address);
            // Mostly a key that holds the role, so escrows open.
            const live = settlerKeys.filter((k) => model.settlers.has(k.address));
            const caller = random() < 0.85 ? pick(live) : pick(settlerKeys);
            const auth = consent(c.address, caller.address);
            const landsAt = (await latestTimestamp()) + 1n;
            await setNextTimestamp(landsAt);
            const until = landsAt + BigInt(pick([60, DELAY / 2, DELAY * 2]));
            return {
              label: `openEscrow ${jobId.slice(0, 10)} ${amount} for ${p.address.slice(0, 8)} by ${caller.address.slice(0, 8)}`,
              jobs: [jobId],
              expected: notSettler(caller) ?? (model.jobs.has(jobId)
                ? 'EscrowExists'
                : amount === 0n
                  ? 'ZeroAmount'
                  : !auth || auth.expiresAt === 0n
                    ? 'NotAuthorized'
                    : landsAt > auth.expiresAt
                      ? 'AuthorizationExpired'
                      : auth.remaining < amount
                        ? 'AuthorizationExceeded'
                        : amount > free
                          ? 'InsufficientBalance'
                          : s.active - s.locked < BOND
                            ? 'InsufficientFreeStake'
                            : (model.slashable.get(`${p.address}/${caller.address}`) ?? 0n) < BOND * BigInt(openBy(p.address, caller.address) + 1)
                              ? 'SlashAllowanceTooLow'
                              : undefined),
              send: () => send(as(caller).openEscrow(jobId, c.address, p.address, PROPERTY_TENANT, amount, until)),
              apply: () => {
                MarketModel.add(model.free, c.address, -amount);
                (auth as { remaining: bigint }).remaining -= amount;
                s.locked += BOND;
                model.jobs.set(jobId, { consumer: c.address, provider: p.address, amount, state: EscrowState.Open, expiresAt: until, slashed: false, opener: caller.address });
              },
            };
          }
          case 'authorize': {
            const c = pick(consumers);
            const cap = random() < 0.1 ? 0n : 1n + below(credits('5000'));
            const landsAt = (await latestTimestamp()) + 1n;
            await setNextTimestamp(landsAt);
            const until = landsAt + BigInt(pick([-1, DELAY / 2, DELAY, DELAY * 4]));
            const named = pick(settlerKeys);
            return {
              label: `authorize ${cap} until ${until} for ${named.address.slice(0, 8)}`,
              expected: cap === 0n ? 'ZeroAmount' : until <= landsAt ? 'InvalidExpiry' : undefined,
              send: () => send(market.connect(c).authorize(PROPERTY_TENANT, named.address, cap, until)),
              apply: () => {
                model.authorizations.set(`${c.address}/${named.address}`, { remaining: cap, expiresAt: until });
              },
            };
          }
          case 'revoke': {
            const c = pick(consumers);
            const named = pick(settlerKeys);
            return {
              label: `revoke for ${named.address.slice(0, 8)}`,
              expected: undefined,
              send: () => send(market.connect(c).revoke(PROPERTY_TENANT, named.address)),
              apply: () => {
                model.authorizations.set(`${c.address}/${named.address}`, { remaining: 0n, expiresAt: 0n });
              },
            };
          }
          case 'settlerRole': {
            return {
              label: 'revokeSettler',
              expected: undefined,
              send: () => send(market.revokeSettler(outsider.address)),
              apply: () => {
                model.settlers.delete(outsider.address);
              },
            };
          }
          case 'reclaim': {
            // Now, or (half the time, when every open escrow is still running) just past the
            // earliest expiry, so the walk reaches reclaims whatever else it drew.
            let landsAt = (await latestTimestamp()) + 1n;
            const expiries = jobsIn(EscrowState.Open).map((id) => (model.jobs.get(id) as JobModel).expiresAt);
            if (expiries.length > 0 && expiries.every((e) => e >= landsAt) && random() < 0.5) {
              landsAt = expiries.reduce((a, b) => (a < b ? a : b)) + 1n;
            }
            await setNextTimestamp(landsAt);
            const expired = jobsIn(EscrowState.Open).filter((id) => (model.jobs.get(id) as JobModel).expiresAt < landsAt);
            const jobId = expired.length > 0 && random() < 0.6 ? pick(expired) : someJob();
            const job = model.jobs.get(jobId);
            const caller = job && random() < 0.85 ? wallet(job.consumer) : pick(actors);
            return {
              label: `reclaim ${jobId.slice(0, 10)} at ${landsAt}`,
              jobs: [jobId],
              expected:
                closedOrUnknown(jobId) ??
                // Anyone may release an expired escrow; the money goes to its consumer only.
                (landsAt <= (job?.expiresAt ?? 0n) ? 'EscrowNotExpired' : undefined),
              send: () => send(market.connect(caller).reclaimExpired(jobId)),
              apply: () => {
                const j = job as JobModel;
                MarketModel.add(model.free, j.consumer, j.amount);
                if (!j.slashed) model.stake(j.provider).locked -= BOND;
                j.state = EscrowState.Refunded;
              },
            };
          }
          case 'settle': {
            const jobId = someJob();
            const signedItem = await randomReceipt(jobId);
            const { item } = signedItem;
            const sig = concat([item.r, item.s, toBeHex(item.v)]);
            const caller = callerFor(jobId);
            return {
              label: `settle ${jobId.slice(0, 10)} ${item.receipt.amount} by ${caller.address.slice(0, 8)}`,
              jobs: [jobId],
              expected: batchError([signedItem], caller),
              send: () => send(as(caller).settle(item.receipt, sig)),
              apply: () => {
                if (model.jobs.get(jobId)?.opener !== caller.address) takenOver++;
                applySettlement(item);
              },
            };
          }
          case 'settleBatch': {
            const open = jobsIn(EscrowState.Open);
            const chosen = open.filter(() => random() < 0.5).slice(0, 5);
            if (chosen.length === 0) chosen.push(someJob());
            const items: { item: SignedReceipt; signer: Wallet }[] = [];
            for (const jobId of chosen) items.push(await randomReceipt(jobId));
            if (random() < 0.15) items.push(at(items, 0)); // the same job twice
            const caller = callerFor(at(chosen, 0));
            return {
              label: `settleBatch ${items.length} by ${caller.address.slice(0, 8)}`,
              jobs: items.map((i) => i.item.receipt.jobId),
              expected: batchError(items, caller),
              send: () => send(as(caller).settleBatch(items.map((i) => i.item))),
              apply: () =>
                items.forEach((i) => {
                  if (model.jobs.get(i.item.receipt.jobId)?.opener !== caller.address) takenOver++;
                  applySettlement(i.item);
                }),
            };
          }
          case 'refund': {
            // Half the time an escrow whose opener lost the role, when there is one: its takeover.
            const orphaned = jobsIn(EscrowState.Open).filter((id) => !model.settlers.has((model.jobs.get(id) as JobModel).opener));
            const jobId = orphaned.length > 0 && random() < 0.5 ? pick(orphaned) : someJob();
            const caller = callerFor(jobId);
            return {
              label: `refund ${jobId.slice(0, 10)} by ${caller.address.slice(0, 8)}`,
              jobs: [jobId],
              expected: notSettler(caller) ?? closedOrUnknown(jobId) ?? notOpener(jobId, caller),
              send: () => send(as(caller).refund(jobId)),
              apply: () => {
                const job = model.jobs.get(jobId) as JobModel;
                if (job.opener !== caller.address) takenOver++;
                MarketModel.add(model.free, job.consumer, job.amount);
                if (!job.slashed) model.stake(job.provider).locked -= BOND;
                job.state = EscrowState.Refunded;
              },
            };
          }
          case 'slash': {
            const jobId = random() < 0.85 && model.jobs.size > 0 ? pick([...model.jobs.keys()]) : newJob();
            const job = model.jobs.get(jobId);
            const p = job && random() < 0.85 ? wallet(job.provider) : pick(providers);
            const epoch = Math.floor(random() * 3);
            const s = model.stake(p.address);
            const amount = random() < 0.08 ? 0n : 1n + below((BOND * 12n) / 10n);
            const caller = callerFor(jobId);
            return {
              label: `slash ${jobId.slice(0, 10)}#${epoch} ${amount} by ${caller.address.slice(0, 8)}`,
              jobs: [jobId],
              expected:
                notSettler(caller) ?? (amount === 0n
                  ? 'ZeroAmount'
                  : amount > BOND
                    ? 'SlashTooLarge'
                    : !job
                      ? 'UnknownJob'
                      : notSlasher(jobId, caller)
                        ? 'NotEscrowSettler'
                        : p.address !== job.provider
                        ? 'WrongProvider'
                        : job.slashed
                          ? 'AlreadySlashed'
                          : undefined),
              send: () => send(as(caller).slash(p.address, amount, jobId, epoch, encodeBytes32String('ProviderFault'))),
              apply: () => {
                const j = job as JobModel;
                j.slashed = true;
                if (j.state === EscrowState.Open) s.locked -= BOND;
                // At most what the provider still lets this settler slash.
                const allowanceKey = `${p.address}/${caller.address}`;
                const slashable = model.slashable.get(allowanceKey) ?? 0n;
                const asked = amount < slashable ? amount : slashable;
                const freeActive = s.active - s.locked;
                const fromActive = asked < freeActive ? asked : freeActive;
                const rest = asked - fromActive;
                const fromUnbonding = rest < s.unbonding ? rest : s.unbonding;
                s.active -= fromActive;
                s.unbonding -= fromUnbonding;
                const taken = fromActive + fromUnbonding;
                model.slashable.set(allowanceKey, slashable - taken);
                const cost = j.state === EscrowState.Refunded ? 0n : j.amount;
                const compensated = taken < cost ? taken : cost;
                MarketModel.add(model.free, j.consumer, compensated);
                model.burned += taken - compensated;
              },
            };
          }
          case 'claim': {
            const p = pick(providers);
            const earned = MarketModel.value(model.earnings, p.address);
            return {
              label: `claim ${earned}`,
              expected: earned === 0n ? 'NothingToClaim' : undefined,
              send: () => send(market.connect(p).claimEarnings()),
              apply: () => {
                MarketModel.add(model.tokens, p.address, earned);
                model.earnings.set(p.address, 0n);
              },
            };
          }
        }
      };

      // ---- the books, read from the chain and compared with the model after every step
      const checkBooks = async (touched: Set<string>, allJobs: boolean): Promise<void> => {
        const jobIds = allJobs ? [...model.jobs.keys()] : [...new Set([...jobsIn(EscrowState.Open), ...touched])];
        const [marketBalance, supply, holderBalances, actorViews, escrows] = await Promise.all([
          token.balanceOf(marketAddress),
          token.totalSupply(),
          Promise.all(holders.map((h) => token.balanceOf(h))),
          Promise.all(
            actors.map(async (w) => {
              const [tokens, free, earnings, stake, ...authorizations] = await Promise.all([
                token.balanceOf(w.address),
                market.freeBalanceOf(w.address),
                market.earningsOf(w.address),
                stakeOf(w),
                ...settlerKeys.map((k) => market.authorizationOf(w.address, k.address, PROPERTY_TENANT)),
              ]);
              return { address: w.address, tokens, free, earnings, ...stake, authorizations: authorizations.map((a) => [...a]) };
            }),
          ),
          Promise.all(jobIds.map(async (id) => ({ id, ...(await escrowOf(id)), opener: (await market.escrowTermsOf(id))[3] }))),
        ]);
        for (const view of actorViews) {
          const s = model.stake(view.address);
          expect(view, `actor ${view.address}`).toEqual({
            address: view.address,
            tokens: MarketModel.value(model.tokens, view.address),
            free: MarketModel.value(model.free, view.address),
            earnings: MarketModel.value(model.earnings, view.address),
            active: s.active,
            unbonding: s.unbonding,
            unlockTime: s.unlockTime,
            locked: s.locked,
            authorizations: settlerKeys.map((k) => [consent(view.address, k.address)?.remaining ?? 0n, consent(view.address, k.address)?.expiresAt ?? 0n]),
          });
          // Locked stake never exceeds active stake: every open escrow is backed.
          expect(view.locked <= view.active, `locked ≤ active for ${view.address}`).toBe(true);
        }
        for (const escrow of escrows) {
          const job = model.jobs.get(escrow.id);
          expect(escrow, `job ${escrow.id}`).toEqual({
            id: escrow.id,
            consumer: job?.consumer ?? ZeroAddress,
            amount: job?.amount ?? 0n,
            state: job?.state ?? EscrowState.None,
            opener: job?.opener ?? ZeroAddress,
          });
        }
        // Every token the market holds is in exactly one bucket (chain values only).
        const sum = (values: bigint[]): bigint => values.reduce((a, b) => a + b, 0n);
        const open = escrows.filter((e) => e.state === EscrowState.Open);
        const burned = await market.burned();
        expect(burned, 'burned').toBe(model.burned);
        expect(marketBalance, 'market balance = free + escrows + stakes + earnings + burned').toBe(
          sum(actorViews.map((v) => v.free + v.earnings + v.active + v.unbonding)) + sum(open.map((e) => e.amount)) + burned,
        );
        // What each provider still lets each key slash is what the model drew down.
        for (const p of providers) {
          for (const k of settlerKeys) {
            const openByKey = [...model.jobs.values()].filter((j) => j.provider === p.address && j.opener === k.address && j.state === EscrowState.Open && !j.slashed).length;
            expect([...(await market.settlerAllowanceOf(p.address, k.address))], `allowance of ${p.address} for ${k.address}`).toEqual([true, model.slashable.get(`${p.address}/${k.address}`), 0n, 0n, BigInt(openByKey)]);
          }
        }
        // Locked stake is exactly one bond per open, unslashed escrow of that provider.
        for (const view of actorViews) {
          const backing = [...model.jobs.values()].filter((j) => j.provider === view.address && j.state === EscrowState.Open && !j.slashed).length;
          expect(view.locked, `locked stake of ${view.address}`).toBe(BOND * BigInt(backing));
        }
        // No tokens are created or lost: the supply is exactly what every holder has.
        expect(supply, 'totalSupply = Σ balances').toBe(sum(holderBalances) + marketBalance);
      };

      const deadline = Date.now() + 400_000;
      let step = 0;
      for (; step < steps && Date.now() < deadline; step++) {
        // From halfway, once the second key has an escrow open (at three quarters at the latest),
        // the owner revokes it: its escrows still open become any settler's to close.
        const outsiderOpen = jobsIn(EscrowState.Open).some((id) => model.jobs.get(id)?.opener === outsider.address);
        const revokeNow = model.settlers.has(outsider.address) && step >= steps / 2 && (outsiderOpen || step >= (steps * 3) / 4);
        const kind = revokeNow ? 'settlerRole' : kindOf();
        const operation = await plan(kind);
        const touched = new Set(operation.jobs ?? []);
        try {
          if (operation.expected) {
            await expectRevert(operation.send(), operation.expected);
            reverts.set(kind, (reverts.get(kind) ?? 0) + 1);
            refusedWith.set(operation.expected, (refusedWith.get(operation.expected) ?? 0) + 1);
          } else {
            await operation.apply(await operation.send());
            successes.set(kind, (successes.get(kind) ?? 0) + 1);
          }
          await checkBooks(touched, step % 50 === 49);
        } catch (err) {
          settler.resync();
          const message = err instanceof Error ? err.message : String(err);
          throw new Error(`seed ${seed}, step ${step} (${operation.label}): ${message}`);
        }
      }
      expect(step, 'steps completed before the time bound').toBe(steps);
      await checkBooks(new Set(), true);
      // The walk exercised every operation's success path, and plenty of refusals.
      for (const [kind] of [...WEIGHTS, ['settlerRole']]) expect(successes.get(kind as OperationKind) ?? 0, `successful ${kind}`).toBeGreaterThan(0);
      const refused = [...reverts.values()].reduce((a, b) => a + b, 0);
      expect(refused).toBeGreaterThan(steps / 10);
      // ... including the second settler's: refused on another's escrows, refused without the role,
      // and taking over a revoked key's escrows.
      expect(refusedWith.get('NotEscrowSettler') ?? 0, 'NotEscrowSettler refusals').toBeGreaterThan(0);
      expect(refusedWith.get('NotSettler') ?? 0, 'NotSettler refusals').toBeGreaterThan(0);
      expect(takenOver, 'escrows closed by a key that did not open them').toBeGreaterThan(0);
    },
    480_000,
  );
});
