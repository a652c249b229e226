// Credits for e2e consumers on the test bed's anvil chain.
import { MaxUint256, Wallet, type JsonRpcProvider } from 'ethers';
import { attachComputeCredit, type GpuMarketContract } from '../../../operator/src/chain/contracts.js';
import { parseCredits } from '../../../operator/src/chain/credits.js';
import type { Anvil } from '../../../operator/src/testbed/anvil.js';

export interface TestChain {
  anvil: Anvil;
  rpc: JsonRpcProvider;
  market: GpuMarketContract;
  marketAddress: string;
}

/**
 * Mints `amount` credits to `wallet` (as anvil's first account, which deployed the token), lets the
 * market spend all of the wallet's credits, and with `deposit` moves the amount into the market.
 */
export async function fundWallet({ anvil, rpc, market, marketAddress }: TestChain, wallet: Wallet, amount: string, deposit: boolean): Promise<void> {
  const token = attachComputeCredit(await market.token(), rpc);
  const admin = new Wallet(anvil.accounts[0]!.privateKey, rpc);
  await (await token.connect(admin).mint(wallet.address, parseCredits(amount))).wait();
  await (await token.connect(wallet.connect(rpc)).approve(marketAddress, MaxUint256)).wait();
  if (deposit) await (await market.connect(wallet.connect(rpc)).deposit(parseCredits(amount))).wait();
}

/** The uid of a hub namespace: an on-chain consent names the namespace as it is (chain/tenant.ts). */
export async function namespaceUid(cluster: { kubectl(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> }, name: string): Promise<string> {
  const res = await cluster.kubectl(['get', 'namespace', name, '-o', 'jsonpath={.metadata.uid}']);
  if (res.code !== 0 || !res.stdout.trim()) throw new Error(`cannot read namespace ${name}'s uid: ${res.stderr.trim()}`);
  return res.stdout.trim();
}
