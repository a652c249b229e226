// What a reconcile (or an error policy) tells the controller to do next, as in kube-rs:
// `'done'` waits for the next watch event; `{ requeueAfterMs }` also looks again after that delay.

export type Action = { requeueAfterMs?: number } | 'done';

export const done: Action = 'done';

export function requeueAfter(ms: number): Action {
  return { requeueAfterMs: Math.max(0, ms) };
}

/** The delay to look again, or undefined when the action waits for a watch event only. */
export function requeueDelay(action: Action): number | undefined {
  return action === 'done' ? undefined : action.requeueAfterMs;
}

/**
 * Requeue after losing an optimistic-concurrency race (HTTP 409). The watch brings the newer object
 * and wakes the key anyway; this delay is the safety net, short enough to converge promptly and
 * long enough for the informer cache to catch up so the retry does not hit the same stale version.
 */
export const CONFLICT_REQUEUE_MS = 500;
