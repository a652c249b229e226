// Provider reputation (DESIGN §6). Attempt outcomes attributed to the provider feed a Beta posterior
// with exponential time decay; the score is its lower credible bound, so a provider with little
// history is not trusted blindly. It is a pure function of an event list and `now`: the hub's status
// and `fedgpu reputation --from-chain` (replaying settle/slash events) compute the same number.
//
//   w(e)  = 2^(−(now − e.time) / halfLife)             events after `now` or older than the window are ignored
//   s(e)  = e.weight clamped to [0, 1] (default 1)     on chain: min(1, paid / slashBond) for a settle,
//                                                      min(1, taken / slashBond) for a slash (chain/market-events.ts)
//   α     = 1 + Σ_success w·s,   β = 1 + Σ_providerFault w·s
//   lcb   = Beta(α, β) quantile at (1 − confidence)     one-sided, exact (regularized incomplete beta)
//   score = lcb × uptime^uptimeWeight × perf^performanceWeight
//
// The extra factors multiply because each is a ceiling on trust: a provider that is up half the
// time, or delivers half the throughput it claims, is worth at most about half. Weights are
// exponents (0 disables a factor). perf is the decayed mean of delivered/claimed, clamped to [0, 1]
// so over-delivery cannot inflate the score.

import { betaQuantile } from './beta.js';
import type { FaultOf } from './types.js';

export interface ReputationConfig {
  /** Half-life of the time decay; default 7 days. */
  halfLifeMs: number;
  /** Events older than this are ignored entirely; default 90 days (weight < 0.01%). */
  windowMs: number;
  /** One-sided credibility of the lower bound; default 0.95 (the 5% quantile). */
  confidence: number;
  /** Exponent of the uptime factor; default 1. */
  uptimeWeight: number;
  /** Exponent of the delivered-vs-claimed performance factor; default 1. */
  performanceWeight: number;
}

export const DEFAULT_REPUTATION_CONFIG: Readonly<ReputationConfig> = Object.freeze({
  halfLifeMs: 7 * 24 * 3_600_000,
  windowMs: 90 * 24 * 3_600_000,
  confidence: 0.95,
  uptimeWeight: 1,
  performanceWeight: 1,
});

/**
 * An attempt that ended on a provider. Successes count for it; failures count against it only when
 * the provider is at fault (faultOf "provider", or absent as for an on-chain slash). User faults and
 * owner reclaims are neutral.
 */
export interface OutcomeEvent {
  time: number;
  provider: string;
  outcome: 'success' | 'failure';
  faultOf?: FaultOf;
  /**
   * How much the event counts, 0 to 1 (default 1). On chain a settle counts as the share of a full
   * bond it paid and a slash as the share it took, so neither 1-wei settles nor 1-wei slashes move
   * a reputation.
   */
  weight?: number;
}

/** Throughput a job measured on a provider versus what the pool's product should deliver. */
export interface PerformanceSample {
  time: number;
  provider: string;
  delivered: number;
  claimed: number;
}

/** Signals besides outcomes; all optional (absent: factor 1). */
export interface ReputationSignals {
  /** Fraction of expected heartbeats received over the window, 0..1. */
  uptime?: number;
  performance?: readonly PerformanceSample[];
}

export interface ProviderReputation {
  provider: string;
  /** Final score in [0, 1]. */
  score: number;
  /** Beta lower bound before the uptime and performance factors. */
  lowerBound: number;
  /** Decayed success and provider-fault counts (status.reputation.successes/failures). */
  successes: number;
  failures: number;
  alpha: number;
  beta: number;
  uptimeFactor: number;
  performanceFactor: number;
  /** Decay half-life as the API shows it, e.g. "168h". */
  window: string;
  /** The events considered: (now − windowMs, now]. */
  windowStart: number;
  windowEnd: number;
}

