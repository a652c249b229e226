import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MaxUint256, Wallet, type JsonRpcProvider } from 'ethers';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachComputeCredit, deployMarket, type GpuMarketContract } from '../../operator/src/chain/contracts.js';
import { parseCredits } from '../../operator/src/chain/credits.js';
import { freshProvider } from '../../operator/src/chain/provider.js';
import { currentSettlers } from '../../operator/src/chain/settlers.js';
import { tenantIdOf } from '../../operator/src/chain/tenant.js';
import { SettlementChain } from '../../operator/src/hub/settlement/chain.js';
import { startAnvil, type Anvil } from '../../operator/src/testbed/anvil.js';
import { runCli } from '../../operator/src/testbed/cli.js';

// The hub's and the CLI's side of settler-bound consent, on a real anvil chain with two settlers:
// the hub reads the consent given to its own key only, knows which escrows it may close, and
// `fedgpu authorize` without --settler names the market's only settler or refuses to guess.
// (The contract's own rules are in contracts.test.ts, "a stolen settler key".)

const UID = '3f1c2a9e-6b0d-4c47-9a51-0e2d8b7c6f10';
const TENANT = tenantIdOf('fedgpu', 'ml', UID);

let anvil: Anvil;
let rpc: JsonRpcProvider;
let market: GpuMarketContract;
let marketAddress: string;
let admin: Wallet;
let hubA: Wallet;
let hubB: Wallet;
let consumer: Wallet;
let provider: Wallet;
let chainA: SettlementChain;
let chainB: SettlementChain;
let dir: string;

const connect = (key: Wallet) =>
  SettlementChain.connect({ rpcUrl: anvil.rpcUrl, marketAddress, settlerKey: key.privateKey, confirmations: 1, pollingIntervalMs: 20, logger: pino({ level: 'silent' }) });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedgpu-settler-binding-'));
  anvil = await startAnvil({ accounts: 6 });
  rpc = freshProvider(anvil.rpcUrl, { chainId: anvil.chainId, pollingIntervalMs: 20 });
  [admin, hubA, hubB, consumer, provider] = anvil.accounts.slice(0, 5).map((a) => new Wallet(a.privateKey, rpc)) as [Wallet, Wallet, Wallet, Wallet, Wallet];
  const deployment = await deployMarket(admin, { unbondingDelaySeconds: 3600, settlers: [hubA.address, hubB.address], slashBond: parseCredits('1') });
  market = deployment.market;
  marketAddress = deployment.marketAddress;
  const token = attachComputeCredit(deployment.tokenAddress, admin);
  for (const w of [consumer, provider]) {
    await (await token.mint(w.address, parseCredits('100'))).wait();
    await (await attachComputeCredit(deployment.tokenAddress, w).approve(marketAddress, MaxUint256)).wait();
  }
  await (await market.connect(consumer).deposit(parseCredits('50'))).wait();
  await (await market.connect(provider).stake(parseCredits('10'))).wait();
  writeFileSync(join(dir, 'consumer.key'), consumer.privateKey, { mode: 0o600 });
  writeFileSync(join(dir, 'provider.key'), provider.privateKey, { mode: 0o600 });
  [chainA, chainB] = await Promise.all([connect(hubA), connect(hubB)]);
}, 120_000);

