import { defaultBackoff } from '../../protocol/reconnect.js';
import { status as grpcStatus } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { ProviderConditions } from '../../api/constants.js';
import { API_VERSION, type AvailabilityWindow, type Condition, type GpuProvider, type GpuProviderSpec, type GpuProviderStatus } from '../../api/types.js';
import type { AttemptStatus, Inventory, PodEvents, ProviderProfile, UsageReceipt } from '../../gen/proto/fedgpu/v1/market.js';
import { EdgeError } from '../../protocol/edge-error.js';
import { type ConditionUpdate, setCondition } from '../../runtime/conditions.js';
import type { HeartbeatObservation, ProviderInfo, ProviderRegistry } from '../market/registry.js';
import type { ChainProviderStatus } from './chain-status.js';
import { poolsStatus, providerNameForWallet, tenantIsolationCondition } from './status.js';
import type { ProviderStore } from './store.js';

// The hub's side of every agent stream, written to GpuProvider objects. A provider is Ready while
// heartbeats are fresh; a disconnect alone changes nothing but the heartbeat age, and only after
// `providerLostAfterMs` without a heartbeat does Ready turn False (HeartbeatMissed). Jobs are told
// through `onProviderLost`, so a blip never evicts anything.
//
// Liveness lives here, in the leader's memory (agents stream to the leader), not in etcd: a
// heartbeat is a status write only on a transition (Ready again, the first latency measured) or
// when nothing was written for `statusPeriodMs`; every other write carries the latest heartbeat
// time and latency along. The leader's scheduler reads latency from here (`link`), not from the
// status, so a latency that moves needs no early write: status shows it at the next period.
// Inventories are written only when the pools changed, and at most once per `poolWritePeriodMs`:
// in a burst of placements an agent sends a new inventory every 100 ms, and each write of a large
// provider's status costs its apiserver and every watcher more than a job's write, and wakes every
// job waiting for GPUs. A change inside the period is written when the period ends, or rides on
// any earlier write; pools a failed write did not land wait again. At rest that is one write per
// provider per period instead of one per heartbeat, each re-sent to every watcher (Kubernetes
// moved node heartbeats to Leases for the same reason, KEP-589).

export interface ProviderRegistryOptions {
  store: ProviderStore;
  logger: Logger;
  providerLostAfterMs?: number;
  now?: () => number;
  /** Job-side hooks (the GpuJob controller), called with the provider's name. */
  onAttemptStatus?: (provider: string, status: AttemptStatus) => Promise<void> | void;
  onUsageReceipt?: (provider: string, receipt: UsageReceipt) => Promise<void> | void;
  onProviderLost?: (provider: string) => Promise<void> | void;
  onProviderReady?: (provider: string) => Promise<void> | void;
  /** The agent sent its first inventory on a new stream: it is ready for a full resync. */
  onAgentSynced?: (provider: string) => Promise<void> | void;
  /** At rest, lastHeartbeatTime and latency are written at most this often; default 60 s. */
  statusPeriodMs?: number;
  /** A changed inventory is written at most this often per provider; default 1 s. */
  poolWritePeriodMs?: number;
  /** Timers for pool changes waiting for their period (tests drive them by hand); default setTimeout, unref'd. */
  timers?: { set(fn: () => void, ms: number): unknown; clear(handle: unknown): void };
  /**
   * Added to providerLostAfter for providers this hub adopted (took over without hearing them):
   * agents that found no leader back off up to this long between dials (default: the agent's
   * reconnect ceiling, 30 s), and a failover must never count as their loss.
   */
  adoptionGraceMs?: number;
  /** Every inventory, before it is written (the GpuJob controller keeps the cordons it shows). */
  onInventory?: (provider: string, inventory: Inventory) => void;
  /** Provider Events about an attempt's pods (the GpuJob controller fences and records them). */
  onPodEvents?: (provider: string, events: PodEvents) => void;
}

