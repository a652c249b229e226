import type { ChaosHistory } from '../history.js';
import { jobViolation, type Violation } from './violation.js';

// Nothing left behind: every pod, Secret, Service and NetworkPolicy of an attempt is deleted on its
// provider once the attempt is over, and no escrow stays open (DESIGN §5 chain ↔ cluster drift).

export function nothingLeftBehind(h: ChaosHistory): Violation[] {
  const byUid = new Map(h.jobs.map((r) => [r.uid, r] as const));
  return h.leftovers.map((l) => {
    const record = l.jobUid ? byUid.get(l.jobUid) : undefined;
    const message = `${l.kind} ${l.name} left on ${l.cluster}${l.epoch !== undefined ? ` (epoch ${l.epoch})` : ''}`;
    return record ? jobViolation(h, 'no-orphans', record, message) : { invariant: 'no-orphans', message, faults: [] };
  });
}
