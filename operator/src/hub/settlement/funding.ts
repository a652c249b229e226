import type { Logger } from 'pino';
import { CONSUMER_WALLET_LABEL } from '../../api/constants.js';
import type { GpuJob } from '../../api/types.js';
import { attemptEscrowId } from '../../chain/attempt-escrow.js';
import { formatCredits, parseCredits } from '../../chain/credits.js';
import { coveredGpuSeconds } from '../../core/budget.js';
import { attemptRunBoundSeconds, escrowOpenSeconds } from '../../core/escrow-lifetime.js';
import { tenantIdOf } from '../../chain/tenant.js';
import type { ConsumerLookup } from './accounts.js';
import { attemptLimits, DEFAULT_UNPLACED_ESCROW_TIMEOUT_MS, placedAttempts } from '../jobs/plan.js';
import { isDeleted, isFinished, nextEpoch } from './billing.js';
import { attemptHold } from './budget.js';
import { chainErrorMessage, type ConfirmedTx, type SettlementChain } from './chain.js';

// The funding check the GpuJob controller runs before it places a job: the escrow of the attempt
// about to be placed must be open on chain, for the provider it is placed on, before its Assign is
// sent. A job whose escrow is not open yet waits with a message (never blocking the controller on
// the chain): the escrow is opened in the background and the job is woken once it is confirmed.
// An escrow pays one provider only (GpuMarket), so once it is open the attempt is pinned to it.
// Spending needs the consumer's consent: the wallet must have authorized this hub's settler key for
// the namespace's tenant (GpuMarket.authorize); otherwise the job waits with `waiting for authorization: …`.

type Consumer = Extract<ConsumerLookup, { wallet: string }>;

/** An escrow known open: the wallet it pays, its expiry by this process's clock, the job generation it was opened at. */
interface OpenEscrow {
  wallet: string;
  expiresAtMs: number;
  /** What the escrow holds (token units): the attempt may never be given more to spend. */
  amount: bigint;
  generation?: number;
  /** The trial placement's price it was opened at (credits per GPU-hour). */
  price?: string;
}

/** Where the scheduler would place the job now (a provider name and its wallet), and at what price. */
export interface FundingCandidate {
  provider: string;
  wallet: string;
  /** The trial placement's price per GPU-hour (credits): the escrow's expiry covers the run its hold buys at it. */
  pricePerGpuHour: string;
}

/**
 * wait: why the job must wait; wallet: the provider wallet its open escrow pays (place it there);
 * escrowSecondsLeft: how long that escrow stays open from now, less the settle window (the hub
 * gives the attempt no more GPU-seconds than fit in it: core/escrow-lifetime.ts).
 */
export interface FundingVerdict {
  wait?: string;
  wallet?: string;
  escrowSecondsLeft?: number;
  /**
   * What the open escrow holds (token units). The placement's budget is never more: the hold a
   * job's spec gives now may have grown since the escrow was opened (spec.budget is mutable).
   */
  escrowAmount?: bigint;
  /** The job's metadata.generation when this process opened the escrow (unknown after a restart). */
  openedAtGeneration?: number;
  /**
   * The price of the trial placement the escrow was opened for (unknown after a restart): the pinned
   * placement pays no more, so a provider cannot raise its price once the escrow is open.
   */
  openedAtPrice?: string;
}