interface Liveness {
  /** Last heartbeat, or when this hub took the provider over: the grace period counts from here. */
  lastHeartbeatMs: number;
  /** Last heartbeat actually received by this hub (undefined for a provider only adopted). */
  heardMs?: number;
  /** An adopted provider that has not spoken yet is not lost before this (its agent may be backing off). */
  graceUntilMs?: number;
  latency?: NonNullable<GpuProviderStatus['latency']>;
  /** When this hub last wrote the provider's status (any write carries heartbeat and latency). */
  writtenMs: number;
  latencyWritten: boolean;
  /** JSON of the pools last written or waiting to be, to skip identical inventories. */
  writtenPools?: string;
  /** When pools were last written. */
  poolsWrittenMs?: number;
  /** Pools changed since, waiting for the pool period to pass (poolTimer, or any earlier write). */
  pendingPools?: PoolsStatus;
  /** Writes the pending pools once the period has passed, should no other write come first. */
  poolTimer?: unknown;
  /** JSON of the TenantIsolation condition last written. */
  writtenIsolation?: string;
  ready: boolean;
  connected: boolean;
  /** Set at registration, cleared when the stream's first inventory arrives. */
  awaitingFirstInventory: boolean;
  /** Serialises status writes per provider so a slow write never reorders newer ones. */
  writes: Promise<void>;
}

export const DEFAULT_PROVIDER_LOST_AFTER_MS = 15_000;
export const DEFAULT_STATUS_PERIOD_MS = 60_000;
export const DEFAULT_POOL_WRITE_PERIOD_MS = 1_000;

type PoolsStatus = ReturnType<typeof poolsStatus>;

type StatusPatch = Partial<GpuProviderStatus> | ((current: GpuProvider | undefined) => Partial<GpuProviderStatus> | undefined);

export class KubeProviderRegistry implements ProviderRegistry {
  private readonly live = new Map<string, Liveness>();
  /** When heartbeats were last checked (a long gap means this process was paused). */
  private lastCheckMs?: number;
  /** Write queues of providers with no Liveness entry (chain status of an offline provider). */
  private readonly unattached = new Map<string, Promise<void>>();
  private readonly lostAfter: number;
  /** When the last mass silence was seen: a provider quiet since before it is lost with it. */
  private massSilenceAt?: number;
  private readonly statusPeriod: number;
  private readonly poolPeriod: number;
  private readonly now: () => number;
  private readonly timers: NonNullable<ProviderRegistryOptions['timers']>;

  constructor(private readonly opts: ProviderRegistryOptions) {
    this.lostAfter = opts.providerLostAfterMs ?? DEFAULT_PROVIDER_LOST_AFTER_MS;
    this.statusPeriod = opts.statusPeriodMs ?? DEFAULT_STATUS_PERIOD_MS;
    this.poolPeriod = opts.poolWritePeriodMs ?? DEFAULT_POOL_WRITE_PERIOD_MS;
    this.timers = opts.timers ?? {
      set: (fn, ms) => setTimeout(fn, ms).unref(),
      clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
    };
    this.now = opts.now ?? Date.now;
  }

  async register(wallet: string, info: ProviderInfo): Promise<string> {
    const provider = await this.findOrCreate(wallet, info);
    const name = provider.metadata.name!;
    const declared = specFromProfile(info.profile);
    if (Object.entries(declared).some(([k, v]) => JSON.stringify(provider.spec[k as keyof GpuProviderSpec]) !== JSON.stringify(v))) {
      await this.opts.store.patchSpec(name, declared);
    }
    const previous = this.live.get(name);
    this.live.set(name, {
      lastHeartbeatMs: this.now(),
      heardMs: this.now(),
      writtenMs: 0,
      latencyWritten: false,
      ready: previous?.ready ?? false,
      connected: true,
      awaitingFirstInventory: true,
      ...(previous?.writtenPools ? { writtenPools: previous.writtenPools } : {}),
      ...(previous?.poolsWrittenMs !== undefined ? { poolsWrittenMs: previous.poolsWrittenMs } : {}),
      ...(previous?.pendingPools ? { pendingPools: previous.pendingPools } : {}),
      writes: previous?.writes ?? this.unattached.get(name) ?? Promise.resolve(),
    });
    const registered: ConditionUpdate = {
      type: ProviderConditions.Registered,
      status: 'True',
      reason: 'AgentConnected',
      message: `agent ${info.agentVersion} proved wallet ${wallet} from ${info.peer}`,
    };
    await this.write(name, (current) => ({
      conditions: setCondition(current?.status?.conditions, registered, new Date(this.now())).conditions,
      agentVersion: info.agentVersion,
      lastHeartbeatTime: iso(this.now()),
    }));
    await this.event(provider, 'Normal', 'AgentConnected', `agent ${info.agentVersion} connected and proved wallet ${wallet}`);
    this.opts.logger.info({ provider: name, wallet, peer: info.peer }, 'agent registered');
    return name;
  }

