import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type KubeConfig, type V1Lease, type V1Pod, Watch } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { CLEANUP_FINALIZER, JobConditions } from '../../operator/src/api/constants.js';
import { API_VERSION, type GpuJob, type GpuJobStatus, type GpuProvider } from '../../operator/src/api/types.js';
import type { Action } from '../../operator/src/runtime/action.js';
import { setCondition } from '../../operator/src/runtime/conditions.js';
import { Controller, type ReconcileSample, ownerKeys } from '../../operator/src/runtime/controller.js';
import { EventRecorder, coreEventSink } from '../../operator/src/runtime/events.js';
import { applyFinalizer } from '../../operator/src/runtime/finalizer.js';
import { type DelayFn, Informer } from '../../operator/src/runtime/informer.js';
import { customResourceSource, podSource } from '../../operator/src/runtime/informer-sources.js';
import {
  type CustomObjectClient,
  type KubeClients,
  gpuJobClient,
  gpuProviderClient,
  isNotFound,
  loadKubeConfig,
  makeClients,
  objectKey,
} from '../../operator/src/runtime/kube.js';
import { LeaderElector } from '../../operator/src/runtime/leader-election.js';
import { silentLogger } from '../../operator/src/runtime/logger.js';
import { StatusWriter } from '../../operator/src/runtime/status-writer.js';
import { runKubectl } from '../../operator/src/testbed/kubectl.js';
import { repoRoot } from '../../operator/src/testbed/tools.js';

// The controller runtime against a real kube-apiserver: informers, a toy controller writing status
// conditions, the finalizer, events, leader election and watch restarts.

const kubeconfig = inject('kubeconfig');
const NS = {
  informer: 'runtime-test-informer',
  controller: 'runtime-test-controller',
  finalizer: 'runtime-test-finalizer',
  events: 'runtime-test-events',
  lease: 'runtime-test-lease',
  restart: 'runtime-test-restart',
  core: 'runtime-test-core',
};

let kc: KubeConfig;
let clients: KubeClients;
let jobs: CustomObjectClient<GpuJob>;
const cleanups: (() => Promise<unknown>)[] = [];

const template = parse(readFileSync(join(repoRoot, 'examples', 'gpujob-single.yaml'), 'utf8')) as GpuJob;
function jobBody(namespace: string, name: string, labels?: Record<string, string>): GpuJob {
  return { ...structuredClone(template), metadata: { name, namespace, labels } };
}

