// Issue 4: hub memory with 10,000 nodes and 10,000 jobs (target ≤ 300 MiB RSS). Prints numbers;
// asserts nothing.
//   - hub: `fedgpu hub` as a process (startHubProcess: node --import tsx, CLI defaults) on a real
//     kube-apiserver, its GpuJob controller and marketplace running as in production;
//   - market: 100 GpuProvider objects of 100 nodes × 8 GPUs each, their status written straight to
//     the hub apiserver by this bench (a shortcut: no agents; the status is what the hub itself
//     writes from an agent's inventory, built with the agent's own buildInventory and the hub's
//     poolsStatus). They are written after the hub starts and carry no lastHeartbeatTime, so the
//     hub's heartbeat check, which only tracks agents it has heard from, never declares them lost;
//   - 10,000 GpuJobs (1 GPU each) created with limited concurrency while the hub reconciles them;
//     the bench waits (bounded) until every job is placed (status.phase Scheduled; no agent runs
//     them), then reads the hub's RSS, and its live V8 heap after a full GC (through its inspector).
//   - then the same hub as the container image runs it (plain JavaScript, no tsx), restarted on the
//     same objects: steady-state RSS; and once more with a V8 heap cap (--max-old-space-size).
// Run: tsx bench/hub-memory.bench.ts [jobs] [providers] [deadlineSeconds]   (BENCH_CPU_PROFILE=1: CPU profile of the hub)
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type V1Node } from '@kubernetes/client-node';
import { inventoryMessage } from '../operator/src/agent/agent.js';
import { buildInventory } from '../operator/src/agent/inventory.js';
import { SIM_RUN_FOR_ANNOTATION } from '../operator/src/api/constants.js';
import { GPUJOB_PLURAL, GPUPROVIDER_PLURAL, GROUP, VERSION, type GpuJob, type GpuProvider } from '../operator/src/api/types.js';
import { poolsStatus } from '../operator/src/hub/providers/status.js';
import { hubPki, installCrds, startHubProcess, type HubProcess } from '../operator/src/testbed/federation.js';
import { gpuNodes } from '../operator/src/testbed/kwok/gpu-nodes.js';
import { reapStaleRuns } from '../operator/src/testbed/processes.js';
import { startTestbed, type Testbed } from '../operator/src/testbed/testbed.js';
import { repoRoot } from '../operator/src/testbed/tools.js';
import {
  compileOperator,
  CORES,
  cpuPercent,
  figure,
  heapLine,
  INSPECT_FLAG,
  liveHeap,
  loadLine,
  machineLine,
  mapLimit,
  mib,
  nowMs,
  printCpuTop,
  procSample,
  ProcSampler,
  reconcileStats,
  retrying,
  scrape,
  section,
  sleep,
  startCompiledHubProcess,
  startCpuProfile,
} from './support.js';

// Its "tsx" hub is startHubProcess's, which now runs the bundled binary unless told otherwise.
process.env.FEDGPU_TESTBED_FROM_SOURCES ??= '1';

const JOBS = Math.max(1, Number(process.argv[2] ?? 0) || 10_000);
const PROVIDERS = Math.max(1, Number(process.argv[3] ?? 0) || 100);
const NODES_PER_PROVIDER = Math.ceil(10_000 / PROVIDERS);
const GPUS_PER_NODE = 8;
const CREATE_CONCURRENCY = 12;
// From the first create until the bench stops waiting for every job to be placed. On 2 cores the hub
// places ~20–50 jobs/s at 10,000 nodes (see docs/benchmarks.md), so the default run measures memory
// with all 10,000 jobs in the hub's cache but only part of them placed; pass a longer deadline
// (third argument, seconds) for a complete run.
const RECONCILE_DEADLINE_MS = Math.max(10, Number(process.argv[4] ?? 0) || 120) * 1000;
const RESTART_WINDOW_MS = 30_000;
const HEAP_CAP_MIB = 192;
const TARGET_RSS = 300 * 2 ** 20;
const NS = 'ml';
const mergePatchOptions = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const H100 = 'NVIDIA-H100-80GB-HBM3';
const A100 = 'NVIDIA-A100-SXM4-80GB';

