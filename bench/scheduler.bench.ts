// Scheduler throughput on a synthetic market of 1,000 providers and 10,000 nodes: ≥ 20,000 schedule()
// calls in bursts, each decision assumed into the snapshot (as the hub does), and every BURST calls a
// fresh inventory round from every provider folded in with updateProvider (which also drops the
// assumptions, as confirmed inventory would). Prints numbers only.
// Run: npx tsx bench/scheduler.bench.ts [calls]

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { schedule } from '../operator/src/core/scheduling/scheduler.js';
import { schedulerConfig } from '../operator/src/core/scheduling/config.js';
import { buildSnapshot } from '../operator/src/core/scheduling/snapshot.js';
import { syntheticFleet, syntheticJobs } from './scheduler-fleet.js';

const PROVIDERS = 1_000;
const NODES = 10_000;
const CALLS = Math.max(20_000, Number(process.argv[2] ?? 0) || 0);
const WARMUP = 5_000;
const BURST = 200; // calls between inventory rounds
const NOW = Date.UTC(2024, 0, 1, 12);

// A full GC before reading the heap, without needing --expose-gc on the command line.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);
const elapsedMs = (since: bigint): number => Number(process.hrtime.bigint() - since) / 1e6;

const config = schedulerConfig();
const fleet = syntheticFleet(PROVIDERS, NODES);
const jobs = syntheticJobs(CALLS + WARMUP);

gc();
const heapBefore = process.memoryUsage().heapUsed;
const buildStart = process.hrtime.bigint();
const snapshot = buildSnapshot(fleet);
const buildMs = elapsedMs(buildStart);
gc();
const heapSnapshot = process.memoryUsage().heapUsed - heapBefore;

function inventoryRound(): number {
  const start = process.hrtime.bigint();
  for (const provider of fleet) snapshot.updateProvider(provider);
  return elapsedMs(start);
}

for (let i = 0; i < WARMUP; i++) {
  if (i % BURST === 0) inventoryRound();
  const result = schedule(snapshot, jobs[i] as (typeof jobs)[number], config, NOW);
  if (result.kind === 'decision') snapshot.assume(result);
}

const latencies = new Float64Array(CALLS);
let decisions = 0;
let decisionMicros = 0;
let refusalMicros = 0;
let refreshMs = 0;
let refreshes = 0;
let placedGpus = 0;
let heapPeak = 0;
const wallStart = process.hrtime.bigint();
for (let i = 0; i < CALLS; i++) {
  if (i % BURST === 0) {
    refreshMs += inventoryRound();
    refreshes += 1;
    heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
  }
  const job = jobs[WARMUP + i] as (typeof jobs)[number];
  const start = process.hrtime.bigint();
  const result = schedule(snapshot, job, config, NOW);
  const micros = Number(process.hrtime.bigint() - start) / 1e3;
  latencies[i] = micros;
  if (result.kind === 'decision') {
    decisions += 1;
    decisionMicros += micros;
    placedGpus += result.assignments.length * result.gpusPerReplica;
    snapshot.assume(result);
  } else {
    refusalMicros += micros;
  }
}
const wallMs = elapsedMs(wallStart);
gc();
const heapEnd = process.memoryUsage().heapUsed;

const sorted = Float64Array.from(latencies).sort();
const quantile = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
const scheduleSeconds = latencies.reduce((a, b) => a + b, 0) / 1e6;
const totalGpus = fleet.reduce((sum, p) => sum + p.pools.reduce((s, pool) => s + pool.nodes.reduce((t, n) => t + n.totalGpus, 0), 0), 0);
const poolCount = fleet.reduce((sum, p) => sum + p.pools.length, 0);
const refusals = CALLS - decisions;

console.log(`fleet                  ${PROVIDERS} providers, ${NODES} nodes, ${poolCount} pools, ${totalGpus} GPUs`);
console.log(`calls                  ${CALLS} after ${WARMUP} warm-up; inventory round every ${BURST} calls`);
console.log(`outcomes               ${decisions} decisions, ${refusals} unschedulable, ${placedGpus} GPUs placed`);
console.log(`decisions/s            ${Math.round(CALLS / scheduleSeconds)} (schedule() calls per second, refusals included)`);
console.log(`  decision avg         ${(decisionMicros / Math.max(1, decisions)).toFixed(1)} µs`);
console.log(`  unschedulable avg    ${(refusalMicros / Math.max(1, refusals)).toFixed(1)} µs`);
console.log(`  incl. inventory      ${Math.round(CALLS / (wallMs / 1e3))} /s`);
console.log(`latency p50            ${quantile(0.5).toFixed(1)} µs`);
console.log(`latency p99            ${quantile(0.99).toFixed(1)} µs`);
console.log(`latency max            ${quantile(1).toFixed(1)} µs`);
console.log(`snapshot build         ${buildMs.toFixed(1)} ms; inventory round ${(refreshMs / refreshes).toFixed(2)} ms (${PROVIDERS} updateProvider)`);
console.log(`heap used              ${mib(heapEnd)} MiB after GC, ${mib(heapPeak)} MiB peak sampled, snapshot ${mib(heapSnapshot)} MiB`);

