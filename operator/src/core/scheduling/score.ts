// Score parts of DESIGN §4.2, each in [0, 1] with higher better, and their weighted mean. Scores are
// floats (they only rank); the money comparisons that decide feasibility are exact in filter.ts.

import type { PreparedJob } from '../job.js';
import type { SchedulerConfig, ScoreWeights } from './config.js';
import type { ProviderSnapshot, ReputationSnapshot, ScoreParts } from '../types.js';

/** Reputation lower bound plus an exploration bonus that fades with the number of observations. */
export function reputationPart(reputation: ReputationSnapshot, config: SchedulerConfig): number {
  const observations = Math.max(0, reputation.successes) + Math.max(0, reputation.failures);
  const { share, halfObservations } = config.exploration;
  const bonus = halfObservations > 0 ? (share * halfObservations) / (halfObservations + observations) : 0;
  return clamp01(reputation.score + bonus);
}

/** 1 at 0 ms, falling linearly to 0 at the job's maxLatencyMs (or the configured scale). */
export function latencyPart(rttMs: number, job: PreparedJob, config: SchedulerConfig): number {
  const scale = job.maxLatencyMs ?? config.latencyScaleMs;
  return clamp01(1 - rttMs / scale);
}

/** 1 when free, falling linearly to 0 at the job's maxPricePerGpuHour (or the reference price). */
export function pricePart(price: number, budget: number): number {
  return budget > 0 ? clamp01(1 - price / budget) : 0;
}

/**
 * Seconds to move the job's input to the provider: sizeGiB × 8192 Mbit / bandwidthMbps. Zero without
 * data or when the data already sits in the provider's region; infinite without measured bandwidth.
 */
export function timeToStartSeconds(job: PreparedJob, provider: ProviderSnapshot): number {
  if (job.dataSizeGiB <= 0) return 0;
  if (job.dataSourceRegion !== undefined && job.dataSourceRegion === provider.region) return 0;
  if (!(provider.bandwidthMbps > 0)) return Number.POSITIVE_INFINITY;
  return (job.dataSizeGiB * 8192) / provider.bandwidthMbps;
}

/** 1 / (1 + seconds / scale): 1 when immediate, 1/2 at the scale, never negative. */
export function timeToStartPart(seconds: number, config: SchedulerConfig): number {
  if (seconds === Number.POSITIVE_INFINITY) return 0;
  return 1 / (1 + seconds / config.timeToStartScaleSeconds);
}

/** GPUs the gang uses over idle GPUs on the nodes it touches: 1 when it fills nodes exactly. */
export function fragmentationPart(gangGpus: number, touchedIdle: number): number {
  return touchedIdle > 0 ? clamp01(gangGpus / touchedIdle) : 0;
}

/** Weighted mean of the parts. */
export function totalScore(parts: ScoreParts, weights: ScoreWeights): number {
  const sum = weights.reputation + weights.latency + weights.price + weights.timeToStart + weights.fragmentation;
  return (
    (weights.reputation * parts.reputation +
      weights.latency * parts.latency +
      weights.price * parts.price +
      weights.timeToStart * parts.timeToStart +
      weights.fragmentation * parts.fragmentation) /
    sum
  );
}

function clamp01(x: number): number {
  return x > 1 ? 1 : x > 0 ? x : 0;
}
