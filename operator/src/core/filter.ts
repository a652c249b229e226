// The feasibility checks of DESIGN §4.1, in the order the job spec reads: hardware, money, placement,
// then the provider's standing in the market. A provider is rejected for its best pool's first failing
// check (the pool that got furthest), so the message points at what is closest to fitting.

import { isWithinWindows } from './availability.js';
import { gangFits } from './gang.js';
import type { PreparedJob } from './job.js';
import { costOfGpuSeconds, formatMoney, type Money } from './money.js';
import type { SchedulerConfig } from './scheduler-config.js';
import type { IndexedPool, IndexedProvider } from './snapshot.js';

/** Rejection reasons, in check order (the key of Unschedulable.reasons). */
export const REJECT_REASONS = [
  'NoMatchingProduct',
  'InsufficientMemory',
  'DriverTooOld',
  'InsufficientIdle',
  'InvalidPrice',
  'PriceAboveBudget',
  'TotalAboveBudget',
  'RegionNotAllowed',
  'MissingAuditedAttribute',
  'RttTooHigh',
  'ReputationTooLow',
  'NotStaked',
  'NotReady',
  'OutsideAvailabilityWindow',
  'Excluded',
] as const;

export type RejectReason = (typeof REJECT_REASONS)[number];

/** Position of a reason in check order; a pool or provider that passes everything ranks PASSED. */
export const RANK: Readonly<Record<RejectReason, number>> = Object.fromEntries(
  REJECT_REASONS.map((reason, i) => [reason, i]),
) as Record<RejectReason, number>;
export const PASSED = REJECT_REASONS.length;

/** One provider's rejection with what the message needs. */
export interface Rejection {
  reason: RejectReason;
  provider: string;
  /** The best pool's product (idle, memory, driver, price reasons). */
  gpuProduct?: string;
  /** Observed value: price, rtt, reputation, memory GiB, driver, region, missing attribute. */
  value?: number | string;
}

/** Everything a check needs besides the pool or provider; built once per schedule() call. */
export interface CheckContext {
  job: PreparedJob;
  config: SchedulerConfig;
  now: number;
  minStake: Money;
}

/** First failing pool-level check, or undefined when the pool can hold the gang within budget. */
export function failingPoolCheck(pool: IndexedPool, ctx: CheckContext): RejectReason | undefined {
  const job = ctx.job;
  if (job.products.length > 0 && !job.products.includes(pool.gpuProduct)) return 'NoMatchingProduct';
  if (pool.memoryMiB < job.minMemoryMiB) return 'InsufficientMemory';
  if (pool.cudaDriverMajor < job.minCudaDriverMajor) return 'DriverTooOld';
  // Cheap bounds first; gangFits counts whole replica slots per node.
  if (pool.maxIdle < job.gpusPerReplica || pool.sumIdle < job.gpus || (job.sameNode && pool.maxIdle < job.gpus)) {
    return 'InsufficientIdle';
  }
  if (job.gpusPerReplica > 1 && !gangFits(pool.idle, job.replicas, job.gpusPerReplica, job.sameNode)) {
    return 'InsufficientIdle';
  }
  if (pool.price === undefined) return 'InvalidPrice';
  if (job.maxPrice !== undefined && pool.price > job.maxPrice) return 'PriceAboveBudget';
  if (job.maxTotal !== undefined && job.deadlineSeconds !== undefined) {
    if (estimatedMaxTotal(pool.price, job) > job.maxTotal) return 'TotalAboveBudget';
  }
  return undefined;
}

