import type { Logger } from 'pino';
import type { GpuProvider, ProviderReputation, ProviderStake } from '../../api/types.js';
import { formatCredits } from '../../chain/credits.js';
import { OutcomeLogCache, type OutcomeLog, publishedReputation, reputationAt } from '../../chain/market-events.js';
import { observeChainHead } from '../../metrics/settlement-metrics.js';
import type { ConditionUpdate } from '../../runtime/conditions.js';
import { chainErrorMessage, type SettlementChain } from '../settlement/chain.js';

// GpuProvider status from the chain, refreshed periodically: the Staked condition (active stake ≥
// the hub's minimum; the provider allows this hub's settler key, with a bond of slash left to it for
// each of its open escrows and one more; and free stake (not locked by open escrows) ≥ the market's slash bond, so it can back
// one more escrow; the scheduler skips providers without it), status.stake, and
// status.reputation recomputed from Settled and Slashed events alone, exactly as
// `fedgpu reputation --from-chain` does: same events, same block, same number.

export interface ChainProviderStatus {
  staked: ConditionUpdate;
  stake: ProviderStake;
  reputation: ProviderReputation;
}

/** Where the registry writes it (through its serialized per-provider write path). */
export interface ChainStatusSink {
  setChainStatus(providerName: string, status: ChainProviderStatus): Promise<void>;
}

/** The status fields for one provider (pure). */
export function chainProviderStatus(
  wallet: string,
  stake: { active: bigint; unbonding: bigint; locked?: bigint },
  minStake: bigint,
  logs: readonly OutcomeLog[],
  block: { number: number; timestamp: number },
  slashBond = 0n,
  consent?: SettlerConsent,
): ChainProviderStatus {
  const key = wallet.toLowerCase();
  const slashed = logs.filter((l) => l.provider === key && l.outcome === 'failure' && l.block <= block.number).reduce((n, l) => n + l.amount, 0n);
  const locked = stake.locked ?? 0n;
  const free = stake.active - locked;
  const enough = stake.active >= minStake;
  const canBack = free >= slashBond;
  const rep = reputationAt(wallet, logs, block, slashBond);
  const unbonding = stake.unbonding > 0n ? ` (${formatCredits(stake.unbonding)} unbonding)` : '';
  const refused = enough ? consentProblem(consent, slashBond, block.timestamp) : undefined;
  return {
    staked: {
      type: 'Staked',
      status: enough && !refused && canBack ? 'True' : 'False',
      reason: !enough ? 'InsufficientStake' : refused ? refused.reason : canBack ? 'StakeSufficient' : 'StakeLocked',
      message: refused
        ? refused.message
        : !enough || canBack
          ? `active stake ${formatCredits(stake.active)} ${enough ? '≥' : '<'} the hub minimum ${formatCredits(minStake)} credits${unbonding}`
          : `free stake ${formatCredits(free)} (${formatCredits(locked)} of ${formatCredits(stake.active)} locked by open escrows) cannot back another escrow's bond of ${formatCredits(slashBond)} credits`,
    },
    stake: { amount: formatCredits(stake.active), unbonding: formatCredits(stake.unbonding), slashed: formatCredits(slashed), locked: formatCredits(locked), free: formatCredits(free) },
    reputation: publishedReputation(rep),
  };
}

/**
 * What the provider allows this hub's settler key on chain (GpuMarket.settlerAllowanceOf). An
 * escrow opens only while what the key may slash (`floor`: the lower bound if one waits to hold)
 * covers a bond for each of the key's escrows open toward the provider (`open`) and the new one's,
 * and not while a lower bound is due (it waits for those to close). A provider short of that is
 * not scheduled (its escrow would be refused), nor one that does not allow the key at all.
 */
export interface SettlerConsent {
  settler: string;
  allowed: boolean;
  /** The least the key may slash from now through a lower bound waiting to hold. */
  floor: bigint;
  /** The key's escrows open toward the provider, each holding a bond. */
  open: number;
  /** When a waiting lower bound holds (chain seconds); 0: none waits. */
  lowerAt: number;
}

