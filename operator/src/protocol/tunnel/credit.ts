// Credit-based flow control for one direction of one tunnel session (the HTTP/2 idea, per session):
// a sender may have at most `credit` bytes unacknowledged; the receiver hands credit back only once
// the bytes are delivered downstream. A slow reader therefore stops its own session's sender and no
// one else's, and a receiver never buffers more than the window it granted.

/** The sending side: how many bytes it may still send. */
export class SendCredit {
  constructor(private available: number) {}

  get bytes(): number {
    return this.available;
  }

  /** Takes up to `wanted` bytes of credit; returns how many were taken (0 when none is left). */
  take(wanted: number): number {
    const n = Math.max(0, Math.min(wanted, this.available));
    this.available -= n;
    return n;
  }

  grant(increment: number): void {
    this.available += increment;
  }
}

/**
 * The receiving side: bytes the peer may send (granted - received), and bytes delivered downstream
 * but not yet given back. Credit goes back in batches (half a window) so small reads do not each
 * cost a frame.
 */
export class ReceiveWindow {
  private outstanding: number;
  private undelivered = 0;
  private toReturn = 0;

  constructor(readonly window: number) {
    this.outstanding = window;
  }

  /** Bytes buffered here, received but not yet delivered downstream. */
  get buffered(): number {
    return this.undelivered;
  }

  /** Records `n` received bytes; false when the peer sent more than it was granted. */
  receive(n: number): boolean {
    if (n > this.outstanding) return false;
    this.outstanding -= n;
    this.undelivered += n;
    return true;
  }

  /** `n` bytes went downstream; returns the credit to grant back now (0: wait for more). */
  delivered(n: number): number {
    const d = Math.min(n, this.undelivered);
    this.undelivered -= d;
    this.toReturn += d;
    if (this.toReturn * 2 < this.window) return 0;
    const increment = this.toReturn;
    this.toReturn = 0;
    this.outstanding += increment;
    return increment;
  }
}
