// Reconnect delays for the agent's hub stream: exponential, capped, with jitter so a hub restart
// does not bring every agent back in the same instant. Part of the protocol: the hub sizes how long
// it waits for a known agent to come back (a new leader's adoption grace) by the longest delay.

export interface BackoffOptions {
  /** Delay after the first failure. */
  initialMs: number;
  /** Upper bound of any delay. */
  maxMs: number;
  multiplier: number;
  /** Fraction of the delay that is randomised: 0 = none, 1 = anywhere in [0, delay]. */
  jitter: number;
}

export const defaultBackoff: Readonly<BackoffOptions> = Object.freeze({ initialMs: 500, maxMs: 30_000, multiplier: 2, jitter: 0.5 });

/**
 * Delay before reconnect attempt number `failures` (0-based): min(maxMs, initialMs * multiplier^failures),
 * scaled into [(1 - jitter) * d, d] by `random` (uniform in [0, 1)).
 */
export function backoffDelay(failures: number, options: Readonly<BackoffOptions> = defaultBackoff, random: () => number = Math.random): number {
  const { initialMs, maxMs, multiplier, jitter } = options;
  // Past ~60 doublings every value is capped anyway; stop before the power overflows.
  const exponent = Math.min(Math.max(0, Math.floor(failures)), 60);
  const ceiling = Math.min(maxMs, initialMs * multiplier ** exponent);
  const drawn = random();
  const r = Number.isFinite(drawn) ? Math.min(Math.max(drawn, 0), 1) : 0;
  const j = Math.min(Math.max(jitter, 0), 1);
  return Math.max(0, Math.round(ceiling * (1 - j * r)));
}
