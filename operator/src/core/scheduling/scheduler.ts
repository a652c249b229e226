// schedule(): pick the provider pool for a gang (DESIGN §4). Pure and deterministic: the same
// snapshot, job, config and `now` give the same answer, ties broken by provider name then pool key.
//
//   1. Prepare the job once (money to bigint, sets), then walk only the pools of the wanted products.
//   2. Filter: pool checks (hardware, idle, price), then provider checks (placement, standing).
//   3. Score the survivors; skip the gang placement when even a perfect fragmentation part could not
//      beat the best so far (branch and bound: the hot loop's only non-trivial work).
//   4. Nothing fits: explain why, one reason per provider (slow path, runs only then).
// The caller applies the decision to the snapshot (snapshot.assume) before the next job of a burst.

import type { AssumedAllocations } from './assumed.js';
import {
  type CheckContext,
  diagnoseProvider,
  estimatedMaxTotal,
  PASSED,
  poolCheck,
  providerCheck,
  type Rejection,
} from './filter.js';
import { gangTouchedIdle, type GangPlacement, placeGang } from './gang.js';
import { prepareJob } from '../job.js';
import { formatMoney, moneyToNumber, tryParseMoney } from '../money.js';
import type { SchedulerConfig } from './config.js';
import {
  fragmentationPart,
  latencyPart,
  pricePart,
  reputationPart,
  timeToStartPart,
  timeToStartSeconds,
} from './score.js';
import { compareStrings } from '../order.js';
import { buildSnapshot, type IndexedPool, MarketSnapshot } from './snapshot.js';
import type { Decision, JobRequest, ProviderSnapshot, ScheduleResult, ScoreParts } from '../types.js';
import { explainUnschedulable, invalidRequest } from './unschedulable.js';

interface Best {
  pool: IndexedPool;
  parts: ScoreParts;
  total: number;
  timeToStartSeconds: number;
}

/** Choose a pool for the job, or explain why none fits. Plain provider lists are indexed on the fly. */
export function schedule(
  snapshot: MarketSnapshot | readonly ProviderSnapshot[],
  job: JobRequest,
  config: SchedulerConfig,
  now: number,
): ScheduleResult {
  const market = snapshot instanceof MarketSnapshot ? snapshot : buildSnapshot(snapshot);
  const prepared = prepareJob(job, config);
  if ('invalid' in prepared) return invalidRequest(prepared.invalid);
  const parsed = parseConfig(config);
  if (typeof parsed === 'string') return invalidRequest(parsed);
  const ctx: CheckContext = { job: prepared, config, now, minStake: parsed.minStake };
  const { wReputation, wLatency, wPrice, wTimeToStart, wFragmentation } = parsed;
  const budget = prepared.maxPrice !== undefined ? prepared.maxPriceNumber : parsed.referencePrice;

  // The hot loop allocates nothing per pool until a pool beats the best so far.
  let best: Best | undefined;
  let bestTotal = Number.NEGATIVE_INFINITY;
  const pools = market.poolsFor(prepared.products);
  for (let i = 0; i < pools.length; i++) {
    const pool = pools[i] as IndexedPool;
    if (poolCheck(pool, ctx) !== PASSED) continue;
    if (providerCheck(pool.provider, ctx) !== PASSED) continue;

    const provider = pool.provider.source;
    const transferSeconds = timeToStartSeconds(prepared, provider);
    const reputation = reputationPart(provider.reputation, config);
    const latency = latencyPart(provider.rttMs, prepared, config);
    const price = pricePart(pool.priceNumber, budget);
    const timeToStart = timeToStartPart(transferSeconds, config);
    const partial = wReputation * reputation + wLatency * latency + wPrice * price + wTimeToStart * timeToStart;
    // Branch and bound: even a perfect fill cannot beat the best, so skip the placement search.
    if (partial + wFragmentation < bestTotal - 1e-12) continue;

    const touchedIdle = gangTouchedIdle(pool.idle, prepared.replicas, prepared.gpusPerReplica, prepared.sameNode);
    if (touchedIdle < 0) continue; // unreachable: poolCheck ran gangFits
    const fragmentation = fragmentationPart(prepared.gpus, touchedIdle);
    const total = partial + wFragmentation * fragmentation;
    if (best === undefined || total > bestTotal || (total === bestTotal && breaksTie(pool, best.pool))) {
      bestTotal = total;
      best = {
        pool,
        parts: { reputation, latency, price, timeToStart, fragmentation },
        total,
        timeToStartSeconds: transferSeconds,
      };
    }
  }

  if (best !== undefined) {
    // Only the winner gets the full placement (the same search gangTouchedIdle scored).
    const placement = placeGang(best.pool.idle, prepared.replicas, prepared.gpusPerReplica, prepared.sameNode);
    if (placement !== undefined) return decisionOf(best, placement, prepared.gpusPerReplica, ctx);
  }

  const rejections: Rejection[] = [];
  for (const provider of market.providers) {
    // A provider that passes every check here could only have failed placement, which gangFits rules out.
    rejections.push(diagnoseProvider(provider, ctx) ?? { reason: 'InsufficientIdle', provider: provider.name });
  }
  return explainUnschedulable(market.providers.length, rejections, prepared);
}

