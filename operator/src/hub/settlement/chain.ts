import { type ContractTransactionResponse, isError, type JsonRpcProvider, type TypedDataDomain, Wallet } from 'ethers';
import type { Logger } from 'pino';
import { attachGpuMarket, EscrowState, type GpuMarketContract } from '../../chain/contracts.js';
import { escrowLogs, type ParsedMarketLog, parseMarketLogs } from '../../chain/market-events.js';
import { SettlerNonceManager } from '../../chain/nonce-manager.js';
import { freshProvider } from '../../chain/provider.js';
import { marketDomain } from '../../chain/receipt.js';
import { ChainConfigError } from './chain-connect.js';
import type { EscrowStateName } from './plan.js';

// The hub's one connection to GpuMarket: reads at the latest block, and every transaction from the
// settler key through ONE SettlerNonceManager, confirmed `confirmations` blocks deep before its
// events are returned (and recorded). Nothing here decides anything.

export interface SettlementChainOptions {
  rpcUrl: string;
  marketAddress: string;
  /** The settler's private key (hex). */
  settlerKey: string;
  /** Blocks a transaction must be under before its effects are recorded (1 = mined). */
  confirmations: number;
  /** Known chain id; otherwise asked once from the endpoint. */
  chainId?: number;
  /** First block to scan for market events (the market's deployment block). */
  fromBlock?: number;
  pollingIntervalMs?: number;
  /** Longest wait for one transaction's confirmations before it counts as failed (it is re-read, never resent blindly). */
  txTimeoutMs?: number;
  logger: Logger;
}

export interface ConfirmedTx {
  txHash: string;
  block: number;
  gasUsed: bigint;
  logs: ParsedMarketLog[];
}

const STATE_NAMES: Record<string, EscrowStateName> = {
  [EscrowState.None.toString()]: 'None',
  [EscrowState.Open.toString()]: 'Open',
  [EscrowState.Settled.toString()]: 'Settled',
  [EscrowState.Refunded.toString()]: 'Refunded',
};

export class SettlementChain {
  readonly provider: JsonRpcProvider;
  readonly market: GpuMarketContract;
  readonly settler: SettlerNonceManager;
  readonly domain: TypedDataDomain;
  readonly fromBlock: number;

  private constructor(
    private readonly opts: SettlementChainOptions,
    readonly chainId: number,
  ) {
    this.provider = freshProvider(opts.rpcUrl, { chainId, pollingIntervalMs: opts.pollingIntervalMs ?? 250 });
    this.settler = new SettlerNonceManager(new Wallet(opts.settlerKey, this.provider));
    this.market = attachGpuMarket(opts.marketAddress, this.provider);
    this.domain = marketDomain(chainId, opts.marketAddress);
    this.fromBlock = opts.fromBlock ?? 0;
  }

  /**
   * Connects, checking that the endpoint answers, is the configured chain, the market exists and the
   * key may settle. An endpoint that does not answer throws a plain error (an outage: try again);
   * one that answers with something else throws ChainConfigError (never retried).
   */
  static async connect(opts: SettlementChainOptions): Promise<SettlementChain> {
    const answered = await askChainId(opts.rpcUrl);
    if (opts.chainId !== undefined && answered !== opts.chainId) {
      throw new ChainConfigError(`the chain at ${opts.rpcUrl} is chain ${answered}, the hub is configured for chain ${opts.chainId} (--chain-id)`);
    }
    const chainId = answered;
    const chain = new SettlementChain(opts, chainId);
    try {
      if ((await chain.provider.getCode(opts.marketAddress)) === '0x') {
        throw new ChainConfigError(`no contract at ${opts.marketAddress} on chain ${chainId} (${opts.rpcUrl})`);
      }
      if (!(await chain.market.isSettler(chain.settlerAddress))) {
        throw new ChainConfigError(`the settler key ${chain.settlerAddress} has no settler role on GpuMarket ${opts.marketAddress}`);
      }
      // A market from before settler-bound consents has no settler numbers: its ABI differs
      // (escrowTermsOf, the events), and its consents are any settler's. Refused, not misread.
      const number = await chain.market.settlerIdOf(chain.settlerAddress).catch((err: unknown) => {
        if (isError(err, 'CALL_EXCEPTION')) return 0n; // no such function there
        throw err; // an outage: tried again
      });
      if (number === 0n) {
        throw new ChainConfigError(`GpuMarket ${opts.marketAddress} predates settler-bound consents (no settlerIdOf for ${chain.settlerAddress}): deploy the current contract`);
      }
      // Nor one from before providers allowed settlers: any settler could lock and slash any stake.
      const consents = await chain.market.settlerAllowanceOf(chain.settlerAddress, chain.settlerAddress).then(
        () => true,
        (err: unknown) => {
          if (isError(err, 'CALL_EXCEPTION')) return false;
          throw err;
        },
      );
      if (!consents) {
        throw new ChainConfigError(`GpuMarket ${opts.marketAddress} predates providers' consent to settlers (no settlerAllowanceOf): deploy the current contract`);
      }
    } catch (err) {
      chain.close();
      throw err;
    }
    return chain;
  }

