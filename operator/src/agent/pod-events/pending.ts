// Pod Events the relay let through while no stream to the hub was open. Without them a consumer
// whose pod sat in ImagePullBackOff during a reconnect would never hear why. Bounded (the oldest
// go first), and only events of attempts still live when the stream is back are sent.
import type { PodEvent } from '../../gen/proto/fedgpu/v1/market.js';

export const DEFAULT_PENDING_POD_EVENTS = 64;

export class PendingPodEvents {
  private events: PodEvent[] = [];
  private droppedCount = 0;

  constructor(private readonly max: number = DEFAULT_PENDING_POD_EVENTS) {}

  add(event: PodEvent): void {
    this.events.push(event);
    const over = this.events.length - this.max;
    if (over > 0) {
      this.events.splice(0, over);
      this.droppedCount += over;
    }
  }

  /** Empties the buffer into batches of at most `perMessage`, keeping only live attempts' events. */
  take(isLive: (jobUid: string, epoch: number) => boolean, perMessage: number): PodEvent[][] {
    const live = this.events.filter((e) => isLive(e.jobUid, e.epoch));
    this.events = [];
    const batches: PodEvent[][] = [];
    for (let i = 0; i < live.length; i += perMessage) batches.push(live.slice(i, i + perMessage));
    return batches;
  }

  get size(): number {
    return this.events.length;
  }

  /** Events pushed out by newer ones while disconnected (for logs). */
  get dropped(): number {
    return this.droppedCount;
  }
}
