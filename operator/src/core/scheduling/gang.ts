// Gang placement inside one pool: all replicas or none (DESIGN §4.3). Objective, in order:
//   1. fewest nodes (cross-node traffic is what slows distributed training), so a gang that fits on
//      one node goes to one node, and `sameNode` requires it;
//   2. least idle left stranded on the nodes it touches (best fit: fill nodes exactly, leave large
//      idle nodes whole for the next big gang);
//   3. lowest node position (nodes are sorted by name) as the deterministic tie-break.
// Step 2 is an exact knapsack over node choices when the problem is small (it always is for the
// 1–16 node pools of small providers) and a best-fit greedy beyond that.

export interface GangPlacement {
  /** Node position (into the pool's node list) of each replica, in replica order. */
  nodeOfReplica: number[];
  /** Idle GPUs on the touched nodes before placement; replicas × gpusPerReplica / this is the fill. */
  touchedIdle: number;
  nodesUsed: number;
}

// Cap on knapsack states (candidates × (nodes + 1) × (replicas + 1)); beyond it the greedy runs.
const EXACT_STATE_LIMIT = 65_536;

/** Whether the gang fits at all: enough whole replica slots (or one node for sameNode). */
export function gangFits(idle: ArrayLike<number>, replicas: number, gpusPerReplica: number, sameNode: boolean): boolean {
  const need = replicas * gpusPerReplica;
  let slots = 0;
  for (let i = 0; i < idle.length; i++) {
    const v = idle[i] ?? 0;
    if (v >= need) return true;
    slots += Math.floor(v / gpusPerReplica);
  }
  return !sameNode && slots >= replicas;
}

/**
 * Idle GPUs on the nodes placeGang would touch, or -1 when the gang cannot fit. Allocation-free for
 * the common single-node case, so the scheduler can score many pools and place only the winner.
 */
export function gangTouchedIdle(idle: ArrayLike<number>, replicas: number, gpusPerReplica: number, sameNode: boolean): number {
  const need = replicas * gpusPerReplica;
  let single = -1;
  for (let i = 0; i < idle.length; i++) {
    const v = idle[i] ?? 0;
    if (v >= need && (single < 0 || v < single)) single = v;
  }
  if (single >= 0) return single;
  if (sameNode) return -1;
  return minTouchedIdle(idle, replicas, gpusPerReplica);
}

// Scratch buffers for minTouchedIdle: the scheduler calls it for many pools per job, and JS is
// single-threaded and this is not re-entrant, so reusing them is safe and keeps the hot loop garbage-free.
let scratchSlots = new Int32Array(64);
let scratchIdle = new Int32Array(64);
let scratchDp = new Float64Array(1024);

// The touched idle of placeGang's multi-node answer, computed with the same exact search but without
// building the placement (and without allocating, up to the scratch sizes).
function minTouchedIdle(idle: ArrayLike<number>, replicas: number, gpusPerReplica: number): number {
  if (scratchSlots.length < idle.length) {
    scratchSlots = new Int32Array(idle.length * 2);
    scratchIdle = new Int32Array(idle.length * 2);
  }
  let count = 0;
  let totalSlots = 0;
  for (let i = 0; i < idle.length; i++) {
    const v = idle[i] ?? 0;
    const slots = Math.min(replicas, Math.floor(v / gpusPerReplica));
    if (slots > 0) {
      scratchSlots[count] = slots;
      scratchIdle[count] = v;
      count += 1;
      totalSlots += slots;
    }
  }
  if (totalSlots < replicas) return -1;
  if (count > 64) return placeGang(idle, replicas, gpusPerReplica, false)?.touchedIdle ?? -1; // big pool: sort-based path
  const nodes = fewestNodes(scratchSlots, count, replicas);
  const width = replicas + 1;
  const size = (nodes + 1) * width;
  if (count * size > EXACT_STATE_LIMIT) return placeGang(idle, replicas, gpusPerReplica, false)?.touchedIdle ?? -1;
  if (scratchDp.length < size) scratchDp = new Float64Array(size * 2);
  const dp = scratchDp;
  dp.fill(Number.POSITIVE_INFINITY, 0, size);
  dp[0] = 0;
  for (let i = 0; i < count; i++) {
    const slots = scratchSlots[i] ?? 0;
    const weight = scratchIdle[i] ?? 0;
    for (let j = Math.min(nodes, i + 1); j >= 1; j--) {
      for (let prev = replicas; prev >= 0; prev--) {
        const base = dp[(j - 1) * width + prev] ?? Number.POSITIVE_INFINITY;
        if (base === Number.POSITIVE_INFINITY) continue;
        const cell = j * width + Math.min(replicas, prev + slots);
        if (base + weight < (dp[cell] ?? Number.POSITIVE_INFINITY)) dp[cell] = base + weight;
      }
    }
  }
  const best = dp[nodes * width + replicas] ?? Number.POSITIVE_INFINITY;
  return best === Number.POSITIVE_INFINITY ? -1 : best;
}

// Fewest nodes whose slots cover `replicas`: take the largest slot counts first (repeated maximum,
// fine for the ≤ 64 candidates it gets). Leaves `slots` as it found it.
function fewestNodes(slots: Int32Array, count: number, replicas: number): number {
  let covered = 0;
  let nodes = 0;
  let taken = 0; // taken entries are marked by negating them
  while (covered < replicas && taken < count) {
    let max = 0;
    let at = -1;
    for (let i = 0; i < count; i++) {
      const v = slots[i] ?? 0;
      if (v > max) {
        max = v;
        at = i;
      }
    }
    if (at < 0) break;
    covered += max;
    slots[at] = -max;
    nodes += 1;
    taken += 1;
  }
  for (let i = 0; i < count; i++) slots[i] = Math.abs(slots[i] ?? 0);
  return nodes;
}

