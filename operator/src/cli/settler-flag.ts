import { getAddress, isAddress } from 'ethers';
import { currentSettlers } from '../chain/settlers.js';
import type { ChainAccess } from './chain-access.js';
import { CliError, ExitCode } from './errors.js';

// `--settler` and `--from-block`, shared by the commands that name a hub's settler key: a
// consumer's authorize/revoke and a provider's allow-settler/disallow-settler.

export const SETTLER_HELP = "the hub's settler address (its waiting jobs name it; default: the market's only settler)";

export const FROM_BLOCK_HELP = 'first block to scan for settlers and authorizations (the market deployment block)';

/** `--settler` as a checksummed address; a usage error naming the flag otherwise. */
export function settlerArg(text: string): string {
  if (!isAddress(text)) {
    const why = /^0x[0-9a-fA-F]{40}$/.test(text) ? 'its mixed-case checksum is wrong (write it in lower case, or copy it whole)' : 'it is not an 0x address';
    throw new CliError(`--settler ${text}: ${why}`, ExitCode.Usage);
  }
  return getAddress(text);
}

/** `--from-block` as a block number. */
export function fromBlockArg(text: string): number {
  if (!/^\d+$/.test(text)) throw new CliError(`--from-block ${text} is not a block number`, ExitCode.Usage);
  return Number(text);
}

/** `--settler`, checked; or, without it, the market's one settler (refused when there are several or none). */
export async function settlerFor(flags: { settler?: string; fromBlock: string }, chain: ChainAccess): Promise<string> {
  if (flags.settler !== undefined) return settlerArg(flags.settler);
  const settlers = await currentSettlers(chain.provider, chain.market, chain.marketAddress, fromBlockArg(flags.fromBlock));
  if (settlers.length === 1) return settlers[0]!;
  if (settlers.length === 0) {
    throw new CliError(`GpuMarket ${chain.marketAddress} has no settler now; pass --settler <0x address> to name a proposed one`, ExitCode.NotFound);
  }
  throw new CliError(`GpuMarket ${chain.marketAddress} has ${settlers.length} settlers (${settlers.join(', ')}): pass --settler with your hub's (its waiting jobs name it)`, ExitCode.Usage);
}

/**
 * Refuses `settler` unless it is a settler of the market or proposed as one: the contract takes
 * consent for any address, and one to a typo would never be used, with no sign of why.
 */
export async function requireKnownSettler(chain: ChainAccess, settler: string, unused: string): Promise<void> {
  if (await chain.market.isSettler(settler)) return;
  if ((await chain.market.settlerEta(settler)) !== 0n) return;
  throw new CliError(`--settler ${settler} is not a settler of GpuMarket ${chain.marketAddress}, nor proposed as one: ${unused}`, ExitCode.Usage);
}