  get marketAddress(): string {
    return this.opts.marketAddress;
  }

  /** The settler key's address: the one consumers authorize (GpuMarket.authorize names it). */
  get settlerAddress(): string {
    return this.settler.wallet.address;
  }

  get confirmations(): number {
    return this.opts.confirmations;
  }

  /** An escrow, the provider wallet it pays and the settler key that opened it (GpuMarket.escrowOf and escrowTermsOf). */
  async escrow(escrowId: string): Promise<{ consumer: string; amount: bigint; state: EscrowStateName; provider: string; expiresAt: bigint; opener: string }> {
    const [[consumer, amount, state], [provider, expiresAt, , opener]] = await Promise.all([this.market.escrowOf(escrowId), this.market.escrowTermsOf(escrowId)]);
    return { consumer, amount, state: STATE_NAMES[state.toString()] ?? 'None', provider, expiresAt, opener };
  }

  /** Whether `opener` is this hub's settler key. */
  isOwnKey(opener: string): boolean {
    return opener.toLowerCase() === this.settlerAddress.toLowerCase();
  }

  /**
   * Whether GpuMarket lets this hub close an escrow `opener` opened: its own, or one whose
   * opener is no longer a settler (any settler may take those over; the hub does so only for the
   * escrows of its own jobs, whose ids it derives: after a rotation of its key, the old key's).
   */
  async mayClose(opener: string): Promise<boolean> {
    if (this.isOwnKey(opener)) return true;
    return !(await this.market.isSettler(opener));
  }

  /** Whether the escrow was slashed (at most once per escrow; each attempt has its own escrow). */
  isSlashed(escrowId: string, _epoch?: number): Promise<boolean> {
    return this.market.isSlashed(escrowId);
  }

  /**
   * What `consumer` still lets this hub's settler lock for `tenant`, and until when (0 expiry:
   * never authorized, revoked, or authorized for another settler only).
   */
  async authorization(consumer: string, tenant: string): Promise<{ remaining: bigint; expiresAt: bigint }> {
    const [remaining, expiresAt] = await this.market.authorizationOf(consumer, this.settlerAddress, tenant);
    return { remaining, expiresAt };
  }

  /**
   * Whether provider `wallet` lets this hub's settler open escrows on its stake, what the settler
   * may slash from it now, and the least it may slash while a lower bound waits to hold
   * (GpuMarket.settlerAllowanceOf): what the next escrow is checked against.
   */
  async settlerAllowance(wallet: string): Promise<{ allowed: boolean; slashable: bigint; floor: bigint; open: number; lowerAt: number }> {
    const [allowed, slashable, lowerTo, lowerAt, open] = await this.market.settlerAllowanceOf(wallet, this.settlerAddress);
    return { allowed, slashable, floor: lowerAt !== 0n && lowerTo < slashable ? lowerTo : slashable, open: Number(open), lowerAt: Number(lowerAt) };
  }

  /** The latest block's timestamp (seconds): escrow expiries are in chain time. */
  async now(): Promise<bigint> {
    const block = await this.provider.getBlock('latest');
    if (!block) throw new Error('the chain returned no latest block');
    return BigInt(block.timestamp);
  }

