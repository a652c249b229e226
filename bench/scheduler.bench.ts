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