// ---- The hub's path, the honest figure (issue 15): each decision also pays what the GpuJob
// controller does around schedule(): the MarketCache view (dirty providers re-read from their
// GpuProvider objects, their own assumptions re-applied), the assumption recorded and taken out
// of the snapshot, the inventory of the provider chosen one decision earlier arriving (its status
// changed: providerSnapshot + updateProvider + its assumptions), and the job placed BURST decisions
// earlier going Running (its assumption forgotten, its provider re-based).
{
  const { AssumedAllocations } = await import('../operator/src/core/scheduling/assumed.js');
  const { MarketCache } = await import('../operator/src/hub/jobs/market-cache.js');
  const objects = new Map(fleet.map((p) => [p.name, gpuProviderOf(p)]));
  const assumed = new AssumedAllocations();
  const market = new MarketCache({ provider: (n) => objects.get(n), providers: () => [...objects.values()], assumed, heartbeatAgeMs: () => 1_000 });
  const hubJobs = syntheticJobs(CALLS + WARMUP, 7);
  const placedKeys: string[] = [];
  let lastProvider: string | undefined;
  const viewStart = process.hrtime.bigint();
  market.view(NOW);
  const firstViewMs = elapsedMs(viewStart);
  const step = (i: number, now: number): boolean => {
    if (lastProvider) market.providerChanged(lastProvider);
    const running = placedKeys.length >= BURST ? placedKeys.shift() : undefined;
    if (running) market.forget(running);
    const key = `ns/job-${i}`;
    market.forget(key);
    const result = schedule(market.view(now), hubJobs[i] as (typeof hubJobs)[number], config, now);
    if (result.kind !== 'decision') return false;
    market.assume(key, result, now);
    placedKeys.push(key);
    lastProvider = result.provider;
    return true;
  };
  for (let i = 0; i < WARMUP; i++) step(i, NOW);
  const hubLatencies = new Float64Array(CALLS);
  let hubDecisions = 0;
  const hubStart = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i++) {
    const start = process.hrtime.bigint();
    if (step(WARMUP + i, NOW + Math.floor(i / 50))) hubDecisions++; // time moves: the once-a-second work happens too
    hubLatencies[i] = Number(process.hrtime.bigint() - start) / 1e3;
  }
  const hubWallMs = elapsedMs(hubStart);
  const hubSorted = Float64Array.from(hubLatencies).sort();
  const q = (x: number): number => hubSorted[Math.min(hubSorted.length - 1, Math.floor(x * hubSorted.length))] ?? 0;
  gc();
  console.log(`hub path               ${CALLS} placements through MarketCache (view, schedule, assume; one provider's inventory and one job going Running per call; ${assumed.size} assumptions live at the end)`);
  console.log(`  hub decisions/s      ${Math.round(CALLS / (hubWallMs / 1e3))} (${hubDecisions} decisions, refusals included in the rate)`);
  console.log(`  hub latency p50/p99  ${q(0.5).toFixed(1)} / ${q(0.99).toFixed(1)} µs, max ${q(1).toFixed(1)} µs; first view (build from ${objects.size} GpuProviders) ${firstViewMs.toFixed(1)} ms`);
  console.log(`  heap used            ${mib(process.memoryUsage().heapUsed)} MiB after GC`);
}

/** The GpuProvider object an agent's inventory would give for a synthetic provider snapshot. */
function gpuProviderOf(p: (typeof fleet)[number]): import('../operator/src/api/types.js').GpuProvider {
  return {
    apiVersion: 'fedgpu.io/v1alpha1',
    kind: 'GpuProvider',
    metadata: { name: p.name },
    spec: { wallet: p.wallet, region: p.region, ...(p.availability ? { availability: p.availability as never } : {}) },
    status: {
      conditions: [
        { type: 'Ready', status: p.ready ? 'True' : 'False', reason: 'HeartbeatReceived', message: '', lastTransitionTime: '2024-01-01T00:00:00Z' },
        { type: 'Staked', status: p.staked ? 'True' : 'False', reason: 'Staked', message: '', lastTransitionTime: '2024-01-01T00:00:00Z' },
      ],
      stake: { amount: p.stakeAmount ?? '0' },
      reputation: p.reputation,
      latency: { rttMs: p.rttMs, bandwidthMbps: p.bandwidthMbps },
      pools: p.pools.map((pool) => ({
        gpuProduct: pool.gpuProduct,
        memoryMiB: pool.memoryMiB,
        cudaDriverMajor: pool.cudaDriverMajor,
        pricePerGpuHour: pool.pricePerGpuHour,
        offered: true,
        nodes: pool.nodes.length,
        idleByNode: pool.nodes.map((n) => ({ name: n.name, idle: n.idleGpus })),
      })),
    },
  } as import('../operator/src/api/types.js').GpuProvider;
}
