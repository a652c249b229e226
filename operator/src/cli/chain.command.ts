import { Command } from 'commander';
import { isAddress, isError, type ContractTransactionResponse, type Wallet } from 'ethers';
import { formatCredits } from '../chain/credits.js';
import { MarketTopics, parseMarketLogs, publishedReputation, queryLogs, readOutcomeLogs, reputationAt } from '../chain/market-events.js';
import { type ChainAccess, CHAIN_FLAG_HELP, type ChainFlags, connectChain, creditsArg, loadWallet } from './chain-access.js';
import { CliError, ExitCode } from './errors.js';
import { render, type OutputFormat } from './output.js';

// `fedgpu stake | unstake | deposit | balance | reputation`: a provider's and a consumer's own
// dealings with GpuMarket. Every send is checked first (balance, stake, gas) so a mistake is a
// one-line error with its exit code, never a revert dump.

export const withChainFlags = (c: Command, key: boolean) => {
  c.option('--chain-rpc <url>', CHAIN_FLAG_HELP.rpc).option('--market-address <address>', CHAIN_FLAG_HELP.market);
  if (key) c.option('--key-file <file>', CHAIN_FLAG_HELP.key);
  return c;
};

export async function session<T>(flags: ChainFlags, run: (chain: ChainAccess) => Promise<T>): Promise<T> {
  const chain = await connectChain(flags);
  try {
    return await run(chain);
  } catch (err) {
    if (err instanceof CliError) throw err;
    if (isError(err, 'CALL_EXCEPTION') && err.revert) throw new CliError(`the market refused: ${err.revert.name}(${err.revert.args.join(', ')})`, ExitCode.Failure);
    if (isError(err, 'INSUFFICIENT_FUNDS')) throw new CliError('the wallet has too little ether to pay for gas', ExitCode.InsufficientFunds);
    if (isError(err, 'NETWORK_ERROR') || isError(err, 'TIMEOUT') || (err as { code?: string }).code === 'ECONNREFUSED') {
      throw new CliError(`lost the chain at ${chain.rpcUrl}: ${(err as Error).message.split('\n')[0]}`, ExitCode.Unreachable);
    }
    throw err;
  } finally {
    chain.close();
  }
}

export async function mined(tx: Promise<ContractTransactionResponse>): Promise<{ txHash: string; block: number }> {
  const receipt = await (await tx).wait();
  if (!receipt) throw new CliError('the transaction was not mined', ExitCode.Failure);
  return { txHash: receipt.hash, block: receipt.blockNumber };
}

/** Tokens the market pulls from the wallet: check the balance, the gas money, and approve when needed. */
async function prepareTransfer(chain: ChainAccess, wallet: Wallet, amount: bigint, what: string): Promise<string | undefined> {
  const [tokens, ether] = await Promise.all([chain.token.balanceOf(wallet.address), chain.provider.getBalance(wallet.address)]);
  if (tokens < amount) {
    throw new CliError(`wallet ${wallet.address} holds ${formatCredits(tokens)} credits; ${what} ${formatCredits(amount)} needs ${formatCredits(amount - tokens)} more`, ExitCode.InsufficientFunds);
  }
  if (ether === 0n) throw new CliError(`wallet ${wallet.address} has no ether to pay for gas`, ExitCode.InsufficientFunds);
  const allowance = await chain.token.allowance(wallet.address, chain.marketAddress);
  if (allowance >= amount) return undefined;
  return (await mined(chain.token.connect(wallet).approve(chain.marketAddress, amount))).txHash;
}

