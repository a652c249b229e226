import { Command } from 'commander';
import { formatCredits } from '../chain/credits.js';
import { type ChainFlags, creditsArg, loadWallet } from './chain-access.js';
import { mined, session, withChainFlags } from './chain.command.js';
import { render, type OutputFormat } from './output.js';
import { FROM_BLOCK_HELP, requireKnownSettler, SETTLER_HELP, settlerFor } from './settler-flag.js';

// `fedgpu allow-settler | disallow-settler`: a provider's consent on chain. A hub's settler key may
// open escrows that lock the provider's stake only while the provider allows it, and may slash it
// only up to what the provider allowed that key in all (GpuMarket.allowSettler). So a stolen key,
// or a second hub on the same market, cannot burn a stranger's stake: at most what its owner chose.

interface ConsentFlags extends ChainFlags {
  settler?: string;
  fromBlock: string;
}

export function allowSettlerCommand(output: () => OutputFormat): Command {
  return withChainFlags(new Command('allow-settler'), true)
    .description("let a hub's settler key open escrows on this provider's stake, and slash it at most --slashable credits in all (replaces the bound: a raise holds at once, a lower bound after the market's unbonding delay and once this key has no escrow open toward the provider)")
    .requiredOption('--slashable <credits>', "most credits the settler may slash from this stake, over all faults; each escrow needs it to cover a bond for each of the key's open escrows and its own")
    .option('--settler <0x…>', SETTLER_HELP)
    .option('--from-block <n>', FROM_BLOCK_HELP, '0')
    .action(async (flags: ConsentFlags & { slashable: string }) => {
      const slashable = creditsArg(flags.slashable, { allowZero: true });
      const wallet = loadWallet(flags, true);
      const result = await session(flags, async (chain) => {
        const settler = await settlerFor(flags, chain);
        await requireKnownSettler(chain, settler, 'no hub could open an escrow with this consent');
        const tx = await mined(chain.market.connect(wallet.connect(chain.provider)).allowSettler(settler, slashable));
        const [, now, lowerTo, lowerAt] = await chain.market.settlerAllowanceOf(wallet.address, settler);
        const waiting = lowerAt !== 0n ? { lowersTo: formatCredits(lowerTo), lowersAt: iso(lowerAt) } : {};
        return { wallet: wallet.address, settler, slashable: formatCredits(now), ...waiting, ...tx };
      });
      const later = result.lowersAt ? `; ${result.lowersTo} from ${result.lowersAt}, once the settler has no escrow open toward it` : '';
      process.stdout.write(
        render(output(), result, () => [[`${result.wallet} allows settler ${result.settler} to open escrows on its stake and slash at most ${result.slashable} credits in all${later} (tx ${result.txHash})`]]),
      );
    });
}

export function disallowSettlerCommand(output: () => OutputFormat): Command {
  return withChainFlags(new Command('disallow-settler'), true)
    .description("stop a hub's settler key opening escrows on this provider's stake, at once (what it may slash falls to 0 after the market's unbonding delay, once its escrows toward this provider are closed)")
    .option('--settler <0x…>', SETTLER_HELP)
    .option('--from-block <n>', FROM_BLOCK_HELP, '0')
    .action(async (flags: ConsentFlags) => {
      const wallet = loadWallet(flags, true);
      const result = await session(flags, async (chain) => {
        const settler = await settlerFor(flags, chain);
        const tx = await mined(chain.market.connect(wallet.connect(chain.provider)).disallowSettler(settler));
        const [, slashable, , lowerAt] = await chain.market.settlerAllowanceOf(wallet.address, settler);
        return { wallet: wallet.address, settler, slashable: formatCredits(slashable), ...(lowerAt !== 0n ? { until: iso(lowerAt) } : {}), ...tx };
      });
      const left = result.slashable === '0' ? '' : `; it may still slash ${result.slashable} credits until ${result.until ?? 'now'} (longer while its escrows toward this provider are open)`;
      process.stdout.write(render(output(), result, () => [[`${result.wallet} no longer allows settler ${result.settler} to open escrows on its stake${left} (tx ${result.txHash})`]]));
    });
}

const iso = (seconds: bigint) => new Date(Number(seconds) * 1000).toISOString();
