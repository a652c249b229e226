import { Interface, type Log, type LogDescription, type Provider } from 'ethers';
import { computeReputation, DEFAULT_REPUTATION_CONFIG, type OutcomeEvent, type ProviderReputation, type ReputationConfig } from '../core/reputation.js';
import { GpuMarketAbi } from '../gen/contracts/index.js';

// Reading GpuMarket's event log: the history of one escrow (for a hub that restarts between
// sending and recording), and the Settled/Slashed outcomes anyone can replay into a provider's
// reputation. `fedgpu reputation --from-chain` and the hub's reputation writer both use
// outcomesFromLogs + reputationAt, so they agree by construction.

export const marketInterface = new Interface(GpuMarketAbi);
const topic = (name: string) => marketInterface.getEvent(name)!.topicHash;
export const MarketTopics = {
  EscrowOpened: topic('EscrowOpened'),
  Settled: topic('Settled'),
  Refunded: topic('Refunded'),
  Slashed: topic('Slashed'),
  Authorized: topic('Authorized'),
  AuthorizationRevoked: topic('AuthorizationRevoked'),
  EarningsClaimed: topic('EarningsClaimed'),
  SettlerSet: topic('SettlerSet'),
} as const;

/** eth_getLogs ranges are split so a long history never exceeds a node's response limits. */
const MAX_BLOCK_RANGE = 10_000;

export interface LogQuery {
  address: string;
  /** topics[0] alternatives, then the indexed arguments (null: any). */
  topics: (string | string[] | null)[];
  fromBlock: number;
  toBlock: number;
}

export async function queryLogs(provider: Provider, query: LogQuery): Promise<Log[]> {
  const logs: Log[] = [];
  for (let from = query.fromBlock; from <= query.toBlock; from += MAX_BLOCK_RANGE) {
    const to = Math.min(query.toBlock, from + MAX_BLOCK_RANGE - 1);
    logs.push(...(await provider.getLogs({ address: query.address, topics: query.topics, fromBlock: from, toBlock: to })));
  }
  return logs.sort((a, b) => a.blockNumber - b.blockNumber || a.index - b.index);
}

export interface ParsedMarketLog {
  name: string;
  args: LogDescription['args'];
  txHash: string;
  block: number;
  logIndex: number;
}

export function parseMarketLogs(logs: readonly Log[], marketAddress: string): ParsedMarketLog[] {
  const out: ParsedMarketLog[] = [];
  for (const log of logs) {
    if (log.address.toLowerCase() !== marketAddress.toLowerCase()) continue;
    const parsed = marketInterface.parseLog({ topics: [...log.topics], data: log.data });
    if (parsed) out.push({ name: parsed.name, args: parsed.args, txHash: log.transactionHash, block: log.blockNumber, logIndex: log.index });
  }
  return out;
}

/** Every event of one escrow key: EscrowOpened, Settled, Refunded (jobId is topic 1) and Slashed (topic 2). */
export async function escrowLogs(provider: Provider, marketAddress: string, escrowId: string, fromBlock: number, toBlock: number): Promise<ParsedMarketLog[]> {
  const [lifecycle, slashes] = await Promise.all([
    queryLogs(provider, { address: marketAddress, topics: [[MarketTopics.EscrowOpened, MarketTopics.Settled, MarketTopics.Refunded], escrowId], fromBlock, toBlock }),
    queryLogs(provider, { address: marketAddress, topics: [MarketTopics.Slashed, null, escrowId], fromBlock, toBlock }),
  ]);
  return parseMarketLogs([...lifecycle, ...slashes], marketAddress).sort((a, b) => a.block - b.block || a.logIndex - b.logIndex);
}

/** A Settled (success) or Slashed (provider failure) event, with its block's timestamp. */
export interface OutcomeLog {
  /** Provider wallet, lower case: the reputation key. */
  provider: string;
  outcome: 'success' | 'failure';
  /** Token units: paid to the provider (Settled) or taken from its stake (Slashed). */
  amount: bigint;
  /** Consumer wallet of the escrow, lower case (absent in logs built before it was kept). */
  consumer?: string;
  block: number;
  logIndex: number;
  /** Block timestamp in ms. */
  time: number;
}

/** Settled and Slashed events in [fromBlock, toBlock], with block timestamps (fetched once per block). */
export async function readOutcomeLogs(provider: Provider, marketAddress: string, fromBlock: number, toBlock: number): Promise<OutcomeLog[]> {
  if (toBlock < fromBlock) return [];
  const logs = parseMarketLogs(
    await queryLogs(provider, { address: marketAddress, topics: [[MarketTopics.Settled, MarketTopics.Slashed]], fromBlock, toBlock }),
    marketAddress,
  );
  const times = new Map<number, number>();
  for (const block of new Set(logs.map((l) => l.block))) {
    const b = await provider.getBlock(block);
    if (!b) throw new Error(`block ${block} is not available from the RPC endpoint`);
    times.set(block, b.timestamp * 1000);
  }
  return logs.map((l) => ({
    provider: String(l.args.provider).toLowerCase(),
    outcome: l.name === 'Settled' ? ('success' as const) : ('failure' as const),
    amount: BigInt(l.args.amount),
    consumer: String(l.args.consumer).toLowerCase(),
    block: l.block,
    logIndex: l.logIndex,
    time: times.get(l.block)!,
  }));
}

