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
 * Megabits per second from a probe round: `movedBytes` crossed the link (each piece once when the
 * agent answered with its digest, twice when it echoed it) in `elapsedMs`, first send to last
 * answer. The round-trip latency is subtracted (it is not transfer time), but never below a tenth
 * of the elapsed time, so a noisy RTT cannot produce an absurd figure.
 */
export function probeBandwidthMbps(movedBytes: number, elapsedMs: number, rttMs: number | undefined): number | undefined {
  if (!(movedBytes > 0) || !(elapsedMs > 0) || !Number.isFinite(elapsedMs)) return undefined;
  const transferMs = Math.max(elapsedMs - (rttMs ?? 0), elapsedMs / 10);
  return (movedBytes * 8) / (transferMs / 1000) / 1e6;
}
