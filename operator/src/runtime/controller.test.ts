import type { KubernetesObject } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { Action } from './action.js';
import { Controller, type EventSource, type ReconcileSample, TerminalError, labelKey, ownerKeys } from './controller.js';
import type { InformerEvent } from './informer.js';
import { silentLogger } from './logger.js';
import { FakeClock } from './testing/fake-clock.js';
import { WorkQueue } from './work-queue.js';

class FakeSource<T> implements EventSource<T> {
  private handlers = new Map<InformerEvent, Set<(obj: T) => void>>();
  starts = 0;
  on(event: InformerEvent, handler: (obj: T) => void): () => void {
    const set = this.handlers.get(event) ?? new Set();
    set.add(handler);
    this.handlers.set(event, set);
    return () => set.delete(handler);
  }
  async start(): Promise<void> {
    this.starts++;
  }
  emit(event: InformerEvent, obj: T): void {
    for (const h of this.handlers.get(event) ?? []) h(obj);
  }
  listeners(): number {
    return [...this.handlers.values()].reduce((n, s) => n + s.size, 0);
  }
}

const obj = (name: string, namespace?: string, extra: Partial<KubernetesObject['metadata']> = {}): KubernetesObject => ({
  metadata: { name, namespace, ...extra },
});

const tick = () => new Promise((r) => setTimeout(r, 0));
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`timed out: ${what}`);
}

function harness(reconcile: (key: string) => Promise<Action>, extra: Partial<ConstructorParameters<typeof Controller>[0]> = {}) {
  const clock = new FakeClock();
  const queue = new WorkQueue({ clock, backoff: { baseMs: 100, maxMs: 1_000 } });
  const samples: ReconcileSample[] = [];
  const controller = new Controller({
    name: 'toy',
    queue,
    reconcile,
    logger: silentLogger,
    metrics: { reconciled: (s) => samples.push(s) },
    ...extra,
  });
  return { clock, queue, controller, samples };
}

