// `fedgpu estimate`: a dry run of the hub's scheduler on the live market. Pure: given the job (as
// the apiserver defaulted and validated it) and the GpuProviders it listed, the same snapshot code
// (hub/jobs/market-view.ts) and scheduler (core/scheduling) the hub runs decide where the job
// would go; the cost of a duration is GPUs × hours × that pool's price. Nothing is created.

import type { GpuJob, GpuProvider } from '../../api/types.js';
import { DEFAULT_SCHEDULER_CONFIG, type SchedulerConfig } from '../../core/scheduling/config.js';
import { schedule } from '../../core/scheduling/scheduler.js';
import { costOfGpuSeconds, formatMoney, parseMoney } from '../../core/money.js';
import type { Decision } from '../../core/types.js';
import { providerSnapshot } from '../../hub/jobs/market-view.js';
import { jobRequest } from '../../hub/jobs/plan.js';
import { placementLines } from '../market.command.js';

/**
 * The hub's scheduler config, except for heartbeat freshness: the hub knows each heartbeat's age in
 * memory, a client only status.lastHeartbeatTime, which the hub writes at most once a minute at rest.
 * One write period more keeps a healthy provider from looking stale here.
 */
export const ESTIMATE_SCHEDULER_CONFIG: Readonly<SchedulerConfig> = Object.freeze({
  ...DEFAULT_SCHEDULER_CONFIG,
  heartbeatStaleMs: DEFAULT_SCHEDULER_CONFIG.heartbeatStaleMs + 60_000,
});

export interface ProviderVerdict {
  provider: string;
  displayName: string;
  /** True when this provider alone could take the job. */
  fits: boolean;
  /** Where and at what price when it fits; why not otherwise ("price 3.00 > 2.50"). */
  detail: string;
}

export interface Estimate {
  namespace: string;
  name: string;
  replicas: number;
  gpusPerReplica: number;
  gpus: number;
  fits: boolean;
  /** As GpuJob status.placement would read after scheduling. */
  placement?: {
    provider: string;
    gpuProduct: string;
    nodes: string[];
    pricePerGpuHour: string;
    score: { total: number; reputation: number; latency: number; price: number; timeToStart: number; fragmentation: number };
  };
  /** Credits per hour for the whole job at the placement's price (GPUs × price). */
  costPerHour?: string;
  /** The duration asked for with --for, in seconds, and its cost (GPUs × hours × price, rounded up). */
  forSeconds?: number;
  cost?: string;
  /** The scheduler's explanation when nothing fits, as status.message would read. */
  message?: string;
  /** Rejections counted by reason when nothing fits. */
  reasons?: Record<string, number>;
  /** Each provider on its own: could it take the job, or why not. */
  providers: ProviderVerdict[];
}

/** Where the job would go on this market now, and what it would cost for `forSeconds`. */
export function estimateJob(job: GpuJob, providers: readonly GpuProvider[], now: number, forSeconds?: number, config: SchedulerConfig = ESTIMATE_SCHEDULER_CONFIG): Estimate {
  const request = jobRequest(job, []);
  const snapshots = providers.map((p) => providerSnapshot(p, now));
  const replicas = request.replicas;
  const gpusPerReplica = request.gpusPerReplica;
  const base = {
    namespace: job.metadata.namespace ?? 'default',
    name: job.metadata.name ?? job.metadata.generateName ?? '',
    replicas,
    gpusPerReplica,
    gpus: replicas * gpusPerReplica,
  };
  const verdicts = snapshots
    .map((s, i): ProviderVerdict => {
      const alone = schedule([s], request, config, now);
      const displayName = providers[i]?.spec.displayName ?? '';
      if (alone.kind === 'decision') return { provider: s.name, displayName, fits: true, detail: `${alone.gpuProduct} at ${alone.pricePerGpuHour} credits/GPU-hour, score ${alone.score.total.toFixed(3)}` };
      return { provider: s.name, displayName, fits: false, detail: alone.message.replace(/^0\/1 providers fit: 1 /, '') };
    })
    .sort((a, b) => Number(b.fits) - Number(a.fits) || a.provider.localeCompare(b.provider));
  const result = schedule(snapshots, request, config, now);
  if (result.kind !== 'decision') return { ...base, fits: false, message: result.message, reasons: result.reasons, providers: verdicts };
  const estimate: Estimate = { ...base, fits: true, placement: placementOf(result), costPerHour: money(costOfGpuSeconds(parseMoney(result.pricePerGpuHour), base.gpus * 3600, 'ceil')), providers: verdicts };
  if (forSeconds !== undefined) {
    estimate.forSeconds = forSeconds;
    estimate.cost = money(costOfGpuSeconds(parseMoney(result.pricePerGpuHour), base.gpus * forSeconds, 'ceil'));
  }
  return estimate;
}

