// Link measurements the scheduler uses (DESIGN.md section 4: latency and data-transfer time).

/** Exponentially weighted moving average; the first sample seeds it. */
export class Ewma {
  private current: number | undefined;

  constructor(private readonly alpha: number) {
    if (!(alpha > 0 && alpha <= 1)) throw new Error('EWMA alpha must be in (0, 1]');
  }

  update(sample: number): number {
    if (!Number.isFinite(sample) || sample < 0) return this.current ?? 0;
    this.current = this.current === undefined ? sample : this.alpha * sample + (1 - this.alpha) * this.current;
    return this.current;
  }

  get value(): number | undefined {
    return this.current;
  }
}

/**
 * Megabits per second from a probe round: `bytes` went from the hub to the agent, sent back to
 * back, and the last piece's answer came back `elapsedMs` after the first was sent. This is the
 * direction a job's data moves. An echo's return overlaps the sending (each piece goes back as it
 * arrives), so a round answered by echo reads about the same, a little lower, never higher; the
 * bytes count once either way. The round-trip latency is subtracted (it is not transfer time), but
 * never below a tenth of the elapsed time, so a noisy RTT cannot produce an absurd figure.
 */
export function probeBandwidthMbps(bytes: number, elapsedMs: number, rttMs: number | undefined): number | undefined {
  if (!(bytes > 0) || !(elapsedMs > 0) || !Number.isFinite(elapsedMs)) return undefined;
  const transferMs = Math.max(elapsedMs - (rttMs ?? 0), elapsedMs / 10);
  return (bytes * 8) / (transferMs / 1000) / 1e6;
}