/** Place every replica on nodes with enough idle GPUs, or return undefined when the gang cannot fit. */
export function placeGang(
  idle: ArrayLike<number>,
  replicas: number,
  gpusPerReplica: number,
  sameNode: boolean,
): GangPlacement | undefined {
  const need = replicas * gpusPerReplica;
  if (replicas < 1 || gpusPerReplica < 1) return undefined;

  // One node: the smallest that holds the whole gang.
  let single = -1;
  for (let i = 0; i < idle.length; i++) {
    const v = idle[i] ?? 0;
    if (v >= need && (single < 0 || v < (idle[single] ?? 0))) single = i;
  }
  if (single >= 0) {
    return { nodeOfReplica: new Array<number>(replicas).fill(single), touchedIdle: idle[single] ?? 0, nodesUsed: 1 };
  }
  if (sameNode) return undefined;

  // Several nodes: candidates with at least one slot.
  const candidates: { index: number; idle: number; slots: number }[] = [];
  let totalSlots = 0;
  for (let i = 0; i < idle.length; i++) {
    const v = idle[i] ?? 0;
    const slots = Math.min(replicas, Math.floor(v / gpusPerReplica));
    if (slots > 0) {
      candidates.push({ index: i, idle: v, slots });
      totalSlots += slots;
    }
  }
  if (totalSlots < replicas) return undefined;

  // Fewest nodes: the largest slot counts first.
  const bySlots = [...candidates].sort(bySlotsDescending);
  let nodes = 0;
  for (let covered = 0; covered < replicas; nodes++) covered += bySlots[nodes]?.slots ?? 0;

  const chosen =
    candidates.length * (nodes + 1) * (replicas + 1) <= EXACT_STATE_LIMIT
      ? chooseExact(candidates, nodes, replicas)
      : chooseGreedy(bySlots, nodes, replicas);

  // Fill the chosen nodes largest first; only the last one may be left partly idle.
  chosen.sort(bySlotsDescending);
  const nodeOfReplica: number[] = [];
  let touchedIdle = 0;
  for (const c of chosen) {
    touchedIdle += c.idle;
    for (let s = 0; s < c.slots && nodeOfReplica.length < replicas; s++) nodeOfReplica.push(c.index);
  }
  return { nodeOfReplica, touchedIdle, nodesUsed: chosen.length };
}

type Candidate = { index: number; idle: number; slots: number };

// Module-level comparators: no closure per call on the hot path.
function bySlotsDescending(a: Candidate, b: Candidate): number {
  return b.slots - a.slots || a.idle - b.idle || a.index - b.index;
}

function byIdleAscending(a: Candidate, b: Candidate): number {
  return a.idle - b.idle || a.index - b.index;
}

// Exact: among sets of exactly `nodes` candidates with ≥ replicas slots, the least total idle.
// dp[j][s] = least idle using j nodes reaching min(s, replicas) slots; 0/1 knapsack with a count.
function chooseExact(candidates: Candidate[], nodes: number, replicas: number): Candidate[] {
  const order = [...candidates].sort(byIdleAscending);
  const width = replicas + 1;
  const layer = (nodes + 1) * width;
  const dp = new Float64Array(layer).fill(Number.POSITIVE_INFINITY);
  const from = new Int32Array(order.length * layer); // previous slot count + 1 when item i was taken
  dp[0] = 0;
  for (let i = 0; i < order.length; i++) {
    const c = order[i] as Candidate;
    for (let j = Math.min(nodes, i + 1); j >= 1; j--) {
      for (let prev = replicas; prev >= 0; prev--) {
        const base = dp[(j - 1) * width + prev] ?? Number.POSITIVE_INFINITY;
        if (base === Number.POSITIVE_INFINITY) continue;
        const s = Math.min(replicas, prev + c.slots);
        const cell = j * width + s;
        if (base + c.idle < (dp[cell] ?? Number.POSITIVE_INFINITY)) {
          dp[cell] = base + c.idle;
          from[i * layer + cell] = prev + 1;
        }
      }
    }
  }
  const chosen: Candidate[] = [];
  let j = nodes;
  let s = replicas;
  for (let i = order.length - 1; i >= 0 && j > 0; i--) {
    const prev = from[i * layer + j * width + s] ?? 0;
    if (prev > 0) {
      chosen.push(order[i] as Candidate);
      j -= 1;
      s = prev - 1;
    }
  }
  return chosen;
}

// Greedy for huge pools: the largest nodes, then the best fit for the remainder.
function chooseGreedy(bySlots: Candidate[], nodes: number, replicas: number): Candidate[] {
  const chosen = bySlots.slice(0, nodes - 1);
  let remainder = replicas;
  for (const c of chosen) remainder -= c.slots;
  let best: Candidate | undefined;
  for (let i = nodes - 1; i < bySlots.length; i++) {
    const c = bySlots[i] as Candidate;
    if (c.slots >= remainder && (!best || c.idle < best.idle || (c.idle === best.idle && c.index < best.index))) best = c;
  }
  if (best) chosen.push(best);
  return chosen;
}
