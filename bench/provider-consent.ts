import { type JsonRpcProvider, toBeHex, type Wallet } from 'ethers';
import type { GpuMarketContract } from '../operator/src/chain/contracts.js';

/**
 * The benches' throwaway provider keys allow `settler` on the market (GpuMarket.allowSettler), as
 * every provider must before a settler opens an escrow toward it. They hold no ether: anvil gives
 * each a little for the one transaction.
 */
export async function allowSettlerFrom(rpc: JsonRpcProvider, market: GpuMarketContract, providers: readonly Wallet[], settler: string): Promise<void> {
  for (const p of providers) await rpc.send('anvil_setBalance', [p.address, toBeHex(10n ** 18n)]);
  await Promise.all(providers.map(async (p) => (await market.connect(p.connect(rpc)).allowSettler(settler, 0n)).wait()));
}
