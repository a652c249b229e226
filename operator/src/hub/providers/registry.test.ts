import { describe, expect, it } from 'vitest';
import pino from 'pino';
import type { GpuProvider, GpuProviderSpec, GpuProviderStatus } from '../../api/types.js';
import type { Inventory } from '../../gen/proto/fedgpu/v1/market.js';
import { isMassSilence, KubeProviderRegistry } from './registry.js';
import type { ProviderEvent, ProviderStore } from './store.js';

// The registry's write policy with an in-memory store (the real apiserver path is covered by
// test/integration/heartbeat-writes.test.ts): liveness in memory, status written on transitions,
// pool changes and once a period.

class MemoryStore implements ProviderStore {
  readonly objects = new Map<string, GpuProvider>();
  /** Wallet look-ups miss these names, as an informer that has not seen a fresh create yet. */
  readonly lagging = new Set<string>();
  creates = 0;
  readonly statusWrites: { name: string; status: Partial<GpuProviderStatus> }[] = [];
  readonly events: ProviderEvent[] = [];
  async findByWallet(wallet: string) {
    return [...this.objects.values()].find((p) => !this.lagging.has(p.metadata.name!) && p.spec.wallet.toLowerCase() === wallet.toLowerCase());
  }
  async get(name: string) {
    return this.objects.get(name);
  }
  async create(p: GpuProvider) {
    if (this.objects.has(p.metadata.name!)) throw Object.assign(new Error('already exists'), { code: 409 });
    this.creates++;
    this.objects.set(p.metadata.name!, structuredClone(p));
    return p;
  }
  /** The next status writes fail (the apiserver away), as many as this says. */
  failNext = 0;
  async patchStatus(name: string, status: Partial<GpuProviderStatus>) {
    if (this.failNext > 0) {
      this.failNext--;
      throw Object.assign(new Error('apiserver away'), { code: 503 });
    }
    this.statusWrites.push({ name, status });
    const p = this.objects.get(name)!;
    p.status = { ...p.status, ...structuredClone(status) };
  }
  async patchSpec(name: string, spec: Partial<GpuProviderSpec>) {
    const p = this.objects.get(name)!;
    p.spec = { ...p.spec, ...spec };
  }
  async event(_p: GpuProvider, e: ProviderEvent) {
    this.events.push(e);
  }
}

const WALLET = '0x1111111111111111111111111111111111111111';
const inventory = (idle: number): Inventory => ({
  pools: [
    {
      gpuProduct: 'NVIDIA-H100-80GB-HBM3',
      memoryMib: 81559,
      cudaDriverMajor: 12,
      nodes: [{ name: 'n1', totalGpus: 8, idleGpus: idle, ready: true, cordoned: false }],
      total: 8,
      allocatable: 8,
      idle,
      pricePerGpuHour: '2',
      breakEvenPricePerGpuHour: '1',
      offered: true,
      notOfferedReason: 0,
      runtimeClassName: '', cpuMilliPerGpu: 0, memoryMibPerGpu: 0,
    },
  ],
  unisolatedNamespaces: [],
});

function setup(periodMs = 60_000) {
  let now = Date.parse('2026-11-29T12:00:00Z');
  const store = new MemoryStore();
  const lost: string[] = [];
  // Timers run when the test says (fire), at the registry's fake clock.
  const timers = new Map<number, { fn: () => void; at: number }>();
  let nextTimer = 0;
  const registry = new KubeProviderRegistry({
    store,
    logger: pino({ level: 'silent' }),
    now: () => now,
    timers: {
      set: (fn, ms) => (timers.set(++nextTimer, { fn, at: now + ms }), nextTimer),
      clear: (handle) => void timers.delete(handle as number),
    },
    statusPeriodMs: periodMs,
    providerLostAfterMs: 15_000,
    onProviderLost: (p) => void lost.push(p),
  });
  const beat = (rttMs?: number) => registry.onHeartbeat(name, { rttMs, bandwidthMbps: undefined, at: new Date(now) });
  let name = '';
  const register = async () => {
    name = await registry.register(WALLET, { walletAddress: WALLET, agentVersion: 'v1', protocolVersion: 1, peer: '127.0.0.1' });
    return name;
  };
  /** Moves the clock and runs the timers due by then; resolves once the writes they queued are done. */
  const advance = async (ms: number) => {
    now += ms;
    for (const [id, t] of [...timers]) if (t.at <= now) (timers.delete(id), t.fn());
    await new Promise((r) => setImmediate(r));
  };
  return { store, registry, lost, beat, register, tick: (ms: number) => (now += ms), advance, timers, now: () => now, name: () => name };
}

