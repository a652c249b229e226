import type { CoreV1Event, KubernetesObject } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { EventRecorder, type EventSink } from './events.js';
import { silentLogger } from './logger.js';

class FakeSink implements EventSink {
  events = new Map<string, CoreV1Event>();
  calls: string[] = [];
  failCreate = false;
  async create(namespace: string, event: CoreV1Event): Promise<CoreV1Event> {
    this.calls.push('create');
    await new Promise((r) => setTimeout(r, 1));
    if (this.failCreate) throw Object.assign(new Error('apiserver down'), { code: 503 });
    this.events.set(`${namespace}/${event.metadata.name}`, structuredClone(event));
    return event;
  }
  async patch(namespace: string, name: string, patch: Partial<CoreV1Event>): Promise<CoreV1Event> {
    this.calls.push('patch');
    const e = this.events.get(`${namespace}/${name}`);
    if (!e) throw Object.assign(new Error('not found'), { code: 404 });
    Object.assign(e, patch);
    return e;
  }
  list(): CoreV1Event[] {
    return [...this.events.values()];
  }
}

const job: KubernetesObject = { apiVersion: 'fedgpu.io/v1alpha1', kind: 'GpuJob', metadata: { name: 'j', namespace: 'ns', uid: 'u-1' } };
const provider: KubernetesObject = { apiVersion: 'fedgpu.io/v1alpha1', kind: 'GpuProvider', metadata: { name: 'acme', uid: 'u-2' } };

function setup(windowMs = 60_000, maxRemembered = 100) {
  const sink = new FakeSink();
  let t = Date.parse('2025-01-01T00:00:00Z');
  const recorder = new EventRecorder({
    sink,
    controller: 'fedgpu.io/test',
    instance: 'pod-0',
    windowMs,
    maxRemembered,
    now: () => new Date(t),
    logger: silentLogger,
  });
  return { sink, recorder, advance: (ms: number) => (t += ms) };
}

describe('EventRecorder', () => {
  it('creates a core/v1 Event with the involved object, type, reason and reporting controller', async () => {
    const { sink, recorder } = setup();
    await recorder.normal(job, 'Scheduled', 'placed on acme');
    const [e] = sink.list();
    expect(e).toMatchObject({
      metadata: { namespace: 'ns' },
      involvedObject: { apiVersion: 'fedgpu.io/v1alpha1', kind: 'GpuJob', name: 'j', namespace: 'ns', uid: 'u-1' },
      type: 'Normal',
      reason: 'Scheduled',
      message: 'placed on acme',
      count: 1,
      reportingComponent: 'fedgpu.io/test',
      reportingInstance: 'pod-0',
      source: { component: 'fedgpu.io/test' },
    });
    expect(e?.metadata.name).toMatch(/^j\.[0-9a-f]+$/);
  });

  it('merges identical repeats within the window by bumping count and lastTimestamp', async () => {
    const { sink, recorder, advance } = setup();
    await recorder.warning(job, 'HeartbeatMissed', 'no heartbeat for 30s');
    advance(5_000);
    await recorder.warning(job, 'HeartbeatMissed', 'no heartbeat for 30s');
    advance(5_000);
    await recorder.warning(job, 'HeartbeatMissed', 'no heartbeat for 30s');
    expect(sink.calls).toEqual(['create', 'patch', 'patch']);
    const [e] = sink.list();
    expect(e?.count).toBe(3);
    expect(e?.lastTimestamp?.getTime()! - e?.firstTimestamp?.getTime()!).toBe(10_000);
  });

  it('keeps events that differ in message, reason, type or object apart', async () => {
    const { sink, recorder } = setup();
    await recorder.warning(job, 'HeartbeatMissed', 'a');
    await recorder.warning(job, 'HeartbeatMissed', 'b');
    await recorder.warning(job, 'AgentLost', 'a');
    await recorder.normal(job, 'HeartbeatMissed', 'a');
    await recorder.warning(provider, 'HeartbeatMissed', 'a');
    expect(sink.calls).toEqual(['create', 'create', 'create', 'create', 'create']);
  });

  it('starts a new event after the window', async () => {
    const { sink, recorder, advance } = setup(60_000);
    await recorder.normal(job, 'Scheduled', 'x');
    advance(60_001);
    await recorder.normal(job, 'Scheduled', 'x');
    expect(sink.calls).toEqual(['create', 'create']);
  });

  it('concurrent identical events create one Event, not two', async () => {
    const { sink, recorder } = setup();
    await Promise.all([1, 2, 3].map(() => recorder.normal(job, 'Scheduled', 'x')));
    expect(sink.calls).toEqual(['create', 'patch', 'patch']);
    expect(sink.list()[0]?.count).toBe(3);
  });

  it('creates a new Event when the remembered one is gone', async () => {
    const { sink, recorder } = setup();
    await recorder.normal(job, 'Scheduled', 'x');
    sink.events.clear();
    await recorder.normal(job, 'Scheduled', 'x');
    expect(sink.calls).toEqual(['create', 'patch', 'create']);
    expect(sink.list()[0]?.count).toBe(1);
  });

  it('puts events about cluster-scoped objects in the default namespace', async () => {
    const { sink, recorder } = setup();
    await recorder.normal(provider, 'Registered', 'wallet verified');
    expect(sink.list()[0]?.metadata.namespace).toBe('default');
  });

  it('forgets the least recently seen events beyond its bound', async () => {
    const { sink, recorder } = setup(60_000, 2);
    await recorder.normal(job, 'A', 'x');
    await recorder.normal(job, 'B', 'x');
    await recorder.normal(job, 'C', 'x'); // A is forgotten
    await recorder.normal(job, 'A', 'x');
    expect(sink.calls).toEqual(['create', 'create', 'create', 'create']);
  });

  it('writes at most maxInFlight events at once, and every one of them', async () => {
    let active = 0;
    let most = 0;
    const created: string[] = [];
    const sink: EventSink = {
      async create(_namespace, event) {
        active++;
        most = Math.max(most, active);
        await new Promise((r) => setTimeout(r, 1));
        active--;
        created.push(event.reason ?? '');
        return event;
      },
      patch: async () => { throw new Error('unexpected'); },
    };
    const recorder = new EventRecorder({ sink, controller: 'fedgpu.io/test', instance: 'pod-0', maxInFlight: 2, logger: silentLogger });
    const objects = Array.from({ length: 20 }, (_, i) => ({ ...job, metadata: { ...job.metadata, name: `j-${i}`, uid: `u-${i}` } }));
    await Promise.all(objects.map((o) => recorder.normal(o, 'Scheduled', 'placed')));
    expect(created).toHaveLength(20);
    expect(most).toBe(2);
  });

  it('never fails the caller when the API fails', async () => {
    const { sink, recorder } = setup();
    sink.failCreate = true;
    await expect(recorder.normal(job, 'Scheduled', 'x')).resolves.toBeUndefined();
  });

  it('refuses a reason that is not PascalCase, or an unknown type', () => {
    const { recorder } = setup();
    expect(() => recorder.normal(job, 'heartbeat missed', 'x')).toThrow(/PascalCase/);
    expect(() => recorder.record(job, 'Error' as 'Normal', 'Bad', 'x')).toThrow(/Normal or Warning/);
  });
});