console.log(`== hub memory bench (issue 4)`);
console.log(machineLine());
console.log(`market                 ${PROVIDERS} GpuProviders × ${NODES_PER_PROVIDER} nodes × ${GPUS_PER_NODE} GPUs (status written directly: no agents), ${JOBS} GpuJobs of 1 GPU`);

const root = join(repoRoot, '.testbed', 'bench-hub-memory');
let testbed: Testbed | undefined;
let hub: HubProcess | undefined;

const condition = (type: string, reason: string, message: string) => ({ type, status: 'True' as const, reason, message, lastTransitionTime: new Date().toISOString() });

function providerObjects(i: number): { spec: GpuProvider; status: NonNullable<GpuProvider['status']> } {
  const product = i % 2 === 0 ? H100 : A100;
  const nodes: V1Node[] = gpuNodes({ prefix: `p${i}`, count: NODES_PER_PROVIDER, gpusPerNode: GPUS_PER_NODE, product, memoryMiB: 81559 }).map((n) => ({
    ...n,
    status: { ...n.status, conditions: [{ type: 'Ready', status: 'True' }] },
  }));
  const inventory = inventoryMessage(buildInventory(nodes, [], { pricePerGpuHour: { [H100]: '2.40', [A100]: '1.60' } }, Date.now()));
  return {
    spec: {
      apiVersion: 'fedgpu.io/v1alpha1',
      kind: 'GpuProvider',
      metadata: { name: `gp-bench-${i}`, labels: { 'fedgpu.io/registered-by': 'bench' } },
      spec: { wallet: `0x${randomBytes(20).toString('hex')}`, displayName: `bench provider ${i}`, region: ['eu-west', 'us-east', 'ap-south'][i % 3] },
    },
    status: {
      conditions: [condition('Registered', 'AgentConnected', 'written by the hub-memory bench'), condition('Ready', 'HeartbeatReceived', 'written by the hub-memory bench')],
      agentVersion: 'bench',
      ...poolsStatus(inventory),
      latency: { rttMs: 5 + (i % 40), bandwidthMbps: 1000 },
    },
  };
}

function jobBody(i: number): GpuJob {
  return {
    apiVersion: 'fedgpu.io/v1alpha1',
    kind: 'GpuJob',
    metadata: { name: `job-${i}`, namespace: NS, labels: { team: `team-${i % 20}` } },
    spec: {
      template: {
        metadata: { annotations: { [SIM_RUN_FOR_ANNOTATION]: '1h' } },
        spec: { containers: [{ name: 'main', image: 'example/train:v1', args: ['--epochs', '10'], resources: { requests: { cpu: '4', memory: '16Gi' } } }] },
      },
      gpusPerReplica: 1,
      gpu: { products: [H100, A100] },
      budget: { maxPricePerGpuHour: '3' },
    },
  } as GpuJob;
}

/** Jobs per status.phase, as the hub's own fedgpu_jobs gauge counts them (no phase counts as Pending). */
async function phases(port: number): Promise<Record<string, number>> {
  const m = await scrape(port);
  const out: Record<string, number> = {};
  for (const [k, v] of m) {
    const phase = /^fedgpu_jobs\{phase="(\w+)"\}$/.exec(k)?.[1];
    if (phase && v) out[phase] = v;
  }
  return out;
}

