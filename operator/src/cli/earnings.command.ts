import { Command } from 'commander';
import { isAddress } from 'ethers';
import { formatCredits } from '../chain/credits.js';
import { MarketTopics, parseMarketLogs, queryLogs } from '../chain/market-events.js';
import { type ChainAccess, type ChainFlags, loadWallet } from './chain-access.js';
import { mined, session, withChainFlags } from './chain.command.js';
import { CliError, ExitCode } from './errors.js';
import { render, type OutputFormat } from './output.js';

// `fedgpu earnings | claim`: a provider's money, from chain events alone. Per escrow (one per
// attempt): what is pending (an open escrow for this provider: its held amount is the most it can
// pay), what was paid (Settled), what was slashed (Slashed); and the earnings waiting to be
// claimed with claimEarnings.

export interface EarningsRow {
  escrow: string;
  state: 'pending' | 'paid' | 'refunded' | 'reclaimed';
  /** Pending: what the escrow holds (the most it can pay). Paid: what it paid. */
  amount: bigint;
  slashed: bigint;
  compensated: bigint;
}

/** One row per escrow of `provider`, from its EscrowOpened, Settled, Refunded and Slashed events. */
export async function earningsOf(chain: ChainAccess, provider: string, fromBlock: number): Promise<{ rows: EarningsRow[]; claimed: bigint }> {
  const to = await chain.provider.getBlockNumber();
  const topic = '0x' + provider.toLowerCase().slice(2).padStart(64, '0');
  const q = (topics: (string | string[] | null)[]) => queryLogs(chain.provider, { address: chain.marketAddress, topics, fromBlock, toBlock: to });
  const [opened, settled, slashed, claimed] = await Promise.all([
    q([MarketTopics.EscrowOpened, null, null, topic]),
    q([MarketTopics.Settled, null, topic]),
    q([MarketTopics.Slashed, topic]),
    q([MarketTopics.EarningsClaimed, topic]),
  ]).then((sets) => sets.map((logs) => parseMarketLogs(logs, chain.marketAddress)));
  const rows = new Map<string, EarningsRow>();
  const row = (escrow: string): EarningsRow => {
    let r = rows.get(escrow);
    if (!r) rows.set(escrow, (r = { escrow, state: 'pending', amount: 0n, slashed: 0n, compensated: 0n }));
    return r;
  };
  for (const l of opened!) row(String(l.args.jobId)).amount = BigInt(l.args.amount);
  for (const l of settled!) Object.assign(row(String(l.args.jobId)), { state: 'paid', amount: BigInt(l.args.amount) });
  for (const l of slashed!) Object.assign(row(String(l.args.jobId)), { slashed: BigInt(l.args.amount), compensated: BigInt(l.args.compensated) });
  // Escrows still pending may have been refunded (or reclaimed) since: ask their state.
  for (const r of rows.values()) {
    if (r.state !== 'pending') continue;
    const [, amount, state] = await chain.market.escrowOf(r.escrow);
    if (state === 3n) Object.assign(r, { state: 'refunded', amount: 0n });
    else if (state === 1n) r.amount = amount;
  }
  return { rows: [...rows.values()], claimed: claimed!.reduce((n, l) => n + BigInt(l.args.amount), 0n) };
}

export function earningsCommand(output: () => OutputFormat): Command {
  return withChainFlags(new Command('earnings'), true)
    .description("a provider's paid, pending and slashed amounts per escrow (one per attempt), from chain events, and what it can claim")
    .argument('[wallet]', 'provider 0x address (default: the wallet of --key-file / FEDGPU_WALLET_KEY)')
    .option('--from-block <n>', 'first block to scan (the market deployment block)', '0')
    .action(async (address: string | undefined, flags: ChainFlags & { fromBlock: string }) => {
      const wallet = address ?? loadWallet(flags, false)?.address;
      if (!wallet) throw new CliError('which provider? pass an 0x address, --key-file <file> or FEDGPU_WALLET_KEY', ExitCode.Usage);
      if (!isAddress(wallet)) throw new CliError(`${wallet} is not an 0x address`, ExitCode.Usage);
      const result = await session(flags, async (chain) => {
        const [{ rows, claimed }, unclaimed] = await Promise.all([earningsOf(chain, wallet, Number(flags.fromBlock)), chain.market.earningsOf(wallet)]);
        const sum = (f: (r: EarningsRow) => bigint) => formatCredits(rows.reduce((n, r) => n + f(r), 0n));
        return {
          wallet,
          paid: sum((r) => (r.state === 'paid' ? r.amount : 0n)),
          pending: sum((r) => (r.state === 'pending' ? r.amount : 0n)),
          slashed: sum((r) => r.slashed),
          claimed: formatCredits(claimed),
          unclaimed: formatCredits(unclaimed),
          escrows: rows.map((r) => ({ escrow: r.escrow, state: r.state, amount: formatCredits(r.amount), slashed: formatCredits(r.slashed) })),
        };
      });
      process.stdout.write(
        render(output(), result, () => [
          ['ESCROW', 'STATE', 'AMOUNT', 'SLASHED'],
          ...result.escrows.map((e) => [e.escrow, e.state, e.amount, e.slashed]),
          [`TOTAL paid ${result.paid}`, `pending ${result.pending}`, `slashed ${result.slashed}`, `unclaimed ${result.unclaimed} (claimed ${result.claimed})`],
        ]),
      );
    });
}

export function claimCommand(output: () => OutputFormat): Command {
  return withChainFlags(new Command('claim'), true)
    .description("withdraw a provider's settled earnings to its wallet (claimEarnings)")
    .action(async (flags: ChainFlags) => {
      const wallet = loadWallet(flags, true);
      const result = await session(flags, async (chain) => {
        const earned = await chain.market.earningsOf(wallet.address);
        if (earned === 0n) throw new CliError(`${wallet.address} has no settled earnings to claim`, ExitCode.InsufficientFunds);
        const tx = await mined(chain.market.connect(wallet.connect(chain.provider)).claimEarnings());
        return { wallet: wallet.address, claimed: formatCredits(earned), ...tx, tokens: formatCredits(await chain.token.balanceOf(wallet.address)) };
      });
      process.stdout.write(render(output(), result, () => [[`claimed ${result.claimed} credits to ${result.wallet} (tx ${result.txHash}); it now holds ${result.tokens}`]]));
    });
}