/** Reputation of one provider from the events (events of other providers are ignored). */
export function computeReputation(
  provider: string,
  events: readonly OutcomeEvent[],
  now: number,
  signals: ReputationSignals = {},
  config: ReputationConfig = DEFAULT_REPUTATION_CONFIG,
): ProviderReputation {
  validate(config);
  const windowStart = now - config.windowMs;
  const inWindow = (time: number): boolean => time > windowStart && time <= now;

  // Sum in a canonical order: float addition is not associative, and a chain replay may deliver
  // events in a different order than the hub saw them.
  const weights: { time: number; success: boolean; share: number }[] = [];
  for (const e of events) {
    if (e.provider !== provider || !inWindow(e.time)) continue;
    const share = Math.min(1, Math.max(0, e.weight ?? 1));
    if (e.outcome === 'success') weights.push({ time: e.time, success: true, share });
    else if (e.faultOf === undefined || e.faultOf === 'provider') weights.push({ time: e.time, success: false, share });
  }
  weights.sort((a, b) => a.time - b.time || Number(a.success) - Number(b.success) || a.share - b.share);
  let successes = 0;
  let failures = 0;
  for (const w of weights) {
    const weight = decayWeight(now - w.time, config.halfLifeMs) * w.share;
    if (w.success) successes += weight;
    else failures += weight;
  }

  const alpha = 1 + successes;
  const beta = 1 + failures;
  const lowerBound = betaQuantile(1 - config.confidence, alpha, beta);
  const uptimeFactor = clamp01(signals.uptime ?? 1) ** config.uptimeWeight;
  const performanceFactor =
    performanceRatio(provider, signals.performance ?? [], now, config) ** config.performanceWeight;
  return {
    provider,
    score: clamp01(lowerBound * uptimeFactor * performanceFactor),
    lowerBound,
    successes,
    failures,
    alpha,
    beta,
    uptimeFactor,
    performanceFactor,
    window: formatHalfLife(config.halfLifeMs),
    windowStart,
    windowEnd: now,
  };
}

/** Reputation of every provider that appears in the events or signals, sorted by provider name. */
export function computeReputations(
  events: readonly OutcomeEvent[],
  now: number,
  signals: Readonly<Record<string, ReputationSignals>> = {},
  config: ReputationConfig = DEFAULT_REPUTATION_CONFIG,
): ProviderReputation[] {
  const byProvider = new Map<string, OutcomeEvent[]>();
  for (const e of events) {
    const list = byProvider.get(e.provider);
    if (list) list.push(e);
    else byProvider.set(e.provider, [e]);
  }
  const names = new Set([...byProvider.keys(), ...Object.keys(signals)]);
  return [...names]
    .sort()
    .map((name) => computeReputation(name, byProvider.get(name) ?? [], now, signals[name] ?? {}, config));
}

/** Weight of an event `ageMs` old: 1 now, 1/2 one half-life ago. */
export function decayWeight(ageMs: number, halfLifeMs: number): number {
  return 2 ** (-Math.max(0, ageMs) / halfLifeMs);
}

/** Decayed mean of delivered/claimed (each clamped to [0, 1]); 1 when there are no samples. */
export function performanceRatio(
  provider: string,
  samples: readonly PerformanceSample[],
  now: number,
  config: ReputationConfig = DEFAULT_REPUTATION_CONFIG,
): number {
  const relevant = samples
    .filter((s) => s.provider === provider && s.time <= now && s.time > now - config.windowMs && s.claimed > 0)
    .sort((a, b) => a.time - b.time || a.delivered / a.claimed - b.delivered / b.claimed);
  let weighted = 0;
  let total = 0;
  for (const s of relevant) {
    const weight = decayWeight(now - s.time, config.halfLifeMs);
    weighted += weight * clamp01(s.delivered / s.claimed);
    total += weight;
  }
  return total === 0 ? 1 : weighted / total;
}

/** "168h" for 7 days, "90m", "45s": how status.reputation.window shows the half-life. */
export function formatHalfLife(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${ms / 1000}s`;
}

function validate(config: ReputationConfig): void {
  if (!(config.halfLifeMs > 0)) throw new RangeError('halfLifeMs must be positive');
  if (!(config.windowMs > 0)) throw new RangeError('windowMs must be positive');
  if (!(config.confidence > 0 && config.confidence < 1)) throw new RangeError('confidence must be in (0, 1)');
  if (!(config.uptimeWeight >= 0 && config.performanceWeight >= 0)) throw new RangeError('weights must be ≥ 0');
}

function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0;
}