describe('Controller', () => {
  it('maps informer events to keys and reconciles each key; start() starts the sources first', async () => {
    const seen: string[] = [];
    const { controller, samples } = harness(async (key) => {
      seen.push(key);
      return 'done';
    });
    const source = new FakeSource<KubernetesObject>();
    controller.watch(source);
    await controller.start();
    expect(source.starts).toBe(1);
    source.emit('add', obj('a', 'ns'));
    source.emit('update', obj('b'));
    source.emit('delete', obj('a', 'ns'));
    await until(() => samples.length >= 2 && controller.queue.len() === 0, 'reconciles');
    // ns/a was handed to the worker at once, so the delete re-queues it once more: still level-based.
    expect([...new Set(seen)].sort()).toEqual(['b', 'ns/a']);
    expect(seen.length).toBeLessThanOrEqual(3);
    expect(samples.every((s) => s.controller === 'toy' && s.outcome === 'success')).toBe(true);
    await controller.stop();
    expect(source.listeners()).toBe(0);
  });

  it('requeues after the delay a reconcile asks for', async () => {
    let calls = 0;
    const { controller, clock, samples } = harness(async () => {
      calls++;
      return calls === 1 ? { requeueAfterMs: 5_000 } : 'done';
    });
    await controller.start();
    controller.enqueue('k');
    await until(() => calls === 1, 'first reconcile');
    await tick();
    clock.advance(4_999);
    await tick();
    expect(calls).toBe(1);
    clock.advance(1);
    await until(() => calls === 2, 'requeued reconcile');
    expect(samples.map((s) => s.outcome)).toEqual(['requeue', 'success']);
    await controller.stop();
  });

  it('backs off exponentially on errors by default, and resets after a success', async () => {
    let calls = 0;
    const { controller, clock, queue } = harness(async () => {
      calls++;
      if (calls <= 3) throw new Error('flaky');
      return 'done';
    });
    await controller.start();
    controller.enqueue('k');
    await until(() => calls === 1, 'call 1');
    await tick();
    expect(queue.numRequeues('k')).toBe(1);
    clock.advance(100);
    await until(() => calls === 2, 'call 2 after 100ms');
    await tick();
    clock.advance(199);
    await tick();
    expect(calls).toBe(2);
    clock.advance(1);
    await until(() => calls === 3, 'call 3 after 200ms');
    await tick();
    clock.advance(400);
    await until(() => calls === 4, 'call 4 after 400ms');
    await tick();
    expect(queue.numRequeues('k')).toBe(0);
    await controller.stop();
  });

  it('errorPolicy decides: a fixed delay, or done', async () => {
    let calls = 0;
    const policies: Action[] = [{ requeueAfterMs: 42 }, 'done'];
    const { controller, clock, queue } = harness(
      async () => {
        calls++;
        throw new Error('nope');
      },
      { errorPolicy: () => policies.shift() ?? 'done' },
    );
    await controller.start();
    controller.enqueue('k');
    await until(() => calls === 1, 'call 1');
    await tick();
    clock.advance(42);
    await until(() => calls === 2, 'call 2 after the policy delay');
    await tick();
    clock.advance(60_000);
    await tick();
    expect(calls).toBe(2);
    expect(queue.delayedLen()).toBe(0);
    await controller.stop();
  });

  it('does not retry a TerminalError, and reports it', async () => {
    let calls = 0;
    const { controller, clock, samples } = harness(async () => {
      calls++;
      throw new TerminalError('spec can never be satisfied');
    });
    await controller.start();
    controller.enqueue('k');
    await until(() => samples.length === 1, 'one reconcile');
    clock.advance(600_000);
    await tick();
    expect(calls).toBe(1);
    expect(samples[0]?.outcome).toBe('terminal');
    expect(samples[0]?.error).toBeInstanceOf(TerminalError);
    await controller.stop();
  });

  it('runs different keys concurrently up to the bound, never the same key twice at once', async () => {
    let active = 0;
    let peak = 0;
    const running = new Set<string>();
    let overlap = false;
    const { controller, samples } = harness(
      async (key) => {
        if (running.has(key)) overlap = true;
        running.add(key);
        peak = Math.max(peak, ++active);
        await new Promise((r) => setTimeout(r, 5));
        active--;
        running.delete(key);
        return 'done';
      },
      { concurrency: 3 },
    );
    await controller.start();
    for (let round = 0; round < 3; round++) {
      for (const k of ['a', 'b', 'c', 'd', 'e']) controller.enqueue(k);
      await new Promise((r) => setTimeout(r, 2));
    }
    await until(() => samples.length >= 5 && active === 0 && controller.queue.len() === 0, 'all reconciled');
    expect(peak).toBe(3);
    expect(overlap).toBe(false);
    await controller.stop();
  });

  it('stop() waits for the reconcile in flight', async () => {
    let finished = false;
    const { controller } = harness(async () => {
      await new Promise((r) => setTimeout(r, 20));
      finished = true;
      return 'done';
    });
    await controller.start();
    controller.enqueue('k');
    await tick();
    await controller.stop();
    expect(finished).toBe(true);
  });
});

describe('key mappers', () => {
  it('ownerKeys maps to owners of the given kind in the same namespace', () => {
    const pod = obj('p', 'ns', {
      ownerReferences: [
        { apiVersion: 'fedgpu.io/v1alpha1', kind: 'GpuJob', name: 'job-1', uid: 'u1' },
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'u2' },
      ],
    });
    expect(ownerKeys('GpuJob')(pod)).toEqual(['ns/job-1']);
    expect(ownerKeys('GpuJob', 'fedgpu.io/v1beta1')(pod)).toEqual([]);
    expect(ownerKeys('GpuJob')(obj('orphan', 'ns'))).toEqual([]);
  });

  it('labelKey maps to the object named by a label', () => {
    expect(labelKey('fedgpu.io/job')(obj('p', 'ns', { labels: { 'fedgpu.io/job': 'j' } }))).toBe('ns/j');
    expect(labelKey('fedgpu.io/provider', '')(obj('p', 'ns', { labels: { 'fedgpu.io/provider': 'acme' } }))).toBe('acme');
    expect(labelKey('fedgpu.io/job')(obj('p', 'ns'))).toBeUndefined();
  });
});
