import type { Availability } from '../../core/types.js';
import { isAvailableAt } from '../../core/availability.js';
import type { Inventory } from '../../gen/proto/fedgpu/v1/market.js';

// A reclaim is the owner's right only when it was announced: the node under the attempt cordoned,
// or the lending window the provider declared closed. The hub checks what the agent reports
// against what the same agent streamed (cordons in its inventory) and declared (its windows), so a
// provider cannot relabel its own failure as a free reclaim (docs/settlement.md, fault table).

interface CordonState {
  cordoned: boolean;
  /** When the hub last saw it cordoned (while cordoned: when the streak began being observed). */
  lastCordonedMs: number;
}

export class ReclaimNotices {
  private readonly nodes = new Map<string, Map<string, CordonState>>();

  /** Records the cordons an inventory shows (the agent streams one after every node change). */
  record(provider: string, inventory: Inventory, now: number): void {
    const known = this.nodes.get(provider) ?? new Map<string, CordonState>();
    this.nodes.set(provider, known);
    for (const pool of inventory.pools) {
      for (const node of pool.nodes) {
        const before = known.get(node.name);
        if (node.cordoned) known.set(node.name, { cordoned: true, lastCordonedMs: before?.cordoned ? before.lastCordonedMs : now });
        else if (before?.cordoned) known.set(node.name, { cordoned: false, lastCordonedMs: now });
      }
    }
  }

  /** Whether one of `nodes` was seen cordoned at or after `sinceMs`, or is cordoned now. */
  cordonSeen(provider: string, nodes: readonly string[], sinceMs: number): boolean {
    const known = this.nodes.get(provider);
    return nodes.some((n) => {
      const state = known?.get(n);
      return state !== undefined && (state.cordoned || state.lastCordonedMs >= sinceMs);
    });
  }

  forget(provider: string): void {
    this.nodes.delete(provider);
  }
}

/** Whether the declared lending windows were closed at some minute between `sinceMs` and `nowMs`. */
export function windowClosedBetween(availability: Availability | undefined, sinceMs: number, nowMs: number): boolean {
  if (!availability?.windows?.length) return false;
  const from = Math.max(sinceMs, nowMs - 24 * 3600_000);
  for (let t = nowMs; t >= from; t -= 60_000) if (!isAvailableAt(availability, t)) return true;
  return !isAvailableAt(availability, from);
}
