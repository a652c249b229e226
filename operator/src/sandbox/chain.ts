import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MaxUint256, Wallet } from 'ethers';
import { attachComputeCredit, deployMarket } from '../chain/contracts.js';
import { parseCredits } from '../chain/credits.js';
import { freshProvider } from '../chain/provider.js';
import { DEFAULT_HUB_ID, tenantIdOf } from '../chain/tenant.js';
import { startAnvil, type Anvil } from '../testbed/anvil.js';
import { runKubectl } from '../testbed/kubectl.js';
import { providerWalletIndex, sandboxWallet } from './topology.js';

// The sandbox's chain: anvil on loopback with the contracts deployed, the hub's settler key granted
// its role, every provider staked and a consumer funded and bound to the `default` namespace, so a
// new user's first `kubectl apply` of a GpuJob there just runs and gets settled.

/** anvil accounts (the sandbox mnemonic): 0 deploys, 1-3 are the providers, 4 the consumer, 5 the hub. */
const ADMIN = 0;
export const CONSUMER_ACCOUNT = 4;
const SETTLER = 5;
export const PROVIDER_STAKE = '200';
export const CONSUMER_DEPOSIT = '1000';

export interface SandboxChain {
  anvil: Anvil;
  rpcUrl: string;
  chainId: number;
  marketAddress: string;
  tokenAddress: string;
  consumer: string;
  settlerKeyFile: string;
  consumerKeyFile: string;
  /** Flags for `fedgpu hub`. */
  hubArgs: string[];
  stop(): Promise<void>;
}

const SLASH_AMOUNT = '10';

/** `providerStake`: credits each provider stakes (default PROVIDER_STAKE); at most the 1,000 each is funded with. */
export async function startSandboxChain(dir: string, hubKubeconfig: string, providerCount: number, providerStake = PROVIDER_STAKE): Promise<SandboxChain> {
  mkdirSync(dir, { recursive: true });
  // Its anvil.pid lets `sandbox down` (and a reaper of a chaos run) kill it by pid if we cannot.
  const anvil = await startAnvil({ accounts: 8, dir });
  try {
    const rpc = freshProvider(anvil.rpcUrl);
    const signer = (i: number) => sandboxWallet(i).connect(rpc);
    const admin = signer(ADMIN);
    const settler = sandboxWallet(SETTLER);
    // The slash bond matches the hub's --slash-amount: each open escrow locks that much stake.
    const { market, marketAddress, tokenAddress } = await deployMarket(admin, { unbondingDelaySeconds: 3600, settlers: [settler.address], slashBond: parseCredits(SLASH_AMOUNT) });
    const token = attachComputeCredit(tokenAddress, admin);
    const fund = async (wallet: Wallet, amount: string) => {
      await (await token.mint(wallet.address, parseCredits(amount))).wait();
      await (await attachComputeCredit(tokenAddress, wallet).approve(marketAddress, MaxUint256)).wait();
    };
    for (let i = 0; i < providerCount; i++) {
      const provider = signer(providerWalletIndex(i));
      await fund(provider, '1000');
      await (await market.connect(provider).stake(parseCredits(providerStake))).wait();
      // Consent on chain: the provider lets this hub's settler lock its stake for escrows, and
      // slash it at most its whole stake over all faults.
      await (await market.connect(provider).allowSettler(settler.address, parseCredits(providerStake))).wait();
    }
    const consumer = signer(CONSUMER_ACCOUNT);
    await fund(consumer, '10000');
    await (await market.connect(consumer).deposit(parseCredits(CONSUMER_DEPOSIT))).wait();
    // Consent on chain: the consumer lets this hub's settler lock its whole deposit for the
    // `default` namespace (this one: its uid) for a year.
    const uid = await runKubectl(hubKubeconfig, ['get', 'namespace', 'default', '-o', 'jsonpath={.metadata.uid}']);
    if (uid.code !== 0 || !uid.stdout.trim()) throw new Error(`cannot read the default namespace's uid: ${uid.stderr.trim()}`);
    const year = BigInt(Math.floor(Date.now() / 1000) + 365 * 24 * 3600);
    await (await market.connect(consumer).authorize(tenantIdOf(DEFAULT_HUB_ID, 'default', uid.stdout.trim()), settler.address, parseCredits(CONSUMER_DEPOSIT), year)).wait();
    const bound = await runKubectl(hubKubeconfig, ['label', 'namespace', 'default', `fedgpu.io/consumer-wallet=${consumer.address}`, '--overwrite']);
    if (bound.code !== 0) throw new Error(`cannot bind the default namespace to the consumer: ${bound.stderr.trim()}`);
    rpc.destroy();

    const settlerKeyFile = join(dir, 'settler.key');
    const consumerKeyFile = join(dir, 'consumer.key');
    writeFileSync(settlerKeyFile, settler.privateKey, { mode: 0o600 });
    writeFileSync(consumerKeyFile, consumer.privateKey, { mode: 0o600 });
    return {
      anvil,
      rpcUrl: anvil.rpcUrl,
      chainId: Number(anvil.chainId),
      marketAddress,
      tokenAddress,
      consumer: consumer.address,
      settlerKeyFile,
      consumerKeyFile,
      hubArgs: [
        '--chain-rpc', anvil.rpcUrl,
        '--market-address', marketAddress,
        '--settler-key-file', settlerKeyFile,
        '--min-stake', '100',
        '--slash-amount', SLASH_AMOUNT,
        '--chain-status-interval', '2s',
        '--drift-interval', '5s',
        '--receipt-timeout', '2m',
      ],
      stop: () => anvil.stop(),
    };
  } catch (err) {
    await anvil.stop();
    throw err;
  }
}