export interface EscrowFundingOptions {
  chain: SettlementChain;
  /** Hold for jobs with neither spec.budget.maxTotal nor activeDeadlineSeconds (token units). */
  defaultHold: bigint;
  consumerOf: (job: GpuJob) => ConsumerLookup;
  /**
   * A live read just before an escrow opens: why the namespace is no longer the one with `uid`
   * (re-created, being deleted, gone), or undefined. Absent: the cached lookup is trusted.
   */
  confirmNamespace?: (namespace: string, uid: string) => Promise<string | undefined>;
  /** This hub's id in tenant keys: tenantId = keccak256("<hubId>/<namespace>/<namespace uid>"). */
  hubId: string;
  /**
   * The settle window: how long an escrow stays open past the longest its attempt can run (the
   * job's deadline, or the run its hold buys at the placed price), before it may be released to its consumer (reclaimExpired) (seconds).
   */
  escrowLifetimeSeconds: number;
  /** How long a job may wait unplaced on its open escrow (the controller's unplacedEscrowTimeout); default 120 s. */
  placeWithinSeconds?: number;
  /** The wallet of a GpuProvider (for escrows re-opened by the drift check). */
  walletOf: (provider: string) => string | undefined;
  /** The escrow of `job` is open: place it now. */
  wake: (job: GpuJob) => void;
  logger: Logger;
}

export class EscrowFunding {
  /**
   * Escrows known to be open (by key), with the provider wallet they pay and when they expire by
   * this process's clock (chain time read once, then counted on locally): no chain read once it passed.
   */
  private readonly open = new Map<string, OpenEscrow>();
  private readonly opening = new Map<string, { amount: bigint; consumer: string; tenant: string }>();

  constructor(private readonly opts: EscrowFundingOptions) {}

  /** What stands between the job and its placement on `candidate` (undefined: nothing fits now). */
  async check(job: GpuJob, candidate?: FundingCandidate): Promise<FundingVerdict> {
    if (isFinished(job) || isDeleted(job) || !job.metadata.uid || endsWithoutPlacement(job)) return {};
    const epoch = nextEpoch(job);
    const escrowId = attemptEscrowId(job.metadata.uid, epoch);
    const known = this.open.get(escrowId);
    if (known) return this.openVerdict(known);
    const consumer = this.opts.consumerOf(job);
    if ('problem' in consumer) return { wait: consumer.problem };
    const inFlight = this.opening.get(escrowId);
    if (inFlight) return { wait: `waiting for escrow: locking ${formatCredits(inFlight.amount)} credits of consumer ${inFlight.consumer} for attempt ${epoch}` };
    try {
      const escrow = await this.opts.chain.escrow(escrowId);
      if (escrow.state === 'Open') {
        // Open already: this hub opened it before a restart, or someone else did. Another settler
        // of the market (or a thief with its key, live or revoked) could open this id first, for a
        // consumer and a provider of its choosing; such an escrow is not this job's, and is never
        // adopted. (The job then waits; deleting it ends the wait.)
        if (!this.opts.chain.isOwnKey(escrow.opener)) {
          return { wait: `the escrow of attempt ${epoch} on chain was opened by settler ${escrow.opener}, not this hub's ${this.opts.chain.settlerAddress}; it cannot pay for this job` };
        }
        if (escrow.consumer.toLowerCase() !== consumer.wallet.toLowerCase()) {
          return { wait: `the escrow of attempt ${epoch} on chain is consumer ${escrow.consumer}'s, not ${consumer.wallet}'s; it cannot pay for this job` };
        }
        const localMs = Date.now();
        const entry = { wallet: escrow.provider, expiresAtMs: this.localExpiry(escrow.expiresAt, await this.opts.chain.now(), localMs), amount: escrow.amount };
        this.open.set(escrowId, entry);
        return this.openVerdict(entry);
      }
      if (escrow.state !== 'None') return { wait: `the escrow of attempt ${epoch} is already ${escrow.state} on chain; it cannot be placed again` };
      if (!candidate) return {};
      return { wait: await this.startOpening(job, epoch, escrowId, consumer, candidate) };
    } catch (err) {
      return { wait: `waiting for the chain: ${chainErrorMessage(err)}` };
    }
  }

