import { jobIdOf } from './job-id.js';

/**
 * The on-chain key of one attempt's escrow: keccak256("<job uid>:<epoch>"). GpuMarket settles a
 * key at most once and pays one provider from it, so a job that is paid for several attempts
 * (reclaimed on one provider, finished on another) needs one escrow per attempt. Deterministic,
 * so a hub that restarts finds every escrow it opened; the agent signs receipts for the same key.
 */
export function attemptEscrowId(jobUid: string, epoch: number): string {
  if (!Number.isInteger(epoch) || epoch < 1) throw new RangeError(`epoch ${epoch} is not a positive integer`);
  return jobIdOf(`${jobUid}:${epoch}`);
}
