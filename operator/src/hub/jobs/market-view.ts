import { ProviderConditions } from '../../api/constants.js';
import type { GpuProvider } from '../../api/types.js';
import type { ProviderSnapshot, Weekday } from '../../core/types.js';
import type { EgressProfile } from '../../core/egress.js';

/** An API egress profile (mode defaulted by the apiserver, but maybe absent in old objects) for the core. */
export function egressOf(p: { mode?: EgressProfile['mode']; destinations?: { cidr: string; ports?: number[] }[] }): EgressProfile {
  return { mode: p.mode ?? 'dns', ...(p.destinations?.length ? { destinations: p.destinations } : {}) };
}

// The scheduler's view of the market, read from GpuProvider objects: what each agent last reported
// (pools and idle GPUs per node), what the owner declared (region, availability), and what the hub
// measured and keeps (readiness, latency, reputation, stake).

/**
 * `heartbeatAgeMs`: the leader's in-memory age of the provider's last heartbeat, when it tracks it;
 * status.lastHeartbeatTime is written only about once a minute at rest, too coarse to filter on.
 */
export function providerSnapshot(p: GpuProvider, now: number, heartbeatAgeMs?: number): ProviderSnapshot {
  const status = p.status ?? {};
  const ready = status.conditions?.find((c) => c.type === ProviderConditions.Ready)?.status === 'True';
  const staked = status.conditions?.find((c) => c.type === ProviderConditions.Staked);
  const heartbeat = status.lastHeartbeatTime ? Date.parse(status.lastHeartbeatTime) : undefined;
  const snapshot: ProviderSnapshot = {
    name: p.metadata.name ?? '',
    wallet: p.spec.wallet,
    region: p.spec.region ?? '',
    ready,
    // Without a Staked condition (no chain configured) stake is not required.
    staked: staked === undefined ? true : staked.status === 'True',
    reputation: {
      score: status.reputation?.score ?? 0,
      successes: status.reputation?.successes ?? 0,
      failures: status.reputation?.failures ?? 0,
    },
    rttMs: status.latency?.rttMs ?? 0,
    bandwidthMbps: status.latency?.bandwidthMbps ?? 0,
    auditedAttributes: Object.fromEntries((p.spec.auditedAttributes ?? []).map((a) => [a.name, a.value])),
    pools: (status.pools ?? [])
      .filter((pool) => pool.offered)
      .map((pool) => ({
        gpuProduct: pool.gpuProduct ?? '',
        memoryMiB: pool.memoryMiB ?? 0,
        cudaDriverMajor: pool.cudaDriverMajor ?? 0,
        pricePerGpuHour: pool.pricePerGpuHour ?? '0',
        ...(pool.runtimeClassName ? { runtimeClassName: pool.runtimeClassName } : {}),
        nodes: (pool.idleByNode ?? []).map((n) => ({ name: n.name ?? '', idleGpus: n.idle ?? 0, totalGpus: n.idle ?? 0 })),
        ...(pool.egress ? { egress: egressOf(pool.egress) } : {}),
        ...(pool.access ? { access: { exec: pool.access.exec !== false, portForward: pool.access.portForward !== false } } : {}),
        ...(pool.cpuMilliPerGpu && pool.memoryMiBPerGpu ? { hostPerGpu: { cpuMilli: pool.cpuMilliPerGpu, memoryMiB: pool.memoryMiBPerGpu } } : {}),
      })),
  };
  if (heartbeatAgeMs !== undefined) snapshot.heartbeatAgeMs = heartbeatAgeMs;
  else if (heartbeat !== undefined) snapshot.heartbeatAgeMs = Math.max(0, now - heartbeat);
  if (status.stake?.amount) snapshot.stakeAmount = status.stake.amount;
  const availability = p.spec.availability;
  if (availability) {
    snapshot.availability = {
      utcOffsetMinutes: availability.utcOffsetMinutes ?? 0,
      reservedGpus: availability.reservedGpus ?? 0,
      windows: (availability.windows ?? []).map((w) => ({ start: w.start, end: w.end, ...(w.days ? { days: w.days as Weekday[] } : {}) })),
    };
  }
  return snapshot;
}