  async onInventory(providerName: string, inventory: Inventory): Promise<void> {
    this.opts.onInventory?.(providerName, inventory);
    const pools = poolsStatus(inventory);
    const live = this.live.get(providerName);
    const json = JSON.stringify(pools);
    const isolation = tenantIsolationCondition(inventory);
    const isolationJson = JSON.stringify(isolation);
    const isolationChanged = live?.writtenIsolation !== isolationJson;
    // Agents re-send an unchanged inventory after every reconnect: nothing to write then.
    if (live?.writtenPools !== json || isolationChanged) {
      if (live) live.writtenPools = json;
      if (live) live.writtenIsolation = isolationJson;
      if (live && !this.poolsDue(live) && !isolationChanged && !live.awaitingFirstInventory) {
        live.pendingPools = pools;
        this.flushPoolsLater(providerName, live);
        return;
      }
      if (live) {
        live.pendingPools = undefined;
        live.poolsWrittenMs = this.now();
      }
      // The conditions list is read and modified inside the write queue, as every writer does.
      await this.write(providerName, isolationChanged
        ? (current) => ({ ...pools, conditions: setCondition(current?.status?.conditions, isolation, new Date(this.now())).conditions })
        : pools);
      if (isolationChanged && isolation.status === 'False') {
        const provider = await this.opts.store.get(providerName);
        if (provider) await this.event(provider, 'Warning', 'NamespaceNotRestricted', isolation.message ?? '');
        this.opts.logger.warn({ provider: providerName }, isolation.message);
      }
    }
    if (live?.awaitingFirstInventory) {
      live.awaitingFirstInventory = false;
      await this.opts.onAgentSynced?.(providerName);
    }
  }

  async onHeartbeat(providerName: string, observation: HeartbeatObservation): Promise<void> {
    const live = this.live.get(providerName);
    if (!live) return;
    live.lastHeartbeatMs = observation.at.getTime();
    live.heardMs = live.lastHeartbeatMs;
    const latency: NonNullable<GpuProviderStatus['latency']> = {};
    if (observation.rttMs !== undefined) latency.rttMs = round(observation.rttMs);
    if (observation.bandwidthMbps !== undefined) latency.bandwidthMbps = round(observation.bandwidthMbps);
    if (Object.keys(latency).length) live.latency = latency;
    if (!live.ready) {
      live.ready = true;
      const ready: ConditionUpdate = { type: ProviderConditions.Ready, status: 'True', reason: 'HeartbeatReceived', message: 'the agent is connected and its heartbeats are fresh' };
      const provider = await this.opts.store.get(providerName);
      if (provider) await this.event(provider, 'Normal', 'ProviderReady', 'heartbeats are fresh; the provider is on the market');
      await this.opts.onProviderReady?.(providerName);
      // Unless a loss was decided since (the write queue runs in order), it is Ready.
      await this.write(providerName, (current) => (live.ready ? { conditions: setCondition(current?.status?.conditions, ready, new Date(this.now())).conditions } : undefined));
      return;
    }
    // At rest: the first latency measured (what a new leader's scheduler starts from), then once a
    // period. A latency that moves later reaches this leader's scheduler through link() at once.
    const firstLatency = live.latency !== undefined && !live.latencyWritten;
    if (firstLatency || this.now() - live.writtenMs >= this.statusPeriod) await this.write(providerName, {});
  }

  /**
   * A message arrived from the agent between heartbeats (market/registry.ts): a Ready provider stays
   * Ready. Turning Ready again after a loss stays the heartbeat's, with its status write and Event.
   */
  onHeard(providerName: string, at: Date): void {
    const live = this.live.get(providerName);
    if (!live?.ready) return;
    live.lastHeartbeatMs = Math.max(live.lastHeartbeatMs, at.getTime());
    live.heardMs = live.lastHeartbeatMs;
  }

  /**
   * How long since the provider was heard from, as the leader knows it (a provider it only adopted
   * counts from the take-over); undefined when this hub does not track it. Fresher than status.
   */
  heartbeatAgeMs(providerName: string, now: number = this.now()): number | undefined {
    const live = this.live.get(providerName);
    return live && Math.max(0, now - live.lastHeartbeatMs);
  }

