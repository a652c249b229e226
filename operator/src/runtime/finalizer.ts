// The finalizer as a small state machine on (finalizer present?, being deleted?), as in kube-rs:
//
//   present  deleting   step
//   no       no         AddFinalizer, then Apply   (the guard is in place before any side effect)
//   yes      no         Apply
//   yes      yes        Cleanup, then RemoveFinalizer once cleanup reports it is finished
//   no       yes        Done: not ours to clean up (someone else's finalizer holds the object)
//
// Finalizer writes are JSON merge patches of metadata.finalizers carrying metadata.resourceVersion
// as a precondition, so a concurrent change to the list (another controller's finalizer) makes the
// write fail with 409 rather than silently dropping that change. Every step is idempotent.
import type { KubernetesObject } from '@kubernetes/client-node';
import { type Action, CONFLICT_REQUEUE_MS, requeueDelay } from './action.js';
import { isConflict, isNotFound } from './kube.js';

export type FinalizerStep = 'AddFinalizer' | 'Apply' | 'Cleanup' | 'Done';

export function finalizerStep(obj: KubernetesObject, finalizer: string): FinalizerStep {
  const present = obj.metadata?.finalizers?.includes(finalizer) ?? false;
  const deleting = obj.metadata?.deletionTimestamp != null;
  if (deleting) return present ? 'Cleanup' : 'Done';
  return present ? 'Apply' : 'AddFinalizer';
}

export interface FinalizerHandlers<T> {
  /** Converge the live object; runs only while our finalizer guards it. */
  apply(obj: T): Promise<Action>;
  /**
   * Release what the object holds. 'done' (or an action without a delay) means finished: the
   * finalizer is removed. `{ requeueAfterMs }` means "still releasing": the finalizer stays and
   * cleanup runs again later. Must be idempotent: it can run again after a crash or a conflict.
   */
  cleanup(obj: T): Promise<Action>;
}

/** Writes a merge patch to the object's main resource and returns the updated object. */
export type MetadataPatcher<T> = (obj: T, mergePatch: { metadata: Record<string, unknown> }) => Promise<T>;

/** Runs one step of the finalizer state machine for `obj` and returns what to do next. */
export async function applyFinalizer<T extends KubernetesObject>(
  obj: T,
  finalizer: string,
  handlers: FinalizerHandlers<T>,
  patch: MetadataPatcher<T>,
): Promise<Action> {
  const finalizers = obj.metadata?.finalizers ?? [];
  switch (finalizerStep(obj, finalizer)) {
    case 'AddFinalizer': {
      const written = await writeFinalizers(obj, [...finalizers, finalizer], patch);
      if (written === 'conflict') return { requeueAfterMs: CONFLICT_REQUEUE_MS };
      if (written === 'gone') return 'done';
      return handlers.apply(written);
    }
    case 'Apply':
      return handlers.apply(obj);
    case 'Cleanup': {
      const action = await handlers.cleanup(obj);
      if (requeueDelay(action) !== undefined) return action; // still releasing
      const removed = await writeFinalizers(obj, finalizers.filter((f) => f !== finalizer), patch);
      return removed === 'conflict' ? { requeueAfterMs: CONFLICT_REQUEUE_MS } : 'done';
    }
    case 'Done':
      return 'done';
  }
}

/**
 * Sets metadata.finalizers if metadata.resourceVersion is still the one we read. Returns the
 * updated object; 'conflict' when we lost the race (the next reconcile, from fresher state,
 * decides again); 'gone' when the object no longer exists.
 */
async function writeFinalizers<T extends KubernetesObject>(
  obj: T,
  finalizers: string[],
  patch: MetadataPatcher<T>,
): Promise<T | 'conflict' | 'gone'> {
  try {
    return await patch(obj, { metadata: { finalizers, resourceVersion: obj.metadata?.resourceVersion } });
  } catch (err) {
    if (isConflict(err)) return 'conflict';
    if (isNotFound(err)) return 'gone';
    throw err;
  }
}
