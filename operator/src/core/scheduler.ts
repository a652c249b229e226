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
import { type CheckContext, diagnoseProvider, estimatedMaxTotal, failingPoolCheck, failingProviderCheck, type Rejection } from './filter.js';
import { placeGang, type GangPlacement } from './gang.js';
import { prepareJob } from './job.js';
import { formatMoney, moneyToNumber, tryParseMoney } from './money.js';
import type { SchedulerConfig } from './scheduler-config.js';
import {
  fragmentationPart,
  latencyPart,
  pricePart,
  reputationPart,
  timeToStartPart,
  timeToStartSeconds,
  totalScore,
} from './score.js';
import { buildSnapshot, compareStrings, type IndexedPool, MarketSnapshot } from './snapshot.js';
import type { Decision, JobRequest, ProviderSnapshot, ScheduleResult, ScoreParts } from './types.js';
import { explainUnschedulable, invalidRequest } from './unschedulable.js';

interface Best {
  pool: IndexedPool;
  placement: GangPlacement;
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
  const minStake = tryParseMoney(config.minStake);
  if (minStake === undefined) return invalidRequest(`config minStake ${JSON.stringify(config.minStake)} is not a decimal amount`);
  const ctx: CheckContext = { job: prepared, config, now, minStake };

  const w = config.weights;
  const referencePrice = prepared.maxPrice ?? tryParseMoney(config.referencePricePerGpuHour) ?? 0n;
  const budget = moneyToNumber(referencePrice);

  let best: Best | undefined;
  for (const pool of market.poolsFor(prepared.products)) {
    if (failingPoolCheck(pool, ctx) !== undefined) continue;
    const provider = pool.provider.source;
    if (failingProviderCheck(pool.provider, ctx) !== undefined) continue;

    const transferSeconds = timeToStartSeconds(prepared, provider);
    const parts: ScoreParts = {
      reputation: reputationPart(provider.reputation, config),
      latency: latencyPart(provider.rttMs, prepared, config),
      price: pricePart(pool.priceNumber, budget),
      timeToStart: timeToStartPart(transferSeconds, config),
      fragmentation: 1, // the best case, for the bound below
    };
    const upperBound = totalScore(parts, w);
    if (best !== undefined && upperBound + 1e-12 < best.total) continue;

    const placement = placeGang(pool.idle, prepared.replicas, prepared.gpusPerReplica, prepared.sameNode);
    if (placement === undefined) continue; // unreachable: failingPoolCheck ran gangFits
    parts.fragmentation = fragmentationPart(prepared.gpus, placement.touchedIdle);
    const total = parts.fragmentation === 1 ? upperBound : totalScore(parts, w);
    if (best === undefined || total > best.total || (total === best.total && breaksTie(pool, best.pool))) {
      best = { pool, placement, parts, total, timeToStartSeconds: transferSeconds };
    }
  }

  if (best !== undefined) return decisionOf(best, prepared.gpusPerReplica, ctx);

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

// Lower provider name wins, then lower pool key: a stable order independent of input order.
function breaksTie(candidate: IndexedPool, incumbent: IndexedPool): boolean {
  const byProvider = compareStrings(candidate.provider.name, incumbent.provider.name);
  return byProvider !== 0 ? byProvider < 0 : compareStrings(candidate.key, incumbent.key) < 0;
}

function decisionOf(best: Best, gpusPerReplica: number, ctx: CheckContext): Decision {
  const { pool, placement } = best;
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
