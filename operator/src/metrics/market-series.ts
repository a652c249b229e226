// Pure functions from the hub's caches (GpuProvider and GpuJob objects) to the values of the
// scrape-time gauges. No prom-client here, so they are tested with plain objects.
import { JobConditions, ProviderConditions } from '../api/constants.js';
import type { GpuJob, GpuProvider } from '../api/types.js';
import { JOB_PHASES, type JobPhase } from './labels.js';

export interface ProviderSeries {
  provider: string;
  ready: 0 | 1;
  /** Absent until the first heartbeat. */
  heartbeatAgeSeconds?: number;
  /** Absent until reputation is known: a 0 would page for every new provider. */
  reputationScore?: number;
  /** Absent without a chain (no status.stake). */
  stakeCredits?: number;
  rttSeconds?: number;
  runningJobs: number;
  /** By GPU product, summed over the provider's pools of that product. */
  gpus: Map<string, { total: number; idle: number }>;
}

export function providerSeries(
  providers: readonly GpuProvider[],
  jobs: readonly GpuJob[],
  now: number,
  lastHeard?: (provider: string) => number | undefined,
): ProviderSeries[] {
  const running = liveAttemptsByProvider(jobs);
  return providers.flatMap((p) => {
    const name = p.metadata.name;
    if (!name) return [];
    const status = p.status ?? {};
    const series: ProviderSeries = {
      provider: name,
      ready: status.conditions?.some((c) => c.type === ProviderConditions.Ready && c.status === 'True') ? 1 : 0,
      // status.runningJobs when a controller keeps it; otherwise counted from the jobs cache.
      runningJobs: status.runningJobs ?? running.get(name) ?? 0,
      gpus: new Map(),
    };
    const heartbeat = lastHeard?.(name) ?? (status.lastHeartbeatTime ? Date.parse(status.lastHeartbeatTime) : Number.NaN);
    if (Number.isFinite(heartbeat)) series.heartbeatAgeSeconds = Math.max(0, (now - heartbeat) / 1000);
    if (typeof status.reputation?.score === 'number') series.reputationScore = status.reputation.score;
    const stake = credits(status.stake?.amount);
    if (stake !== undefined) series.stakeCredits = stake;
    if (typeof status.latency?.rttMs === 'number') series.rttSeconds = status.latency.rttMs / 1000;
    for (const pool of status.pools ?? []) {
      if (!pool.gpuProduct) continue;
      const sum = series.gpus.get(pool.gpuProduct) ?? { total: 0, idle: 0 };
      sum.total += pool.total ?? 0;
      sum.idle += pool.idle ?? 0;
      series.gpus.set(pool.gpuProduct, sum);
    }
    return [series];
  });
}

/** GpuJobs per phase, every phase present (0 when none); a job without a phase yet is Pending. */
export function jobsByPhase(jobs: readonly GpuJob[]): Record<JobPhase, number> {
  const counts = Object.fromEntries(JOB_PHASES.map((p) => [p, 0])) as Record<JobPhase, number>;
  for (const job of jobs) {
    const phase = (job.status?.phase ?? 'Pending') as JobPhase;
    if (phase in counts) counts[phase]++;
  }
  return counts;
}

/** Age in seconds of the oldest Pending GpuJob; 0 when none is Pending. */
export function oldestPendingSeconds(jobs: readonly GpuJob[], now: number): number {
  let oldest = 0;
  for (const job of jobs) {
    if ((job.status?.phase ?? 'Pending') !== 'Pending') continue;
    const created = Date.parse(String(job.metadata.creationTimestamp ?? ''));
    if (Number.isFinite(created)) oldest = Math.max(oldest, (now - created) / 1000);
  }
  return oldest;
}

/** Finished GpuJobs without Settled=True. */
export function settlementPending(jobs: readonly GpuJob[]): number {
  return jobs.filter(
    (j) =>
      (j.status?.phase === 'Succeeded' || j.status?.phase === 'Failed') &&
      !j.status?.conditions?.some((c) => c.type === JobConditions.Settled && c.status === 'True'),
  ).length;
}

function liveAttemptsByProvider(jobs: readonly GpuJob[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const job of jobs) {
    const current = job.status?.attempts?.find((a) => a.epoch === job.status?.currentEpoch);
    if (current && !current.endTime) counts.set(current.provider, (counts.get(current.provider) ?? 0) + 1);
  }
  return counts;
}

/** Decimal credits (a string in the API) as a float of whole credits; undefined when absent or malformed. */
export function credits(amount: string | undefined): number | undefined {
  if (amount === undefined || amount === '') return undefined;
  const n = Number(amount);
  return Number.isFinite(n) ? n : undefined;
}
