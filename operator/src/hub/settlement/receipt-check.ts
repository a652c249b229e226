import type { TypedDataDomain } from 'ethers';
import type { GpuJob, SettlementReceipt } from '../../api/types.js';
import { attemptEscrowId } from '../../chain/attempt-escrow.js';
import { parseCredits } from '../../chain/credits.js';
import { BILLING_SLACK_SECONDS_PER_GPU } from '../../core/budget.js';
import { buildUsageReceipt, recoverReceiptSigner } from '../../chain/receipt.js';
import type { UsageReceipt as ReceiptMessage } from '../../gen/proto/fedgpu/v1/market.js';
import { isBillable, isDeleted } from './billing.js';
import { attemptSeen } from '../jobs/plan.js';

// Checks a usage receipt an agent sent before the hub records it. The chain would refuse a bad
// signature too, but a receipt must also be for the right attempt, at the agreed price, for no more
// GPU time than the attempt existed, and never for an attempt that is fenced or unpaid.

export type ReceiptVerdict =
  | { kind: 'accept'; epoch: number; record: SettlementReceipt }
  /** The same receipt is recorded already: acknowledge it again, change nothing. */
  | { kind: 'duplicate'; epoch: number }
  | { kind: 'refuse'; reason: string };

export interface ReceiptCheck {
  job: GpuJob;
  /** The GpuProvider the agent's stream is bound to, and its wallet (spec.wallet). */
  providerName: string;
  providerWallet: string;
  receipt: ReceiptMessage;
  domain: TypedDataDomain;
  now: number;
  /** Clock skew and rounding allowed per GPU when bounding GPU-seconds by the attempt's lifetime. */
  slackSecondsPerGpu?: number;
}

export function checkReceipt(input: ReceiptCheck): ReceiptVerdict {
  const { job, receipt } = input;
  const refuse = (reason: string): ReceiptVerdict => ({ kind: 'refuse', reason });
  const epoch = receipt.epoch;
  const attempt = job.status?.attempts?.find((a) => a.epoch === epoch);
  if (!attempt) return refuse(`job ${job.metadata.name} has no attempt ${epoch}`);
  if (attempt.provider !== input.providerName) return refuse(`attempt ${epoch} ran on ${attempt.provider}, not on ${input.providerName}`);
  if (attempt.endTime && !isBillable(attempt, isDeleted(job))) {
    return refuse(`attempt ${epoch} ended ${attempt.outcome} (${attempt.reason ?? 'no reason'}): the provider is not paid for it`);
  }
  if (!Number.isSafeInteger(receipt.gpuSeconds) || receipt.gpuSeconds < 0) return refuse(`gpuSeconds ${receipt.gpuSeconds} is not a whole number`);

  let built;
  try {
    if (parseCredits(receipt.pricePerGpuHour) !== parseCredits(attempt.pricePerGpuHour ?? '')) {
      return refuse(`price ${receipt.pricePerGpuHour} differs from the agreed ${attempt.pricePerGpuHour}`);
    }
    built = buildUsageReceipt({
      jobId: attemptEscrowId(job.metadata.uid ?? '', epoch),
      epoch,
      gpuSeconds: receipt.gpuSeconds,
      pricePerGpuHour: receipt.pricePerGpuHour,
      provider: input.providerWallet,
      usageHash: receipt.usageHash,
    });
    if (parseCredits(receipt.amount) !== built.amount) return refuse(`amount ${receipt.amount} is not gpuSeconds × price / 3600`);
  } catch (err) {
    return refuse(`malformed receipt: ${(err as Error).message}`);
  }

  // No more GPU time than the hub itself saw the attempt running (first Running report to its end,
  // or now) × GPUs, and no more than its budget covered: providers do not grade themselves.
  const gpus = (job.spec.replicas ?? 1) * (job.spec.gpusPerReplica ?? 1);
  // From the whole gang Running every GPU, and before it, from the first GPU time of part of it,
  // all but one replica's (a start timeout that bills the replicas that ran; a gang whose last
  // replica started late, whose receipt counts the early ones' time too).
  const running = attempt.runningTime ?? attempt.firstUsageTime;
  // A deleted job's attempt has no end: it ran until the Cancel reached its agent, which after a
  // hub restart or a dropped stream may be long after the deletion, and the hub does not record
  // when that was. So its bound is now, as for a running attempt (at most the receipt timeout).
  const end = attempt.endTime ? Date.parse(attempt.endTime) : input.now;
  const slack = gpus * (input.slackSecondsPerGpu ?? BILLING_SLACK_SECONDS_PER_GPU);
  const seen = Math.ceil(attemptSeen(attempt, end, gpus, job.spec.gpusPerReplica ?? 1));
  if (receipt.gpuSeconds > seen + slack) {
    const what = running === undefined ? 'the hub never saw it running' : `the hub saw it running for ${seen} GPU-seconds`;
    return refuse(`${receipt.gpuSeconds} GPU-seconds is more than attempt ${epoch} could use: ${what} (+${slack} slack)`);
  }
  if (attempt.coveredGpuSeconds && receipt.gpuSeconds > attempt.coveredGpuSeconds) {
    return refuse(`${receipt.gpuSeconds} GPU-seconds is more than the ${attempt.coveredGpuSeconds} the budget of attempt ${epoch} covers`);
  }

  let signer: string;
  try {
    signer = recoverReceiptSigner(input.domain, built, receipt.signature);
  } catch {
    return refuse('the signature does not verify');
  }
  if (signer.toLowerCase() !== input.providerWallet.toLowerCase()) {
    return refuse(`signed by ${signer}, not by the provider wallet ${input.providerWallet}`);
  }

  const record: SettlementReceipt = {
    gpuSeconds: receipt.gpuSeconds,
    amount: receipt.amount,
    usageHash: receipt.usageHash,
    signature: receipt.signature,
    wallet: input.providerWallet,
  };
  const recorded = job.status?.settlement?.attempts?.find((r) => r.epoch === epoch)?.receipt;
  if (recorded) {
    if (recorded.signature.toLowerCase() === receipt.signature.toLowerCase()) return { kind: 'duplicate', epoch };
    return refuse(`another receipt for attempt ${epoch} is recorded already`);
  }
  return { kind: 'accept', epoch, record: { ...record, receivedTime: new Date(input.now).toISOString() } };
}
