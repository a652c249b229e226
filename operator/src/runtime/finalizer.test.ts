import type { KubernetesObject } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { Action } from './action.js';
import { CONFLICT_REQUEUE_MS } from './action.js';
import { applyFinalizer, type FinalizerHandlers, finalizerStep } from './finalizer.js';

const F = 'fedgpu.io/cleanup';

/** One object as an apiserver would keep it: resourceVersion preconditions, finalizers gate deletion. */
class FakeServer {
  obj: KubernetesObject | undefined;
  patches: { finalizers: unknown; resourceVersion: unknown }[] = [];
  /** Changes the stored object behind the controller's back (another writer). */
  bump(): void {
    this.obj!.metadata!.resourceVersion = String(Number(this.obj!.metadata!.resourceVersion) + 1);
  }
  constructor(metadata: KubernetesObject['metadata']) {
    this.obj = { apiVersion: 'fedgpu.io/v1alpha1', kind: 'GpuJob', metadata: { name: 'j', namespace: 'ns', resourceVersion: '1', ...metadata } };
  }
  read(): KubernetesObject {
    return structuredClone(this.obj!);
  }
  patch = async (_obj: KubernetesObject, body: { metadata: Record<string, unknown> }): Promise<KubernetesObject> => {
    this.patches.push({ finalizers: body.metadata.finalizers, resourceVersion: body.metadata.resourceVersion });
    if (!this.obj) throw Object.assign(new Error('not found'), { code: 404 });
    if (body.metadata.resourceVersion !== this.obj.metadata!.resourceVersion) {
      throw Object.assign(new Error('the object has been modified'), { code: 409 });
    }
    this.obj.metadata!.finalizers = body.metadata.finalizers as string[];
    this.bump();
    if (this.obj.metadata!.deletionTimestamp && this.obj.metadata!.finalizers.length === 0) this.obj = undefined;
    return this.read();
  };
}

function recorder(results: { apply?: Action; cleanup?: Action | Error } = {}) {
  const calls: string[] = [];
  const seen: KubernetesObject[] = [];
  const handlers: FinalizerHandlers<KubernetesObject> = {
    apply: async (obj) => {
      calls.push('apply');
      seen.push(obj);
      return results.apply ?? 'done';
    },
    cleanup: async (obj) => {
      calls.push('cleanup');
      seen.push(obj);
      const r = results.cleanup ?? 'done';
      if (r instanceof Error) throw r;
      return r;
    },
  };
  return { calls, seen, handlers };
}

const deleting = { deletionTimestamp: new Date('2025-01-01T00:00:00Z') };

describe('finalizerStep', () => {
  it.each([
    [[], false, 'AddFinalizer'],
    [[F], false, 'Apply'],
    [['other', F], true, 'Cleanup'],
    [['other'], true, 'Done'],
    [[], true, 'Done'],
  ] as const)('finalizers %j, deleting %s → %s', (finalizers, isDeleting, step) => {
    const obj = { metadata: { name: 'x', finalizers: [...finalizers], ...(isDeleting ? deleting : {}) } };
    expect(finalizerStep(obj, F)).toBe(step);
  });
});