function consentProblem(consent: SettlerConsent | undefined, slashBond: bigint, nowSeconds: number): { reason: string; message: string } | undefined {
  if (!consent) return undefined;
  const command = `fedgpu allow-settler --settler ${consent.settler} --slashable <credits>`;
  if (!consent.allowed) {
    return { reason: 'SettlerNotAllowed', message: `the provider wallet does not allow this hub's settler ${consent.settler} to lock its stake; its owner runs \`${command}\`` };
  }
  if (slashBond === 0n) return undefined;
  if (consent.lowerAt !== 0 && consent.lowerAt <= nowSeconds) {
    return {
      reason: 'SlashBoundLowering',
      message: `the provider wallet's lower slash bound for this hub's settler ${consent.settler} is due and waits for its ${consent.open} open escrow(s) to close; none opens meanwhile`,
    };
  }
  const needed = slashBond * BigInt(consent.open + 1);
  if (consent.floor < needed) {
    return {
      reason: 'SlashAllowanceSpent',
      message: `the provider wallet lets this hub's settler ${consent.settler} slash ${formatCredits(consent.floor)} more credits, less than the ${formatCredits(needed)} another escrow needs (a bond of ${formatCredits(slashBond)} for each of its ${consent.open} open escrow(s) and the new one); its owner raises it with \`${command}\``,
    };
  }
  return undefined;
}

export interface ProviderChainStatusOptions {
  chain: SettlementChain;
  providers: () => readonly GpuProvider[];
  sink: ChainStatusSink;
  /** Token units of active stake a provider needs to be scheduled. */
  minStake: bigint;
  logger: Logger;
}

export class ProviderChainStatus {
  private readonly outcomes: OutcomeLogCache;
  /** GpuMarket.slashBond (immutable): what each escrow locks, read once. */
  private slashBond?: bigint;

  constructor(private readonly opts: ProviderChainStatusOptions) {
    this.outcomes = new OutcomeLogCache(opts.chain.provider, opts.chain.marketAddress, opts.chain.fromBlock);
  }

  async refresh(): Promise<void> {
    const { chain } = this.opts;
    const head = await chain.confirmedBlock();
    const block = await chain.provider.getBlock(head);
    if (!block) throw new Error(`block ${head} is not available`);
    observeChainHead(head);
    const logs = await this.outcomes.advanceTo(head);
    this.slashBond ??= await chain.slashBond();
    for (const provider of this.opts.providers()) {
      const name = provider.metadata.name;
      if (!name) continue;
      try {
        const [stake, allowance] = await Promise.all([chain.stakeOf(provider.spec.wallet), chain.settlerAllowance(provider.spec.wallet)]);
        const consent = { settler: chain.settlerAddress, allowed: allowance.allowed, floor: allowance.floor, open: allowance.open, lowerAt: allowance.lowerAt };
        const status = chainProviderStatus(provider.spec.wallet, stake, this.opts.minStake, logs, { number: block.number, timestamp: block.timestamp }, this.slashBond, consent);
        if (!changed(provider, status)) continue;
        await this.opts.sink.setChainStatus(name, status);
      } catch (err) {
        this.opts.logger.warn({ provider: name, err: chainErrorMessage(err) }, 'could not refresh stake and reputation from the chain');
      }
    }
  }
}

/** Rewrite only when something a reader would notice changed (decay alone moves the score a hair). */
function changed(provider: GpuProvider, next: ChainProviderStatus): boolean {
  const s = provider.status;
  const staked = s?.conditions?.find((c) => c.type === 'Staked');
  const r = s?.reputation;
  const near = (a: number | undefined, b: number) => a !== undefined && Math.abs(a - b) < 5e-4;
  return !(
    staked?.status === next.staked.status &&
    staked.message === next.staked.message &&
    JSON.stringify(s?.stake) === JSON.stringify(next.stake) &&
    near(r?.score, next.reputation.score!) &&
    near(r?.successes, next.reputation.successes!) &&
    near(r?.failures, next.reputation.failures!)
  );
}