  /** Re-opens the escrow of a running attempt found without one (drift). */
  async reopen(job: GpuJob, epoch: number): Promise<ConfirmedTx | string> {
    const consumer = this.opts.consumerOf(job);
    if ('problem' in consumer) return consumer.problem;
    const attempt = job.status?.attempts?.find((a) => a.epoch === epoch);
    const provider = attempt?.provider;
    const wallet = provider ? this.opts.walletOf(provider) : undefined;
    if (!wallet) return `attempt ${epoch} has no provider with a known wallet`;
    const escrowId = attemptEscrowId(job.metadata.uid!, epoch);
    const hold = attemptHold(job, epoch, this.opts.defaultHold);
    const free = await this.freeOf(consumer.wallet);
    if (hold.amount === 0n || free < hold.amount) return fundsMessage(consumer.wallet, free, hold.amount, hold.source);
    const consent = await this.consentProblem(job, consumer, hold.amount, epoch);
    if (consent) return consent;
    const stale = await this.opts.confirmNamespace?.(job.metadata.namespace ?? '', consumer.namespaceUid);
    if (stale) return stale;
    // The attempt already runs at its price with the GPU-seconds it was given; a hold lowered
    // since (a smaller maxTotal) must not shorten the escrow below them.
    const covered = Math.max(attempt?.coveredGpuSeconds ?? 0, coveredGpuSeconds(hold.amount, parseCredits(attempt?.pricePerGpuHour ?? '0')));
    const { expiresAt } = await this.expiryFor(job, covered);
    return this.openEscrow(escrowId, consumer.wallet, wallet, this.tenantOf(job, consumer.namespaceUid), hold.amount, expiresAt);
  }

  /** Forget the keys of a job that is settled (bounded memory). */
  forget(jobUid: string, epochs: readonly number[]): void {
    for (const e of epochs) this.open.delete(attemptEscrowId(jobUid, e));
  }

  private async startOpening(job: GpuJob, epoch: number, escrowId: string, account: Consumer, candidate: FundingCandidate): Promise<string> {
    const lagging = await this.unrecordedEarlier(job, epoch);
    if (lagging !== undefined) {
      return `waiting for escrow: the escrow of attempt ${lagging} is on chain but not yet in this job's status; attempt ${epoch}'s hold counts it once it is`;
    }
    const consumer = account.wallet;
    const hold = attemptHold(job, epoch, this.opts.defaultHold);
    if (hold.amount === 0n) {
      return `waiting: the job's budget of ${formatCredits(hold.budget)} credits is spent (${formatCredits(hold.committed)} committed by earlier attempts)`;
    }
    const consent = await this.consentProblem(job, account, hold.amount, epoch);
    if (consent) return consent;
    const free = await this.freeOf(consumer);
    if (free < hold.amount) return fundsMessage(consumer, free, hold.amount, hold.source);
    const stale = await this.opts.confirmNamespace?.(job.metadata.namespace ?? '', account.namespaceUid);
    if (stale) return stale;
    const log = this.opts.logger.child({ job: `${job.metadata.namespace}/${job.metadata.name}`, epoch, provider: candidate.provider });
    const { expiresAt, chainNow, localMs } = await this.expiryFor(job, coveredGpuSeconds(hold.amount, parseCredits(candidate.pricePerGpuHour)));
    this.openEscrow(escrowId, consumer, candidate.wallet, this.tenantOf(job, account.namespaceUid), hold.amount, expiresAt)
      .then((tx) => {
        const generation = job.metadata.generation;
        this.open.set(escrowId, { wallet: candidate.wallet, expiresAtMs: this.localExpiry(expiresAt, chainNow, localMs), amount: hold.amount, price: candidate.pricePerGpuHour, ...(generation !== undefined ? { generation } : {}) });
        log.info({ tx: tx.txHash, amount: formatCredits(hold.amount) }, 'escrow opened');
        this.opts.wake(job);
      })
      .catch((err: unknown) => {
        log.warn({ err: chainErrorMessage(err) }, 'opening the escrow failed; the next funding check retries');
        this.opts.wake(job);
      });
    return `waiting for escrow: locking ${formatCredits(hold.amount)} credits of consumer ${consumer} for attempt ${epoch} on ${candidate.provider}`;
  }

