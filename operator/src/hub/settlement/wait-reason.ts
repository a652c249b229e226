/**
 * The Scheduled=False condition reason for a job the funding check holds back, from its message.
 * Every such message is written in this folder with one of these openings; the reason lets
 * `kubectl get gj -o jsonpath` and alerts tell a consumer short of credits from one whose escrow
 * is merely being locked, or from a chain that does not answer.
 */
export type FundingWaitReason =
  | 'InsufficientFunds'
  | 'WaitingForEscrow'
  | 'WaitingForAuthorization'
  | 'WaitingForConsumerWallet'
  | 'ChainUnavailable'
  | 'WaitingForSettlement';

const OPENINGS: [prefix: string, reason: FundingWaitReason][] = [
  ['waiting for funds:', 'InsufficientFunds'],
  ["waiting: the job's budget", 'InsufficientFunds'],
  ['waiting for escrow:', 'WaitingForEscrow'],
  ['waiting for authorization:', 'WaitingForAuthorization'],
  ['waiting for a consumer wallet:', 'WaitingForConsumerWallet'],
  ['waiting for the chain:', 'ChainUnavailable'],
];

export function fundingWaitReason(message: string): FundingWaitReason {
  for (const [prefix, reason] of OPENINGS) if (message.startsWith(prefix)) return reason;
  // Anything else (a provider without a wallet, an escrow already closed, the settlement
  // controller still starting, a namespace being deleted) waits on settlement in general.
  return 'WaitingForSettlement';
}
