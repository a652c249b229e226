// Writes a custom object's status subresource only when the desired status differs from the one
// read (deep JSON comparison), so a steady-state reconcile costs no write and no watch event.
//
// Choice: a JSON merge patch on /status carrying only the changed keys, with
// metadata.resourceVersion as a precondition, and a fieldManager per controller (so managedFields
// still say who wrote what). Why not server-side apply: SSA is best when each controller owns a
// disjoint set of fields, but "did anything change?" would then mean comparing against our own
// managed subset (conditions are a list-map shared by several controllers), and apply with force
// silently takes fields over. With a merge patch the reconciler computes the whole status from one
// snapshot, the comparison is exact, and the precondition guarantees that snapshot was current:
// a concurrent writer makes us fail with 409 instead of overwriting it. A 409 becomes a short
// requeue; the watch brings the newer object and the next reconcile recomputes from it.
import type { KubernetesObject } from '@kubernetes/client-node';
import { type Action, CONFLICT_REQUEUE_MS } from './action.js';
import { type CustomObjectClient, isConflict, isNotFound } from './kube.js';
import { type Json, jsonEqual, mergePatchBetween, toJson } from './merge-patch.js';

export type WithStatus<S> = KubernetesObject & { status?: S };

export interface StatusPatchBody {
  metadata: { resourceVersion?: string };
  status: { [key: string]: Json };
}

/** Sends a merge patch to the object's status subresource and returns the updated object. */
export type StatusPatcher<T> = (obj: T, body: StatusPatchBody) => Promise<T>;

export type StatusWriteResult<T> =
  | { outcome: 'unchanged' }
  | { outcome: 'written'; object: T; patch: StatusPatchBody }
  | { outcome: 'conflict'; action: Action }
  | { outcome: 'gone' };

export class StatusWriter<T extends WithStatus<unknown>> {
  constructor(private readonly patch: StatusPatcher<T>) {}

  /** A writer for a custom resource, writing as `fieldManager` (one per controller). */
  static forCustomObjects<T extends WithStatus<unknown>>(client: CustomObjectClient<T>, fieldManager: string): StatusWriter<T> {
    return new StatusWriter<T>((obj, body) =>
      client.patchStatus(obj.metadata?.name ?? '', obj.metadata?.namespace, body, { fieldManager }),
    );
  }

  /** Makes `obj`'s status equal `desired` (keys absent from `desired` are removed). */
  async write(obj: T, desired: NonNullable<T['status']>): Promise<StatusWriteResult<T>> {
    const current = toJson(obj.status ?? {});
    const target = toJson(desired);
    if (jsonEqual(current, target)) return { outcome: 'unchanged' };
    if (!isJsonObject(target)) throw new TypeError('status must be an object');
    const status = mergePatchBetween(isJsonObject(current) ? current : {}, target) ?? {};
    const body: StatusPatchBody = { metadata: { resourceVersion: obj.metadata?.resourceVersion }, status };
    try {
      return { outcome: 'written', object: await this.patch(obj, body), patch: body };
    } catch (err) {
      if (isConflict(err)) return { outcome: 'conflict', action: { requeueAfterMs: CONFLICT_REQUEUE_MS } };
      if (isNotFound(err)) return { outcome: 'gone' };
      throw err;
    }
  }
}

function isJsonObject(v: Json): v is { [key: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
