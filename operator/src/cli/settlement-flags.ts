import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { isAddress, Wallet } from 'ethers';
import { parseCredits } from '../chain/credits.js';
import { DEFAULT_HUB_ID, tenantIdOf } from '../chain/tenant.js';
import type { HubSettlementOptions } from '../hub/settlement/leader-task.js';
import { CliError, ExitCode } from './errors.js';

// The hub's settlement flags (docs/settlement.md). Without --chain-rpc the hub settles nothing: jobs
// run unpaid and namespaces need no consumer wallet.

export interface SettlementFlags {
  chainRpc?: string;
  marketAddress?: string;
  settlerKeyFile?: string;
  confirmations: string;
  minStake: string;
  slashAmount: string;
  defaultHold: string;
  receiptTimeout: string;
  driftInterval: string;
  chainStatusInterval: string;
  marketFromBlock: string;
  hubId?: string;
  chainId?: string;
}

export function addSettlementFlags(command: Command): Command {
  return command
    .option('--chain-rpc <url>', 'JSON-RPC endpoint of the settlement chain (or $FEDGPU_CHAIN_RPC_URL); without it the hub settles nothing and jobs run unpaid')
    .option('--market-address <address>', 'GpuMarket contract address (with --chain-rpc)')
    .option('--settler-key-file <file>', "file holding the settler's private key (hex; or the key in $FEDGPU_SETTLER_KEY); it needs GpuMarket's settler role")
    .option('--confirmations <n>', 'blocks a settlement transaction must be under before it is recorded', '1')
    .option('--min-stake <credits>', 'active stake a provider needs to be Staked (and scheduled)', '100')
    .option('--slash-amount <credits>', 'stake taken once per provider fault (lost or provider-failed attempt) and paid to the consumer; 0 disables', '10')
    .option('--default-hold <credits>', 'escrow for a job with neither spec.budget.maxTotal nor activeDeadlineSeconds', '100')
    .option('--receipt-timeout <duration>', "how long an ended attempt's escrow waits for its provider's usage receipt before it is refunded", '10m')
    .option('--drift-interval <duration>', 'how often escrows open on chain are compared with live GpuJobs', '30s')
    .option('--chain-status-interval <duration>', 'how often provider stake and reputation are refreshed from the chain', '10s')
    .option('--market-from-block <n>', "the market's deployment block: event scans start there", '0')
    .option('--chain-id <n>', 'the chain id of --chain-rpc: a chain answering with another id is refused, and the hub leads (serving agents) even while the chain is unreachable; without it the chain is asked, and a replica that starts during a chain outage waits for it before leading')
    .option('--hub-id <id>', `this hub's name in the tenants consumers authorize (fedgpu authorize --hub-id); default ${DEFAULT_HUB_ID}`);
}

/** The chart passes the secrets as env: FEDGPU_CHAIN_RPC_URL and FEDGPU_SETTLER_KEY stand in for the flags. */
export function settlementOptionsOf(o: SettlementFlags, env: NodeJS.ProcessEnv = process.env): HubSettlementOptions | undefined {
  const rpcUrl = o.chainRpc || env.FEDGPU_CHAIN_RPC_URL?.trim();
  // All three or none: a partial chain configuration (e.g. the chart's Secret without its RPC URL)
  // never silently turns settlement off.
  const parts = [
    { name: '--chain-rpc (or FEDGPU_CHAIN_RPC_URL)', given: Boolean(rpcUrl) },
    { name: '--market-address', given: Boolean(o.marketAddress) },
    { name: '--settler-key-file (or FEDGPU_SETTLER_KEY)', given: Boolean(o.settlerKeyFile || env.FEDGPU_SETTLER_KEY?.trim()) },
  ];
  const given = parts.filter((p) => p.given).map((p) => p.name);
  if (given.length === 0) return undefined;
  const missing = parts.filter((p) => !p.given).map((p) => p.name);
  if (missing.length > 0) {
    throw new CliError(
      `partial chain configuration: ${given.join(', ')} given but ${missing.join(' and ')} missing; settle with all three, or run without a chain by giving none`,
      ExitCode.Usage,
    );
  }
  if (!rpcUrl) return undefined;
  if (!o.marketAddress || !isAddress(o.marketAddress)) throw new CliError(`--market-address ${o.marketAddress} is not an address (0x and 40 hex digits)`, ExitCode.Usage);
  const where = o.settlerKeyFile ?? 'FEDGPU_SETTLER_KEY';
  let settlerKey = env.FEDGPU_SETTLER_KEY?.trim();
  if (o.settlerKeyFile) {
    try {
      settlerKey = readFileSync(o.settlerKeyFile, 'utf8').trim();
    } catch (err) {
      throw new CliError(`cannot read the settler key ${o.settlerKeyFile}: ${(err as Error).message}`, ExitCode.Usage);
    }
  }
  if (!settlerKey) throw new CliError('--chain-rpc needs --settler-key-file <file> (or FEDGPU_SETTLER_KEY)', ExitCode.Usage);
  try {
    new Wallet(settlerKey);
  } catch {
    throw new CliError(`the settler key in ${where} is not a valid private key (expect 0x and 64 hex digits)`, ExitCode.Usage);
  }
  return {
    rpcUrl,
    marketAddress: o.marketAddress,
    settlerKey,
    confirmations: count(o.confirmations, '--confirmations', 1),
    fromBlock: count(o.marketFromBlock, '--market-from-block', 0),
    minStake: credits(o.minStake, '--min-stake'),
    slashAmount: credits(o.slashAmount, '--slash-amount'),
    defaultHold: credits(o.defaultHold, '--default-hold'),
    receiptTimeoutMs: duration(o.receiptTimeout, '--receipt-timeout'),
    driftIntervalMs: duration(o.driftInterval, '--drift-interval'),
    providerStatusIntervalMs: duration(o.chainStatusInterval, '--chain-status-interval'),
    hubId: hubIdOf(o.hubId ?? DEFAULT_HUB_ID),
    ...(o.chainId !== undefined ? { chainId: count(o.chainId, '--chain-id', 1) } : {}),
  };
}

function hubIdOf(text: string): string {
  try {
    tenantIdOf(text, 'probe', 'probe');
  } catch (err) {
    throw new CliError(`--hub-id: ${(err as Error).message}`, ExitCode.Usage);
  }
  return text;
}

function credits(text: string, flag: string): bigint {
  try {
    return parseCredits(text);
  } catch {
    throw new CliError(`${flag} ${text} is not an amount of credits, e.g. 10 or 2.5`, ExitCode.Usage);
  }
}

function count(text: string, flag: string, min: number): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) throw new CliError(`${flag} must be a whole number ≥ ${min}`, ExitCode.Usage);
  return n;
}

function duration(text: string, flag: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(text);
  if (!m) throw new CliError(`${flag} ${text} is not a duration: use e.g. 500ms, 15s, 10m or 1h`, ExitCode.Usage);
  return Number(m[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
}
