import { KubeConfig, type KubernetesListObject, type KubernetesObject, type Watch } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { sleep } from './clock.js';
import { type DelayFn, Informer, type InformerSource } from './informer.js';
import { typedSource } from './informer-sources.js';
import { StringInterner } from './intern.js';
import { silentLogger } from './logger.js';

// The informer's own logic without an apiserver: sync, restart with backoff, stop. The real
// list/watch protocol is covered by test/integration/runtime-controller.test.ts.

type Obj = KubernetesObject;
const obj = (name: string, rv: string): Obj => ({ metadata: { name, namespace: 'ns', resourceVersion: rv } });

type WatchArgs = Parameters<Watch['watch']>;

/** A watch transport the test drives: records each watch; emit() and end() act on the latest. */
class ScriptedWatch {
  calls: { path: string; query: WatchArgs[1]; callback: WatchArgs[2]; done: WatchArgs[3] }[] = [];
  async watch(...[path, query, callback, done]: WatchArgs): Promise<AbortController> {
    this.calls.push({ path, query, callback, done });
    const controller = new AbortController();
    controller.signal.addEventListener('abort', () => done(new DOMException('aborted', 'AbortError')));
    return controller;
  }
  emit(type: string, o: Obj): void {
    this.calls.at(-1)!.callback(type, o);
  }
  end(err: unknown): void {
    this.calls.at(-1)!.done(err);
  }
}

function setup(listResults: (KubernetesListObject<Obj> | Error)[], interner = new StringInterner()) {
  const transport = new ScriptedWatch();
  let lists = 0;
  const source: InformerSource<Obj> = {
    path: '/apis/x/v1/namespaces/ns/things',
    list: async () => {
      const result = listResults[Math.min(lists++, listResults.length - 1)]!;
      if (result instanceof Error) throw result;
      return result;
    },
  };
  const delays: number[] = [];
  const delay: DelayFn = async (ms, signal) => {
    delays.push(ms);
    await sleep(1, signal); // the real wait is tiny; the test checks the requested ms
  };
  const informer = new Informer(source, {
    kubeConfig: new KubeConfig(),
    watch: transport,
    delay,
    random: () => 1, // jitter at its maximum: the delay equals the capped exponential step
    backoff: { initialMs: 100, maxMs: 400 },
    logger: silentLogger,
    interner,
  });
  return { informer, transport, delays, lists: () => lists };
}

