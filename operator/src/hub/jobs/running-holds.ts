import type { GpuProvider } from '../../api/types.js';
import type { Inventory } from '../../gen/proto/fedgpu/v1/market.js';

// When may a Running job's assumed GPUs be given back? Only once the GpuProvider the scheduler
// reads shows the job's pod. A Running report can reach the hub before that: the agent's
// inventory is debounced, and the registry writes each inventory to the GpuProvider through a
// queue the burst keeps busy. Giving the GPUs back at the report let the next decisions place
// more jobs on a node than it has (the e2e-throughput burst at 32 reconciles at once put 65 jobs
// on 64 GPUs; one pod stayed Pending with "Insufficient nvidia.com/gpu").
//
// The rule: an agent reports Running after it saw the pod bound, and builds every later inventory
// from the same watch; its stream is ordered. So any inventory the hub receives after the report
// counts the pod. The assumption is held until the GpuProvider in the informer shows such an
// inventory (matched by its idle GPUs per node), or a short bound passes (an inventory sent just
// before the report already counted the pod, and nothing may change after it).

/** Idle GPUs per node of the offered pools, in one canonical string (what the scheduler reads). */
export function inventoryPrint(inventory: Inventory): string {
  return printOf(inventory.pools.filter((p) => p.offered).map((p) => ({
    pool: `${p.gpuProduct}|${p.memoryMib}|${p.cudaDriverMajor}`,
    nodes: p.nodes.map((n) => ({ name: n.name, idle: n.idleGpus })),
  })));
}

/** The same print of a GpuProvider's written pools. */
export function providerPrint(provider: GpuProvider): string {
  return printOf((provider.status?.pools ?? []).filter((p) => p.offered).map((p) => ({
    pool: `${p.gpuProduct ?? ''}|${p.memoryMiB ?? 0}|${p.cudaDriverMajor ?? 0}`,
    nodes: (p.idleByNode ?? []).map((n) => ({ name: n.name ?? '', idle: n.idle ?? 0 })),
  })));
}

function printOf(pools: { pool: string; nodes: { name: string; idle: number }[] }[]): string {
  return pools
    .map((p) => `${p.pool}:${p.nodes.map((n) => `${n.name}=${n.idle}`).sort().join(',')}`)
    .sort()
    .join(';');
}

/** Inventories remembered per provider, to find which one the informer shows. */
const RECENT = 64;

export interface Held {
  jobKey: string;
  provider: string;
  /** The assumption held (a later placement of the same job is another one). */
  assumedAt: number;
}

export class RunningHolds {
  private readonly received = new Map<string, { seq: number; prints: { seq: number; print: string }[] }>();
  private readonly held = new Map<string, Held & { afterSeq: number }>();
  private readonly reported = new Map<string, { epoch: number; seq: number }>();

  /** An inventory arrived from `provider` (before it is written). */
  inventory(provider: string, print: string): void {
    const entry = this.received.get(provider) ?? { seq: 0, prints: [] };
    entry.seq += 1;
    entry.prints.push({ seq: entry.seq, print });
    if (entry.prints.length > RECENT) entry.prints.shift();
    this.received.set(provider, entry);
  }

  /** A Running report for (job uid, epoch) arrived from `provider`: remember how many inventories came before it. */
  runningReported(jobUid: string, epoch: number, provider: string): void {
    const previous = this.reported.get(jobUid);
    if (previous?.epoch === epoch) return;
    this.reported.set(jobUid, { epoch, seq: this.received.get(provider)?.seq ?? 0 });
  }

  /**
   * The job is Running: hold its assumption until an inventory received after its report is in
   * the informer. Without a report seen by this hub (a report before a restart), the next
   * inventory received from now on counts.
   */
  hold(held: Held, jobUid: string | undefined, epoch: number): void {
    if (this.held.get(held.jobKey)?.assumedAt === held.assumedAt) return;
    const report = jobUid ? this.reported.get(jobUid) : undefined;
    const afterSeq = report?.epoch === epoch ? report.seq : (this.received.get(held.provider)?.seq ?? 0);
    this.held.set(held.jobKey, { ...held, afterSeq });
  }

  isHeld(jobKey: string): boolean {
    return this.held.has(jobKey);
  }

  /** Forgets a job (deleted, finished, its assumption given back another way). */
  release(jobKey: string, jobUid?: string): void {
    this.held.delete(jobKey);
    if (jobUid) this.reported.delete(jobUid);
  }

  /** The informer shows `print` for `provider`: the held jobs whose pods it counts (released). */
  confirmed(provider: string, print: string): Held[] {
    const entry = this.received.get(provider);
    if (!entry) return [];
    let shown: number | undefined;
    for (let i = entry.prints.length - 1; i >= 0 && shown === undefined; i--) if (entry.prints[i]!.print === print) shown = entry.prints[i]!.seq;
    if (shown === undefined) return [];
    const done: Held[] = [];
    for (const [key, h] of this.held) {
      if (h.provider !== provider || h.afterSeq >= shown) continue;
      this.held.delete(key);
      done.push({ jobKey: h.jobKey, provider: h.provider, assumedAt: h.assumedAt });
    }
    return done;
  }

  /** A provider is gone: nothing of it is remembered. */
  providerGone(provider: string): void {
    this.received.delete(provider);
    for (const [key, h] of this.held) if (h.provider === provider) this.held.delete(key);
  }
}
