// The market as the scheduler reads it: provider snapshots parsed once (prices to bigint, windows
// compiled, nodes sorted) and pools indexed by product, so schedule() touches only pools that can
// match. Idle counts live in typed arrays that assume() lowers in place: a burst of decisions against
// one snapshot never double-books a GPU before the next inventory arrives.

import { type CompiledAvailability, compileAvailability } from './availability.js';
import { type Money, moneyToNumber, tryParseMoney } from './money.js';
import type { Decision, PoolSnapshot, ProviderSnapshot } from './types.js';

export interface IndexedProvider {
  readonly source: ProviderSnapshot;
  readonly name: string;
  /** Position in MarketSnapshot.providers (sorted by name). */
  readonly index: number;
  /** undefined when the availability spec is invalid: treated as outside every window. */
  readonly availability: CompiledAvailability | undefined;
  /** Active stake; undefined when absent or unparseable. */
  readonly stake: Money | undefined;
  readonly pools: IndexedPool[];
}

export interface IndexedPool {
  readonly provider: IndexedProvider;
  readonly source: PoolSnapshot;
  readonly gpuProduct: string;
  readonly memoryMiB: number;
  readonly cudaDriverMajor: number;
  /** "product/memory/driver": the pool's identity within its provider and the tie-break key. */
  readonly key: string;
  /** undefined when the listed price is not valid money: the pool is never chosen. */
  readonly price: Money | undefined;
  /** The price as a float, for scoring only. */
  readonly priceNumber: number;
  /** Node names sorted; idle[i] belongs to nodeNames[i]. */
  readonly nodeNames: readonly string[];
  readonly idle: Int32Array;
  readonly nodeIndex: ReadonlyMap<string, number>;
  maxIdle: number;
  sumIdle: number;
}

/** Build the indexed market from provider snapshots (copies: the inputs are never mutated). */
export function buildSnapshot(providers: readonly ProviderSnapshot[]): MarketSnapshot {
  return new MarketSnapshot(providers);
}

export class MarketSnapshot {
  /** Providers sorted by name; a duplicate name keeps its first occurrence. */
  readonly providers: readonly IndexedProvider[];
  /** Every pool in canonical order (provider name, then pool key). */
  readonly pools: readonly IndexedPool[];
  private readonly byProduct = new Map<string, IndexedPool[]>();
  private readonly byKey = new Map<string, IndexedPool>();

  constructor(sources: readonly ProviderSnapshot[]) {
    const seen = new Set<string>();
    const sorted = [...sources]
      .sort((a, b) => compareStrings(a.name, b.name))
      .filter((p) => (seen.has(p.name) ? false : (seen.add(p.name), true)));
    const providers: IndexedProvider[] = [];
    const pools: IndexedPool[] = [];
    sorted.forEach((source, index) => {
      const provider: IndexedProvider = {
        source,
        name: source.name,
        index,
        availability: safeCompile(source),
        stake: source.stakeAmount === undefined ? undefined : tryParseMoney(source.stakeAmount),
        pools: [],
      };
      for (const poolSource of [...source.pools].sort(comparePools)) {
        const pool = indexPool(provider, poolSource);
        if (this.byKey.has(poolKeyOf(provider.name, pool.key))) continue; // duplicate pool: keep the first
        provider.pools.push(pool);
        pools.push(pool);
        this.byKey.set(poolKeyOf(provider.name, pool.key), pool);
        const list = this.byProduct.get(pool.gpuProduct);
        if (list) list.push(pool);
        else this.byProduct.set(pool.gpuProduct, [pool]);
      }
      providers.push(provider);
    });
    this.providers = providers;
    this.pools = pools;
  }

  /** Pools of the given products (all pools when the list is empty), each product's in canonical order. */
  poolsFor(products: readonly string[]): readonly IndexedPool[] {
    if (products.length === 0) return this.pools;
    if (products.length === 1) return this.byProduct.get(products[0] ?? '') ?? [];
    const result: IndexedPool[] = [];
    for (const product of new Set(products)) result.push(...(this.byProduct.get(product) ?? []));
    return result;
  }

  /** The pool a decision refers to, if it is still in this snapshot. */
  poolOf(provider: string, gpuProduct: string, memoryMiB: number, cudaDriverMajor: number): IndexedPool | undefined {
    return this.byKey.get(poolKeyOf(provider, formatPoolKey(gpuProduct, memoryMiB, cudaDriverMajor)));
  }

  /**
   * Take a decision's GPUs out of idle (clamped at 0) so the next schedule() sees them as used.
   * Returns false when its pool or a node is not in this snapshot (the part that matches is applied).
   */
  assume(decision: Decision): boolean {
    return this.adjust(decision.provider, decision, -1);
  }