export function stakeCommand(output: () => OutputFormat): Command {
  return withChainFlags(new Command('stake'), true)
    .description('stake credits as a provider (collateral the hub slashes on provider faults)')
    .argument('<amount>', 'credits, e.g. 100')
    .action(async (text: string, flags: ChainFlags) => {
      const amount = creditsArg(text);
      const wallet = loadWallet(flags, true);
      const result = await session(flags, async (chain) => {
        const signer = wallet.connect(chain.provider);
        const approveTx = await prepareTransfer(chain, signer, amount, 'staking');
        const tx = await mined(chain.market.connect(signer).stake(amount));
        const [active, unbonding] = await chain.market.stakeOf(wallet.address);
        return { wallet: wallet.address, staked: formatCredits(amount), ...tx, ...(approveTx ? { approveTxHash: approveTx } : {}), stake: { active: formatCredits(active), unbonding: formatCredits(unbonding) } };
      });
      process.stdout.write(render(output(), result, () => [[`staked ${result.staked} credits from ${result.wallet} (tx ${result.txHash}); active stake ${result.stake.active}`]]));
    });
}

export function unstakeCommand(output: () => OutputFormat): Command {
  return withChainFlags(new Command('unstake'), true)
    .description('start unbonding stake; it stays slashable until the unbonding delay has passed')
    .argument('<amount>', 'credits, e.g. 50')
    .action(async (text: string, flags: ChainFlags) => {
      const amount = creditsArg(text);
      const wallet = loadWallet(flags, true);
      const result = await session(flags, async (chain) => {
        const [active, , , locked] = await chain.market.stakeOf(wallet.address);
        if (active - locked < amount) {
          throw new CliError(
            `${wallet.address} has ${formatCredits(active - locked)} credits of free stake (${formatCredits(active)} active, ${formatCredits(locked)} locked by open escrows); cannot unstake ${formatCredits(amount)}`,
            ExitCode.InsufficientFunds,
          );
        }
        const tx = await mined(chain.market.connect(wallet.connect(chain.provider)).requestUnstake(amount));
        const [left, unbonding, unlock] = await chain.market.stakeOf(wallet.address);
        return { wallet: wallet.address, unstaked: formatCredits(amount), ...tx, stake: { active: formatCredits(left), unbonding: formatCredits(unbonding), unlockTime: new Date(Number(unlock) * 1000).toISOString() } };
      });
      process.stdout.write(render(output(), result, () => [[`unbonding ${result.stake.unbonding} credits of ${result.wallet} until ${result.stake.unlockTime} (tx ${result.txHash}); active stake ${result.stake.active}`]]));
    });
}

export function depositCommand(output: () => OutputFormat): Command {
  return withChainFlags(new Command('deposit'), true)
    .description("deposit credits as a consumer: the hub escrows jobs' budgets from this balance")
    .argument('<amount>', 'credits, e.g. 250')
    .action(async (text: string, flags: ChainFlags) => {
      const amount = creditsArg(text);
      const wallet = loadWallet(flags, true);
      const result = await session(flags, async (chain) => {
        const signer = wallet.connect(chain.provider);
        const approveTx = await prepareTransfer(chain, signer, amount, 'depositing');
        const tx = await mined(chain.market.connect(signer).deposit(amount));
        const free = await chain.market.freeBalanceOf(wallet.address);
        return { wallet: wallet.address, deposited: formatCredits(amount), ...tx, ...(approveTx ? { approveTxHash: approveTx } : {}), free: formatCredits(free) };
      });
      process.stdout.write(render(output(), result, () => [[`deposited ${result.deposited} credits for ${result.wallet} (tx ${result.txHash}); free balance ${result.free}`]]));
    });
}

