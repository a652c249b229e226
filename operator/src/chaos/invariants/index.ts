import type { ChaosHistory } from '../history.js';
import { nothingLeftBehind } from './cleanup.js';
import { attemptsWellFormed, blameHasACause, jobsEndAsAllowed, noTwoEpochsAtOnce } from './jobs.js';
import { escrowsClosedOnce, paidAsSigned, slashedExactlyOnce, tokensConserved } from './money.js';
import { reputationAgrees } from './reputation.js';
import type { Violation } from './violation.js';

export { formatViolation, type Violation } from './violation.js';

/** Every invariant the chaos checker holds a run to; each is a pure function of the history. */
export const INVARIANTS: readonly { name: string; check: (h: ChaosHistory) => Violation[] }[] = [
  { name: 'every job ended as its spec and faults allow (none stuck, none lost)', check: jobsEndAsAllowed },
  { name: 'attempt epochs well formed, one live at most', check: attemptsWellFormed },
  { name: 'never two epochs running at once beyond the grace', check: noTwoEpochsAtOnce },
  { name: 'provider or owner blamed only with a fault on it', check: blameHasACause },
  { name: 'each escrow settled or refunded exactly once', check: escrowsClosedOnce },
  { name: 'paid = the signed, bounded receipt; nothing paid for an attempt not running', check: paidAsSigned },
  { name: 'each provider-fault attempt slashed exactly once, no other slash', check: slashedExactlyOnce },
  { name: 'tokens conserved on chain', check: tokensConserved },
  { name: 'no orphan pods, Secrets, Services or escrows', check: nothingLeftBehind },
  { name: 'fedgpu reputation --from-chain equals each GpuProvider', check: reputationAgrees },
];

export interface CheckResult {
  name: string;
  violations: Violation[];
}

export function checkHistory(h: ChaosHistory): CheckResult[] {
  return INVARIANTS.map(({ name, check }) => ({ name, violations: check(h) }));
}
