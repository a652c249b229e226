import { JsonRpcProvider, Network } from 'ethers';

export interface FreshProviderOptions {
  /** How often tx.wait() and event subscriptions poll (ethers' default is 4 s). */
  pollingIntervalMs?: number;
  /**
   * The chain id, when known: the provider then never probes the network, so an endpoint that is
   * down at start-up fails each request instead of making ethers retry (and log) forever.
   */
  chainId?: bigint | number;
}

/**
 * A JSON-RPC provider that never answers from ethers' 250 ms request cache: balances, nonces and
 * escrow states are read right after the transactions that change them.
 */
export function freshProvider(rpcUrl: string, options: FreshProviderOptions = {}): JsonRpcProvider {
  const network = options.chainId === undefined ? undefined : Network.from(options.chainId);
  return new JsonRpcProvider(rpcUrl, network, {
    cacheTimeout: -1,
    pollingInterval: options.pollingIntervalMs ?? 1_000,
    ...(network ? { staticNetwork: network } : {}),
  });
}
