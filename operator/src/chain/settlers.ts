import type { Provider } from 'ethers';
import { compareStrings } from '../core/order.js';
import { MarketTopics, parseMarketLogs, queryLogs } from './market-events.js';

// Which settler keys a market has now. A consumer's authorization names one settler (GpuMarket),
// so `fedgpu authorize` must know which; on a market with one hub there is only one to name.

/** The addresses a market's SettlerSet events leave enabled (each account's last event decides). */
export function settlersFromEvents(events: readonly { account: string; enabled: boolean }[]): string[] {
  const state = new Map<string, boolean>();
  for (const e of events) state.set(e.account, e.enabled);
  return [...state].filter(([, enabled]) => enabled).map(([account]) => account);
}

/**
 * The market's settlers now: replayed from its SettlerSet events, each confirmed by `isSettler`
 * (the log and the state must agree; a node that dropped logs must not make a removed key look
 * current). Sorted, so a listing reads the same every time.
 */
export async function currentSettlers(
  provider: Provider,
  market: { isSettler(account: string): Promise<boolean> },
  marketAddress: string,
  fromBlock = 0,
): Promise<string[]> {
  const toBlock = await provider.getBlockNumber();
  const logs = parseMarketLogs(await queryLogs(provider, { address: marketAddress, topics: [MarketTopics.SettlerSet], fromBlock, toBlock }), marketAddress);
  const candidates = settlersFromEvents(logs.map((l) => ({ account: String(l.args.account), enabled: Boolean(l.args.enabled) })));
  const confirmed = await Promise.all(candidates.map(async (a) => ((await market.isSettler(a)) ? a : undefined)));
  return confirmed.filter((a): a is string => a !== undefined).sort(compareStrings);
}