  /**
   * An earlier attempt's escrow this hub opened that the job's status does not record yet (the
   * record comes after --confirmations blocks): the next hold, the budget less what earlier attempts
   * committed, would not count it, and a quickly retried job could escrow its whole budget twice.
   * undefined when every earlier escrow of this hub's is recorded (or none was opened).
   */
  private async unrecordedEarlier(job: GpuJob, epoch: number): Promise<number | undefined> {
    const recorded = new Set((job.status?.settlement?.attempts ?? []).map((r) => r.epoch));
    for (let e = 1; e < epoch; e++) {
      if (recorded.has(e)) continue;
      const id = attemptEscrowId(job.metadata.uid!, e);
      if (this.open.has(id) || this.opening.has(id)) return e;
      const escrow = await this.opts.chain.escrow(id);
      if (escrow.state !== 'None' && this.opts.chain.isOwnKey(escrow.opener)) return e;
    }
    return undefined;
  }

  /** Why the consumer's on-chain authorization of this namespace does not cover `amount`, if it does not. */
  private async consentProblem(job: GpuJob, account: Consumer, amount: bigint, epoch: number): Promise<string | undefined> {
    const namespace = job.metadata.namespace ?? '';
    const consumer = account.wallet;
    const tenant = this.tenantOf(job, account.namespaceUid);
    const authorization = await this.opts.chain.authorization(consumer, tenant);
    const { expiresAt } = authorization;
    // Escrows this hub is opening right now draw on the same cap before the chain shows it.
    let locking = 0n;
    for (const o of this.opening.values()) if (o.consumer === consumer && o.tenant === tenant) locking += o.amount;
    const remaining = authorization.remaining > locking ? authorization.remaining - locking : 0n;
    const settler = this.opts.chain.settlerAddress;
    const how = `the wallet runs: fedgpu authorize --namespace ${namespace} --namespace-uid ${account.namespaceUid} --hub-id ${this.opts.hubId} --settler ${settler} --cap <credits> --expires <date>`;
    if (expiresAt === 0n) {
      // Also what a namespace re-created under an old name sees: the consent named the old one;
      // and a consent given to another settler of the market: it is nothing to this hub's key.
      return `waiting for authorization: wallet ${consumer} (label ${CONSUMER_LABEL} on namespace ${namespace}) has not authorized namespace ${namespace} (uid ${account.namespaceUid}) on hub ${this.opts.hubId} for settler ${settler} (${how})`;
    }
    const now = BigInt(Math.floor(Date.now() / 1000));
    if (expiresAt < now) {
      return `waiting for authorization: wallet ${consumer}'s authorization of namespace ${namespace} on hub ${this.opts.hubId} expired at ${new Date(Number(expiresAt) * 1000).toISOString()} (${how})`;
    }
    if (remaining < amount) {
      return `waiting for authorization: wallet ${consumer} authorized namespace ${namespace} on hub ${this.opts.hubId} for ${formatCredits(remaining)} more credits, attempt ${epoch} needs ${formatCredits(amount)} (${how})`;
    }
    return undefined;
  }

  private tenantOf(job: GpuJob, namespaceUid: string): string {
    return tenantIdOf(this.opts.hubId, job.metadata.namespace ?? '', namespaceUid);
  }