/** A registered provider, Ready, with its first inventory (8 idle) written; `idle()` reads status. */
async function readyProvider() {
  const t = setup();
  await t.register();
  await t.registry.onInventory(t.name(), inventory(8));
  await t.beat();
  return { ...t, idle: () => t.store.objects.get(t.name())!.status?.idleGpus };
}

describe('KubeProviderRegistry heartbeat writes', () => {
  it('at rest writes status at most once per period, each carrying the latest heartbeat time and latency', async () => {
    const t = setup();
    await t.register();
    await t.registry.onInventory(t.name(), inventory(8));
    await t.beat(); // Ready: a transition
    await t.beat(12); // first latency measured
    const settled = t.store.statusWrites.length;
    expect(t.store.objects.get(t.name())!.status?.latency?.rttMs).toBe(12);
    // Ten minutes of heartbeats every 2 s, the same inventory re-sent every minute.
    for (let i = 1; i <= 300; i++) {
      t.tick(2_000);
      await t.beat(12 + (i % 3));
      if (i % 30 === 0) await t.registry.onInventory(t.name(), inventory(8));
    }
    const atRest = t.store.statusWrites.slice(settled);
    expect(atRest.length).toBeGreaterThanOrEqual(9);
    expect(atRest.length).toBeLessThanOrEqual(10);
    const status = t.store.objects.get(t.name())!.status!;
    // The coarse resolution: the written time is never older than one period.
    expect(t.now() - Date.parse(status.lastHeartbeatTime!)).toBeLessThan(60_000);
    expect(t.registry.heartbeatAgeMs(t.name())).toBe(0);
    expect(t.registry.lastHeard(t.name())).toBe(t.now());
  });

  it('writes a latency that moves only at the period; the leader reads it live at once', async () => {
    const t = setup();
    await t.register();
    await t.registry.onInventory(t.name(), inventory(8));
    await t.beat();
    await t.beat(95); // the first sample, taken while the machine was busy: written (a transition)
    expect(t.store.objects.get(t.name())!.status?.latency?.rttMs).toBe(95);
    const before = t.store.statusWrites.length;
    // The route changes, then jitters: no write before the period, the scheduler's link has it.
    for (let i = 1; i <= 25; i++) {
      t.tick(2_000);
      await t.beat(6 + (i % 2) * 40);
    }
    expect(t.store.statusWrites.length).toBe(before);
    expect(t.registry.link(t.name())?.rttMs).toBe(46);
    t.tick(10_000);
    await t.beat(6);
    expect(t.store.statusWrites.length).toBe(before + 1);
    expect(t.store.objects.get(t.name())!.status?.latency?.rttMs).toBe(6);
  });

  it('writes a changed inventory at once, with the heartbeat time; an identical one not at all', async () => {
    const t = setup();
    await t.register();
    await t.registry.onInventory(t.name(), inventory(8));
    await t.beat();
    t.tick(2_000);
    await t.beat();
    const before = t.store.statusWrites.length;
    await t.registry.onInventory(t.name(), inventory(8));
    expect(t.store.statusWrites.length).toBe(before);
    await t.registry.onInventory(t.name(), inventory(5));
    expect(t.store.statusWrites.length).toBe(before + 1);
    expect(t.store.statusWrites.at(-1)!.status).toMatchObject({ idleGpus: 5, lastHeartbeatTime: new Date(t.now()).toISOString() });
  });

  it('in a burst writes pools at most once per pool period; the last one when the period ends', async () => {
    const t = await readyProvider();
    t.tick(2_000);
    const before = t.store.statusWrites.length;
    // A burst of placements: a new inventory every 100 ms for 3 s, heartbeats every 500 ms.
    for (let i = 1; i <= 30; i++) {
      await t.advance(100);
      await t.registry.onInventory(t.name(), inventory(8 - (i % 8)));
      if (i % 5 === 0) await t.beat();
    }
    const burst = t.store.statusWrites.slice(before);
    expect(burst.length).toBeGreaterThanOrEqual(2);
    expect(burst.length).toBeLessThanOrEqual(4); // 3 s at one per second
    const last = 8 - (30 % 8);
    // Written once the period has passed, never lost, never reordered.
    await t.advance(1_000);
    expect(t.idle()).toBe(last);
    const settled = t.store.statusWrites.length;
    t.tick(2_000);
    await t.beat();
    await t.registry.onInventory(t.name(), inventory(last));
    expect(t.store.statusWrites.length).toBe(settled);
  });

  it('a pool change waiting for its period rides on any other write, which never sets older pools', async () => {
    const t = await readyProvider();
    await t.registry.onInventory(t.name(), inventory(3)); // inside the period: waits
    expect(t.idle()).toBe(8);
    await t.registry.setChainStatus(t.name(), { staked: { type: 'Staked', status: 'True', reason: 'Staked', message: 'x' }, stake: { amount: '1' }, reputation: { score: 0.5 } });
    expect(t.store.objects.get(t.name())!.status).toMatchObject({ idleGpus: 3, stake: { amount: '1' } });
    // A later pool change inside the new period waits again.
    await t.registry.onInventory(t.name(), inventory(2));
    expect(t.idle()).toBe(3);
  });

  it('writes a pool change waiting for its period when the period ends, with no heartbeat (heartbeats may be 5 s apart)', async () => {
    const t = await readyProvider();
    await t.advance(300);
    await t.registry.onInventory(t.name(), inventory(6));
    expect(t.idle()).toBe(8);
    await t.advance(600); // 900 ms after the last pools write: not yet
    expect(t.idle()).toBe(8);
    await t.advance(100);
    expect(t.idle()).toBe(6);
    expect(t.timers.size).toBe(0);
  });

  it('keeps a pool change a failed write did not land, and writes it when the apiserver is back', async () => {
    const t = await readyProvider();
    await t.advance(2_000);
    t.store.failNext = 1;
    await t.registry.onInventory(t.name(), inventory(4)); // due: written at once, and refused
    expect(t.idle()).toBe(8);
    // Nothing else comes from the agent; the change waits its second and goes again.
    await t.advance(1_000);
    expect(t.idle()).toBe(4);
  });

  it('writes a waiting pool change when the agent disconnects, for whoever schedules next', async () => {
    const t = await readyProvider();
    await t.registry.onInventory(t.name(), inventory(7)); // inside the period: waits
    await t.registry.onDisconnect(t.name());
    await t.advance(0);
    expect(t.idle()).toBe(7);
  });

  it('turns NotReady only after providerLostAfter without a heartbeat, in memory, whatever status says', async () => {
    const t = setup();
    await t.register();
    await t.beat();
    t.tick(14_000);
    await t.registry.checkHeartbeats();
    expect(t.lost).toEqual([]);
    t.tick(2_000);
    await t.registry.checkHeartbeats();
    expect(t.lost).toEqual([t.name()]);
    expect(t.store.objects.get(t.name())!.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('False');
  });

  it('a message between heartbeats keeps a Ready provider Ready, without a write; only a heartbeat makes a lost one Ready again', async () => {
    const t = await readyProvider();
    await t.registry.checkHeartbeats();
    const writes = t.store.statusWrites.length;
    // Tunnel data now and then, no heartbeat for 30 s: never silent for providerLostAfter (15 s).
    // Checks 5 s apart: one held up for half of it would give a grace of its own.
    for (let i = 0; i < 6; i++) {
      t.tick(5_000);
      if (i % 2 === 1) t.registry.onHeard(t.name(), new Date(t.now()));
      await t.registry.checkHeartbeats();
    }
    expect(t.lost).toEqual([]);
    expect(t.store.statusWrites.length).toBe(writes);
    expect(t.registry.lastHeard(t.name())).toBe(t.now());
    for (let i = 0; i < 4; i++) {
      t.tick(5_000);
      await t.registry.checkHeartbeats();
    }
    expect(t.lost).toEqual([t.name()]);
    // Lost: data alone does not bring it back (no Event, no Ready write); a heartbeat does.
    t.registry.onHeard(t.name(), new Date(t.now()));
    const ready = () => t.store.objects.get(t.name())!.status?.conditions?.find((c) => c.type === 'Ready')?.status;
    expect(ready()).toBe('False');
    await t.beat();
    expect(ready()).toBe('True');
  });

  it('many providers silent at once: NotReady as HubLostContact (the hub lost contact), not HeartbeatMissed', async () => {
    // The attack it answers: the hub's own load balancer, DNS or certificate breaks while the
    // leader lives; every provider went silent together and each running attempt was slashed.
    const t = setup();
    const wallets = ['0x2222222222222222222222222222222222222222', '0x3333333333333333333333333333333333333333', '0x4444444444444444444444444444444444444444', '0x5555555555555555555555555555555555555555', '0x6666666666666666666666666666666666666666'];
    const names: string[] = [];
    for (const w of wallets) names.push(await t.registry.register(w, { walletAddress: w, agentVersion: 'v1', protocolVersion: 1, peer: '127.0.0.1' }));
    const beat = (n: string) => t.registry.onHeartbeat(n, { rttMs: undefined, bandwidthMbps: undefined, at: new Date(t.now()) });
    const ready = (n: string) => t.store.objects.get(n)!.status?.conditions?.find((c) => c.type === 'Ready');
    for (const n of names) await beat(n);
    // One alone goes silent: its own fault.
    for (let i = 0; i < 16; i++) {
      t.tick(1_000);
      for (const n of names.slice(1)) await beat(n);
      await t.registry.checkHeartbeats();
    }
    expect(t.lost).toEqual([names[0]]);
    expect(ready(names[0]!)).toMatchObject({ status: 'False', reason: 'HeartbeatMissed' });
    // Then the other four together, their last heartbeats a second apart (as agents' are): they
    // cross providerLostAfter over two checks, and all four are the hub's loss of contact.
    await beat(names[1]!);
    await beat(names[2]!);
    t.tick(1_000);
    await beat(names[3]!);
    await beat(names[4]!);
    for (let i = 0; i < 17; i++) {
      t.tick(1_000);
      await t.registry.checkHeartbeats();
    }
    expect(t.lost).toEqual(names);
    for (const n of names.slice(1)) {
      expect(ready(n), n).toMatchObject({ status: 'False', reason: 'HubLostContact' });
      expect(ready(n)?.message).toContain('more likely this hub lost contact than the provider failed');
    }
    // One back and silent again, alone, later: its own fault again.
    await beat(names[1]!);
    for (let i = 0; i < 16; i++) {
      t.tick(1_000);
      await t.registry.checkHeartbeats();
    }
    expect(t.lost.at(-1)).toBe(names[1]);
    expect(ready(names[1]!)).toMatchObject({ status: 'False', reason: 'HeartbeatMissed' });
  });

  it('counts a mass silence from three providers and half of those Ready', () => {
    expect(isMassSilence(2, 2)).toBe(false);
    expect(isMassSilence(3, 6)).toBe(true);
    expect(isMassSilence(3, 7)).toBe(false);
    expect(isMassSilence(1, 1)).toBe(false);
  });

  it('a heartbeat that arrives while a loss is being decided keeps the provider Ready, unmoved and unslashed', async () => {
    const t = setup();
    await t.register();
    await t.beat();
    for (let i = 0; i < 16; i++) {
      t.tick(1_000);
      if (i < 15) await t.registry.checkHeartbeats();
    }
    // The check finds 16 s of silence; the heartbeat lands before its write is decided.
    const checking = t.registry.checkHeartbeats();
    const beating = t.beat();
    await Promise.all([checking, beating]);
    expect(t.lost).toEqual([]);
    expect(t.store.objects.get(t.name())!.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(t.registry.heartbeatAgeMs(t.name())).toBe(0);
  });

  it('when this process was paused, the silence is its own: every provider gets a fresh grace, then loss is detected as usual', async () => {
    const t = setup();
    await t.register();
    await t.beat();
    await t.registry.checkHeartbeats();
    t.tick(40_000); // the hub was stopped (SIGSTOP) or starved for 40 s
    await t.registry.checkHeartbeats();
    expect(t.lost).toEqual([]);
    for (let i = 0; i < 14; i++) {
      t.tick(1_000);
      await t.registry.checkHeartbeats();
    }
    expect(t.lost).toEqual([]);
    t.tick(1_000);
    await t.registry.checkHeartbeats();
    t.tick(1_000);
    await t.registry.checkHeartbeats();
    expect(t.lost).toEqual([t.name()]);
  });

  it('a new leader gives every Ready provider a fresh grace period, although its written heartbeat is a minute old', async () => {
    const old = setup();
    await old.register();
    await old.beat();
    const provider = old.store.objects.get(old.name())!;
    // The last written heartbeat is 59 s old when the new leader takes over.
    provider.status!.lastHeartbeatTime = new Date(old.now() - 59_000).toISOString();
    const next = setup();
    for (const p of old.store.objects.values()) next.store.objects.set(p.metadata.name!, structuredClone(p));
    next.registry.adoptProviders([...next.store.objects.values()]);
    expect(next.registry.heartbeatAgeMs(old.name())).toBe(0);
    next.tick(14_000);
    await next.registry.checkHeartbeats();
    expect(next.lost).toEqual([]);
    expect(next.store.statusWrites).toEqual([]); // adopting writes nothing
    // Its agent may still be backing off (up to 30 s between dials after a leaderless spell).
    next.tick(2_000);
    await next.registry.checkHeartbeats();
    expect(next.lost).toEqual([]);
    for (let i = 0; i < 28; i++) {
      next.tick(1_000); // checked every second, as the leader does: up to 44 s after the takeover
      await next.registry.checkHeartbeats();
    }
    expect(next.lost).toEqual([]);
    for (let i = 0; i < 2; i++) {
      next.tick(1_000);
      await next.registry.checkHeartbeats();
    }
    expect(next.lost).toEqual([old.name()]);
  });

  it('an adopted provider that speaks is back on the usual providerLostAfter', async () => {
    const old = setup();
    await old.register();
    await old.beat();
    const next = setup();
    for (const p of old.store.objects.values()) next.store.objects.set(p.metadata.name!, structuredClone(p));
    next.registry.adoptProviders([...next.store.objects.values()]);
    next.tick(20_000);
    await next.register();
    await next.beat();
    for (let i = 0; i < 16; i++) {
      next.tick(1_000);
      await next.registry.checkHeartbeats();
    }
    expect(next.lost).toEqual([next.name()]);
  });
});

describe('KubeProviderRegistry TenantIsolation', () => {
  const isolation = (t: ReturnType<typeof setup>) => t.store.objects.get(t.name())!.status?.conditions?.find((c) => c.type === 'TenantIsolation');
  const refusing = (namespace: string): Inventory => ({
    ...inventory(8),
    unisolatedNamespaces: [{ namespace, reason: `namespace ${namespace} does not enforce PodSecurity restricted (pod-security.kubernetes.io/enforce=unset)` }],
  });

  it('is True from the first inventory, turns False naming the namespace and why, with a Warning event, and True again', async () => {
    const t = setup();
    await t.register();
    await t.registry.onInventory(t.name(), inventory(8));
    expect(isolation(t)).toMatchObject({ status: 'True', reason: 'NamespacesRestricted' });
    await t.registry.onInventory(t.name(), refusing('fedgpu-jobs-team-a-0123abcd'));
    expect(isolation(t)).toMatchObject({ status: 'False', reason: 'NamespaceNotRestricted' });
    expect(isolation(t)!.message).toContain('fedgpu-jobs-team-a-0123abcd: namespace fedgpu-jobs-team-a-0123abcd does not enforce PodSecurity restricted (pod-security.kubernetes.io/enforce=unset)');
    expect(t.store.events.at(-1)).toMatchObject({ type: 'Warning', reason: 'NamespaceNotRestricted' });
    // The other conditions are kept.
    expect(t.store.objects.get(t.name())!.status?.conditions?.map((c) => c.type)).toContain('Registered');
    const writes = t.store.statusWrites.length;
    await t.registry.onInventory(t.name(), refusing('fedgpu-jobs-team-a-0123abcd'));
    expect(t.store.statusWrites.length).toBe(writes); // unchanged: nothing written
    await t.registry.onInventory(t.name(), inventory(8));
    expect(isolation(t)).toMatchObject({ status: 'True', reason: 'NamespacesRestricted' });
  });

  it('names at most three namespaces and counts the rest', async () => {
    const t = setup();
    await t.register();
    const many = Array.from({ length: 5 }, (_, i) => ({ namespace: `fedgpu-jobs-t${i}`, reason: 'not restricted' }));
    await t.registry.onInventory(t.name(), { ...inventory(8), unisolatedNamespaces: many });
    expect(isolation(t)!.message).toMatch(/in 5 tenant namespace\(s\).*fedgpu-jobs-t2: not restricted; and 2 more$/);
  });
});

describe('KubeProviderRegistry registration', () => {
  const info = (wallet: string) => ({ walletAddress: wallet, agentVersion: 'v1', protocolVersion: 1, peer: '127.0.0.1' });

  it('finds a provider created under any name for the wallet, in any letter case', async () => {
    const t = setup();
    t.store.objects.set('west', { apiVersion: 'fedgpu.io/v1alpha1', kind: 'GpuProvider', metadata: { name: 'west' }, spec: { wallet: WALLET.toUpperCase().replace('0X', '0x') } });
    expect(await t.registry.register(WALLET, info(WALLET))).toBe('west');
    expect(t.store.creates).toBe(0);
  });

  it('a wallet look-up that misses its own fresh provider (a lagging cache) takes it by its name, never creates a second', async () => {
    const t = setup();
    const name = await t.register();
    t.store.lagging.add(name);
    expect(await t.registry.register(WALLET, info(WALLET))).toBe(name);
    expect(t.store.creates).toBe(1);
  });

  it('gives a look-alike wallet whose short name another wallet holds the name of its whole address; neither speaks for the other', async () => {
    const t = setup();
    const name = await t.register();
    t.store.lagging.add(name); // even when the look-up cannot see the owner
    const lookAlike = `${WALLET.slice(0, 14)}${'2'.repeat(28)}`;
    const other = await t.registry.register(lookAlike, info(lookAlike));
    expect(other).toBe(`gp-${lookAlike.slice(2).toLowerCase()}`);
    expect(t.store.objects.get(name)!.spec.wallet).toBe(WALLET);
    expect(t.store.objects.get(other)!.spec.wallet).toBe(lookAlike);
  });

  it('lets a wallet register although a look-alike took its short name first (the attack: grind 12 hex digits, register first, lock the victim out)', async () => {
    const t = setup();
    const squatter = `${WALLET.slice(0, 14)}${'3'.repeat(28)}`;
    const taken = await t.registry.register(squatter, info(squatter));
    expect(taken).toBe(`gp-${WALLET.slice(2, 14)}`);
    t.store.lagging.add(taken);
    const victim = await t.registry.register(WALLET, info(WALLET));
    expect(victim).toBe(`gp-${WALLET.slice(2).toLowerCase()}`);
    expect(t.store.objects.get(victim)!.spec.wallet).toBe(WALLET);
    // And again later: found by its wallet, the same name.
    expect(await t.registry.register(WALLET, info(WALLET))).toBe(victim);
  });
});