/** Polls fast; returns how long it took (printed, never asserted). */
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await check()) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(async () => {
  const crds = join(repoRoot, 'crds');
  const applied = await runKubectl(kubeconfig, ['apply', '--server-side', '-f', crds]);
  expect(applied.code, applied.stderr).toBe(0);
  const established = await runKubectl(kubeconfig, ['wait', '--for=condition=Established', '--timeout=60s', '-f', crds]);
  expect(established.code, established.stderr).toBe(0);
  kc = loadKubeConfig(kubeconfig);
  clients = makeClients(kc);
  jobs = gpuJobClient(clients.customObjects, 'runtime-test');
  for (const name of Object.values(NS)) {
    await clients.core.createNamespace({ body: { metadata: { name } } }).catch((err) => {
      if ((err as { code?: number }).code !== 409) throw err;
    });
  }
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

function informerFor(
  namespace: string,
  extra: { delay?: DelayFn; watch?: Pick<Watch, 'watch'>; onList?: () => void } = {},
): Informer<GpuJob> {
  const source = customResourceSource(jobs, { namespace });
  const list = source.list;
  source.list = () => {
    extra.onList?.();
    return list();
  };
  const informer = new Informer(source, { kubeConfig: kc, logger: silentLogger, delay: extra.delay, watch: extra.watch });
  cleanups.push(() => informer.stop());
  return informer;
}

function recordEvents(informer: Informer<GpuJob>): string[] {
  const seen: string[] = [];
  for (const event of ['add', 'update', 'delete'] as const) informer.on(event, (o) => seen.push(`${event} ${o.metadata.name}`));
  return seen;
}

describe('Informer', () => {
  it('lists before start() resolves, then sees create, update and delete', async () => {
    await jobs.create(jobBody(NS.informer, 'existing'));
    const informer = informerFor(NS.informer);
    const seen = recordEvents(informer);
    await informer.start();
    expect(informer.hasSynced()).toBe(true);
    expect(informer.get(`${NS.informer}/existing`)?.spec.gpusPerReplica).toBe(1);
    expect(seen).toEqual(['add existing']);

    await jobs.create(jobBody(NS.informer, 'fresh'));
    await until('add', () => seen.includes('add fresh'));
    await jobs.patch('fresh', NS.informer, { spec: { budget: { maxPricePerGpuHour: '2.50' } } });
    await until('update', () => informer.get(`${NS.informer}/fresh`)?.spec.budget.maxPricePerGpuHour === '2.50');
    expect(seen).toContain('update fresh');
    await jobs.delete('fresh', NS.informer);
    await until('delete', () => seen.includes('delete fresh'));
    expect(informer.get(`${NS.informer}/fresh`)).toBeUndefined();
    expect(informer.list().map((j) => j.metadata.name)).toEqual(['existing']);
    expect(informer.list(NS.informer)).toHaveLength(1);
    await informer.stop();
  });
});

describe('a toy controller writing a status condition', () => {
  it('converges, and writes status only when it changed', async () => {
    const informer = informerFor(NS.controller);
    let statusPatches = 0;
    const writer = new StatusWriter<GpuJob>(async (obj, body) => {
      statusPatches++;
      return jobs.patchStatus(obj.metadata.name!, obj.metadata.namespace, body, { fieldManager: 'toy-controller' });
    });
    const samples: ReconcileSample[] = [];
    // Reconciles that read a version of the object and found nothing to write, numbered by start.
    let started = 0;
    const quiet: { key: string; resourceVersion: string | undefined; started: number }[] = [];
    const reconcile = async (key: string): Promise<Action> => {
      const job = informer.get(key);
      if (!job) return 'done';
      const n = ++started;
      // Desired status from the object alone: the same input always gives the same status.
      const { conditions } = setCondition(
        job.status?.conditions,
        {
          type: JobConditions.Scheduled,
          status: 'False',
          reason: 'WaitingForProviders',
          message: `no provider below ${job.spec.budget.maxPricePerGpuHour} per GPU-hour`,
          observedGeneration: job.metadata.generation,
        },
        new Date(),
      );
      const desired: GpuJobStatus = { ...job.status, phase: 'Pending', conditions };
      const result = await writer.write(job, desired);
      if (result.outcome === 'unchanged') quiet.push({ key, resourceVersion: job.metadata.resourceVersion, started: n });
      return result.outcome === 'conflict' ? result.action : 'done';
    };
    const controller = new Controller({
      name: 'toy',
      reconcile,
      concurrency: 2,
      logger: silentLogger,
      metrics: { reconciled: (s) => samples.push(s) },
    });
    controller.watch(informer);
    cleanups.push(() => controller.stop());
    await controller.start();

    await jobs.create(jobBody(NS.controller, 'a'));
    await jobs.create(jobBody(NS.controller, 'b'));
    const converged = async (name: string, price: string) => {
      const job = await jobs.get(name, NS.controller);
      const c = job.status?.conditions?.find((x) => x.type === 'Scheduled');
      return job.status?.phase === 'Pending' && c?.message.includes(price) === true && c.observedGeneration === job.metadata.generation;
    };
    // The controller has caught up with an object once a reconcile begun after `since` read the
    // version the apiserver holds now and wrote nothing: a write would have made a newer version,
    // and with nothing written no event wakes it again.
    const caughtUp = (since: number, ...names: string[]) =>
      until(`${names.join(', ')} reconciled at their latest version, writing nothing`, async () => {
        for (const name of names) {
          const { resourceVersion } = (await jobs.get(name, NS.controller)).metadata;
          const key = `${NS.controller}/${name}`;
          if (!quiet.some((q) => q.key === key && q.resourceVersion === resourceVersion && q.started > since)) return false;
        }
        return true;
      });
    await until('both converge', async () => (await converged('a', '1.20')) && (await converged('b', '1.20')));
    // The status writes came back as watch events and were reconciled again: no new writes.
    await caughtUp(0, 'a', 'b');
    expect(statusPatches).toBe(2);

    // More reconciles of unchanged objects (a label change, a manual enqueue) write nothing.
    let since = started;
    await jobs.patch('a', NS.controller, { metadata: { labels: { touched: 'yes' } } });
    controller.enqueue(`${NS.controller}/b`);
    await caughtUp(since, 'a', 'b');
    expect(statusPatches).toBe(2);

    // A spec change is a real change: exactly one more write, and lastTransitionTime stays.
    const before = (await jobs.get('a', NS.controller)).status?.conditions?.[0]?.lastTransitionTime;
    since = started;
    await jobs.patch('a', NS.controller, { spec: { budget: { maxPricePerGpuHour: '0.90' } } });
    await until('a reconverges', () => converged('a', '0.90'));
    await caughtUp(since, 'a');
    expect(statusPatches).toBe(3);
    expect((await jobs.get('a', NS.controller)).status?.conditions?.[0]?.lastTransitionTime).toBe(before);

    expect(samples.every((s) => s.controller === 'toy' && s.outcome === 'success' && s.durationMs >= 0)).toBe(true);
    await controller.stop();
  });
});

describe('finalizer', () => {
  it('is added before apply runs; on delete, cleanup runs, then the object is gone', async () => {
    const informer = informerFor(NS.finalizer);
    const log: string[] = [];
    let cleanupRounds = 0;
    const patchMetadata = (obj: GpuJob, body: object) => jobs.patch(obj.metadata.name!, obj.metadata.namespace, body);
    const controller = new Controller({
      name: 'finalizing',
      logger: silentLogger,
      reconcile: async (key) => {
        const job = informer.get(key);
        if (!job) return 'done';
        return applyFinalizer(
          job,
          CLEANUP_FINALIZER,
          {
            apply: async (o) => {
              log.push(`apply finalizers=${o.metadata.finalizers?.join(',')}`);
              return 'done';
            },
            cleanup: async (o) => {
              cleanupRounds++;
              log.push(`cleanup deleting=${o.metadata.deletionTimestamp !== undefined}`);
              // The first round reports "still releasing" (remote pods terminating, say).
              return cleanupRounds === 1 ? { requeueAfterMs: 300 } : 'done';
            },
          },
          patchMetadata,
        );
      },
    });
    controller.watch(informer);
    cleanups.push(() => controller.stop());
    await controller.start();

    await jobs.create(jobBody(NS.finalizer, 'guarded'));
    await until('finalizer added', async () => (await jobs.get('guarded', NS.finalizer)).metadata.finalizers?.includes(CLEANUP_FINALIZER) === true);
    await until('applied', () => log.length > 0);
    expect(log[0]).toBe(`apply finalizers=${CLEANUP_FINALIZER}`);

    await jobs.delete('guarded', NS.finalizer);
    // Held by the finalizer while cleanup runs.
    const held = await jobs.get('guarded', NS.finalizer);
    expect(held.metadata.deletionTimestamp).toBeDefined();
    await until('gone', async () => jobs.get('guarded', NS.finalizer).then(() => false, (err) => isNotFound(err)));
    expect(cleanupRounds).toBe(2);
    expect(log.filter((l) => l.startsWith('cleanup'))).toEqual(['cleanup deleting=true', 'cleanup deleting=true']);
    await controller.stop();
  });
});

describe('events', () => {
  it('records core/v1 Events and merges identical repeats into one with a count', async () => {
    const job = await jobs.create(jobBody(NS.events, 'noisy'));
    const recorder = new EventRecorder({ sink: coreEventSink(clients.core), controller: 'fedgpu.io/runtime-test', instance: 'test-0', logger: silentLogger });
    for (let i = 0; i < 3; i++) await recorder.warning(job, 'ProviderLost', 'provider acme stopped sending heartbeats');
    await recorder.normal(job, 'Scheduled', 'placed on acme');

    const list = await clients.core.listNamespacedEvent({ namespace: NS.events, fieldSelector: 'involvedObject.name=noisy' });
    const byReason = new Map(list.items.map((e) => [e.reason, e]));
    expect(list.items).toHaveLength(2);
    expect(byReason.get('ProviderLost')).toMatchObject({
      type: 'Warning',
      count: 3,
      involvedObject: { kind: 'GpuJob', name: 'noisy', namespace: NS.events, uid: job.metadata.uid },
      reportingComponent: 'fedgpu.io/runtime-test',
    });
    expect(byReason.get('Scheduled')?.count).toBe(1);
    // kubectl describe shows them.
    const described = await runKubectl(kubeconfig, ['describe', 'gj', 'noisy', '-n', NS.events]);
    expect(described.stdout).toMatch(/Warning\s+ProviderLost\s+.*\(x3 over/);
  });
});

describe('leader election', () => {
  const timing = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 };
  function candidate(identity: string) {
    const state = { leading: false, started: 0 };
    const elector = new LeaderElector({
      coordination: clients.coordination,
      namespace: NS.lease,
      name: 'runtime-test',
      identity,
      ...timing,
      logger: silentLogger,
      onStartedLeading: () => {
        state.leading = true;
        state.started++;
      },
      onStoppedLeading: () => (state.leading = false),
    });
    cleanups.push(() => elector.stop({ release: false }));
    return { elector, state };
  }

  /** Every version of the Lease, in the order the apiserver wrote them (a watch on it). */
  async function leaseHistory(): Promise<V1Lease[]> {
    const history: V1Lease[] = [];
    const watching = await new Watch(kc).watch(
      `/apis/coordination.k8s.io/v1/namespaces/${NS.lease}/leases`,
      { fieldSelector: 'metadata.name=runtime-test' },
      (phase, lease: V1Lease) => {
        if (phase === 'ADDED' || phase === 'MODIFIED') history.push(lease);
      },
      () => {},
    );
    cleanups.push(async () => watching.abort());
    return history;
  }
  // Watch events carry the Lease as JSON: MicroTimes are strings (microseconds; Date.parse keeps ms).
  const ms = (t: Date | string | undefined) => (t === undefined ? Number.NaN : new Date(t).getTime());

  it('one of two leads; a stopped leader is replaced once its lease ran out, a released one before', async () => {
    const history = await leaseHistory();
    const a = candidate('replica-a');
    const b = candidate('replica-b');
    a.elector.start();
    b.elector.start();
    await until('a leader', () => a.elector.isLeader() || b.elector.isLeader());
    const [leader, follower] = a.elector.isLeader() ? [a, b] : [b, a];
    const [leaderId, followerId] = leader === a ? ['replica-a', 'replica-b'] : ['replica-b', 'replica-a'];
    // Four renewals while the other candidate keeps trying: the holder never changes, one leads.
    await until('four renewals', () => history.filter((l) => l.spec?.holderIdentity === leaderId).length >= 5);
    await until('the follower saw the lease held', () => follower.elector.leader() === leaderId);
    expect(history.map((l) => l.spec?.holderIdentity)).toEqual(history.map(() => leaderId));
    expect([a.elector.isLeader(), b.elector.isLeader()].filter(Boolean)).toHaveLength(1);
    const lease = await clients.coordination.readNamespacedLease({ name: 'runtime-test', namespace: NS.lease });
    expect(lease.spec?.holderIdentity).toBe(leaderId);
    expect(lease.spec?.leaseDurationSeconds).toBe(3);
    const raw = await runKubectl(kubeconfig, ['get', 'lease', 'runtime-test', '-n', NS.lease, '-o', 'json']);
    expect(JSON.parse(raw.stdout).spec.renewTime).toMatch(/\.\d{6}Z$/); // MicroTime

    // Stopped without releasing (as if it crashed): the follower waits for the lease to run out.
    await leader.elector.stop({ release: false });
    const crashTakeover = await until('takeover after a crash', () => follower.elector.isLeader(), 15_000);
    console.log(`takeover after an unreleased stop: ${crashTakeover} ms (lease ${timing.leaseDurationMs} ms)`);
    await until('the takeover in the watch', () => history.some((l) => l.spec?.holderIdentity === followerId));
    const taken = history.findIndex((l) => l.spec?.holderIdentity === followerId);
    const lastRenewal = history[taken - 1]!.spec!;
    const takeover = history[taken]!.spec!;
    // Straight from the crashed leader's last renewal to the follower, as the next transition,
    // once that renewal had run out (both times from this process's clock). The follower counts
    // the lease duration from when it read that renewal, which was after its renewTime, but stamps
    // acquireTime before its last read: the stamp may precede expiry by that one read. Taking
    // over at its next retry instead would be within 2.2 retry periods of the renewal.
    expect(lastRenewal.holderIdentity).toBe(leaderId);
    const crashGap = ms(takeover.acquireTime) - ms(lastRenewal.renewTime);
    console.log(`crashed leader's last renewal to the takeover, by the Lease: ${crashGap} ms`);
    expect(crashGap).toBeGreaterThanOrEqual(timing.leaseDurationMs - timing.retryPeriodMs);
    expect(takeover.leaseTransitions).toBe((lastRenewal.leaseTransitions ?? 0) + 1);

    // Released on a graceful stop: a new candidate takes over at its next retry.
    const c = candidate('replica-c');
    c.elector.start();
    // c has read the lease, found it held and stays a candidate.
    await until('c saw the lease held', () => c.elector.leader() === followerId);
    expect(c.elector.isLeader()).toBe(false);
    await follower.elector.stop();
    expect(follower.state.leading).toBe(false);
    const releasedTakeover = await until('takeover after release', () => c.elector.isLeader(), 15_000);
    console.log(`takeover after a release: ${releasedTakeover} ms`);
    await until('the takeover in the watch', () => history.some((l) => l.spec?.holderIdentity === 'replica-c'));
    const byC = history.findIndex((l) => l.spec?.holderIdentity === 'replica-c');
    const released = history[byC - 1]!.spec!;
    const held = history.slice(0, byC - 1).filter((l) => l.spec?.holderIdentity === followerId).at(-1)!.spec!;
    // The follower emptied the holder, and c acquired before the follower's last renewal would
    // have run out: it did not wait for expiry.
    expect(released.holderIdentity).toBe('');
    const releaseGap = ms(history[byC]!.spec!.acquireTime) - ms(held.renewTime);
    console.log(`follower's last renewal to c's takeover, by the Lease: ${releaseGap} ms`);
    expect(releaseGap).toBeLessThan(timing.leaseDurationMs);
    expect(history[byC]!.spec!.leaseTransitions).toBe((held.leaseTransitions ?? 0) + 1);
    const after = await clients.coordination.readNamespacedLease({ name: 'runtime-test', namespace: NS.lease });
    expect(after.spec?.holderIdentity).toBe('replica-c');
    expect(after.spec?.leaseTransitions).toBe(2);
    await c.elector.stop();
  });
});

/** A Watch whose connection the test can cut, and which can answer one watch with 410 Gone. */
class CuttableWatch extends Watch {
  private current: AbortController | undefined;
  goneOnNextWatch = false;
  watches = 0;
  override async watch(...args: Parameters<Watch['watch']>): Promise<AbortController> {
    this.watches++;
    if (this.goneOnNextWatch) {
      this.goneOnNextWatch = false;
      const done = args[3];
      setImmediate(() => done(Object.assign(new Error('Gone'), { statusCode: 410 })));
      return new AbortController();
    }
    this.current = await super.watch(...args);
    return this.current;
  }
  cut(): void {
    this.current?.abort();
  }
}

describe('watch restart', () => {
  it('loses no event across a cut connection (resumed from the last resourceVersion) or a 410 (relisted)', async () => {
    const ns = NS.restart;
    await jobs.create(jobBody(ns, 'x'));
    await jobs.create(jobBody(ns, 'y'));
    const transport = new CuttableWatch(kc);
    // Every pause of the informer waits on `gate` while the test makes changes "offline".
    let openGate: () => void = () => {};
    let gate: Promise<void> = Promise.resolve();
    const delays: number[] = [];
    const delay: DelayFn = async (ms, signal) => {
      delays.push(ms);
      await Promise.race([gate, new Promise((r) => signal.addEventListener('abort', r, { once: true }))]);
    };
    let lists = 0;
    const informer = informerFor(ns, { delay, watch: transport, onList: () => lists++ });
    const seen = recordEvents(informer);
    await informer.start();
    expect(seen.sort()).toEqual(['add x', 'add y']);
    seen.length = 0;

    // 1. Cut the connection; change things while the informer waits to reconnect.
    gate = new Promise((r) => (openGate = r));
    transport.cut();
    await until('restart scheduled', () => delays.length > 0, 5_000);
    expect(delays[0]).toBeGreaterThan(0);
    expect(delays[0]).toBeLessThanOrEqual(500);
    await jobs.create(jobBody(ns, 'z'));
    await jobs.patch('x', ns, { metadata: { labels: { offline: 'edit' } } });
    await jobs.delete('y', ns);
    expect(seen).toEqual([]);
    openGate();
    await until('caught up', () => seen.length >= 3, 15_000);
    expect(seen.sort()).toEqual(['add z', 'delete y', 'update x']);
    expect(lists).toBe(1); // resumed from the resourceVersion: the changes came as watch events
    expect(informer.get(`${ns}/x`)?.metadata.labels?.offline).toBe('edit');

    // 2. Cut again and make the reconnect answer 410 Gone: the informer relists and diffs.
    seen.length = 0;
    gate = new Promise((r) => (openGate = r));
    transport.goneOnNextWatch = true;
    const watchesBefore = transport.watches;
    transport.cut();
    await until('restart scheduled', () => delays.length > 1, 5_000);
    await jobs.create(jobBody(ns, 'w'));
    await jobs.delete('z', ns);
    openGate();
    await until('relisted', () => seen.length >= 2, 15_000);
    expect(seen.sort()).toEqual(['add w', 'delete z']);
    expect(lists).toBe(2); // 410: relisted, and the list diff produced the events
    expect(transport.watches).toBeGreaterThanOrEqual(watchesBefore + 2); // the 410, then a fresh watch
    expect(informer.list().map(objectKey).sort()).toEqual([`${ns}/w`, `${ns}/x`]);

    // 3. Still watching after all that.
    await jobs.create(jobBody(ns, 'v'));
    await until('live again', () => seen.includes('add v'), 15_000);
    await informer.stop();
  });
});

describe('core kinds, cluster-scoped resources, owner mapping', () => {
  it('pods are typed alike from list and watch, and wake the GpuJob that owns them', async () => {
    const ns = NS.core;
    const owner = await jobs.create(jobBody(ns, 'owner'));
    const ownedPod = (name: string): V1Pod => ({
      metadata: {
        name,
        namespace: ns,
        ownerReferences: [{ apiVersion: API_VERSION, kind: 'GpuJob', name: 'owner', uid: owner.metadata.uid! }],
      },
      spec: { containers: [{ name: 'main', image: 'example/train' }] },
    });
    // The namespace's default ServiceAccount (needed to admit pods) appears shortly after the namespace.
    await until('pod admitted', () => clients.core.createNamespacedPod({ namespace: ns, body: ownedPod('listed') }).then(() => true, () => false));

    const jobInformer = informerFor(ns);
    const podInformer = new Informer(podSource(clients.core, { namespace: ns }), { kubeConfig: kc, logger: silentLogger });
    cleanups.push(() => podInformer.stop());
    const reconciled: string[] = [];
    const controller = new Controller({
      name: 'owner-mapping',
      logger: silentLogger,
      reconcile: async (key) => {
        reconciled.push(key);
        return 'done';
      },
    });
    controller.watch(jobInformer).watch(podInformer, ownerKeys('GpuJob', API_VERSION));
    cleanups.push(() => controller.stop());
    await controller.start(); // starts both informers and waits for their lists
    await until('initial reconcile', () => reconciled.includes(`${ns}/owner`));

    const listed = podInformer.get(`${ns}/listed`);
    expect(listed?.metadata?.creationTimestamp).toBeInstanceOf(Date);
    reconciled.length = 0;
    await clients.core.createNamespacedPod({ namespace: ns, body: ownedPod('watched') });
    await until('watched pod cached', () => podInformer.get(`${ns}/watched`) !== undefined);
    expect(podInformer.get(`${ns}/watched`)?.metadata?.creationTimestamp).toBeInstanceOf(Date); // decoded like list items
    await until('owner woken by its pod', () => reconciled.includes(`${ns}/owner`));
    expect(new Set(reconciled)).toEqual(new Set([`${ns}/owner`])); // pods map to the job key, never their own
    await controller.stop();
  });

  it('an informer on cluster-scoped GpuProviders; events about them go to the default namespace', async () => {
    const providers = gpuProviderClient(clients.customObjects, 'runtime-test');
    const example = parse(readFileSync(join(repoRoot, 'examples', 'gpuprovider.yaml'), 'utf8')) as GpuProvider;
    const informer = new Informer(customResourceSource(providers), { kubeConfig: kc, logger: silentLogger });
    cleanups.push(() => informer.stop());
    const seen = new Set<string>();
    informer.on('add', (p) => seen.add(`add ${p.metadata.name}`));
    informer.on('delete', (p) => seen.add(`delete ${p.metadata.name}`));
    await informer.start();
    const created = await providers.create({ ...example, metadata: { name: 'runtime-test-provider' } });
    await until('provider cached', () => informer.get('runtime-test-provider') !== undefined);
    expect(informer.get('runtime-test-provider')?.spec.region).toBe('eu-west');

    const recorder = new EventRecorder({ sink: coreEventSink(clients.core), controller: 'fedgpu.io/runtime-test', logger: silentLogger });
    await recorder.normal(created, 'Registered', 'wallet verified');
    const events = await clients.core.listNamespacedEvent({ namespace: 'default', fieldSelector: 'involvedObject.name=runtime-test-provider' });
    expect(events.items.map((e) => e.reason)).toEqual(['Registered']);

    await providers.delete('runtime-test-provider');
    await until('provider delete seen', () => seen.has('delete runtime-test-provider'));
    expect(seen.has('add runtime-test-provider')).toBe(true);
    await informer.stop();
  });
});
