// Pure helpers for metav1.Condition lists. A condition's lastTransitionTime records when its
// status last flipped, so rewriting the same status with a new reason keeps the old time.
import type { Condition } from '../gen/api-types.js';

export type { Condition };
export type ConditionStatus = Condition['status'];

/** What a controller sets; the helper fills in lastTransitionTime. */
export interface ConditionUpdate {
  type: string;
  status: ConditionStatus;
  reason: string;
  message?: string;
  observedGeneration?: number;
}

export interface SetConditionResult {
  conditions: Condition[];
  changed: boolean;
}

/** metav1.Condition's reason pattern: PascalCase-ish, starts with a letter. */
const REASON = /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;

/** RFC 3339 at whole seconds, as metav1.Time serializes, so a round trip compares equal. */
export function conditionTime(now: Date): string {
  return `${now.toISOString().slice(0, 19)}Z`;
}

/**
 * Returns a new list with `update` applied, and whether anything changed. lastTransitionTime is
 * `now` for a new condition or a status change, and kept otherwise. The input is not modified.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  update: ConditionUpdate,
  now: Date,
): SetConditionResult {
  if (!REASON.test(update.reason)) {
    throw new TypeError(`condition ${update.type}: reason ${JSON.stringify(update.reason)} is not PascalCase`);
  }
  const list = [...(conditions ?? [])];
  const index = list.findIndex((c) => c.type === update.type);
  const existing = index >= 0 ? list[index] : undefined;
  const next: Condition = {
    type: update.type,
    status: update.status,
    reason: update.reason,
    message: update.message ?? '',
    lastTransitionTime:
      existing && existing.status === update.status ? existing.lastTransitionTime : conditionTime(now),
    ...(update.observedGeneration !== undefined ? { observedGeneration: update.observedGeneration } : {}),
  };
  if (existing && sameCondition(existing, next)) return { conditions: list, changed: false };
  if (index >= 0) list[index] = next;
  else list.push(next);
  return { conditions: list, changed: true };
}

/** Returns a new list without the condition of `type`, and whether it was there. */
export function removeCondition(conditions: readonly Condition[] | undefined, type: string): SetConditionResult {
  const list = (conditions ?? []).filter((c) => c.type !== type);
  return { conditions: list, changed: list.length !== (conditions?.length ?? 0) };
}

export function getCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return getCondition(conditions, type)?.status === 'True';
}

export function isFalse(conditions: readonly Condition[] | undefined, type: string): boolean {
  return getCondition(conditions, type)?.status === 'False';
}

/** True when the condition is absent or Unknown. */
export function isUnknown(conditions: readonly Condition[] | undefined, type: string): boolean {
  const c = getCondition(conditions, type);
  return c === undefined || c.status === 'Unknown';
}

function sameCondition(a: Condition, b: Condition): boolean {
  return (
    a.status === b.status &&
    a.reason === b.reason &&
    a.message === b.message &&
    a.lastTransitionTime === b.lastTransitionTime &&
    a.observedGeneration === b.observedGeneration
  );
}
