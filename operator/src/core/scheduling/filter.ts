// The feasibility checks of DESIGN §4.1, in the order the job spec reads: hardware, money, placement,
// then the provider's standing in the market. A provider is rejected for its best pool's first failing
// check (the pool that got furthest), so the message points at what is closest to fitting.

import { isWithinWindows } from '../availability.js';
import { DEFAULT_EGRESS, describeEgress, egressAllows } from '../egress.js';
import { gangFits } from './gang.js';
import type { PreparedJob } from '../job.js';
import { costOfGpuSeconds, type Money } from '../money.js';
import type { SchedulerConfig } from './config.js';
import type { IndexedPool, IndexedProvider } from './snapshot.js';
import type { HostResources } from '../types.js';

/** Rejection reasons, in check order (the key of Unschedulable.reasons). */
export const REJECT_REASONS = [
  'NoMatchingProduct',
  'InsufficientMemory',
  'DriverTooOld',
  'RuntimeClassMismatch',
  'InsufficientCpuMemory',
  'InsufficientIdle',
  'InvalidPrice',
  'PriceAboveBudget',
  'TotalAboveBudget',
  'EgressNotOffered',
  'AccessNotOffered',
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

/** Position of each reason in check order; the checks return these numbers (no string work). */
export const RANK = Object.freeze({
  NoMatchingProduct: 0,
  InsufficientMemory: 1,
  DriverTooOld: 2,
  RuntimeClassMismatch: 3,
  InsufficientCpuMemory: 4,
  InsufficientIdle: 5,
  InvalidPrice: 6,
  PriceAboveBudget: 7,
  TotalAboveBudget: 8,
  EgressNotOffered: 9,
  AccessNotOffered: 10,
  RegionNotAllowed: 11,
  MissingAuditedAttribute: 12,
  RttTooHigh: 13,
  ReputationTooLow: 14,
  NotStaked: 15,
  NotReady: 16,
  OutsideAvailabilityWindow: 17,
  Excluded: 18,
} as const satisfies Record<RejectReason, number>);
/** The rank of a pool or provider that passes every check. */
export const PASSED = REJECT_REASONS.length;

/** One provider's rejection with what the message needs. */
export interface Rejection {
  reason: RejectReason;
  provider: string;
  /** The best pool's product (idle, memory, driver, price reasons). */
  gpuProduct?: string;
  /** Observed value: price or total (bigint money), rtt, reputation, memory GiB, driver, region, attribute. */
  value?: number | string | bigint;
}

/** Everything a check needs besides the pool or provider; built once per schedule() call. */
export interface CheckContext {
  job: PreparedJob;
  config: SchedulerConfig;
  now: number;
  /** Least stake besides the Staked condition; 0 disables the amount check. */
  minStake: Money;
}

/** First failing pool-level check, or undefined when the pool can hold the gang within budget. */
export function failingPoolCheck(pool: IndexedPool, ctx: CheckContext): RejectReason | undefined {
  return REJECT_REASONS[poolCheck(pool, ctx)];
}

/** First failing provider-level check, or undefined when the provider may take the job. */
export function failingProviderCheck(provider: IndexedProvider, ctx: CheckContext): RejectReason | undefined {
  return REJECT_REASONS[providerCheck(provider, ctx)];
}

/** Rank of the first failing pool-level check (RANK), or PASSED. The scheduler's hot path. */
export function poolCheck(pool: IndexedPool, ctx: CheckContext): number {
  const job = ctx.job;
  if (job.products.length > 0 && !job.products.includes(pool.gpuProduct)) return RANK.NoMatchingProduct;
  if (pool.memoryMiB < job.minMemoryMiB) return RANK.InsufficientMemory;
  if (pool.cudaDriverMajor < job.minCudaDriverMajor) return RANK.DriverTooOld;
  if (job.runtimeClassName !== undefined && pool.source.runtimeClassName !== job.runtimeClassName) return RANK.RuntimeClassMismatch;
  if (job.hostPerReplica !== undefined && pool.source.hostPerGpu !== undefined && !hostFits(job.hostPerReplica, pool.source.hostPerGpu, job.gpusPerReplica)) {
    return RANK.InsufficientCpuMemory;
  }
  // Cheap bounds first; gangFits counts whole replica slots per node.
  if (pool.maxIdle < job.gpusPerReplica || pool.sumIdle < job.gpus || (job.sameNode && pool.maxIdle < job.gpus)) {
    return RANK.InsufficientIdle;
  }
  if (job.gpusPerReplica > 1 && !gangFits(pool.idle, job.replicas, job.gpusPerReplica, job.sameNode)) {
    return RANK.InsufficientIdle;
  }
  if (pool.price === undefined) return RANK.InvalidPrice;
  if (job.maxPrice !== undefined && exceeds(pool.price, pool.priceNumber, job.maxPrice, job.maxPriceNumber)) {
    return RANK.PriceAboveBudget;
  }
  if (
    job.maxPriceForTotal !== undefined &&
    exceeds(pool.price, pool.priceNumber, job.maxPriceForTotal, job.maxPriceForTotalNumber)
  ) {
    return RANK.TotalAboveBudget;
  }
  if (job.egress !== undefined && !egressAllows(pool.source.egress ?? DEFAULT_EGRESS, job.egress)) return RANK.EgressNotOffered;
  if ((job.needsExec || job.needsPortForward) && deniedAccess(pool, job) !== undefined) return RANK.AccessNotOffered;
  return PASSED;
}

/** Rank of the first failing provider-level check (RANK), or PASSED. */
export function providerCheck(provider: IndexedProvider, ctx: CheckContext): number {
  const job = ctx.job;
  const p = provider.source;
  if (job.regions !== undefined && !job.regions.has(p.region)) return RANK.RegionNotAllowed;
  if (job.audited.length > 0 && missingAudit(provider, job) !== undefined) return RANK.MissingAuditedAttribute;
  if (job.maxLatencyMs !== undefined && !(p.rttMs <= job.maxLatencyMs)) return RANK.RttTooHigh;
  if (job.minReputation !== undefined && !(p.reputation.score >= job.minReputation)) return RANK.ReputationTooLow;
  if (!p.staked) return RANK.NotStaked;
  if (ctx.minStake !== 0n && !(provider.stake !== undefined && provider.stake >= ctx.minStake)) return RANK.NotStaked;
  if (!p.ready || (p.heartbeatAgeMs !== undefined && p.heartbeatAgeMs > ctx.config.heartbeatStaleMs)) return RANK.NotReady;
  const availability = provider.availability;
  if (availability === undefined || (availability.windows.length > 0 && !isWithinWindows(availability, ctx.now))) {
    return RANK.OutsideAvailabilityWindow;
  }
  if (job.exclude.size > 0 && job.exclude.has(p.name)) return RANK.Excluded;
  return PASSED;
}

/**
 * Why a provider cannot take the job, or undefined when one of its pools can. Scans all its pools
 * (slow path: only used to explain an Unschedulable result).
 */
export function diagnoseProvider(provider: IndexedProvider, ctx: CheckContext): Rejection | undefined {
  let bestRank = -1;
  let bestPool: IndexedPool | undefined;
  const pools = provider.pools;
  for (let i = 0; i < pools.length; i++) {
    const pool = pools[i] as IndexedPool;
    const rank = poolCheck(pool, ctx);
    if (rank > bestRank) {
      bestRank = rank;
      bestPool = pool;
    }
  }
  const bestReason = REJECT_REASONS[bestRank];
  const name = provider.name;
  if (!bestPool) return makeRejection(name, 'NoMatchingProduct');
  if (bestReason !== undefined) {
    switch (bestReason) {
      case 'NoMatchingProduct':
        return makeRejection(name, bestReason);
      case 'InsufficientMemory':
        return makeRejection(name, bestReason, Math.floor(bestPool.memoryMiB / 1024), bestPool.gpuProduct);
      case 'DriverTooOld':
        return makeRejection(name, bestReason, bestPool.cudaDriverMajor, bestPool.gpuProduct);
      case 'RuntimeClassMismatch':
        return makeRejection(name, bestReason, bestPool.source.runtimeClassName || 'default', bestPool.gpuProduct);
      case 'InsufficientCpuMemory':
        // "cpuMilli/memoryMiB" a replica gets there; the message gives the most of each (bounded, however many pools).
        return makeRejection(name, bestReason, `${bestPool.source.hostPerGpu!.cpuMilli * ctx.job.gpusPerReplica}/${bestPool.source.hostPerGpu!.memoryMiB * ctx.job.gpusPerReplica}`, bestPool.gpuProduct);
      case 'PriceAboveBudget':
        return makeRejection(name, bestReason, bestPool.price, bestPool.gpuProduct);
      case 'TotalAboveBudget':
        return makeRejection(name, bestReason, estimatedMaxTotal(bestPool.price ?? 0n, ctx.job), bestPool.gpuProduct);
      case 'EgressNotOffered':
        return makeRejection(name, bestReason, describeEgress(ctx.job.egress!), bestPool.gpuProduct);
      case 'AccessNotOffered':
        return makeRejection(name, bestReason, deniedAccess(bestPool, ctx.job), bestPool.gpuProduct);
      default:
        return makeRejection(name, bestReason, undefined, bestPool.gpuProduct);
    }
  }
  const reason = REJECT_REASONS[providerCheck(provider, ctx)];
  if (reason === undefined) return undefined;
  const p = provider.source;
  switch (reason) {
    case 'RegionNotAllowed':
      return makeRejection(name, reason, p.region);
    case 'MissingAuditedAttribute':
      return makeRejection(name, reason, missingAudit(provider, ctx.job));
    case 'RttTooHigh':
      return makeRejection(name, reason, p.rttMs);
    case 'ReputationTooLow':
      return makeRejection(name, reason, p.reputation.score);
    default:
      return makeRejection(name, reason);
  }
}

/** price × GPUs × deadline / 3600, rounded up: the most the job could cost at this price. */
export function estimatedMaxTotal(price: Money, job: PreparedJob): Money {
  return costOfGpuSeconds(price, job.gpus * (job.deadlineSeconds ?? 0), 'ceil');
}

// a > b for money, exact. The float copies decide when they differ by far more than rounding (a
// double holds 15+ significant digits); only near-ties pay for a bigint comparison.
function exceeds(a: Money, aNumber: number, b: Money, bNumber: number): boolean {
  if (aNumber > bNumber * (1 + 1e-9)) return true;
  if (aNumber < bNumber * (1 - 1e-9)) return false;
  return a > b;
}

function makeRejection(
  provider: string,
  reason: RejectReason,
  value?: number | string | bigint,
  gpuProduct?: string,
): Rejection {
  const r: Rejection = { reason, provider };
  if (value !== undefined) r.value = value;
  if (gpuProduct !== undefined) r.gpuProduct = gpuProduct;
  return r;
}

/** The verbs the job needs that the pool's owner does not allow ("exec", "port-forward", "exec+port-forward"). */
function deniedAccess(pool: IndexedPool, job: PreparedJob): string | undefined {
  const access = pool.source.access;
  if (access === undefined) return undefined;
  const denied: string[] = [];
  if (job.needsExec && !access.exec) denied.push('exec');
  if (job.needsPortForward && !access.portForward) denied.push('port-forward');
  return denied.length > 0 ? denied.join('+') : undefined;
}

function missingAudit(provider: IndexedProvider, job: PreparedJob): string | undefined {
  const attributes = provider.source.auditedAttributes;
  for (const need of job.audited) {
    const have = Object.hasOwn(attributes, need.name) ? attributes[need.name] : undefined;
    if (have === undefined || (need.value !== undefined && have !== need.value)) return need.text;
  }
  return undefined;
}

/**
 * Whether a replica's CPU and memory fit the share its GPUs bring on the pool's smallest node: the
 * agent refuses a replica over its share (core/isolation/share.ts), so such a pool is not chosen.
 */
export function hostFits(ask: HostResources, perGpu: HostResources, gpusPerReplica: number): boolean {
  return ask.cpuMilli <= perGpu.cpuMilli * gpusPerReplica && ask.memoryMiB <= perGpu.memoryMiB * gpusPerReplica;
}

/** "8 CPU & 64Gi" (millicores and MiB shown exactly: a rounding never hides a difference). */
export function describeHost(host: HostResources): string {
  const gib = host.memoryMiB / 1024;
  return `${host.cpuMilli / 1000} CPU & ${Number.isInteger(gib) ? `${gib}Gi` : `${host.memoryMiB}Mi`}`;
}