  /** Give a decision's GPUs back (a job abandoned before fresh inventory arrived). */
  release(decision: Decision): boolean {
    return this.adjust(decision.provider, decision, +1);
  }

  /** Lower idle on named nodes of one pool by `gpus` each (used to replay assumed allocations). */
  take(
    provider: string,
    pool: { gpuProduct: string; memoryMiB: number; cudaDriverMajor: number },
    gpusByNode: Readonly<Record<string, number>>,
  ): boolean {
    const indexed = this.poolOf(provider, pool.gpuProduct, pool.memoryMiB, pool.cudaDriverMajor);
    if (!indexed) return false;
    let complete = true;
    for (const [node, gpus] of Object.entries(gpusByNode)) {
      const i = indexed.nodeIndex.get(node);
      if (i === undefined) {
        complete = false;
        continue;
      }
      indexed.idle[i] = Math.max(0, (indexed.idle[i] ?? 0) - gpus);
    }
    refreshTotals(indexed);
    return complete;
  }

  /** The current state as plain provider snapshots (idle lowered by every assume()). */
  toProviders(): ProviderSnapshot[] {
    return this.providers.map((p) => ({
      ...p.source,
      pools: p.pools.map((pool) => ({
        ...pool.source,
        nodes: pool.nodeNames.map((name, i) => ({
          name,
          idleGpus: pool.idle[i] ?? 0,
          totalGpus: pool.source.nodes.find((n) => n.name === name)?.totalGpus ?? 0,
        })),
      })),
    }));
  }

  private adjust(provider: string, decision: Decision, sign: -1 | 1): boolean {
    const pool = this.poolOf(provider, decision.gpuProduct, decision.memoryMiB, decision.cudaDriverMajor);
    if (!pool) return false;
    let complete = true;
    for (const { node } of decision.assignments) {
      const i = pool.nodeIndex.get(node);
      if (i === undefined) {
        complete = false;
        continue;
      }
      pool.idle[i] = Math.max(0, (pool.idle[i] ?? 0) + sign * decision.gpusPerReplica);
    }
    refreshTotals(pool);
    return complete;
  }
}

/** "NVIDIA-H100-80GB-HBM3/81559/535": a pool's identity within its provider. */
export function formatPoolKey(gpuProduct: string, memoryMiB: number, cudaDriverMajor: number): string {
  return `${gpuProduct}/${memoryMiB}/${cudaDriverMajor}`;
}

function indexPool(provider: IndexedProvider, source: PoolSnapshot): IndexedPool {
  const nodes = [...source.nodes].sort((a, b) => compareStrings(a.name, b.name));
  const idle = new Int32Array(nodes.length);
  const nodeIndex = new Map<string, number>();
  nodes.forEach((n, i) => {
    idle[i] = Number.isFinite(n.idleGpus) ? Math.max(0, Math.floor(n.idleGpus)) : 0;
    nodeIndex.set(n.name, i);
  });
  const price = tryParseMoney(source.pricePerGpuHour);
  const pool: IndexedPool = {
    provider,
    source,
    gpuProduct: source.gpuProduct,
    memoryMiB: source.memoryMiB,
    cudaDriverMajor: source.cudaDriverMajor,
    key: formatPoolKey(source.gpuProduct, source.memoryMiB, source.cudaDriverMajor),
    price,
    priceNumber: price === undefined ? Number.POSITIVE_INFINITY : moneyToNumber(price),
    nodeNames: nodes.map((n) => n.name),
    idle,
    nodeIndex,
    maxIdle: 0,
    sumIdle: 0,
  };
  refreshTotals(pool);
  return pool;
}

function refreshTotals(pool: IndexedPool): void {
  let max = 0;
  let sum = 0;
  for (let i = 0; i < pool.idle.length; i++) {
    const v = pool.idle[i] ?? 0;
    sum += v;
    if (v > max) max = v;
  }
  pool.maxIdle = max;
  pool.sumIdle = sum;
}

function safeCompile(source: ProviderSnapshot): CompiledAvailability | undefined {
  try {
    return compileAvailability(source.availability);
  } catch {
    return undefined;
  }
}

function poolKeyOf(provider: string, poolKey: string): string {
  return `${provider}\u0000${poolKey}`;
}

function comparePools(a: PoolSnapshot, b: PoolSnapshot): number {
  return compareStrings(a.gpuProduct, b.gpuProduct) || a.memoryMiB - b.memoryMiB || a.cudaDriverMajor - b.cudaDriverMajor;
}

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
