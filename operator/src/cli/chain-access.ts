import { readFileSync } from 'node:fs';
import { isAddress, type JsonRpcProvider, Wallet } from 'ethers';
import { attachComputeCredit, attachGpuMarket, type ComputeCreditContract, type GpuMarketContract } from '../chain/contracts.js';
import { parseCredits } from '../chain/credits.js';
import { freshProvider } from '../chain/provider.js';
import { readStatus } from '../sandbox/state.js';
import { CliError, ExitCode } from './errors.js';

// What every chain command needs: the endpoint (checked reachable first, for a one-line error
// instead of ethers retrying), the market and its token, and for sending, the wallet key from
// --key-file or FEDGPU_WALLET_KEY.

export interface ChainFlags {
  chainRpc?: string;
  marketAddress?: string;
  keyFile?: string;
}

export interface ChainAccess {
  rpcUrl: string;
  chainId: number;
  provider: JsonRpcProvider;
  market: GpuMarketContract;
  token: ComputeCreditContract;
  marketAddress: string;
  close(): void;
}

export const CHAIN_FLAG_HELP = {
  rpc: 'JSON-RPC endpoint of the chain (or $FEDGPU_CHAIN_RPC)',
  market: 'GpuMarket contract address (or $FEDGPU_MARKET_ADDRESS)',
  key: 'file holding the wallet private key (or the key itself in $FEDGPU_WALLET_KEY)',
};

export async function connectChain(flags: ChainFlags): Promise<ChainAccess> {
  // Last resort: the local sandbox's chain, when one is running here.
  const sandbox = readStatus()?.state === 'running' ? readStatus()?.chain : undefined;
  const rpcUrl = flags.chainRpc ?? process.env.FEDGPU_CHAIN_RPC ?? sandbox?.rpcUrl;
  const marketAddress = flags.marketAddress ?? process.env.FEDGPU_MARKET_ADDRESS ?? sandbox?.contracts.GpuMarket;
  if (!rpcUrl) throw new CliError('no chain endpoint: pass --chain-rpc <url> or set FEDGPU_CHAIN_RPC', ExitCode.Usage);
  if (!marketAddress) throw new CliError('no market: pass --market-address <0x address> or set FEDGPU_MARKET_ADDRESS', ExitCode.Usage);
  if (!isAddress(marketAddress)) throw new CliError(`--market-address ${marketAddress} is not an 0x address`, ExitCode.Usage);
  const chainId = await askChainId(rpcUrl);
  const provider = freshProvider(rpcUrl, { chainId, pollingIntervalMs: 250 });
  try {
    if ((await provider.getCode(marketAddress)) === '0x') {
      throw new CliError(`no GpuMarket at ${marketAddress} on chain ${chainId} (${rpcUrl})`, ExitCode.NotFound);
    }
    const market = attachGpuMarket(marketAddress, provider);
    const token = attachComputeCredit(await market.token(), provider);
    return { rpcUrl, chainId, provider, market, token, marketAddress, close: () => provider.destroy() };
  } catch (err) {
    provider.destroy();
    throw err;
  }
}

/** The wallet from --key-file, else $FEDGPU_WALLET_KEY; undefined when neither is given and `required` is false. */
export function loadWallet(flags: ChainFlags, required: true): Wallet;
export function loadWallet(flags: ChainFlags, required: false): Wallet | undefined;
export function loadWallet(flags: ChainFlags, required: boolean): Wallet | undefined {
  let key: string | undefined;
  let where: string;
  if (flags.keyFile) {
    where = flags.keyFile;
    try {
      key = readFileSync(flags.keyFile, 'utf8').trim();
    } catch (err) {
      throw new CliError(`cannot read the key file ${flags.keyFile}: ${(err as Error).message}`, ExitCode.Usage);
    }
  } else {
    where = 'FEDGPU_WALLET_KEY';
    key = process.env.FEDGPU_WALLET_KEY?.trim();
  }
  if (!key) {
    if (!required) return undefined;
    throw new CliError('no wallet key: pass --key-file <file> or set FEDGPU_WALLET_KEY', ExitCode.Usage);
  }
  try {
    return new Wallet(key);
  } catch {
    throw new CliError(`the key in ${where} is not a valid private key (expect 0x and 64 hex digits)`, ExitCode.Usage);
  }
}

export function creditsArg(text: string, opts: { allowZero?: boolean } = {}): bigint {
  let amount: bigint;
  try {
    amount = parseCredits(text);
  } catch {
    throw new CliError(`${text} is not an amount of credits, e.g. 10 or 2.5`, ExitCode.Usage);
  }
  if (amount === 0n && !opts.allowZero) throw new CliError('the amount must be more than 0', ExitCode.Usage);
  return amount;
}

async function askChainId(rpcUrl: string): Promise<number> {
  let response: Response;
  try {
    response = await fetch(rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
      signal: AbortSignal.timeout(5_000),
    });
  } catch (err) {
    const cause = (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message;
    throw new CliError(`cannot reach the chain at ${rpcUrl}: ${cause}`, ExitCode.Unreachable);
  }
  const body = (await response.json().catch(() => ({}))) as { result?: string; error?: { message: string } };
  if (!body.result) throw new CliError(`${rpcUrl} is not an Ethereum JSON-RPC endpoint: ${body.error?.message ?? `HTTP ${response.status}`}`, ExitCode.Unreachable);
  return Number(BigInt(body.result));
}