async function main(tb: Testbed): Promise<void> {
  const hubCluster = tb.cluster('hub');
  const custom = hubCluster.kubeConfig.makeApiClient(CustomObjectsApi);
  const pki = await hubPki(join(tb.dir, 'pki'));

  // The test bed's hub process, with its inspector on loopback so the bench can read its live heap.
  const saved = process.env.NODE_OPTIONS;
  const profileDir = join(tb.dir, 'hub-tsx', 'profile');
  const profiling = Boolean(process.env.BENCH_CPU_PROFILE);
  process.env.NODE_OPTIONS = `${saved ?? ''} ${INSPECT_FLAG}`.trim();
  try {
    hub = await startHubProcess(hubCluster, pki, join(tb.dir, 'hub-tsx'));
  } finally {
    if (saved === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = saved;
  }
  const sampler = new ProcSampler(hub.process.pid, 1_000);
  const profiler = profiling ? await startCpuProfile(hub.process.logPath, profileDir) : undefined;
  await sleep(2_000);
  const idle = procSample(hub.process.pid)!;
  figure('hub started, empty market', `RSS ${mib(idle.rssBytes)}; ${await heapLine(hub.metricsPort)}`);

  // --- the market ----------------------------------------------------------------------------------
  section(`${PROVIDERS} GpuProviders with ${PROVIDERS * NODES_PER_PROVIDER} nodes`);
  let t = nowMs();
  await mapLimit(Array.from({ length: PROVIDERS }, (_, i) => i), 8, async (i) => {
    const { spec, status } = providerObjects(i);
    await retrying(() => custom.createClusterCustomObject({ group: GROUP, version: VERSION, plural: GPUPROVIDER_PLURAL, body: spec }));
    await retrying(() => custom.patchClusterCustomObjectStatus({ group: GROUP, version: VERSION, plural: GPUPROVIDER_PLURAL, name: spec.metadata.name!, body: { status } }, mergePatchOptions));
  });
  const sample = providerObjects(0);
  figure('GpuProviders written', `${((nowMs() - t) / 1000).toFixed(1)} s; ${(JSON.stringify(sample).length / 1024).toFixed(0)} KiB of JSON each (idleByNode lists ${NODES_PER_PROVIDER} nodes)`);
  await sleep(3_000);
  const market = procSample(hub.process.pid)!;
  const heapLineMarket = await heapLine(hub.metricsPort);
  const marketLive = await liveHeap(hub.process.logPath);
  figure('hub with the market, no jobs', `RSS ${mib(market.rssBytes)}; ${heapLineMarket}; live after GC ${marketLive ? mib(marketLive.usedBytes) : '?'}`);

  // --- the jobs ------------------------------------------------------------------------------------
  section(`${JOBS} GpuJobs (${CREATE_CONCURRENCY} creates in flight), reconciled as they arrive`);
  t = nowMs();
  const deadline = t + RECONCILE_DEADLINE_MS;
  let created = 0;
  let stopProgress = false;
  const progress = (async () => {
    let last = { at: nowMs(), reconciles: (await reconcileStats(hub!.metricsPort)).count, cpu: procSample(hub!.process.pid) };
    while (!stopProgress) {
      await sleep(15_000);
      if (stopProgress) break;
      const r = await reconcileStats(hub!.metricsPort);
      const p = await phases(hub!.metricsPort).catch(() => ({}));
      const s = procSample(hub!.process.pid);
      const now = nowMs();
      const rate = ((r.count - last.reconciles) / ((now - last.at) / 1000)).toFixed(0);
      console.log(
        `  t=${((now - t) / 1000).toFixed(0).padStart(3)} s  created ${String(created).padStart(5)}  phases ${JSON.stringify(p)}  reconciles ${rate}/s  ` +
          `hub RSS ${s ? mib(s.rssBytes) : '?'}, CPU ${s && last.cpu ? cpuPercent(last.cpu, s).toFixed(0) : '?'}%`,
      );
      last = { at: now, reconciles: r.count, cpu: s };
    }
  })();
  await mapLimit(Array.from({ length: JOBS }, (_, i) => i), CREATE_CONCURRENCY, async (i) => {
    if (nowMs() > deadline) return;
    await retrying(() => custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: GPUJOB_PLURAL, namespace: NS, body: jobBody(i) }));
    created++;
  });
  const createdMs = nowMs() - t;
  figure(`${created} GpuJobs created`, `${(createdMs / 1000).toFixed(1)} s (${(created / (createdMs / 1000)).toFixed(0)}/s, with the hub reconciling alongside)`);
  let placed = 0;
  while (nowMs() < deadline) {
    const p = await phases(hub.metricsPort).catch(() => ({}) as Record<string, number>);
    placed = (p.Scheduled ?? 0) + (p.Running ?? 0);
    if (placed >= created) break;
    await sleep(2_000);
  }
  stopProgress = true;
  await progress;
  const placedMs = nowMs() - t;
  const reconciles = await reconcileStats(hub.metricsPort);
  figure(`GpuJobs placed (phase Scheduled)`, `${placed} of ${created} after ${(placedMs / 1000).toFixed(0)} s${placed < created ? ` (deadline ${RECONCILE_DEADLINE_MS / 1000} s reached)` : ''}; ${reconciles.count} reconciles, ${((reconciles.seconds / reconciles.count) * 1000).toFixed(1)} ms each on average`);

  // Count from the apiserver what the gauge approximates: jobs with any status.phase.
  let withPhase = 0;
  let total = 0;
  let cont: string | undefined;
  do {
    const page = (await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: GPUJOB_PLURAL, namespace: NS, limit: 1000, _continue: cont })) as { items: GpuJob[]; metadata?: { continue?: string } };
    total += page.items.length;
    withPhase += page.items.filter((j) => j.status?.phase).length;
    cont = page.metadata?.continue || undefined;
  } while (cont);
  const oneJob = (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: GPUJOB_PLURAL, namespace: NS, name: 'job-0' })) as GpuJob;
  figure('GpuJobs in the apiserver', `${total}, ${withPhase} with status.phase; one placed job is ${(JSON.stringify(oneJob).length / 1024).toFixed(1)} KiB of JSON (managedFields ${(JSON.stringify(oneJob.metadata.managedFields ?? []).length / 1024).toFixed(1)} KiB)`);

  // --- memory ----------------------------------------------------------------------------------------
  section(`hub memory with ${PROVIDERS * NODES_PER_PROVIDER} nodes and ${total} jobs`);
  await sleep(5_000);
  const end = procSample(hub.process.pid)!;
  sampler.stop();
  figure(`[tsx] hub RSS, ${placed >= created ? 'all jobs placed' : `at the deadline (${placed} of ${created} placed)`}`, `${mib(end.rssBytes)} (peak ${mib(Math.max(sampler.peakRss, end.hwmBytes))} during the run)`, { text: '≤ 300 MiB', met: end.rssBytes <= TARGET_RSS });
  figure('[tsx]   memory breakdown', await heapLine(hub.metricsPort));
  const live = await liveHeap(hub.process.logPath);
  const afterGc = procSample(hub.process.pid)!;
  if (live) {
    figure('[tsx]   after a full GC', `live V8 heap ${mib(live.usedBytes)}, RSS ${mib(afterGc.rssBytes)}`);
    if (marketLive) figure('[tsx]   live heap per job', `≈ ${((live.usedBytes - marketLive.usedBytes) / Math.max(1, total) / 1024).toFixed(1)} KiB (live heap growth from the market alone to ${total} jobs)`);
  }
  const steady0 = procSample(hub.process.pid)!;
  const r0 = await reconcileStats(hub.metricsPort);
  await sleep(10_000);
  const steady1 = procSample(hub.process.pid)!;
  const r1 = await reconcileStats(hub.metricsPort);
  figure('[tsx] hub after the deadline (10 s)', `CPU ${cpuPercent(steady0, steady1).toFixed(0)}% of one core, ${((r1.count - r0.count) / 10).toFixed(0)} reconciles/s`);
  if (profiler) {
    await profiler.stop();
    printCpuTop('[tsx] hub', profileDir);
  }
  await hub.process.stop(30_000);

  // --- the same objects, the hub as the image runs it -------------------------------------------------
  const mainJs = compileOperator();
  t = nowMs();
  hub = await startCompiledHubProcess(mainJs, hubCluster, pki, join(tb.dir, 'hub-compiled'), [], [INSPECT_FLAG]);
  const compiledSampler = new ProcSampler(hub.process.pid, 1_000);
  // It re-lists everything and reconciles every job once (nothing to change); wait for that.
  let settled = 0;
  for (let last = -1; nowMs() - t < RESTART_WINDOW_MS; ) {
    await sleep(3_000);
    const r = await reconcileStats(hub.metricsPort);
    if (r.count >= total && r.count === last) {
      settled = r.count;
      break;
    }
    last = r.count;
  }
  const c = procSample(hub.process.pid)!;
  compiledSampler.stop();
  const cPhases = await phases(hub.metricsPort).catch(() => ({}));
  figure('[compiled] hub RSS, restarted on the same objects', `${mib(c.rssBytes)} (peak ${mib(Math.max(compiledSampler.peakRss, c.hwmBytes))}) after ${((nowMs() - t) / 1000).toFixed(0)} s; ${settled ? `settled after ${settled} reconciles` : `still placing: ${JSON.stringify(cPhases)}`}`, { text: '≤ 300 MiB', met: c.rssBytes <= TARGET_RSS });
  figure('[compiled]   memory breakdown', await heapLine(hub.metricsPort));
  const cLive = await liveHeap(hub.process.logPath);
  const cGc = procSample(hub.process.pid)!;
  if (cLive) figure('[compiled]   after a full GC', `live V8 heap ${mib(cLive.usedBytes)}, RSS ${mib(cGc.rssBytes)}`);
  await hub.process.stop();

  // The suggested mitigation: a V8 heap cap, so that V8 collects before RSS runs far ahead of the live heap.
  t = nowMs();
  hub = await startCompiledHubProcess(mainJs, hubCluster, pki, join(tb.dir, 'hub-capped'), [], [INSPECT_FLAG, `--max-old-space-size=${HEAP_CAP_MIB}`]);
  const cappedSampler = new ProcSampler(hub.process.pid, 500);
  for (let last = -1; nowMs() - t < RESTART_WINDOW_MS; ) {
    await sleep(3_000);
    const r = await reconcileStats(hub.metricsPort);
    if (r.count >= total && r.count === last) break;
    last = r.count;
  }
  const capped = procSample(hub.process.pid)!;
  cappedSampler.stop();
  figure(`[compiled, --max-old-space-size=${HEAP_CAP_MIB}] restarted`, `RSS ${mib(capped.rssBytes)} (peak ${mib(Math.max(cappedSampler.peakRss, capped.hwmBytes))}) after ${((nowMs() - t) / 1000).toFixed(0)} s; ${await heapLine(hub.metricsPort)}`, { text: '≤ 300 MiB', met: Math.max(cappedSampler.peakRss, capped.rssBytes) <= TARGET_RSS });
  await hub.process.stop();
}

reapStaleRuns(root);
const dir = join(root, String(process.pid));
const started = nowMs();
try {
  testbed = await startTestbed(join(dir, 'clusters'), [{ name: 'hub', scheduler: false, controllerManager: false }]);
  await installCrds(testbed.cluster('hub'));
  await testbed.cluster('hub').kubectl(['create', 'namespace', NS]);
  console.log(`(test bed: hub apiserver up in ${((nowMs() - started) / 1000).toFixed(1)} s; ${CORES} cores)`);
  await main(testbed);
} catch (err) {
  console.log(`bench stopped early: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  await hub?.process.stop();
  await testbed?.stop();
}
console.log(`\n(total ${process.uptime().toFixed(0)} s; ${loadLine()})`);
process.exit(0);
