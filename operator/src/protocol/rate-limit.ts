// Token bucket per stream: a burst of `capacity` messages, then `refillPerSecond` sustained.
// The clock is injected so tests step time instead of sleeping.

export interface TokenBucketOptions {
  capacity: number;
  refillPerSecond: number;
  /** Monotonic milliseconds (default performance.now()). */
  now?: () => number;
}

export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly now: () => number;

  constructor(private readonly options: TokenBucketOptions) {
    if (!(options.capacity >= 1) || !Number.isFinite(options.capacity)) throw new Error('TokenBucket capacity must be >= 1');
    if (!(options.refillPerSecond >= 0) || !Number.isFinite(options.refillPerSecond)) {
      throw new Error('TokenBucket refillPerSecond must be a finite number >= 0');
    }
    this.now = options.now ?? (() => performance.now());
    this.tokens = options.capacity;
    this.last = this.now();
  }

  /** Takes `cost` tokens if available. Returns false (and takes nothing) otherwise. */
  tryTake(cost = 1): boolean {
    this.refill();
    if (this.tokens < cost) return false;
    this.tokens -= cost;
    return true;
  }

  /**
   * Adds `count` tokens beyond the refill, for work the other side asked for (the hub grants an
   * agent the reports of each attempt it assigns), so a burst of assignments cannot push the
   * agent's answers over the limit. Held tokens never exceed `ceiling`.
   */
  grant(count: number, ceiling: number): void {
    this.refill();
    if (!(count > 0)) return;
    this.tokens = Math.min(Math.max(this.tokens, ceiling), this.tokens + count);
  }

  /** Tokens available now. */
  get available(): number {
    this.refill();
    return this.tokens;
  }

  private refill(): void {
    const now = this.now();
    // A clock that steps backwards must not mint tokens or jam the bucket.
    const elapsedMs = Math.max(0, now - this.last);
    this.last = now;
    // Refill tops up to capacity; granted tokens above it are kept until spent.
    if (this.tokens < this.options.capacity) {
      this.tokens = Math.min(this.options.capacity, this.tokens + (elapsedMs * this.options.refillPerSecond) / 1000);
    }
  }
}