  /** The link as this hub measures it now (round-trip time, bandwidth), fresher than status. */
  link(providerName: string): { rttMs?: number; bandwidthMbps?: number } | undefined {
    return this.live.get(providerName)?.latency;
  }

  /** When this hub last heard from the provider's agent (ms since the epoch), fresher than status. */
  lastHeard(providerName: string): number | undefined {
    return this.live.get(providerName)?.heardMs;
  }

  onAttemptStatus(providerName: string, status: AttemptStatus): Promise<void> | void {
    return this.opts.onAttemptStatus?.(providerName, status);
  }

  onUsageReceipt(providerName: string, receipt: UsageReceipt): Promise<void> | void {
    return this.opts.onUsageReceipt?.(providerName, receipt);
  }

  onPodEvents(providerName: string, events: PodEvents): void {
    this.opts.onPodEvents?.(providerName, events);
  }

  async onDisconnect(providerName: string): Promise<void> {
    const live = this.live.get(providerName);
    if (live) live.connected = false;
    // Whoever schedules next (this hub, or a new leader the agent dials) starts from its last pools.
    if (live?.pendingPools) void this.write(providerName, {});
    this.opts.logger.info({ provider: providerName }, 'agent disconnected; waiting for it to come back');
  }

  /** Turns providers without a fresh heartbeat NotReady; call it every second or so. */
  async checkHeartbeats(): Promise<void> {
    const now = this.now();
    const gap = this.lastCheckMs === undefined ? 0 : now - this.lastCheckMs;
    this.lastCheckMs = now;
    // This process itself was stopped or starved (a paused leader, an overloaded event loop): the
    // silence is ours, not the providers', and their heartbeats still sit unread in our sockets.
    // Everyone gets a fresh grace, as a new leader gives.
    if (gap > this.lostAfter / 2) {
      for (const live of this.live.values()) if (live.ready) live.lastHeartbeatMs = Math.max(live.lastHeartbeatMs, now);
      this.opts.logger.warn({ gapMs: gap }, 'heartbeat checks were held up; every provider gets a fresh grace period');
      return;
    }
    const silent = [...this.live].filter(([, live]) => {
      if (!live.ready || now - live.lastHeartbeatMs <= this.lostAfter) return false;
      return !(live.heardMs === undefined && live.graceUntilMs !== undefined && now <= live.graceUntilMs);
    });
    // Many providers silent at once is more likely this hub's own network (its load balancer, DNS,
    // certificate, a NetworkPolicy) than theirs: they still turn NotReady and their attempts move,
    // but under HubLostContact, which blames no one (core/fault.ts: agent-unreachable). Heartbeats
    // are staggered, so the silent cross providerLostAfter over a few checks: those quiet for half
    // of it count as silent together, and one quiet since before a mass silence is part of it.
    const ready = [...this.live.values()].filter((l) => l.ready);
    const quiet = ready.filter((l) => now - l.lastHeartbeatMs > this.lostAfter / 2).length;
    if (silent.length > 0 && isMassSilence(quiet, ready.length)) {
      this.massSilenceAt = now;
      this.opts.logger.error({ quiet, ready: ready.length }, 'many providers went silent at once: treated as this hub losing contact, not as their faults');
    }
    for (const [name, live] of silent) {
      live.ready = false;
      const seconds = Math.round((now - live.lastHeartbeatMs) / 1000);
      const together = this.massSilenceAt !== undefined && live.lastHeartbeatMs <= this.massSilenceAt;
      const message = together
        ? `no heartbeat for ${seconds}s (providerLostAfter ${this.lostAfter / 1000}s), silent with ${quiet} of ${ready.length} Ready providers: more likely this hub lost contact than the provider failed; its attempts move, and it is not blamed`
        : `no heartbeat for ${seconds}s (providerLostAfter ${this.lostAfter / 1000}s)`;
      const reason = together ? HUB_LOST_CONTACT : 'HeartbeatMissed';
      const notReady: ConditionUpdate = { type: ProviderConditions.Ready, status: 'False', reason, message };
      // Decided inside the provider's write queue: a heartbeat that arrived while this check awaited
      // has made it Ready again, and then it is not lost (nor its jobs moved, nor it slashed).
      let lost = false;
      await this.write(name, (current) => {
        if (live.ready || !current) return undefined;
        lost = true;
        return { conditions: setCondition(current.status?.conditions, notReady, new Date(now)).conditions };
      });
      if (!lost) continue;
      const provider = await this.opts.store.get(name);
      if (provider) await this.event(provider, 'Warning', reason, message);
      this.opts.logger.warn({ provider: name }, message);
      await this.opts.onProviderLost?.(name);
    }
  }