/**
 * Outcome logs as reputation events: a settled attempt counts for the provider, a slash against it.
 * Both are weighted against `slashBond` (GpuMarket.slashBond, immutable and public, so the hub and
 * `fedgpu reputation --from-chain` read the same number): a settle counts as the share of a bond it
 * paid, a slash as the share of a bond it took, each at most 1. One whole success is a bond's worth
 * of paid work, one whole failure a bond's worth of stake lost. On a market without a bond (0) every
 * counted event weighs 1.
 */
export function outcomesToEvents(logs: readonly OutcomeLog[], upToBlock: number, slashBond = 0n): OutcomeEvent[] {
  // A slash carries no fault party: computeReputation counts it as the provider's fault. One that
  // took nothing is not counted, nor does a 1-wei slash count as a whole fault: any key the provider
  // allows could emit those at will (GpuMarket.allowSettler bounds the stake such slashes take, not
  // their number).
  // A settle that paid nothing, or one the provider paid itself (its own wallet as the consumer),
  // is no work for anyone: a provider could farm successes with 0-GPU-second receipts for jobs of its
  // own that only its agent can take, the hub paying the gas. Nor does a 1-wei settle count as a
  // whole success: with a second consumer wallet (or a second namespace on an honest hub, at a
  // near-zero price) a provider could otherwise buy one success per escrow at gas cost only, and
  // rise in ranking and past minReputation filters. Paid-weighted, a success takes a bond's worth of
  // credits paid through an escrow (docs/settlement.md, "Stake and reputation from the chain").
  return logs
    .filter((l) => l.block <= upToBlock && l.amount !== 0n && !(l.outcome === 'success' && l.consumer === l.provider))
    .map((l) => ({ time: l.time, provider: l.provider, outcome: l.outcome, ...(slashBond > 0n ? { weight: bondShare(l.amount, slashBond) } : {}) }));
}

/** `amount` as a share of `bond`, at most 1, to six decimals rounded down (the same number for the hub and the CLI). */
export function bondShare(amount: bigint, bond: bigint): number {
  if (bond <= 0n) throw new RangeError('bond must be positive');
  if (amount >= bond) return 1;
  if (amount <= 0n) return 0;
  return Number((amount * 1_000_000n) / bond) / 1_000_000;
}

export interface ReputationAtBlock extends ProviderReputation {
  block: number;
  /** The block's timestamp in ms: the `now` the events are decayed to. */
  blockTime: number;
}

/**
 * A provider's reputation as of one block: the events up to it, decayed to its timestamp. Using the
 * chain's clock rather than the wall clock makes the number reproducible by anyone.
 */
export function reputationAt(
  wallet: string,
  logs: readonly OutcomeLog[],
  block: { number: number; timestamp: number },
  /** GpuMarket.slashBond: a settle counts as the share of it paid, a slash as the share of it taken (0: every event counts whole). */
  slashBond = 0n,
  config: ReputationConfig = DEFAULT_REPUTATION_CONFIG,
): ReputationAtBlock {
  const blockTime = block.timestamp * 1000;
  const reputation = computeReputation(wallet.toLowerCase(), outcomesToEvents(logs, block.number, slashBond), blockTime, {}, config);
  // Published (status, CLI) at six decimals: enough to rank providers, and free of float noise
  // such as 0.04999999999999995 in `kubectl get gp`. Hub and CLI both round here, so they agree.
  const six = (n: number) => Math.round(n * 1e6) / 1e6;
  return {
    ...reputation,
    score: six(reputation.score),
    successes: six(reputation.successes),
    failures: six(reputation.failures),
    block: block.number,
    blockTime,
  };
}

/** A reputation as published: GpuProvider status.reputation and `fedgpu reputation --from-chain` show these same fields. */
export function publishedReputation(rep: ReputationAtBlock): Pick<ProviderReputation, 'score' | 'successes' | 'failures' | 'window'> & { asOfBlock: number; asOf: string } {
  return {
    score: rep.score,
    successes: rep.successes,
    failures: rep.failures,
    window: rep.window,
    asOfBlock: rep.block,
    asOf: new Date(rep.blockTime).toISOString(),
  };
}

/** Incremental Settled/Slashed history for a process that recomputes reputation periodically. */
export class OutcomeLogCache {
  private logs: OutcomeLog[] = [];
  private scannedTo: number;

  constructor(
    private readonly provider: Provider,
    private readonly marketAddress: string,
    fromBlock = 0,
  ) {
    this.scannedTo = fromBlock - 1;
  }

  /** Reads the blocks not read yet up to `toBlock` (callers pass a confirmed block: no reorg handling). */
  async advanceTo(toBlock: number): Promise<readonly OutcomeLog[]> {
    if (toBlock > this.scannedTo) {
      const fresh = await readOutcomeLogs(this.provider, this.marketAddress, this.scannedTo + 1, toBlock);
      this.logs = [...this.logs, ...fresh];
      this.scannedTo = toBlock;
    }
    return this.logs;
  }
}