const list = (rv: string, ...items: Obj[]): KubernetesListObject<Obj> => ({ metadata: { resourceVersion: rv }, items });
const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('Informer', () => {
  it('start() resolves once the initial list is cached; the watch resumes from its resourceVersion, with bookmarks', async () => {
    const { informer, transport } = setup([list('10', obj('a', '9'))]);
    const added: string[] = [];
    informer.on('add', (o) => added.push(o.metadata!.name!));
    await informer.start();
    expect(informer.hasSynced()).toBe(true);
    expect(informer.get('ns/a')?.metadata?.resourceVersion).toBe('9');
    expect(added).toEqual(['a']);
    expect(transport.calls[0]?.query).toMatchObject({ resourceVersion: '10', allowWatchBookmarks: true });
    transport.emit('ADDED', obj('b', '11'));
    expect(informer.list().map((o) => o.metadata?.name)).toEqual(['a', 'b']);
    await informer.stop();
  });

  it('drops metadata.managedFields from listed and watched objects, keeping the rest of metadata', async () => {
    const managed = (name: string, rv: string): Obj => ({
      metadata: { ...obj(name, rv).metadata, labels: { k: 'v' }, managedFields: [{ manager: 'kubectl', operation: 'Apply' }] },
    });
    const { informer, transport } = setup([list('10', managed('a', '9'))]);
    await informer.start();
    transport.emit('MODIFIED', managed('b', '11'));
    for (const key of ['ns/a', 'ns/b']) {
      const cached = informer.get(key)!;
      expect(cached.metadata).not.toHaveProperty('managedFields');
      expect(cached.metadata?.labels).toEqual({ k: 'v' });
    }
    await informer.stop();
  });

  it('passes listed and watched objects through its string interner', async () => {
    const labelled = (name: string, rv: string): Obj => ({ metadata: { ...obj(name, rv).metadata, labels: { team: 'vision' } } });
    const interner = new StringInterner();
    const { informer, transport } = setup([list('10', labelled('a', '9'))], interner);
    await informer.start();
    expect(interner.stats).toMatchObject({ misses: 3, hits: 0 }); // a, ns, vision
    transport.emit('ADDED', labelled('b', '11'));
    expect(interner.stats).toMatchObject({ misses: 4, hits: 2 }); // b new; ns and vision held
    expect(informer.get('ns/b')?.metadata?.labels).toEqual({ team: 'vision' });
    await informer.stop();
  });

  it('interns nothing of a sensitive source (Secrets): the shared table would outlive their values', async () => {
    const interner = new StringInterner();
    const transport = new ScriptedWatch();
    const source: InformerSource<Obj> = { path: '/api/v1/namespaces/ns/secrets', sensitive: true, list: async () => list('1', obj('a', '1')) };
    const informer = new Informer(source, { kubeConfig: new KubeConfig(), watch: transport, logger: silentLogger, interner });
    await informer.start();
    transport.emit('ADDED', obj('b', '2'));
    expect(informer.list()).toHaveLength(2);
    expect(interner.stats).toEqual({ hits: 0, misses: 0, resets: 0 });
    await informer.stop();
    expect(typedSource({ path: '/api/v1/secrets', list: async () => list('1'), model: 'V1Secret' }).sensitive).toBe(true);
    expect(typedSource({ path: '/api/v1/pods', list: async () => list('1'), model: 'V1Pod' }).sensitive).toBeUndefined();
  });

  it('retries a failing list with capped, jittered exponential backoff, then syncs', async () => {
    const down = new Error('connection refused');
    const { informer, delays, lists } = setup([down, down, down, down, list('5', obj('a', '1'))]);
    await informer.start();
    expect(lists()).toBe(5);
    expect(delays).toEqual([100, 200, 400, 400]);
    await informer.stop();
  });

  it('jitter spreads the delay over the upper half of the step', async () => {
    const transport = new ScriptedWatch();
    const delays: number[] = [];
    let calls = 0;
    const informer = new Informer(
      { path: '/p', list: async () => (calls++ < 1 ? Promise.reject(new Error('x')) : list('1')) },
      {
        kubeConfig: new KubeConfig(),
        watch: transport,
        random: () => 0,
        backoff: { initialMs: 100, maxMs: 400 },
        logger: silentLogger,
        delay: async (ms) => void delays.push(ms),
      },
    );
    await informer.start();
    expect(delays).toEqual([50]);
    await informer.stop();
  });

  it('restarts a watch that failed, resuming from the last resourceVersion; activity resets the backoff', async () => {
    const { informer, transport, delays, lists } = setup([list('10')]);
    await informer.start();
    transport.emit('ADDED', obj('a', '12'));
    transport.end(Object.assign(new Error('ECONNRESET'), { code: 'ECONNRESET' }));
    await tick(20);
    expect(transport.calls).toHaveLength(2);
    expect(transport.calls[1]?.query).toMatchObject({ resourceVersion: '12' });
    expect(lists()).toBe(1);
    transport.end(new Error('again'));
    await tick(20);
    transport.end(new Error('and again'));
    await tick(20);
    expect(delays).toEqual([100, 200, 400]);
    transport.emit('MODIFIED', obj('a', '13')); // the watch works again
    transport.end(new Error('later failure'));
    await tick(20);
    expect(delays.at(-1)).toBe(100);
    await informer.stop();
  });

  it('relists after 410 Gone and reports what changed meanwhile', async () => {
    const { informer, transport, lists } = setup([list('10', obj('a', '1'), obj('b', '2')), list('20', obj('b', '2'), obj('c', '15'))]);
    const seen: string[] = [];
    informer.on('add', (o) => seen.push(`add ${o.metadata!.name}`));
    informer.on('delete', (o) => seen.push(`delete ${o.metadata!.name}`));
    await informer.start();
    seen.length = 0;
    transport.end(Object.assign(new Error('Gone'), { statusCode: 410 }));
    await tick(20);
    expect(lists()).toBe(2);
    expect(seen.sort()).toEqual(['add c', 'delete a']);
    await informer.stop();
  });

  it('stop() cancels a pending restart and opens no new watch; start() then refuses', async () => {
    const { informer, transport, lists } = setup([list('10')]);
    await informer.start();
    transport.end(new Error('boom'));
    await informer.stop();
    await tick(30);
    expect(transport.calls).toHaveLength(1);
    expect(lists()).toBe(1);
    await expect(informer.start()).rejects.toThrow(/stopped/);
  });

  it('start() rejects when stopped before the first list succeeded', async () => {
    const { informer } = setup([new Error('down')]);
    const started = informer.start();
    await informer.stop();
    await expect(started).rejects.toThrow(/stopped before its first list/);
  });

  it('a throwing handler does not break the others', async () => {
    const { informer, transport } = setup([list('1')]);
    const seen: string[] = [];
    informer.on('add', () => {
      throw new Error('bad handler');
    });
    const off = informer.on('add', (o) => seen.push(o.metadata!.name!));
    await informer.start();
    transport.emit('ADDED', obj('a', '2'));
    off();
    transport.emit('ADDED', obj('b', '3'));
    expect(seen).toEqual(['a']);
    await informer.stop();
  });
});
