import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Reserve } from '../../gen/proto/fedgpu/v1/market.js';
import { tenantNamespaceName, type TenantNamespaces, type TenantUsage } from '../tenancy/namespace.js';
import { PodRunner } from './runner.js';

// The runner's bookkeeping of Reserves, with the tenant namespaces faked (what a Reserve makes in
// a real cluster is tested against a real apiserver in test/integration/isolation-agent.test.ts).
// A Reserve comes from the hub, which may be hostile or buggy: what it can make the agent do is
// bounded here.

const kubeConfig = new KubeConfig();
kubeConfig.loadFromOptions({
  clusters: [{ name: 'none', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
  users: [{ name: 'none' }],
  contexts: [{ name: 'none', cluster: 'none', user: 'none' }],
  currentContext: 'none',
});

/** Tenant namespaces that only record what they were asked. */
function fakeTenancy() {
  const ensured: { tenant: string; usage: TenantUsage }[] = [];
  const rebound: { tenant: string; usage: TenantUsage }[] = [];
  const released: ReadonlySet<string>[] = [];
  const stalled = new Set<string>();
  const tenancy = {
    nameOf: (tenant: string) => tenantNamespaceName('fedgpu-jobs', tenant),
    ensure: async (tenant: string, usage: () => TenantUsage) => {
      ensured.push({ tenant, usage: usage() });
      // A namespace whose apiserver does not answer.
      if (stalled.has(tenant)) await new Promise(() => undefined);
      return tenantNamespaceName('fedgpu-jobs', tenant);
    },
    stillPrepared: async () => true,
    rebound: async (tenant: string, usage: () => TenantUsage) => void rebound.push({ tenant, usage: usage() }),
    release: async (inUse: () => ReadonlySet<string>) => (released.push(inUse()), []),
  };
  return { tenancy: tenancy as unknown as TenantNamespaces, ensured, rebound, released, stalled };
}

let uid = 0;
const reserve = (over: Partial<Reserve> = {}): Reserve => ({ jobUid: `job-${++uid}`, epoch: 1, namespace: 'team-a', replicas: 1, gpusPerReplica: 1, ...over });

afterEach(() => {
  vi.useRealTimers();
});

describe('Reserve', () => {
  it('readies the namespace with the reserved attempt counted in its quota', async () => {
    const { tenancy, ensured } = fakeTenancy();
    const runner = new PodRunner(kubeConfig, tenancy, pino({ level: 'silent' }));
    expect(runner.reserve(reserve({ replicas: 4, gpusPerReplica: 8 }))).toBe(true);
    await vi.waitFor(() => expect(ensured).toHaveLength(1));
    expect(ensured[0]).toEqual({ tenant: 'team-a', usage: { pods: 4, gpus: 32 } });
    runner.stop();
  });

  it('ignores a malformed Reserve (sizes the GpuJob CRD does not allow, no job) and a repeated one', async () => {
    const { tenancy, ensured } = fakeTenancy();
    const runner = new PodRunner(kubeConfig, tenancy, pino({ level: 'silent' }));
    for (const bad of [{ replicas: 0 }, { replicas: 257 }, { gpusPerReplica: 0 }, { gpusPerReplica: 17 }, { jobUid: '' }]) {
      expect(runner.reserve(reserve(bad)), JSON.stringify(bad)).toBe(false);
    }
    const once = reserve();
    expect(runner.reserve(once)).toBe(true);
    expect(runner.reserve(once)).toBe(false);
    await vi.waitFor(() => expect(ensured).toHaveLength(1));
    runner.stop();
  });

  it('holds at most 1,024 at once: a hub cannot grow the agent\'s memory or a quota without bound', async () => {
    const { tenancy, ensured } = fakeTenancy();
    const runner = new PodRunner(kubeConfig, tenancy, pino({ level: 'silent' }));
    const accepted = Array.from({ length: 1_100 }, () => runner.reserve(reserve())).filter(Boolean).length;
    expect(accepted).toBe(1_024);
    await vi.waitFor(() => expect(ensured).toHaveLength(1_024));
    // The quota the last one asked for counts the 1,024 and no more.
    expect(Math.max(...ensured.map((e) => e.usage.pods))).toBe(1_024);
    runner.stop();
  });

  it('lapses without its Assign: the quota goes back to what is left (nothing here)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { tenancy, ensured, rebound } = fakeTenancy();
    const runner = new PodRunner(kubeConfig, tenancy, pino({ level: 'silent' }));
    const r = reserve({ replicas: 2 });
    runner.reserve(r);
    await vi.waitFor(() => expect(ensured).toHaveLength(1));
    expect(rebound).toEqual([]);
    vi.advanceTimersByTime(runner.reservationLapseMs);
    await vi.waitFor(() => expect(rebound).toHaveLength(1));
    expect(rebound[0]).toEqual({ tenant: 'team-a', usage: { pods: 0, gpus: 0 } });
    // Lapsed: a second Reserve for the same attempt is a new one.
    expect(runner.reserve(r)).toBe(true);
    runner.stop();
  });

  it('counts what is still queued to be prepared: lapsed Reserves behind a stalled apiserver hold their place', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { tenancy, stalled } = fakeTenancy();
    stalled.add('team-a');
    const runner = new PodRunner(kubeConfig, tenancy, pino({ level: 'silent' }));
    expect(Array.from({ length: 1_024 }, () => runner.reserve(reserve())).every(Boolean)).toBe(true);
    vi.advanceTimersByTime(runner.reservationLapseMs);
    // None is held any more, but all 1,024 still wait for the apiserver or for a turn.
    expect(runner.reserve(reserve())).toBe(false);
    runner.stop();
  });

  it('an Assign does not wait for its Reserve while that waits for a turn: it prepares the namespace itself', async () => {
    const { tenancy, ensured, stalled } = fakeTenancy();
    stalled.add('team-stuck');
    const runner = new PodRunner(kubeConfig, tenancy, pino({ level: 'silent' }));
    // Every slot held by a namespace whose apiserver does not answer.
    for (let i = 0; i < 16; i++) runner.reserve(reserve({ namespace: 'team-stuck' }));
    const r = reserve();
    expect(runner.reserve(r)).toBe(true);
    await vi.waitFor(() => expect(ensured).toHaveLength(16));
    const template = { spec: { containers: [{ name: 'main', image: 'example/train:v1' }] } };
    // The pod create itself fails here (no apiserver): the attempt is retried later, and apply returns.
    await runner.apply({
      jobUid: r.jobUid, epoch: r.epoch, namespace: 'team-a', podTemplates: [Buffer.from(JSON.stringify(template))], nodeNames: ['n0'],
      gpusPerReplica: 1, checkpointDir: '', gracePeriodSeconds: 5, env: [], pricePerGpuHour: '1', coveredGpuSeconds: 0, secrets: [],
    });
    expect(ensured.slice(16)).toEqual([{ tenant: 'team-a', usage: { pods: 1, gpus: 1 } }]);
    runner.stop();
  });

  it('a cancel of the reserved attempt ends the reservation: nothing lapses later', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { tenancy, ensured, released, rebound } = fakeTenancy();
    const runner = new PodRunner(kubeConfig, tenancy, pino({ level: 'silent' }));
    const r = reserve();
    runner.reserve(r);
    await vi.waitFor(() => expect(ensured).toHaveLength(1));
    await runner.cancel(r.jobUid, r.epoch, 0);
    const releasedByCancel = released.length;
    vi.advanceTimersByTime(runner.reservationLapseMs);
    await Promise.resolve();
    expect(released).toHaveLength(releasedByCancel);
    expect(rebound).toEqual([]);
    runner.stop();
  });
});
