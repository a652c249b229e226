import type { Logger } from 'pino';
import type { GpuJob } from '../../api/types.js';
import { attemptEscrowId } from '../../chain/attempt-escrow.js';
import { formatCredits } from '../../chain/credits.js';
import type { ConsumerLookup } from './accounts.js';
import { isDeleted, isFinished, nextEpoch } from './billing.js';
import { attemptHold } from './budget.js';
import { chainErrorMessage, type ConfirmedTx, type SettlementChain } from './chain.js';

// The funding check the GpuJob controller runs before it places a job: the escrow of the attempt
// about to be placed must be open on chain before its Assign is sent. A job whose escrow is not
// open yet waits with a message (never blocking the controller on the chain): the escrow is opened
// in the background and the job is woken once it is confirmed.

export interface EscrowFundingOptions {
  chain: SettlementChain;
  /** Hold for jobs with neither spec.budget.maxTotal nor activeDeadlineSeconds (token units). */
  defaultHold: bigint;
  consumerOf: (job: GpuJob) => ConsumerLookup;
  /** The escrow of `job` is open: place it now. */
  wake: (job: GpuJob) => void;
  logger: Logger;
}

export class EscrowFunding {
  /** Escrows known to be open (by key): the check costs no chain read once it passed. */
  private readonly open = new Set<string>();
  private readonly opening = new Map<string, { amount: bigint; consumer: string }>();

  constructor(private readonly opts: EscrowFundingOptions) {}

  /** undefined: place the job now; otherwise why it waits. */
  async check(job: GpuJob): Promise<string | undefined> {
    if (isFinished(job) || isDeleted(job) || !job.metadata.uid || endsWithoutPlacement(job)) return undefined;
    const epoch = nextEpoch(job);
    const escrowId = attemptEscrowId(job.metadata.uid, epoch);
    if (this.open.has(escrowId)) return undefined;
    const consumer = this.opts.consumerOf(job);
    if ('problem' in consumer) return consumer.problem;
    const inFlight = this.opening.get(escrowId);
    if (inFlight) return `waiting for escrow: locking ${formatCredits(inFlight.amount)} credits of consumer ${inFlight.consumer} for attempt ${epoch}`;
    try {
      const escrow = await this.opts.chain.escrow(escrowId);
      if (escrow.state === 'Open') {
        this.open.add(escrowId);
        return undefined;
      }
      if (escrow.state !== 'None') return `the escrow of attempt ${epoch} is already ${escrow.state} on chain; it cannot be placed again`;
      return await this.startOpening(job, epoch, escrowId, consumer.wallet);
    } catch (err) {
      return `waiting for the chain: ${chainErrorMessage(err)}`;
    }
  }

  /** Re-opens the escrow of a running attempt found without one (drift). */
  async reopen(job: GpuJob, epoch: number): Promise<ConfirmedTx | string> {
    const consumer = this.opts.consumerOf(job);
    if ('problem' in consumer) return consumer.problem;
    const escrowId = attemptEscrowId(job.metadata.uid!, epoch);
    const hold = attemptHold(job, epoch, this.opts.defaultHold);
    const free = await this.freeOf(consumer.wallet);
    if (hold.amount === 0n || free < hold.amount) return fundsMessage(consumer.wallet, free, hold.amount, hold.source);
    return this.openEscrow(escrowId, consumer.wallet, hold.amount);
  }

  /** Forget the keys of a job that is settled (bounded memory). */
  forget(jobUid: string, epochs: readonly number[]): void {
    for (const e of epochs) this.open.delete(attemptEscrowId(jobUid, e));
  }

  private async startOpening(job: GpuJob, epoch: number, escrowId: string, consumer: string): Promise<string> {
    const hold = attemptHold(job, epoch, this.opts.defaultHold);
    if (hold.amount === 0n) {
      return `waiting: the job's budget of ${formatCredits(hold.budget)} credits is spent (${formatCredits(hold.committed)} committed by earlier attempts)`;
    }
    const free = await this.freeOf(consumer);
    if (free < hold.amount) return fundsMessage(consumer, free, hold.amount, hold.source);
    const log = this.opts.logger.child({ job: `${job.metadata.namespace}/${job.metadata.name}`, epoch });
    this.openEscrow(escrowId, consumer, hold.amount)
      .then((tx) => {
        this.open.add(escrowId);
        log.info({ tx: tx.txHash, amount: formatCredits(hold.amount) }, 'escrow opened');
        this.opts.wake(job);
      })
      .catch((err: unknown) => {
        log.warn({ err: chainErrorMessage(err) }, 'opening the escrow failed; the next funding check retries');
        this.opts.wake(job);
      });
    return `waiting for escrow: locking ${formatCredits(hold.amount)} credits of consumer ${consumer} for attempt ${epoch}`;
  }

  private async openEscrow(escrowId: string, consumer: string, amount: bigint): Promise<ConfirmedTx> {
    this.opening.set(escrowId, { amount, consumer });
    try {
      return await this.opts.chain.send((m) => m.openEscrow(escrowId, consumer, amount));
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

export function fundsMessage(consumer: string, free: bigint, needed: bigint, source: string): string {
  return `waiting for funds: consumer ${consumer} has ${formatCredits(free)} credits free, the job needs ${formatCredits(needed)} (${source})`;
}

/** The planner will end this job instead of placing it (attempts used up, deadline passed): no escrow. */
function endsWithoutPlacement(job: GpuJob): boolean {
  const attempts = job.status?.attempts?.length ?? 0;
  if (attempts >= (job.spec.faultTolerance?.maxAttempts ?? 3)) return true;
  const deadline = job.spec.activeDeadlineSeconds;
  const created = Date.parse(String(job.metadata.creationTimestamp ?? ''));
  return deadline !== undefined && Number.isFinite(created) && Date.now() - created > deadline * 1000;
}
