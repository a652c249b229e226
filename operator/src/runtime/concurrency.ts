// At most `limit` tasks at once; the rest wait in arrival order. Used where a burst would
// otherwise open hundreds of requests to one apiserver at once (which then answers 429).

export class ConcurrencyLimit {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {
    if (!(limit >= 1) || !Number.isInteger(limit)) throw new Error('ConcurrencyLimit needs a whole number >= 1');
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter, so `active` never dips below what runs.
      if (next) next();
      else this.active--;
    }
  }

  /** Tasks running now and tasks waiting for a slot. */
  get pending(): { active: number; waiting: number } {
    return { active: this.active, waiting: this.waiting.length };
  }
}