  /**
   * A new leader (or a restarted hub) takes over the providers it has not heard from: each one its
   * predecessor saw Ready counts as heard from now, so it has a full providerLostAfter to reconnect
   * before it is declared lost, plus the agents' reconnect ceiling (an agent that found no leader
   * backs off up to 30 s between dials). Without this, a provider that never comes back stays Ready
   * forever; with only providerLostAfter, a leaderless spell longer than a few seconds made the new
   * leader declare every provider lost (and slash their attempts) before their agents dialled again.
   */
  adoptProviders(providers: readonly GpuProvider[]): void {
    const now = this.now();
    for (const p of providers) {
      const name = p.metadata.name;
      if (!name || this.live.has(name)) continue;
      const ready = p.status?.conditions?.some((c) => c.type === ProviderConditions.Ready && c.status === 'True') ?? false;
      if (ready) {
        const graceUntilMs = now + this.lostAfter + (this.opts.adoptionGraceMs ?? defaultBackoff.maxMs);
        this.live.set(name, { lastHeartbeatMs: now, graceUntilMs, writtenMs: now, latencyWritten: true, ready, connected: false, awaitingFirstInventory: false, writes: Promise.resolve() });
      }
    }
  }

  /**
   * Status read from the chain (hub/providers/chain-status.ts): the Staked condition, stake and
   * reputation. Written through the same per-provider queue as every other status write, the
   * conditions list read and modified inside it, so no writer drops another's condition.
   */
  setChainStatus(name: string, chain: ChainProviderStatus): Promise<void> {
    return this.write(name, (current) =>
      current && {
        conditions: setCondition(current.status?.conditions, chain.staked, new Date(this.now())).conditions,
        stake: chain.stake,
        reputation: chain.reputation,
      },
    );
  }

  /** Whether the provider has a fresh heartbeat, as the scheduler should see it. */
  isReady(providerName: string): boolean {
    return this.live.get(providerName)?.ready ?? false;
  }

  private async findOrCreate(wallet: string, info: ProviderInfo): Promise<GpuProvider> {
    const existing = await this.opts.store.findByWallet(wallet);
    if (existing) return existing;
    let name = providerNameForWallet(wallet);
    let taken = await this.opts.store.get(name);
    if (taken && taken.spec.wallet.toLowerCase() !== wallet.toLowerCase()) {
      // The short name is another wallet's: one that shares the first 12 hex digits (2^48 keys
      // to grind, hours for a GPU owner), perhaps registered first to lock this one out. Never
      // let either speak for the other: this wallet takes the name of its whole address.
      name = providerNameForWallet(wallet, true);
      taken = await this.opts.store.get(name);
      if (taken && taken.spec.wallet.toLowerCase() !== wallet.toLowerCase()) {
        throw new EdgeError(grpcStatus.PERMISSION_DENIED, 'registration_refused', `GpuProvider ${name} belongs to another wallet`);
      }
    }
    // Created by this wallet's own earlier registration (a cached look-up can miss one made
    // moments ago): it is ours.
    if (taken) return taken;
    return this.opts.store.create({
      apiVersion: API_VERSION,
      kind: 'GpuProvider',
      metadata: { name, labels: { 'fedgpu.io/registered-by': 'agent' } },
      spec: { wallet, ...specFromProfile(info.profile) },
    });
  }

  /** Whether pools may be written now (a wall clock stepped back counts as due). */
  private poolsDue(live: Liveness): boolean {
    const since = live.poolsWrittenMs;
    return since === undefined || this.now() < since || this.now() - since >= this.poolPeriod;
  }

  /** Writes the pending pools when the period ends (at once if it has), unless a write takes them first. */
  private flushPoolsLater(name: string, live: Liveness): void {
    if (live.poolTimer !== undefined) return;
    const waitMs = Math.min(this.poolPeriod, Math.max(0, (live.poolsWrittenMs ?? 0) + this.poolPeriod - this.now()));
    live.poolTimer = this.timers.set(() => {
      live.poolTimer = undefined;
      if (live.pendingPools && this.live.get(name) === live) void this.write(name, {});
    }, waitMs);
  }

