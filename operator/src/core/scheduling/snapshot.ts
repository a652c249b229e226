// The market as the scheduler reads it: provider snapshots parsed once (prices to bigint, windows
// compiled, nodes sorted) and pools indexed by product, so schedule() touches only pools that can
// match. Idle counts live in typed arrays that assume() lowers in place: a burst of decisions against
// one snapshot never double-books a GPU before the next inventory arrives.

import { type CompiledAvailability, compileAvailability } from '../availability.js';
import { type Money, moneyToNumber, tryParseMoney } from '../money.js';
import { compareStrings } from '../order.js';
import type { Decision, PoolSnapshot, ProviderSnapshot } from '../types.js';

// Fields are written only by MarketSnapshot (construction and updateProvider); treat as read-only.
export interface IndexedProvider {
  source: ProviderSnapshot;
  readonly name: string;
  /** Position in MarketSnapshot.providers (sorted by name). */
  index: number;
  /** undefined when the availability spec is invalid: treated as outside every window. */
  availability: CompiledAvailability | undefined;
  /** Active stake; undefined when absent or unparseable. */
  stake: Money | undefined;
  pools: IndexedPool[];
}

export interface IndexedPool {
  readonly provider: IndexedProvider;
  source: PoolSnapshot;
  readonly gpuProduct: string;
  readonly memoryMiB: number;
  readonly cudaDriverMajor: number;
  /** "product/memory/driver": the pool's identity within its provider and the tie-break key. */
  readonly key: string;
  /** undefined when the listed price is not valid money: the pool is never chosen. */
  price: Money | undefined;
  /** The price as a float, for scoring only. */
  priceNumber: number;
  /** Node names sorted; idle[i] belongs to nodeNames[i]. */
  readonly nodeNames: readonly string[];
  readonly idle: Int32Array;
  maxIdle: number;
  sumIdle: number;
}

/** Build the indexed market from provider snapshots (the inputs are never mutated). */
export function buildSnapshot(providers: readonly ProviderSnapshot[]): MarketSnapshot {
  return new MarketSnapshot(providers);
}

export class MarketSnapshot {
  /** Providers sorted by name; a duplicate name keeps its first occurrence. */
  providers: readonly IndexedProvider[] = [];
  /** Every pool in canonical order (provider name, then pool key). */
  pools: readonly IndexedPool[] = [];
  private byProduct = new Map<string, IndexedPool[]>();
  private byKey = new Map<string, IndexedPool>();
  private byName = new Map<string, IndexedProvider>();

  constructor(sources: readonly ProviderSnapshot[]) {
    const providers: IndexedProvider[] = [];
    for (const source of [...sources].sort(byName)) {
      if (this.byName.has(source.name)) continue; // duplicate
      const provider = indexProvider(source);
      this.byName.set(source.name, provider);
      providers.push(provider);
    }
    this.reindex(providers);
  }

  /**
   * Fold in a fresh inventory from one provider. When its pools and nodes are the same as before (the
   * usual case) idle counts, prices and provider facts are overwritten in place, allocation-free; a
   * new provider or a changed layout re-indexes the lists. Either way that provider's assumed
   * allocations are gone: re-apply them (AssumedAllocations.applyToSnapshot with its name).
   */
  updateProvider(source: ProviderSnapshot): void {
    const existing = this.byName.get(source.name);
    if (existing !== undefined && sameLayout(existing, source)) {
      // Unchanged specs keep their parsed forms; only what the agent measures is rewritten.
      if (source.availability !== existing.source.availability) existing.availability = safeCompile(source);
      if (source.stakeAmount !== existing.source.stakeAmount) existing.stake = parseStake(source);
      existing.source = source;
      for (const poolSource of source.pools) {
        const pool = findPool(existing, poolSource);
        if (pool !== undefined) overwritePool(pool, poolSource);
      }
      return;
    }
    const provider = indexProvider(source);
    this.byName.set(source.name, provider);
    const others = this.providers.filter((p) => p.name !== source.name);
    this.reindex([...others, provider].sort(byName));
  }

  /** Drop a provider (deregistered or lost); returns whether it was there. */
  removeProvider(name: string): boolean {
    if (!this.byName.delete(name)) return false;
    this.reindex(this.providers.filter((p) => p.name !== name));
    return true;
  }

