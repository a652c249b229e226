// Scheduler tuning. Every knob has a documented default; the hub reads overrides from its config.

/** Relative importance of each score part; the total is the weighted mean, so only ratios matter. */
export interface ScoreWeights {
  reputation: number;
  latency: number;
  price: number;
  timeToStart: number;
  fragmentation: number;
}

export interface SchedulerConfig {
  weights: ScoreWeights;
  /**
   * Reputation bonus for providers with little history, so newcomers get some work: the reputation
   * part is min(1, score + share × half / (half + n)) with n = successes + failures (decayed).
   * Deterministic: no randomness, the bonus fades as evidence accumulates.
   */
  exploration: { share: number; halfObservations: number };
  /** RTT at which the latency part reaches 0 when the job sets no maxLatencyMs. */
  latencyScaleMs: number;
  /** Price at which the price part reaches 0 when the job sets no maxPricePerGpuHour (credits). */
  referencePricePerGpuHour: string;
  /** Transfer time at which the time-to-start part is 1/2: part = 1 / (1 + seconds / scale). */
  timeToStartScaleSeconds: number;
  /** A heartbeat older than this makes a provider not ready even if its Ready condition lags. */
  heartbeatStaleMs: number;
  /** Least active stake (credits) besides the Staked condition; "0" accepts any staked provider. */
  minStake: string;
  /**
   * GPU Feature Discovery reports usable memory, 1–7% below the marketed size (H100 80GB: 81559 MiB,
   * L40S 48GB: 46068 MiB, A10G 24GB: 23028 MiB). A pool meets minMemoryGiB when
   * memoryMiB ≥ minMemoryGiB × 1024 × (1 − tolerance), so "80" matches an H100 80GB. 0 is strict.
   */
  memoryTolerance: number;
}

export const DEFAULT_SCHEDULER_CONFIG: Readonly<SchedulerConfig> = Object.freeze({
  weights: Object.freeze({ reputation: 0.35, latency: 0.15, price: 0.25, timeToStart: 0.15, fragmentation: 0.1 }),
  exploration: Object.freeze({ share: 0.15, halfObservations: 5 }),
  latencyScaleMs: 250,
  referencePricePerGpuHour: '4',
  timeToStartScaleSeconds: 900,
  heartbeatStaleMs: 60_000,
  minStake: '0',
  memoryTolerance: 0.07,
});

export interface SchedulerConfigOverrides extends Partial<Omit<SchedulerConfig, 'weights' | 'exploration'>> {
  weights?: Partial<ScoreWeights>;
  exploration?: Partial<SchedulerConfig['exploration']>;
}

/** The defaults with `overrides` merged in (nested objects merged field by field). */
export function schedulerConfig(overrides: SchedulerConfigOverrides = {}): SchedulerConfig {
  const config: SchedulerConfig = {
    ...DEFAULT_SCHEDULER_CONFIG,
    ...overrides,
    weights: { ...DEFAULT_SCHEDULER_CONFIG.weights, ...overrides.weights },
    exploration: { ...DEFAULT_SCHEDULER_CONFIG.exploration, ...overrides.exploration },
  };
  const weights = Object.values(config.weights);
  if (weights.some((w) => !(w >= 0)) || weights.every((w) => w === 0)) {
    throw new RangeError('score weights must be ≥ 0 and not all 0');
  }
  return config;
}