/** One job of a burst: its key (namespace/name) and request. */
export interface QueuedJob {
  key: string;
  job: JobRequest;
}

/**
 * Schedule a burst in order against one snapshot, assuming each decision before the next job so no
 * GPU is handed out twice; records the assumptions in `assumed` when given (for later inventories).
 */
export function scheduleQueue(
  snapshot: MarketSnapshot,
  jobs: readonly QueuedJob[],
  config: SchedulerConfig,
  now: number,
  assumed?: AssumedAllocations,
): { key: string; result: ScheduleResult }[] {
  return jobs.map(({ key, job }) => {
    const result = schedule(snapshot, job, config, now);
    if (result.kind === 'decision') {
      snapshot.assume(result);
      assumed?.assume(key, result, now);
    }
    return { key, result };
  });
}

/** The numeric side of a SchedulerConfig, parsed once per config object. */
interface ParsedConfig {
  minStake: bigint;
  referencePrice: number;
  // Weights normalized to sum 1, so the total is the weighted mean of the parts (totalScore).
  wReputation: number;
  wLatency: number;
  wPrice: number;
  wTimeToStart: number;
  wFragmentation: number;
}

const parsedConfigs = new WeakMap<SchedulerConfig, ParsedConfig>();

// Configs are treated as immutable (schedulerConfig() builds a fresh one for every change).
function parseConfig(config: SchedulerConfig): ParsedConfig | string {
  const cached = parsedConfigs.get(config);
  if (cached !== undefined) return cached;
  const minStake = tryParseMoney(config.minStake);
  if (minStake === undefined) return `config minStake ${JSON.stringify(config.minStake)} is not a decimal amount`;
  const reference = tryParseMoney(config.referencePricePerGpuHour);
  if (reference === undefined) {
    return `config referencePricePerGpuHour ${JSON.stringify(config.referencePricePerGpuHour)} is not a decimal amount`;
  }
  const w = config.weights;
  const sum = w.reputation + w.latency + w.price + w.timeToStart + w.fragmentation;
  if (!(sum > 0)) return 'config weights must not all be 0';
  const parsed: ParsedConfig = {
    minStake,
    referencePrice: moneyToNumber(reference),
    wReputation: w.reputation / sum,
    wLatency: w.latency / sum,
    wPrice: w.price / sum,
    wTimeToStart: w.timeToStart / sum,
    wFragmentation: w.fragmentation / sum,
  };
  parsedConfigs.set(config, parsed);
  return parsed;
}

// Lower provider name wins, then lower pool key: a stable order independent of input order.
function breaksTie(candidate: IndexedPool, incumbent: IndexedPool): boolean {
  const byProvider = compareStrings(candidate.provider.name, incumbent.provider.name);
  return byProvider !== 0 ? byProvider < 0 : compareStrings(candidate.key, incumbent.key) < 0;
}

function decisionOf(best: Best, placement: GangPlacement, gpusPerReplica: number, ctx: CheckContext): Decision {
  const { pool } = best;
  const decision: Decision = {
    kind: 'decision',
    provider: pool.provider.name,
    gpuProduct: pool.gpuProduct,
    memoryMiB: pool.memoryMiB,
    cudaDriverMajor: pool.cudaDriverMajor,
    gpusPerReplica,
    assignments: placement.nodeOfReplica.map((index, replica) => ({ replica, node: pool.nodeNames[index] ?? '' })),
    pricePerGpuHour: pool.source.pricePerGpuHour,
    estimatedTimeToStartSeconds: best.timeToStartSeconds,
    score: { total: best.total, parts: best.parts },
  };
  if (ctx.job.deadlineSeconds !== undefined && pool.price !== undefined) {
    decision.estimatedMaxTotal = formatMoney(estimatedMaxTotal(pool.price, ctx.job));
  }
  return decision;
}
