// Which hub replica the agent dials next (docs/ha.md). The agent is given one address (a Service)
// or several (one per replica). Only the leader serves streams: a stand-by refuses with UNAVAILABLE
// and names the leader, which the agent dials next; when a replica is unreachable or refuses
// without naming anyone, the agent moves on to the next configured address.
import { status } from '@grpc/grpc-js';

export interface StreamEnd {
  /** The address that stream was dialled at. */
  address: string;
  code: status;
  /** Whether the stream had registered before it ended. */
  registered: boolean;
  /** The leader a stand-by named in its refusal, if any. */
  leaderAddress?: string;
}

export type Move = 'redirect' | 'next' | 'round' | 'same';

export class HubAddresses {
  readonly configured: readonly string[];
  private index = 0;
  private redirect: string | undefined;

  /** `addresses`: host:port values, as a list or comma-separated. */
  constructor(addresses: string | readonly string[]) {
    const list = (typeof addresses === 'string' ? addresses.split(',') : addresses).map((a) => a.trim()).filter(Boolean);
    this.configured = [...new Set(list)];
    if (this.configured.length === 0) throw new Error('at least one hub address is required');
  }

  /** The address to dial now. */
  get current(): string {
    return this.redirect ?? (this.configured[this.index] as string);
  }

  /**
   * Picks the address to dial after a stream ended, and says how it moved: `redirect` to the leader
   * a stand-by named; `next` to another address not yet tried in this round; `round` back to the
   * first address after every one failed (time to back off); `same` address again.
   */
  afterEnd(end: StreamEnd): Move {
    if (end.leaderAddress && end.leaderAddress !== end.address) {
      this.redirect = end.leaderAddress;
      return 'redirect';
    }
    // A replica that went away (UNAVAILABLE) or never let us register: try the next one. A stream
    // that registered and ended for another reason (replaced, idle) goes back to the same hub.
    if (end.code !== status.UNAVAILABLE && end.registered) return 'same';
    if (this.redirect !== undefined) {
      this.redirect = undefined; // the named leader failed: back to the configured list
      return 'next';
    }
    this.index = (this.index + 1) % this.configured.length;
    return this.index === 0 ? 'round' : 'next';
  }
}
