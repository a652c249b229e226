import { keccak256, toUtf8Bytes } from 'ethers';

/**
 * The on-chain key of a GpuJob: keccak256 of its Kubernetes uid. Deterministic, so a hub that
 * restarts at any point finds the escrow it opened before instead of opening a second one.
 */
export function jobIdOf(jobUid: string): string {
  if (jobUid === '') throw new RangeError('a job uid is required');
  return keccak256(toUtf8Bytes(jobUid));
}