/** The table output: the explain format, then price, cost and the other providers. */
export function formatEstimate(e: Estimate): string {
  const lines = [`GpuJob ${e.namespace}/${e.name} (estimate; nothing was created): ${e.fits ? 'would be placed' : 'does not fit today'} (${e.gpus} GPUs: ${e.replicas} × ${e.gpusPerReplica})`];
  if (e.placement) {
    lines.push(...placementLines(e.placement));
    lines.push(`Price: ${e.placement.pricePerGpuHour} credits per GPU-hour; ${e.costPerHour} credits per hour for ${e.gpus} GPUs`);
    if (e.forSeconds !== undefined) {
      lines.push(`Cost for ${formatDuration(e.forSeconds)}: ${e.cost} credits (${e.gpus} GPUs × ${formatHours(e.forSeconds)} h × ${e.placement.pricePerGpuHour})`);
    }
  } else if (e.message) lines.push(`  ${e.message}`);
  if (e.providers.length > 0) {
    lines.push('Providers:');
    for (const p of e.providers) lines.push(`  ${p.provider}${p.displayName ? ` (${p.displayName})` : ''}: ${p.fits ? 'fits, ' : ''}${p.detail}`);
  }
  return `${lines.join('\n')}\n`;
}

/** --for: a duration such as 2h, 90m, 1h30m, 2d or 45s; whole seconds, at least 1, at most a year. */
export function parseForDuration(text: string): number {
  const units: Record<string, number> = { d: 86_400, h: 3_600, m: 60, s: 1 };
  if (!/^(\d+(\.\d+)?[dhms])+$/.test(text)) throw new RangeError(`--for ${JSON.stringify(text)} is not a duration: use e.g. 2h, 90m, 1h30m or 3d`);
  let seconds = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)([dhms])/g)) seconds += Number(m[1]) * units[m[2]!]!;
  seconds = Math.ceil(seconds);
  if (seconds < 1 || seconds > 31_536_000) throw new RangeError(`--for ${text} must be between 1s and 365d`);
  return seconds;
}

function placementOf(d: Decision): NonNullable<Estimate['placement']> {
  const round = (v: number) => Math.round(v * 1000) / 1000;
  const p = d.score.parts;
  return {
    provider: d.provider,
    gpuProduct: d.gpuProduct,
    nodes: d.assignments.map((a) => a.node),
    pricePerGpuHour: d.pricePerGpuHour,
    score: { total: round(d.score.total), reputation: round(p.reputation), latency: round(p.latency), price: round(p.price), timeToStart: round(p.timeToStart), fragmentation: round(p.fragmentation) },
  };
}

const money = (amount: bigint) => formatMoney(amount, { minFractionDigits: 2 });

function formatHours(seconds: number): string {
  return String(Math.round((seconds / 3600) * 1e4) / 1e4);
}

function formatDuration(seconds: number): string {
  const parts: string[] = [];
  let left = seconds;
  for (const [unit, size] of [['d', 86_400], ['h', 3_600], ['m', 60], ['s', 1]] as const) {
    if (left >= size) {
      parts.push(`${Math.floor(left / size)}${unit}`);
      left %= size;
    }
  }
  return parts.join('') || '0s';
}