  /**
   * The escrow's expiry, in chain time: the longest its attempt can run (the job's deadline, or
   * the run `covered` GPU-seconds make on its GPUs, with its start and stop) plus the settle window,
   * within the market's bound. A fixed lifetime let a consumer reclaim the escrow of an attempt
   * still running on a budget that outlasted it. `localMs`: this process's clock when the chain
   * time was read (a slow confirmation then counts as time gone, not time left).
   */
  private async expiryFor(job: GpuJob, covered: number): Promise<{ expiresAt: bigint; chainNow: bigint; localMs: number }> {
    const localMs = Date.now();
    const chainNow = await this.opts.chain.now();
    const run = attemptRunBoundSeconds({
      coveredGpuSeconds: covered,
      ...attemptLimits(job),
      placeWithinSeconds: this.opts.placeWithinSeconds ?? DEFAULT_UNPLACED_ESCROW_TIMEOUT_MS / 1000,
      ...(job.spec.activeDeadlineSeconds !== undefined ? { deadlineSeconds: job.spec.activeDeadlineSeconds } : {}),
    });
    return { expiresAt: chainNow + BigInt(escrowOpenSeconds(run, this.opts.escrowLifetimeSeconds, MAX_ESCROW_SECONDS)), chainNow, localMs };
  }

  /**
   * An expiry in chain seconds as this process's clock will see it, given the chain's time at
   * `localMs`. Chain time that runs ahead later (sparse blocks catching up, a warped test chain) is
   * not seen: it comes out of the settle window, which is days.
   */
  private localExpiry(expiresAt: bigint, chainNow: bigint, localMs: number): number {
    return localMs + Number(expiresAt - chainNow) * 1000;
  }

  private openVerdict(entry: OpenEscrow): FundingVerdict {
    const left = Math.floor((entry.expiresAtMs - Date.now()) / 1000);
    return {
      wallet: entry.wallet,
      escrowSecondsLeft: Math.max(0, left - this.opts.escrowLifetimeSeconds),
      escrowAmount: entry.amount,
      ...(entry.generation !== undefined ? { openedAtGeneration: entry.generation } : {}),
      ...(entry.price !== undefined ? { openedAtPrice: entry.price } : {}),
    };
  }

  /** Whether this hub has an openEscrow of `escrowId` in flight (sent, not yet confirmed or failed). */
  isOpening(escrowId: string): boolean {
    return this.opening.has(escrowId);
  }

  private async openEscrow(escrowId: string, consumer: string, provider: string, tenant: string, amount: bigint, expiresAt: bigint): Promise<ConfirmedTx> {
    this.opening.set(escrowId, { amount, consumer, tenant });
    try {
      return await this.opts.chain.send((m) => m.openEscrow(escrowId, consumer, provider, tenant, amount, expiresAt));
    } finally {
      this.opening.delete(escrowId);
    }
  }

  /** The consumer's free deposit less what this hub is locking right now (not yet on chain). */
  private async freeOf(consumer: string): Promise<bigint> {
    let locking = 0n;
    for (const o of this.opening.values()) if (o.consumer === consumer) locking += o.amount;
    const free = await this.opts.chain.freeBalance(consumer);
    return free > locking ? free - locking : 0n;
  }
}

/** GpuMarket.MAX_ESCROW_DURATION (90 days) less a day of margin for clock and block-time skew. */
const MAX_ESCROW_SECONDS = 89 * 24 * 3600;
const CONSUMER_LABEL = CONSUMER_WALLET_LABEL;

export function fundsMessage(consumer: string, free: bigint, needed: bigint, source: string): string {
  return `waiting for funds: consumer ${consumer} has ${formatCredits(free)} credits free, the job needs ${formatCredits(needed)} (${source})`;
}

/** The planner will end this job instead of placing it (attempts used up, deadline passed): no escrow. */
function endsWithoutPlacement(job: GpuJob): boolean {
  const attempts = placedAttempts(job.status?.attempts ?? []).length;
  if (attempts >= (job.spec.faultTolerance?.maxAttempts ?? 3)) return true;
  const deadline = job.spec.activeDeadlineSeconds;
  const created = Date.parse(String(job.metadata.creationTimestamp ?? ''));
  return deadline !== undefined && Number.isFinite(created) && Date.now() - created > deadline * 1000;
}