describe('applyFinalizer', () => {
  it('adds the finalizer (with a resourceVersion precondition) before apply runs, then applies', async () => {
    const server = new FakeServer({ finalizers: ['other'] });
    const { calls, seen, handlers } = recorder({ apply: { requeueAfterMs: 30_000 } });
    const action = await applyFinalizer(server.read(), F, handlers, async (o, p) => {
      calls.push('patch');
      return server.patch(o, p);
    });
    expect(calls).toEqual(['patch', 'apply']);
    expect(server.patches).toEqual([{ finalizers: ['other', F], resourceVersion: '1' }]);
    expect(seen[0]?.metadata?.finalizers).toEqual(['other', F]); // apply sees the guarded object
    expect(action).toEqual({ requeueAfterMs: 30_000 });
  });

  it('is idempotent: with the finalizer in place it only applies', async () => {
    const server = new FakeServer({});
    const { calls, handlers } = recorder();
    await applyFinalizer(server.read(), F, handlers, server.patch);
    await applyFinalizer(server.read(), F, handlers, server.patch);
    await applyFinalizer(server.read(), F, handlers, server.patch);
    expect(server.patches).toHaveLength(1);
    expect(calls).toEqual(['apply', 'apply', 'apply']);
  });

  it('does not apply when adding the finalizer loses a race; it requeues', async () => {
    const server = new FakeServer({});
    const stale = server.read();
    server.bump();
    const { calls, handlers } = recorder();
    expect(await applyFinalizer(stale, F, handlers, server.patch)).toEqual({ requeueAfterMs: CONFLICT_REQUEUE_MS });
    expect(calls).toEqual([]);
    expect(server.obj?.metadata?.finalizers).toBeUndefined();
  });

  it('on deletion runs cleanup, then removes only its own finalizer', async () => {
    const server = new FakeServer({ finalizers: [F, 'other'], ...deleting });
    const { calls, handlers } = recorder();
    expect(await applyFinalizer(server.read(), F, handlers, server.patch)).toBe('done');
    expect(calls).toEqual(['cleanup']);
    expect(server.obj?.metadata?.finalizers).toEqual(['other']);
  });

  it('the object is gone once the last finalizer is removed; a later run does nothing', async () => {
    const server = new FakeServer({ finalizers: [F], ...deleting });
    const { calls, handlers } = recorder();
    const last = server.read();
    expect(await applyFinalizer(last, F, handlers, server.patch)).toBe('done');
    expect(server.obj).toBeUndefined();
    // A stale copy still carrying the finalizer: cleanup runs again (idempotent), the patch finds nothing.
    expect(await applyFinalizer(last, F, handlers, server.patch)).toBe('done');
    expect(calls).toEqual(['cleanup', 'cleanup']);
  });

  it('keeps the finalizer while cleanup is still releasing', async () => {
    const server = new FakeServer({ finalizers: [F], ...deleting });
    const { handlers } = recorder({ cleanup: { requeueAfterMs: 2_000 } });
    expect(await applyFinalizer(server.read(), F, handlers, server.patch)).toEqual({ requeueAfterMs: 2_000 });
    expect(server.patches).toEqual([]);
    expect(server.obj?.metadata?.finalizers).toEqual([F]);
  });

  it('keeps the finalizer when cleanup fails, and passes the error on', async () => {
    const server = new FakeServer({ finalizers: [F], ...deleting });
    const { handlers } = recorder({ cleanup: new Error('escrow RPC down') });
    await expect(applyFinalizer(server.read(), F, handlers, server.patch)).rejects.toThrow('escrow RPC down');
    expect(server.obj?.metadata?.finalizers).toEqual([F]);
  });

  it('requeues when removing the finalizer conflicts, and cleans up again next time', async () => {
    const server = new FakeServer({ finalizers: [F], ...deleting });
    const stale = server.read();
    server.bump();
    const { calls, handlers } = recorder();
    expect(await applyFinalizer(stale, F, handlers, server.patch)).toEqual({ requeueAfterMs: CONFLICT_REQUEUE_MS });
    expect(server.obj?.metadata?.finalizers).toEqual([F]);
    expect(await applyFinalizer(server.read(), F, handlers, server.patch)).toBe('done');
    expect(calls).toEqual(['cleanup', 'cleanup']);
    expect(server.obj).toBeUndefined();
  });

  it('does nothing for an object being deleted without our finalizer', async () => {
    const server = new FakeServer({ finalizers: ['other'], ...deleting });
    const { calls, handlers } = recorder();
    expect(await applyFinalizer(server.read(), F, handlers, server.patch)).toBe('done');
    expect(calls).toEqual([]);
    expect(server.patches).toEqual([]);
  });

  it('passes on errors other than conflict and not-found', async () => {
    const server = new FakeServer({});
    const { handlers } = recorder();
    const failing = async () => {
      throw Object.assign(new Error('forbidden'), { code: 403 });
    };
    await expect(applyFinalizer(server.read(), F, handlers, failing)).rejects.toThrow('forbidden');
  });
});
