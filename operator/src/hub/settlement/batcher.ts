import type { SignedReceipt } from '../../chain/receipt.js';

// Jobs that finish together are settled together: settle() calls within `windowMs` (or until
// `maxItems` are waiting) go out as one GpuMarket.settleBatch. The batch is all-or-nothing on
// chain, so when it reverts naming one escrow, that item is failed alone and the rest resent.

export interface BatchOutcome<R> {
  result: R;
  /** Receipts settled by the same transaction. */
  size: number;
}

export interface SettleBatcherOptions<R> {
  /** Sends one settleBatch with these receipts and waits for it to be confirmed. */
  send: (items: SignedReceipt[]) => Promise<R>;
  /** The escrow key a failed send names as the culprit, if it names one. */
  culprit: (err: unknown) => string | undefined;
  windowMs: number;
  maxItems: number;
}

interface Waiting<R> {
  item: SignedReceipt;
  resolve: (outcome: BatchOutcome<R>) => void;
  reject: (err: unknown) => void;
}

export class SettleBatcher<R> {
  private queue: Waiting<R>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly opts: SettleBatcherOptions<R>) {}

  /** Resolves once the receipt is settled in a confirmed batch; rejects with that batch's error. */
  settle(item: SignedReceipt): Promise<BatchOutcome<R>> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.queue.length >= this.opts.maxItems) this.flushSoon(0);
      else this.flushSoon(this.opts.windowMs);
    });
  }

  private flushSoon(delayMs: number): void {
    if (this.timer && delayMs > 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const batch = this.queue.splice(0, this.opts.maxItems);
      if (this.queue.length) this.flushSoon(this.queue.length >= this.opts.maxItems ? 0 : this.opts.windowMs);
      // One batch in flight at a time: the nonce manager orders sends anyway, and a batch built
      // while another confirms gathers more items.
      this.flushing = this.flushing.then(() => this.sendBatch(batch));
    }, delayMs);
  }

  private async sendBatch(batch: Waiting<R>[]): Promise<void> {
    let pending = batch;
    // Each round either settles everything left or removes at least one culprit: bounded.
    while (pending.length > 0) {
      try {
        const result = await this.opts.send(pending.map((w) => w.item));
        for (const w of pending) w.resolve({ result, size: pending.length });
        return;
      } catch (err) {
        const culprit = this.opts.culprit(err)?.toLowerCase();
        const bad = culprit === undefined ? [] : pending.filter((w) => w.item.receipt.jobId.toLowerCase() === culprit);
        if (bad.length === 0) {
          for (const w of pending) w.reject(err);
          return;
        }
        for (const w of bad) w.reject(err);
        pending = pending.filter((w) => !bad.includes(w));
      }
    }
  }
}
