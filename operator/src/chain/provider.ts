import { JsonRpcProvider } from 'ethers';

export interface FreshProviderOptions {
  /** How often tx.wait() and event subscriptions poll (ethers' default is 4 s). */
  pollingIntervalMs?: number;
}

/**
 * A JSON-RPC provider that never answers from ethers' 250 ms request cache: balances, nonces and
 * escrow states are read right after the transactions that change them.
 */
export function freshProvider(rpcUrl: string, options: FreshProviderOptions = {}): JsonRpcProvider {
  return new JsonRpcProvider(rpcUrl, undefined, {
    cacheTimeout: -1,
    pollingInterval: options.pollingIntervalMs ?? 1_000,
  });
}
