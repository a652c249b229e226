// Synthetic market for the scheduler bench: a deterministic (seeded) fleet of small providers with
// mixed GPU products and a stream of mixed job shapes. No I/O; the same seed gives the same fleet.

import type { JobRequest, PoolSnapshot, ProviderSnapshot } from '../operator/src/core/types.js';

const PRODUCTS: { name: string; memoryMiB: number; price: [number, number]; nodeGpus: number[]; share: number }[] = [
  { name: 'NVIDIA-H100-80GB-HBM3', memoryMiB: 81559, price: [1.8, 3.5], nodeGpus: [8, 8, 4], share: 0.15 },
  { name: 'NVIDIA-A100-SXM4-80GB', memoryMiB: 81920, price: [1.0, 2.2], nodeGpus: [8, 4], share: 0.2 },
  { name: 'NVIDIA-L40S', memoryMiB: 46068, price: [0.6, 1.4], nodeGpus: [4, 2], share: 0.15 },
  { name: 'NVIDIA-GeForce-RTX-4090', memoryMiB: 24564, price: [0.3, 0.8], nodeGpus: [1, 2, 4], share: 0.25 },
  { name: 'NVIDIA-GeForce-RTX-3090', memoryMiB: 24576, price: [0.15, 0.5], nodeGpus: [1, 2], share: 0.15 },
  { name: 'Tesla-T4', memoryMiB: 15360, price: [0.05, 0.25], nodeGpus: [1, 4], share: 0.1 },
];
const REGIONS = ['us-east', 'us-west', 'eu-west', 'eu-central', 'ap-south', 'ap-east'];

/** Small seeded PRNG (mulberry32): deterministic across runs and machines. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

function pickProduct(random: () => number) {
  let x = random();
  for (const p of PRODUCTS) {
    x -= p.share;
    if (x < 0) return p;
  }
  return PRODUCTS[PRODUCTS.length - 1] as (typeof PRODUCTS)[number];
}

/** `providers` providers with exactly `nodes` nodes in total (at least one each), 1–3 pools each. */
export function syntheticFleet(providers: number, nodes: number, seed = 1): ProviderSnapshot[] {
  const random = rng(seed);
  // Node counts: a random split of `nodes` with every provider getting at least one.
  const counts = Array.from({ length: providers }, () => 1);
  for (let left = nodes - providers; left > 0; left--) {
    const i = Math.floor(random() * providers);
    counts[i] = (counts[i] ?? 0) + 1;
  }
  return counts.map((nodeCount, i) => {
    const name = `provider-${String(i).padStart(4, '0')}`;
    const poolCount = Math.min(nodeCount, 1 + Math.floor(random() * 3));
    const pools: PoolSnapshot[] = [];
    const used = new Set<string>();
    for (let p = 0; p < poolCount; p++) {
      const product = pickProduct(random);
      if (used.has(product.name)) continue;
      used.add(product.name);
      const [lo, hi] = product.price;
      pools.push({
        gpuProduct: product.name,
        memoryMiB: product.memoryMiB,
        cudaDriverMajor: pick(random, [525, 535, 550]),
        pricePerGpuHour: (lo + random() * (hi - lo)).toFixed(2),
        nodes: [],
      });
    }
    for (let n = 0; n < nodeCount; n++) {
      const pool = pools[n % pools.length] as PoolSnapshot;
      const product = PRODUCTS.find((x) => x.name === pool.gpuProduct) ?? PRODUCTS[0];
      const total = pick(random, product?.nodeGpus ?? [8]);
      const busy = random() < 0.4 ? Math.floor(random() * (total + 1)) : 0;
      pool.nodes.push({ name: `${name}-node-${n}`, idleGpus: total - busy, totalGpus: total });
    }
    const successes = Math.floor(random() ** 2 * 400);
    const failures = Math.floor(random() * 0.1 * successes);
    const provider: ProviderSnapshot = {
      name,
      wallet: `0x${i.toString(16).padStart(40, '0')}`,
      region: pick(random, REGIONS),
      ready: random() > 0.03,
      heartbeatAgeMs: Math.floor(random() * 20_000),
      staked: random() > 0.05,
      stakeAmount: String(100 + Math.floor(random() * 10_000)),
      reputation: { score: successes === 0 ? 0.05 : Math.min(0.99, 0.3 + 0.6 * (successes / (successes + failures + 5))), successes, failures },
      rttMs: 5 + Math.floor(random() * 250),
      bandwidthMbps: pick(random, [100, 500, 1000, 10_000]),
      auditedAttributes: random() < 0.2 ? { tier: pick(random, ['2', '3']), soc2: 'true' } : {},
      pools,
    };
    if (random() < 0.1) provider.availability = { windows: [{ start: '18:00', end: '08:00' }], reservedGpus: 0 };
    return provider;
  });
}

/** A stream of `count` mixed jobs: mostly single-GPU, some gangs, some strict placements. */
export function syntheticJobs(count: number, seed = 2): JobRequest[] {
  const random = rng(seed);
  const shapes: [number, number, boolean][] = [
    [1, 1, false], [1, 1, false], [1, 1, false], [1, 2, false], [1, 4, false], [1, 8, false],
    [2, 4, false], [2, 8, false], [4, 2, false], [4, 4, false], [2, 2, true], [4, 2, true],
  ];
  return Array.from({ length: count }, () => {
    const [replicas, gpusPerReplica, sameNode] = pick(random, shapes);
    const first = pickProduct(random).name;
    const products = random() < 0.3 ? [first, pickProduct(random).name] : random() < 0.05 ? [] : [first];
    const job: JobRequest = {
      replicas,
      gpusPerReplica,
      gpu: { products, minCudaDriverMajor: random() < 0.2 ? 535 : 0 },
      placement: { sameNode },
      budget: { maxPricePerGpuHour: (0.5 + random() * 3).toFixed(2) },
    };
    const placement = job.placement ?? {};
    if (random() < 0.3) placement.maxLatencyMs = 100 + Math.floor(random() * 150);
    if (random() < 0.3) placement.minReputation = Math.round(random() * 60) / 100;
    if (random() < 0.15) placement.regions = [pick(random, REGIONS), pick(random, REGIONS)];
    if (random() < 0.05) placement.requireAudited = ['soc2'];
    if (random() < 0.4) job.data = { sizeGiB: Math.floor(random() * 500), sourceRegion: pick(random, REGIONS) };
    if (random() < 0.3) {
      job.activeDeadlineSeconds = 3600 * (1 + Math.floor(random() * 24));
      if (job.budget) job.budget.maxTotal = String(50 + Math.floor(random() * 2000));
    }
    return job;
  });
}
