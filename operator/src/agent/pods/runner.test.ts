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
  const tenancy = {
    nameOf: (tenant: string) => tenantNamespaceName('fedgpu-jobs', tenant),
    ensure: async (tenant: string, usage: () => TenantUsage) => {
      ensured.push({ tenant, usage: usage() });
      return tenantNamespaceName('fedgpu-jobs', tenant);
    },
    rebound: async (tenant: string, usage: () => TenantUsage) => void rebound.push({ tenant, usage: usage() }),
    release: async (inUse: () => ReadonlySet<string>) => (released.push(inUse()), []),
  };
  return { tenancy: tenancy as unknown as TenantNamespaces, ensured, rebound, released };
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

  it('lapses without its Assign: the namespace goes when nothing else uses it', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { tenancy, ensured, released } = fakeTenancy();
    const runner = new PodRunner(kubeConfig, tenancy, pino({ level: 'silent' }));
    const r = reserve();
    runner.reserve(r);
    await vi.waitFor(() => expect(ensured).toHaveLength(1));
    expect(released).toEqual([]);
    vi.advanceTimersByTime(runner.reservationLapseMs);
    await vi.waitFor(() => expect(released).toHaveLength(1));
    expect(released[0]!.has(tenantNamespaceName('fedgpu-jobs', 'team-a'))).toBe(false);
    // Lapsed: a second Reserve for the same attempt is a new one.
    expect(runner.reserve(r)).toBe(true);
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