export function balanceCommand(output: () => OutputFormat): Command {
  return withChainFlags(new Command('balance'), true)
    .description("a wallet's money in the market: free deposit, escrowed, stake, earnings, and tokens held")
    .argument('[wallet]', '0x address (default: the wallet of --key-file / FEDGPU_WALLET_KEY)')
    .option('--from-block <n>', "first block to scan for the wallet's escrows", '0')
    .action(async (address: string | undefined, flags: ChainFlags & { fromBlock: string }) => {
      const wallet = address ?? loadWallet(flags, false)?.address;
      if (!wallet) throw new CliError('which wallet? pass an 0x address, --key-file <file> or FEDGPU_WALLET_KEY', ExitCode.Usage);
      if (!isAddress(wallet)) throw new CliError(`${wallet} is not an 0x address`, ExitCode.Usage);
      const result = await session(flags, async (chain) => {
        const [free, [active, unbonding, unlock], earnings, tokens, escrowed] = await Promise.all([
          chain.market.freeBalanceOf(wallet),
          chain.market.stakeOf(wallet),
          chain.market.earningsOf(wallet),
          chain.token.balanceOf(wallet),
          openEscrowsOf(chain, wallet, Number(flags.fromBlock)),
        ]);
        return {
          wallet,
          free: formatCredits(free),
          escrowed: formatCredits(escrowed),
          stake: { active: formatCredits(active), unbonding: formatCredits(unbonding), ...(unlock > 0n ? { unlockTime: new Date(Number(unlock) * 1000).toISOString() } : {}) },
          earnings: formatCredits(earnings),
          tokens: formatCredits(tokens),
        };
      });
      process.stdout.write(
        render(output(), result, () => [
          ['WALLET', 'FREE', 'ESCROWED', 'STAKE', 'UNBONDING', 'EARNINGS', 'TOKENS'],
          [result.wallet, result.free, result.escrowed, result.stake.active, result.stake.unbonding, result.earnings, result.tokens],
        ]),
      );
    });
}

/** Sum of the consumer's escrows that are still open (EscrowOpened events, then each escrow's state). */
async function openEscrowsOf(chain: ChainAccess, consumer: string, fromBlock: number): Promise<bigint> {
  const to = await chain.provider.getBlockNumber();
  const topic = '0x' + consumer.toLowerCase().replace(/^0x/, '').padStart(64, '0');
  const logs = parseMarketLogs(await queryLogs(chain.provider, { address: chain.marketAddress, topics: [MarketTopics.EscrowOpened, null, topic], fromBlock, toBlock: to }), chain.marketAddress);
  let total = 0n;
  for (const jobId of new Set(logs.map((l) => String(l.args.jobId)))) {
    const [, amount, state] = await chain.market.escrowOf(jobId);
    if (state === 1n) total += amount;
  }
  return total;
}

export function reputationCommand(output: () => OutputFormat): Command {
  return withChainFlags(new Command('reputation'), false)
    .description("recompute a provider's reputation from Settled and Slashed events alone (it must agree with the hub's status.reputation)")
    .requiredOption('--from-chain <wallet>', 'the provider wallet')
    .option('--block <n>', 'as of this block (default: the latest); the hub records its block in status.reputation.asOfBlock')
    .option('--from-block <n>', 'first block to scan (the market deployment block)', '0')
    .action(async (flags: ChainFlags & { fromChain: string; block?: string; fromBlock: string }) => {
      if (!isAddress(flags.fromChain)) throw new CliError(`--from-chain ${flags.fromChain} is not an 0x address`, ExitCode.Usage);
      const result = await session(flags, async (chain) => {
        const number = flags.block !== undefined ? Number(flags.block) : await chain.provider.getBlockNumber();
        if (!Number.isSafeInteger(number) || number < 0) throw new CliError(`--block ${flags.block} is not a block number`, ExitCode.Usage);
        const block = await chain.provider.getBlock(number);
        if (!block) throw new CliError(`block ${number} does not exist yet`, ExitCode.NotFound);
        const logs = await readOutcomeLogs(chain.provider, chain.marketAddress, Number(flags.fromBlock), number);
        const mine = logs.filter((l) => l.provider === flags.fromChain.toLowerCase());
        const rep = reputationAt(flags.fromChain, logs, { number: block.number, timestamp: block.timestamp }, await chain.market.slashBond());
        return {
          wallet: flags.fromChain,
          ...publishedReputation(rep),
          settledAttempts: mine.filter((l) => l.outcome === 'success').length,
          slashes: mine.filter((l) => l.outcome === 'failure').length,
        };
      });
      process.stdout.write(
        render(output(), result, () => [
          ['WALLET', 'SCORE', 'SUCCESSES', 'FAILURES', 'SETTLED', 'SLASHES', 'BLOCK'],
          [result.wallet, result.score.toFixed(4), result.successes.toFixed(3), result.failures.toFixed(3), String(result.settledAttempts), String(result.slashes), String(result.asOfBlock)],
        ]),
      );
    });
}