afterAll(async () => {
  chainA?.close();
  chainB?.close();
  rpc?.destroy();
  await anvil?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const cliFlags = () => ['--key-file', join(dir, 'consumer.key'), '--chain-rpc', anvil.rpcUrl, '--market-address', marketAddress, '-o', 'json'];
const providerCli = (args: string[]) =>
  runCli([...args, '--key-file', join(dir, 'provider.key'), '--chain-rpc', anvil.rpcUrl, '--market-address', marketAddress, '-o', 'json'], { timeoutMs: 60_000 });
const authorizeCli = (extra: string[] = []) =>
  runCli(['authorize', '--namespace', 'ml', '--namespace-uid', UID, '--cap', '5', '--expires', '1d', ...extra, ...cliFlags()], { timeoutMs: 60_000 });

describe('settler-bound consent, the hub and the CLI', () => {
  it("the hub reads only the consent given to its own key, and closes only its own or a revoked key's escrows", async () => {
    const until = BigInt(Math.floor(Date.now() / 1000) + 86_400);
    await (await market.connect(consumer).authorize(TENANT, hubA.address, parseCredits('7'), until)).wait();
    expect(chainA.settlerAddress).toBe(hubA.address);
    expect(await chainA.authorization(consumer.address, TENANT)).toEqual({ remaining: parseCredits('7'), expiresAt: until });
    expect(await chainB.authorization(consumer.address, TENANT)).toEqual({ remaining: 0n, expiresAt: 0n });

    // The provider lets hub A's key, and only it, lock its stake, and slash 3 credits of it in all.
    const guess = await providerCli(['allow-settler', '--slashable', '3']);
    expect(guess.code).toBe(2);
    expect(guess.stderr).toContain(`has 2 settlers (${[hubA.address, hubB.address].sort().join(', ')}): pass --settler`);
    const allowed = await providerCli(['allow-settler', '--settler', hubA.address, '--slashable', '3']);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(JSON.parse(allowed.stdout)).toMatchObject({ wallet: provider.address, settler: hubA.address, slashable: '3' });
    expect(await chainA.settlerAllowance(provider.address)).toEqual({ allowed: true, slashable: parseCredits('3'), floor: parseCredits('3'), open: 0, lowerAt: 0 });
    expect(await chainB.settlerAllowance(provider.address)).toEqual({ allowed: false, slashable: 0n, floor: 0n, open: 0, lowerAt: 0 });

    const escrowId = '0x' + 'ab'.repeat(32);
    // Sent through the nonce manager, the revert comes back undecoded: decode its data here.
    const refusedB = await chainB.send((m) => m.openEscrow('0x' + 'cd'.repeat(32), consumer.address, provider.address, TENANT, parseCredits('2'), until)).then(
      () => undefined,
      (err: { data?: string }) => market.interface.parseError(err.data ?? '0x'),
    );
    expect(refusedB?.name).toBe('SettlerNotAllowed');
    expect([...(refusedB?.args ?? [])]).toEqual([provider.address, hubB.address]);
    await chainA.send((m) => m.openEscrow(escrowId, consumer.address, provider.address, TENANT, parseCredits('2'), until));
    // A lower bound waits out the market's unbonding delay (and any locked stake): a provider at
    // fault cannot shrink the slash of an escrow open now. The CLI says when it holds.
    const lower = await providerCli(['allow-settler', '--settler', hubA.address, '--slashable', '1']);
    expect(lower.code, lower.stderr).toBe(0);
    const lowered = JSON.parse(lower.stdout);
    expect(lowered).toMatchObject({ settler: hubA.address, slashable: '3', lowersTo: '1' });
    expect(Date.parse(lowered.lowersAt) - Date.now()).toBeGreaterThan(3_000_000); // the deployment's 3,600 s delay
    expect(await chainA.settlerAllowance(provider.address)).toMatchObject({ allowed: true, slashable: parseCredits('3'), floor: parseCredits('1'), open: 1 });
    // Disallowing stops new escrows at once; the open one stays slashable until the delay is out.
    const stopped = await providerCli(['disallow-settler', '--settler', hubA.address]);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(JSON.parse(stopped.stdout)).toMatchObject({ settler: hubA.address, slashable: '3' });
    expect(await chainA.settlerAllowance(provider.address)).toMatchObject({ allowed: false, slashable: parseCredits('3'), floor: 0n, open: 1 });
    expect(await chainB.escrow(escrowId)).toMatchObject({ state: 'Open', consumer: consumer.address, provider: provider.address, opener: hubA.address });
    expect(await chainA.mayClose(hubA.address)).toBe(true);
    expect(await chainB.mayClose(hubA.address)).toBe(false);
    expect(await currentSettlers(rpc, market, marketAddress)).toEqual([hubA.address, hubB.address].sort());
  });

  it('fedgpu authorize refuses to guess among two settlers, names the only one, and refuses when none is left', async () => {
    const two = await authorizeCli();
    expect(two.code).toBe(2);
    expect(two.stderr).toContain(`has 2 settlers (${[hubA.address, hubB.address].sort().join(', ')}): pass --settler`);

    await (await market.connect(admin).revokeSettler(hubA.address)).wait();
    // hubA's key is revoked: hubB may now close the escrow hubA opened (none is stranded).
    expect(await chainB.mayClose(hubA.address)).toBe(true);
    expect(await currentSettlers(rpc, market, marketAddress)).toEqual([hubB.address]);
    const one = await authorizeCli();
    expect(one.code, one.stderr).toBe(0);
    expect(JSON.parse(one.stdout)).toMatchObject({ settler: hubB.address, cap: '5' });
    expect((await market.authorizationOf(consumer.address, hubB.address, TENANT))[0]).toBe(parseCredits('5'));

    // A revoked key is no settler: naming it is refused, the consent it had stays unspendable.
    const revoked = await authorizeCli(['--settler', hubA.address]);
    expect(revoked.code).toBe(2);
    expect(revoked.stderr).toContain(`--settler ${hubA.address} is not a settler of GpuMarket`);

    await (await market.connect(admin).revokeSettler(hubB.address)).wait();
    const none = await authorizeCli();
    expect(none.code).toBe(3);
    expect(none.stderr).toContain('has no settler now');
  });
});