  /** The most one slash may take (GpuMarket.slashBond). */
  slashBond(): Promise<bigint> {
    return this.market.slashBond();
  }

  freeBalance(consumer: string): Promise<bigint> {
    return this.market.freeBalanceOf(consumer);
  }

  /** `free` is the active stake no open escrow has locked: what can back the next one. */
  async stakeOf(wallet: string): Promise<{ active: bigint; unbonding: bigint; locked: bigint; free: bigint }> {
    const [active, unbonding, , locked] = await this.market.stakeOf(wallet);
    return { active, unbonding, locked, free: active - locked };
  }

  /** The newest block with `confirmations` blocks on it (itself included). */
  async confirmedBlock(): Promise<number> {
    return (await this.provider.getBlockNumber()) - (this.opts.confirmations - 1);
  }

  /** The escrow's confirmed events: what to record after a restart or when someone else sent it. */
  async escrowHistory(escrowId: string, fromBlock = this.fromBlock): Promise<ParsedMarketLog[]> {
    const to = await this.confirmedBlock();
    return to < fromBlock ? [] : escrowLogs(this.provider, this.opts.marketAddress, escrowId, fromBlock, to);
  }

  /**
   * Sends one settler transaction and waits for its confirmations. The nonce manager orders every
   * send of this process; `build` gets the market connected to it.
   */
  async send(build: (market: GpuMarketContract) => Promise<ContractTransactionResponse>): Promise<ConfirmedTx> {
    const tx = await build(this.market.connect(this.settler));
    const receipt = await tx.wait(this.opts.confirmations, this.opts.txTimeoutMs ?? 120_000);
    if (!receipt) throw new Error(`transaction ${tx.hash} was not mined`);
    return { txHash: receipt.hash, block: receipt.blockNumber, gasUsed: receipt.gasUsed, logs: parseMarketLogs(receipt.logs, this.opts.marketAddress) };
  }

  /**
   * On start, before sending anything: wait (bounded) until transactions an earlier process sent
   * from the settler key are mined, so the chain state read next already includes them.
   */
  async waitForSettlerIdle(timeoutMs = 60_000): Promise<void> {
    const address = this.settler.wallet.address;
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 0; Date.now() < deadline && attempt < 600; attempt++) {
      const [pending, latest] = await Promise.all([this.provider.getTransactionCount(address, 'pending'), this.provider.getTransactionCount(address, 'latest')]);
      if (pending === latest) return;
      this.opts.logger.info({ pending: pending - latest }, 'waiting for earlier settler transactions to be mined');
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }

  close(): void {
    this.provider.destroy();
  }
}

/** The escrow key a revert names, when it names one (settleBatch errors carry the failing jobId first). */
export function revertedEscrow(err: unknown): string | undefined {
  if (!isError(err, 'CALL_EXCEPTION')) return undefined;
  const first = err.revert?.args?.[0];
  return typeof first === 'string' && /^0x[0-9a-fA-F]{64}$/.test(first) ? first : undefined;
}

/** A short, one-line description of a chain error for conditions and logs. */
export function chainErrorMessage(err: unknown): string {
  if (isError(err, 'CALL_EXCEPTION') && err.revert) return `reverted with ${err.revert.name}(${err.revert.args.map(String).join(', ')})`;
  const e = err as { shortMessage?: string; code?: string; message?: string };
  return (e.shortMessage ?? e.message ?? String(err)).split('\n')[0]!.slice(0, 300);
}

export function isRevert(err: unknown): boolean {
  return isError(err, 'CALL_EXCEPTION');
}

async function askChainId(rpcUrl: string): Promise<number> {
  const response = await fetch(rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
    signal: AbortSignal.timeout(5_000),
  }).catch((err: unknown) => {
    throw new Error(`cannot reach the chain at ${rpcUrl}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`);
  });
  // A gateway's 5xx page or an RPC error is the endpoint being unwell: an outage, not a wrong chain.
  const body = (await response.json().catch(() => ({}))) as { result?: string; error?: { message: string } };
  if (!body.result) throw new Error(`eth_chainId failed at ${rpcUrl}: ${body.error?.message ?? `HTTP ${response.status} ${response.statusText}`}`);
  return Number(BigInt(body.result));
}