/** First failing provider-level check, or undefined when the provider may take the job. */
export function failingProviderCheck(provider: IndexedProvider, ctx: CheckContext): RejectReason | undefined {
  const job = ctx.job;
  const p = provider.source;
  if (job.regions !== undefined && !job.regions.has(p.region)) return 'RegionNotAllowed';
  if (missingAudit(provider, job) !== undefined) return 'MissingAuditedAttribute';
  if (job.maxLatencyMs !== undefined && !(p.rttMs <= job.maxLatencyMs)) return 'RttTooHigh';
  if (job.minReputation !== undefined && !(p.reputation.score >= job.minReputation)) return 'ReputationTooLow';
  if (!p.staked || (ctx.minStake > 0n && !(provider.stake !== undefined && provider.stake >= ctx.minStake))) {
    return 'NotStaked';
  }
  if (!p.ready || (p.heartbeatAgeMs !== undefined && p.heartbeatAgeMs > ctx.config.heartbeatStaleMs)) return 'NotReady';
  if (provider.availability === undefined || !isWithinWindows(provider.availability, ctx.now)) {
    return 'OutsideAvailabilityWindow';
  }
  if (job.exclude.has(p.name)) return 'Excluded';
  return undefined;
}

/**
 * Why a provider cannot take the job, or undefined when one of its pools can. Scans all its pools
 * (slow path: only used to explain an Unschedulable result).
 */
export function diagnoseProvider(provider: IndexedProvider, ctx: CheckContext): Rejection | undefined {
  let bestRank = -1;
  let bestPool: IndexedPool | undefined;
  let bestReason: RejectReason | undefined;
  for (const pool of provider.pools) {
    const reason = failingPoolCheck(pool, ctx);
    const rank = reason === undefined ? PASSED : RANK[reason];
    if (rank > bestRank) {
      bestRank = rank;
      bestPool = pool;
      bestReason = reason;
    }
  }
  const rejection = (reason: RejectReason, value?: number | string, gpuProduct?: string): Rejection => {
    const r: Rejection = { reason, provider: provider.name };
    if (value !== undefined) r.value = value;
    if (gpuProduct !== undefined) r.gpuProduct = gpuProduct;
    return r;
  };
  if (!bestPool) return rejection('NoMatchingProduct');
  if (bestReason !== undefined) {
    switch (bestReason) {
      case 'NoMatchingProduct':
        return rejection(bestReason);
      case 'InsufficientMemory':
        return rejection(bestReason, Math.floor(bestPool.memoryMiB / 1024), bestPool.gpuProduct);
      case 'DriverTooOld':
        return rejection(bestReason, bestPool.cudaDriverMajor, bestPool.gpuProduct);
      case 'PriceAboveBudget':
        return rejection(bestReason, bestPool.source.pricePerGpuHour, bestPool.gpuProduct);
      case 'TotalAboveBudget':
        return rejection(bestReason, formatMoney(estimatedMaxTotal(bestPool.price ?? 0n, ctx.job)), bestPool.gpuProduct);
      default:
        return rejection(bestReason, undefined, bestPool.gpuProduct);
    }
  }
  const reason = failingProviderCheck(provider, ctx);
  if (reason === undefined) return undefined;
  const p = provider.source;
  switch (reason) {
    case 'RegionNotAllowed':
      return rejection(reason, p.region);
    case 'MissingAuditedAttribute':
      return rejection(reason, missingAudit(provider, ctx.job));
    case 'RttTooHigh':
      return rejection(reason, p.rttMs);
    case 'ReputationTooLow':
      return rejection(reason, p.reputation.score);
    default:
      return rejection(reason);
  }
}

/** price × GPUs × deadline / 3600, rounded up: the most the job could cost at this price. */
export function estimatedMaxTotal(price: Money, job: PreparedJob): Money {
  return costOfGpuSeconds(price, job.gpus * (job.deadlineSeconds ?? 0), 'ceil');
}

function missingAudit(provider: IndexedProvider, job: PreparedJob): string | undefined {
  const attributes = provider.source.auditedAttributes;
  for (const need of job.audited) {
    const have = Object.hasOwn(attributes, need.name) ? attributes[need.name] : undefined;
    if (have === undefined || (need.value !== undefined && have !== need.value)) return need.text;
  }
  return undefined;
}