  // Rebuild the lists and maps from providers already sorted by name (their pools are kept as they are).
  private reindex(providers: IndexedProvider[]): void {
    const pools: IndexedPool[] = [];
    this.byProduct = new Map();
    this.byKey = new Map();
    for (let index = 0; index < providers.length; index++) {
      const provider = providers[index] as IndexedProvider;
      provider.index = index;
      for (const pool of provider.pools) {
        pools.push(pool);
        this.byKey.set(poolKeyOf(provider.name, pool.key), pool);
        const list = this.byProduct.get(pool.gpuProduct);
        if (list) list.push(pool);
        else this.byProduct.set(pool.gpuProduct, [pool]);
      }
    }
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
      const i = nodeIndexOf(indexed, node);
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
      const i = nodeIndexOf(pool, node);
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

function indexProvider(source: ProviderSnapshot): IndexedProvider {
  const provider: IndexedProvider = {
    source,
    name: source.name,
    index: 0,
    availability: safeCompile(source),
    stake: parseStake(source),
    pools: [],
  };
  const seen = new Set<string>();
  for (const poolSource of [...source.pools].sort(comparePools)) {
    const pool = indexPool(provider, poolSource);
    if (seen.has(pool.key)) continue; // duplicate pool: keep the first
    seen.add(pool.key);
    provider.pools.push(pool);
  }
  return provider;
}

// Same pools (by key) with the same node names: the fresh inventory can be written in place.
function sameLayout(provider: IndexedProvider, source: ProviderSnapshot): boolean {
  if (provider.pools.length !== source.pools.length) return false;
  for (const poolSource of source.pools) {
    const pool = findPool(provider, poolSource);
    if (pool === undefined || pool.nodeNames.length !== poolSource.nodes.length) return false;
    const nodes = poolSource.nodes;
    for (let i = 0; i < nodes.length; i++) {
      const name = (nodes[i] as PoolSnapshot['nodes'][number]).name;
      if (pool.nodeNames[i] !== name && nodeIndexOf(pool, name) === undefined) return false;
    }
  }
  return true;
}

// A provider has a handful of pools: a linear scan on the identity fields beats building key strings.
function findPool(provider: IndexedProvider, source: PoolSnapshot): IndexedPool | undefined {
  for (const pool of provider.pools) {
    if (
      pool.gpuProduct === source.gpuProduct &&
      pool.memoryMiB === source.memoryMiB &&
      pool.cudaDriverMajor === source.cudaDriverMajor
    ) {
      return pool;
    }
  }
  return undefined;
}

function overwritePool(pool: IndexedPool, source: PoolSnapshot): void {
  if (source.pricePerGpuHour !== pool.source.pricePerGpuHour) {
    pool.price = parsePrice(source.pricePerGpuHour);
    pool.priceNumber = pool.price === undefined ? Number.POSITIVE_INFINITY : moneyToNumber(pool.price);
  }
  pool.source = source;
  const nodes = source.nodes;
  for (let n = 0; n < nodes.length; n++) {
    const node = nodes[n] as PoolSnapshot['nodes'][number];
    // Agents list nodes sorted (idle.ts), so the position usually matches without a search.
    const i = pool.nodeNames[n] === node.name ? n : nodeIndexOf(pool, node.name);
    if (i !== undefined) pool.idle[i] = sanitizeIdle(node.idleGpus);
  }
  refreshTotals(pool);
}

function parseStake(source: ProviderSnapshot): Money | undefined {
  return source.stakeAmount === undefined ? undefined : tryParseMoney(source.stakeAmount);
}

function sanitizeIdle(idle: number): number {
  return Number.isFinite(idle) ? Math.max(0, Math.floor(idle)) : 0;
}

function indexPool(provider: IndexedProvider, source: PoolSnapshot): IndexedPool {
  const nodes = [...source.nodes].sort(byName);
  const idle = new Int32Array(nodes.length);
  const nodeNames: string[] = [];
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i] as PoolSnapshot['nodes'][number];
    idle[i] = sanitizeIdle(n.idleGpus);
    nodeNames.push(n.name);
  }
  const price = parsePrice(source.pricePerGpuHour);
  const pool: IndexedPool = {
    provider,
    source,
    gpuProduct: source.gpuProduct,
    memoryMiB: source.memoryMiB,
    cudaDriverMajor: source.cudaDriverMajor,
    key: formatPoolKey(source.gpuProduct, source.memoryMiB, source.cudaDriverMajor),
    price,
    priceNumber: price === undefined ? Number.POSITIVE_INFINITY : moneyToNumber(price),
    nodeNames,
    idle,
    maxIdle: 0,
    sumIdle: 0,
  };
  refreshTotals(pool);
  return pool;
}

// Node names are sorted, so a binary search finds a node without a per-pool Map (few lookups, many pools).
function nodeIndexOf(pool: IndexedPool, node: string): number | undefined {
  const names = pool.nodeNames;
  let lo = 0;
  let hi = names.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const name = names[mid] as string;
    if (name === node) return mid;
    if (name < node) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

// Listed prices repeat across pools ("2.40"), and inventories are re-indexed often: memoize the
// parse. Bounded, and a pure cache (same text, same value), so determinism is unaffected.
const priceCache = new Map<string, Money | undefined>();
function parsePrice(text: string): Money | undefined {
  let price = priceCache.get(text);
  if (price === undefined && !priceCache.has(text)) {
    if (priceCache.size >= 4096) priceCache.clear();
    price = tryParseMoney(text);
    priceCache.set(text, price);
  }
  return price;
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

function byName(a: { name: string }, b: { name: string }): number {
  return compareStrings(a.name, b.name);
}