  /** `status` as a function is applied to the provider as read inside the queue (for lists such as conditions). */
  private write(name: string, status: StatusPatch): Promise<void> {
    const live = this.live.get(name);
    const run = async () => {
      let body: Partial<GpuProviderStatus> | undefined;
      try {
        const patch = typeof status === 'function' ? status(await this.opts.store.get(name)) : status;
        if (patch) await this.opts.store.patchStatus(name, (body = { ...patch, ...this.heartbeatFields(name) }));
      } catch (err) {
        this.opts.logger.error({ provider: name, err }, 'failed to write GpuProvider status');
        // Pools that did not land wait for the next write, or a second from now (a newer change
        // already waiting wins over them).
        const current = this.live.get(name);
        if (current && body?.pools) {
          current.pendingPools ??= { pools: body.pools, idleGpus: body.idleGpus, totalGpus: body.totalGpus, gpus: body.gpus } as PoolsStatus;
          this.flushPoolsLater(name, current);
        }
      }
    };
    if (!live) {
      // Not connected to this hub (yet): queue on the side, and a registration continues this queue.
      const queued = (this.unattached.get(name) ?? Promise.resolve()).then(run);
      this.unattached.set(name, queued);
      void queued.finally(() => this.unattached.get(name) === queued && this.unattached.delete(name));
      return queued;
    }
    live.writes = live.writes.then(run);
    return live.writes;
  }

  /**
   * What every write of a provider this hub has heard from carries along: heartbeat time, latency,
   * and pools that changed within the pool period (so no write ever sets older pools than a later one).
   */
  private heartbeatFields(name: string): Partial<GpuProviderStatus> {
    const live = this.live.get(name);
    if (!live) return {};
    const pools = live.pendingPools;
    if (pools) live.pendingPools = undefined;
    if (pools && live.poolTimer !== undefined) {
      this.timers.clear(live.poolTimer);
      live.poolTimer = undefined;
    }
    if (pools || live.poolsWrittenMs === undefined) live.poolsWrittenMs = this.now();
    if (live.heardMs === undefined) return pools ?? {};
    live.writtenMs = this.now();
    const fields: Partial<GpuProviderStatus> = { ...pools, lastHeartbeatTime: iso(live.heardMs) };
    if (live.latency) {
      fields.latency = live.latency;
      live.latencyWritten = true;
    }
    return fields;
  }

  private async event(provider: GpuProvider, type: 'Normal' | 'Warning', reason: string, message: string) {
    try {
      await this.opts.store.event(provider, { type, reason, message });
    } catch (err) {
      this.opts.logger.warn({ provider: provider.metadata.name, err }, 'failed to record event');
    }
  }
}

/** The spec fields an agent declares for its own cluster; empty ones are left alone. */
export function specFromProfile(profile: ProviderProfile | undefined): Partial<GpuProviderSpec> {
  if (!profile) return {};
  const spec: Partial<GpuProviderSpec> = {};
  if (profile.displayName) spec.displayName = profile.displayName;
  if (profile.region) spec.region = profile.region;
  spec.availability = {
    utcOffsetMinutes: profile.utcOffsetMinutes,
    reservedGpus: profile.reservedGpus,
    ...(profile.windows.length
      ? { windows: profile.windows.map((w) => ({ ...(w.days.length ? { days: w.days as AvailabilityWindow['days'] } : {}), start: w.start, end: w.end })) }
      : {}),
  };
  return spec;
}

const iso = (ms: number) => new Date(ms).toISOString();
const round = (n: number) => Math.round(n * 100) / 100;

/** Ready=False reason of a provider lost in a mass silence: its attempts end blaming no one. */
export const HUB_LOST_CONTACT = 'HubLostContact';

/**
 * Whether `silent` of `ready` providers going quiet in one check looks like the hub's side: at
 * least 3, and at least half of those Ready. A market where most providers collude to go silent
 * together escapes blame this way; one hub outage no longer slashes every provider.
 */
export function isMassSilence(silent: number, ready: number): boolean {
  return silent >= 3 && silent * 2 >= ready;
}
