// Issue 4: end-to-end placement latency and throughput of the federation, against a plain cluster's
// own kube-scheduler, and the time to recover a job from a lost provider. Prints numbers; asserts
// nothing.
//   hub: `fedgpu hub` as a process (startHubProcess, CLI defaults: providerLostAfter 15 s) on its own
//   apiserver; 3 provider clusters (kwok GPU nodes), each with the real agent as a process.
//   1. baseline: N equivalent pods (1 GPU each) created directly in provider p1 for its kube-scheduler,
//      create → Running, paced and as a burst.
//   2. federation: N GpuJobs (1 GPU each) created in the hub apiserver, create → GpuJob phase Running
//      (the pod runs in some provider cluster and its agent has said so), paced and as a burst.
//   3. provider loss: SIGKILL the agent running a job → the job Running elsewhere, a few trials.
//   4. at rest: GpuJob reconciles, hub CPU and GpuProvider writes per provider per minute (issue 15).
// Run: tsx bench/e2e-throughput.bench.ts [jobs] [perSecond] [burstJobs]
//   (issue 15's run: `tsx bench/e2e-throughput.bench.ts 60 2 500`: paced 60 at 2/s, a burst of 500)
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import { GPU_RESOURCE, SIM_RUN_FOR_ANNOTATION } from '../operator/src/api/constants.js';
import { GPUJOB_PLURAL, GPUPROVIDER_PLURAL, GROUP, VERSION, type GpuJob, type GpuProvider } from '../operator/src/api/types.js';
import { DEFAULT_PROVIDER_LOST_AFTER_MS } from '../operator/src/hub/providers/registry.js';
import { DEFAULT_JOB_CONCURRENCY } from '../operator/src/hub/jobs/controller.js';
import type { Cluster } from '../operator/src/testbed/cluster.js';
import {
  hubPki,
  installCrds,
  readyStatus,
  startAgent,
  startHubProcess,
  type AgentHandle,
  type HubProcess,
} from '../operator/src/testbed/federation.js';
import type { GpuNodeGroup } from '../operator/src/testbed/kwok/gpu-nodes.js';
import { reapStaleRuns } from '../operator/src/testbed/processes.js';
import { stageTimes } from './stage-times.js';
import { startTestbed, type Testbed } from '../operator/src/testbed/testbed.js';
import { repoRoot } from '../operator/src/testbed/tools.js';
import { waitFor } from '../operator/src/testbed/wait.js';
import {
  CORES,
  CpuBreakdown,
  RequestCounts,
  cpuPercent,
  figure,
  heapLine,
  apiserverCpuProfile,
  INSPECT_FLAG,
  printCpuTop,
  startCpuProfile,
  listCustom,
  listNamespacedCustom,
  loadLine,
  machineLine,
  mapLimit,
  mib,
  ms,
  nowMs,
  paced,
  procSample,
  reconcileStats,
  retrying,
  section,
  setNice,
  sleep,
  summarize,
  watchObjects,
  type Summary,
} from './support.js';

const JOBS = Math.max(1, Number(process.argv[2] ?? 0) || 60);
const RATE = Math.max(0.1, Number(process.argv[3] ?? 0) || 2);
const BURST_JOBS = Math.max(1, Number(process.argv[4] ?? 0) || JOBS);
const BURST_CONCURRENCY = Number(process.env.BENCH_BURST_CONCURRENCY ?? 0) || 8;
const REST_SECONDS = Number(process.env.BENCH_REST_SECONDS ?? 0) || 60;
const FAILOVER_TRIALS = Number(process.env.BENCH_FAILOVER_TRIALS ?? 3);
// Extra `fedgpu hub` flags, e.g. BENCH_HUB_ARGS='--job-concurrency 8' to compare settings in one build.
const HUB_ARGS = (process.env.BENCH_HUB_ARGS ?? '').split(/\s+/).filter(Boolean);
// BENCH_CPU_PROFILE=1: the hub's CPU profile over the burst (self time, most first).
const CPU_PROFILE = Boolean(process.env.BENCH_CPU_PROFILE);
// BENCH_APISERVER_PROFILE=<seconds>: Go CPU profiles of the hub's and p1's apiservers from the burst's start.
const APISERVER_PROFILE = Number(process.env.BENCH_APISERVER_PROFILE ?? 0);
// BENCH_PROVIDER_NICE=<n>: the provider clusters' processes (apiserver, scheduler, controller-manager,
// kwok) and their agents run at nice n, for the whole run, baseline included. On one machine the
// hub's site and three provider sites share the cores equally; in a federation they are machines of
// their own, and a provider's work never takes the hub apiserver's CPU. Nice 10 gives a provider
// thread about a tenth of the weight of the hub's when both want a core. etcd is shared and stays at 0.
const PROVIDER_NICE = Number(process.env.BENCH_PROVIDER_NICE ?? 0) || 0;
const JOB_CONCURRENCY = HUB_ARGS.includes('--job-concurrency') ? Number(HUB_ARGS[HUB_ARGS.indexOf('--job-concurrency') + 1]) : DEFAULT_JOB_CONCURRENCY;
const H100 = 'NVIDIA-H100-80GB-HBM3';
const NS = 'ml';
const RUN_FOR = '30m'; // nothing finishes while it is measured

// Every provider runs kube-scheduler: the agent pins each job pod to the hub's chosen node with a
// node affinity (as DaemonSets do), and the provider's scheduler binds it. p1 also hosts the baseline.
// Sized so p1 alone holds the baseline burst, and all three the federation's paced and burst jobs.
const P1_NODES = Math.max(16, Math.ceil(Math.max(JOBS, BURST_JOBS) / 8) + 2);
const PX_NODES = Math.max(8, Math.ceil((JOBS + BURST_JOBS + FAILOVER_TRIALS + 8 - P1_NODES * 8) / 16));
const providers: { name: string; latency: string; price: string; nodes: GpuNodeGroup }[] = [
  { name: 'p1', latency: '5ms', price: '2.40', nodes: { prefix: 'p1', count: P1_NODES, gpusPerNode: 8, product: H100, memoryMiB: 81559 } },
  { name: 'p2', latency: '20ms', price: '2.20', nodes: { prefix: 'p2', count: PX_NODES, gpusPerNode: 8, product: H100, memoryMiB: 81559 } },
  { name: 'p3', latency: '40ms', price: '2.10', nodes: { prefix: 'p3', count: PX_NODES, gpusPerNode: 8, product: H100, memoryMiB: 81559 } },
];

console.log(`== e2e throughput bench (issue 4)`);
console.log(machineLine());
console.log(`setup                  hub process + ${providers.length} provider clusters (${providers.map((p) => `${p.name}: ${p.nodes.count}×${p.nodes.gpusPerNode} H100`).join(', ')}), real agents (processes, heartbeat 500 ms)`);
console.log(`hub                    ${HUB_ARGS.length ? HUB_ARGS.join(' ') : '(defaults)'}: ${JOB_CONCURRENCY} GpuJob reconciles at once`);
console.log(`cpu                    ${PROVIDER_NICE ? `provider clusters and agents at nice ${PROVIDER_NICE}; the hub cluster, hub, etcd and the bench at 0 (BENCH_PROVIDER_NICE)` : 'every process at the same priority (one machine shared equally)'}`);
console.log(`workload               ${JOBS} GpuJobs / pods of 1 GPU each, paced at ${RATE}/s, then ${BURST_JOBS} as a burst (${BURST_CONCURRENCY} creates in flight); created through the API (what kubectl apply sends), timed from the create call`);

const root = join(repoRoot, '.testbed', 'bench-e2e');
let testbed: Testbed | undefined;
let hub: HubProcess | undefined;
const agents: Record<string, AgentHandle> = {};

function jobBody(name: string): GpuJob {
  return {
    apiVersion: 'fedgpu.io/v1alpha1',
    kind: 'GpuJob',
    metadata: { name, namespace: NS },
    spec: {
      template: { metadata: { annotations: { [SIM_RUN_FOR_ANNOTATION]: RUN_FOR } }, spec: { containers: [{ name: 'main', image: 'example/train' }] } },
      gpusPerReplica: 1,
      gpu: { products: [H100] },
      budget: { maxPricePerGpuHour: '3' },
    },
  } as GpuJob;
}

function podBody(name: string): V1Pod {
  return {
    metadata: { name, namespace: 'baseline', annotations: { [SIM_RUN_FOR_ANNOTATION]: RUN_FOR } },
    spec: { containers: [{ name: 'main', image: 'example/train', resources: { limits: { [GPU_RESOURCE]: '1' } } }] },
  };
}

function printLatency(label: string, s: Summary, target?: boolean) {
  figure(label, `p50 ${ms(s.p50)}, p99 ${ms(s.p99)}, max ${ms(s.max)} (n=${s.n})`, target ? { text: 'p50 < 1 s, p99 < 3 s', met: s.n > 0 && s.p50 < 1_000 && s.p99 < 3_000 } : undefined);
}

async function main(tb: Testbed): Promise<void> {
  const hubCluster = tb.cluster('hub');
  const p1 = tb.cluster('p1');
  const custom = hubCluster.kubeConfig.makeApiClient(CustomObjectsApi);
  const p1Core = p1.kubeConfig.makeApiClient(CoreV1Api);

  // --- the federation: hub process, agents, and what the bench watches --------------------------
  const pki = await hubPki(join(tb.dir, 'pki'));
  hub = await startHubProcess(hubCluster, pki, join(tb.dir, 'hub'), HUB_ARGS, CPU_PROFILE ? [INSPECT_FLAG] : []);
  for (const p of providers) {
    agents[p.name] = await startAgent(p.name, tb.cluster(p.name), pki, hub.grpcAddress, { displayName: p.name, pricePerGpuHour: { [H100]: p.price } }, undefined, ['--simulated-latency', p.latency], CPU_PROFILE ? [INSPECT_FLAG] : []);
  }
  const providerName: Record<string, string> = {};
  const ready = new Map<string, { ready: boolean; at: number }>();
  const gpInformer = await watchObjects<GpuProvider>(hubCluster.kubeConfig, `/apis/fedgpu.io/v1alpha1/${GPUPROVIDER_PLURAL}`, listCustom(hubCluster.kubeConfig, GPUPROVIDER_PLURAL), (p, at) => {
    const isReady = readyStatus(p)?.status === 'True';
    const name = p.metadata.name!;
    if (ready.get(name)?.ready !== isReady) ready.set(name, { ready: isReady, at });
  });
  for (const p of providers) {
    const gp = await waitFor(`${p.name} Ready`, () => {
      const gp = gpInformer.list().find((x) => x.spec.wallet.toLowerCase() === agents[p.name]!.wallet.address.toLowerCase());
      return readyStatus(gp)?.status === 'True' && gp?.status?.idleGpus === p.nodes.count * p.nodes.gpusPerNode ? gp : undefined;
    }, { timeoutMs: 90_000, intervalMs: 250 });
    providerName[p.name] = gp.metadata.name!;
  }
  // The provider sites' processes at BENCH_PROVIDER_NICE: set again at each phase, so threads and
  // agents started since (an agent restarted after a failover trial) are at it too.
  const yieldProviderSites = () => {
    if (!PROVIDER_NICE) return;
    const pids = providers.flatMap((p) => [...tb.cluster(p.name).processes.map((x) => x.pid), agents[p.name]!.process.pid]);
    setNice(pids, PROVIDER_NICE);
  };
  yieldProviderSites();
  const clusterOf = (provider: string) => providers.find((p) => providerName[p.name] === provider)?.name;
  const breakdown = new CpuBreakdown(() => [
    { label: 'etcd', pid: tb.etcd.process.pid },
    ...[...tb.clusters.values()].flatMap((c) => c.processes.map((p) => ({ label: `${c.name} ${p.name.replace(/^kube-/, '')}`, pid: p.pid }))),
    { label: 'hub', pid: hub!.process.pid },
    ...Object.entries(agents).map(([name, a]) => ({ label: `${name} agent`, pid: a.process.pid })),
    { label: 'bench', pid: process.pid },
  ]);

  // Jobs: when each was created, first seen Scheduled, and first seen Running (per epoch).
  const created = new Map<string, number>();
  const scheduledAt = new Map<string, number>();
  const runningAt = new Map<string, Map<number, number>>();
  const jobInformer = await watchObjects<GpuJob>(hubCluster.kubeConfig, `/apis/${GROUP}/${VERSION}/namespaces/${NS}/${GPUJOB_PLURAL}`, listNamespacedCustom(hubCluster.kubeConfig, GPUJOB_PLURAL, NS), (j, at) => {
    const name = j.metadata.name!;
    if (j.status?.phase === 'Scheduled' && !scheduledAt.has(name)) scheduledAt.set(name, at);
    if (j.status?.phase === 'Running') {
      const epochs = runningAt.get(name) ?? new Map<number, number>();
      if (!epochs.has(j.status.currentEpoch ?? 0)) epochs.set(j.status.currentEpoch ?? 0, at);
      runningAt.set(name, epochs);
    }
  });
  // Baseline pods: created and first seen Running (and bound).
  const podCreated = new Map<string, number>();
  const podBound = new Map<string, number>();
  const podRunning = new Map<string, number>();
  const podInformer = await watchObjects<V1Pod>(p1.kubeConfig, '/api/v1/namespaces/baseline/pods', () => p1Core.listNamespacedPod({ namespace: 'baseline' }), (p, at) => {
    const name = p.metadata!.name!;
    if (p.spec?.nodeName && !podBound.has(name)) podBound.set(name, at);
    if (p.status?.phase === 'Running' && !podRunning.has(name)) podRunning.set(name, at);
  });
  const stopInformers = () => Promise.all([gpInformer.stop(), jobInformer.stop(), podInformer.stop()]);

  try {
    // --- 1. baseline -------------------------------------------------------------------------
    section(`baseline: ${JOBS} pods of 1 GPU created directly in p1 for its kube-scheduler`);
    const baseline = async (label: string, names: string[], create: (run: (name: string) => Promise<void>) => Promise<unknown>) => {
      const run = async (name: string) => {
        podCreated.set(name, nowMs());
        await retrying(() => p1Core.createNamespacedPod({ namespace: 'baseline', body: podBody(name) }));
      };
      yieldProviderSites();
      breakdown.start();
      const p1Requests = new RequestCounts(p1);
      await p1Requests.start();
      const start = nowMs();
      await create(run);
      const createWall = nowMs() - start;
      await waitFor(`${label} pods Running`, () => (names.every((n) => podRunning.has(n)) ? true : undefined), { timeoutMs: 120_000, intervalMs: 100 });
      const wall = Math.max(...names.map((n) => podRunning.get(n)!)) - start;
      const boundWall = Math.max(...names.map((n) => podBound.get(n)!)) - start;
      printLatency(`${label}: create → pod Running`, summarize(names.map((n) => podRunning.get(n)! - podCreated.get(n)!)));
      const bind = summarize(names.map((n) => podBound.get(n)! - podCreated.get(n)!));
      figure(`  create → bound by kube-scheduler`, `p50 ${ms(bind.p50)}, p99 ${ms(bind.p99)}`);
      figure(`  throughput`, `${(names.length / (wall / 1000)).toFixed(1)} pods/s Running (${names.length} in ${(wall / 1000).toFixed(1)} s); create → bound ${(names.length / (boundWall / 1000)).toFixed(1)} pods/s; the creates took ${(createWall / 1000).toFixed(1)} s`);
      throughputs.set(label, names.length / (boundWall / 1000));
      figure(`  CPU by process in the phase`, breakdown.line());
      figure(`  p1 apiserver requests per pod`, await p1Requests.line(names.length));
      const del = await p1.kubectl(['delete', 'pods', '--all', '-n', 'baseline', '--grace-period=0', '--force', '--wait=true', '--timeout=120s']);
      if (del.code !== 0) console.log(`  (cleanup: ${del.stderr.trim()})`);
      return summarize(names.map((n) => podRunning.get(n)! - podCreated.get(n)!));
    };
    const pacedNames = Array.from({ length: JOBS }, (_, i) => `paced-${i}`);
    const burstNames = Array.from({ length: BURST_JOBS }, (_, i) => `burst-${i}`);
    const throughputs = new Map<string, number>(); // baseline create → bound, per phase label
    const scheduledThroughputs = new Map<string, number>(); // federation create → Scheduled
    const basePaced = await baseline(`paced ${RATE}/s`, pacedNames, (run) => paced(JOBS, RATE, (i) => run(pacedNames[i]!)));
    const baseBurst = await baseline('burst', burstNames, (run) => mapLimit(burstNames, BURST_CONCURRENCY, run));

    // --- 2. the federation --------------------------------------------------------------------
    section(`federation: ${JOBS} GpuJobs of 1 GPU created in the hub apiserver`);
    const federated = async (label: string, names: string[], create: (run: (name: string) => Promise<void>) => Promise<unknown>) => {
      const run = async (name: string) => {
        created.set(name, nowMs());
        await retrying(() => custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: GPUJOB_PLURAL, namespace: NS, body: jobBody(name) }));
      };
      const r0 = await reconcileStats(hub!.metricsPort);
      const cpu0 = procSample(hub!.process.pid);
      yieldProviderSites();
      breakdown.start();
      const hubRequests = new RequestCounts(hubCluster);
      const p1Requests = new RequestCounts(p1);
      await Promise.all([hubRequests.start(), p1Requests.start()]);
      const profileDir = join(tb.dir, 'hub-profile', label.replace(/\W+/g, '-'));
      const profile = CPU_PROFILE && label === 'burst' ? await startCpuProfile(hub!.process.logPath, profileDir) : undefined;
      const agentProfile = CPU_PROFILE && label === 'burst' ? await startCpuProfile(agents.p1!.process.logPath, join(profileDir, 'p1-agent')) : undefined;
      const apiProfiles = APISERVER_PROFILE && label === 'burst'
        ? [hubCluster, p1].map((c) => apiserverCpuProfile(c, APISERVER_PROFILE, join(profileDir, `${c.name}-apiserver.pprof`)))
        : [];
      const start = nowMs();
      await create(run);
      const createWall = nowMs() - start;
      const runningOf = (n: string) => runningAt.get(n)?.get(1);
      await waitFor(`${label} GpuJobs Running`, () => (names.every((n) => runningOf(n) !== undefined) ? true : undefined), { timeoutMs: Number(process.env.BENCH_WAIT_MS ?? 180_000), intervalMs: 100 }).catch((err: unknown) => {
        const phases = new Map<string, number>();
        for (const n of names) {
          const phase = jobInformer.get(`${NS}/${n}`)?.status?.phase ?? '(none)';
          phases.set(phase, (phases.get(phase) ?? 0) + 1);
        }
        const stuck = names.map((n) => jobInformer.get(`${NS}/${n}`)).find((j) => j?.status?.phase !== 'Running');
        console.log(`  phases: ${[...phases.entries()].map(([p, n]) => `${p} ${n}`).join(', ')}; e.g. ${stuck?.metadata.name}: ${JSON.stringify(stuck?.status)}`);
        return Promise.all(providers.map(async (p) => {
          const pods = await tb.cluster(p.name).kubeConfig.makeApiClient(CoreV1Api).listPodForAllNamespaces({ labelSelector: 'app.kubernetes.io/managed-by=fedgpu-agent' });
          const notRunning = pods.items.filter((x) => x.status?.phase !== 'Running');
          console.log(`  ${p.name}: ${pods.items.length} pods, not Running: ${notRunning.slice(0, 10).map((x) => `${x.metadata?.name} ${x.status?.phase} ${x.spec?.nodeName} ${JSON.stringify(x.status?.conditions?.map((c) => c.type + '=' + c.status))}`).join('; ') || 'none'}`);
        })).then(() => { throw err; });
      });
      const wall = Math.max(...names.map((n) => runningOf(n)!)) - start;
      const latency = summarize(names.map((n) => runningOf(n)! - created.get(n)!));
      printLatency(`${label}: create → GpuJob Running`, latency, true);
      const sched = summarize(names.map((n) => (scheduledAt.get(n) ?? NaN) - created.get(n)!).filter(Number.isFinite));
      const run2 = summarize(names.map((n) => runningOf(n)! - (scheduledAt.get(n) ?? NaN)).filter(Number.isFinite));
      figure(`  create → Scheduled (hub decides, writes status)`, `p50 ${ms(sched.p50)}, p99 ${ms(sched.p99)} (n=${sched.n}; a job seen first as Running is left out)`);
      figure(`  Scheduled → Running (agent, pod bound, kwok, report, write)`, `p50 ${ms(run2.p50)}, p99 ${ms(run2.p99)}`);
      const wallOf = (t: number) => performance.timeOrigin + t;
      const legs = stageTimes(hub!.process.logPath, Object.values(agents).map((a) => a.process.logPath), NS,
        new Map(names.map((n) => [n, wallOf(created.get(n)!)])), new Map(names.map((n) => [n, wallOf(runningOf(n)!)])));
      figure(`  legs, p50 (from the hub's and agents' logs)`, `create → Assign sent ${ms(legs.hub.p50)}; → agent got it ${ms(legs.wire.p50)}; → pod created ${ms(legs.agent.p50)}; → Running seen ${ms(legs.running.p50)} (n=${legs.hub.n})`);
      figure(`  inside the hub's leg, p50`, `the status write before the Assign ${ms(legs.hubWrite.p50)}`);
      figure(`  inside the agent's leg, p50`, `tenant namespace ready ${ms(legs.namespace.p50)}; pod create when admitted at once ${ms(legs.pod.p50)}; pods the quota admission refused at first (stale bound) ${legs.staleQuotaRefusals}`);
      const scheduledWall = Math.max(...names.map((n) => scheduledAt.get(n) ?? runningOf(n)!)) - start;
      figure(`  throughput`, `${(names.length / (wall / 1000)).toFixed(1)} jobs/s Running (${names.length} in ${(wall / 1000).toFixed(1)} s); create → Scheduled ${(names.length / (scheduledWall / 1000)).toFixed(1)} jobs/s; the creates took ${(createWall / 1000).toFixed(1)} s`);
      scheduledThroughputs.set(label, names.length / (scheduledWall / 1000));
      const r1 = await reconcileStats(hub!.metricsPort);
      const cpu1 = procSample(hub!.process.pid);
      const reconciles = r1.count - r0.count;
      figure(`  hub GpuJob reconciles in the phase`, `${reconciles} (${(reconciles / names.length).toFixed(1)} per job), ${ms(((r1.seconds - r0.seconds) / reconciles) * 1000, 1)} each on average, up to ${JOB_CONCURRENCY} at once`);
      if (cpu0 && cpu1) figure(`  hub CPU in the phase`, `${cpuPercent(cpu0, cpu1).toFixed(0)}% of one core`);
      figure(`  CPU by process in the phase`, breakdown.line());
      figure(`  hub apiserver requests per job`, await hubRequests.line(names.length));
      figure(`  p1 apiserver requests per job`, await p1Requests.line(names.length, 16));
      if (profile) {
        await profile.stop();
        printCpuTop('  hub over the burst', profileDir);
      }
      if (agentProfile) {
        await agentProfile.stop();
        printCpuTop('  p1 agent over the burst', join(profileDir, 'p1-agent'));
      }
      for (const file of await Promise.all(apiProfiles)) console.log(`  apiserver CPU profile: go tool pprof -top ${file}`);
      const spread = new Map<string, number>();
      for (const n of names) {
        const job = jobInformer.get(`${NS}/${n}`);
        const c = clusterOf(job?.status?.placement?.provider ?? '') ?? '?';
        spread.set(c, (spread.get(c) ?? 0) + 1);
      }
      figure(`  placed on`, [...spread.entries()].sort().map(([c, n]) => `${c} ${n}`).join(', '));
      return latency;
    };
    const fedPaced = await federated(`paced ${RATE}/s`, pacedNames, (run) => paced(JOBS, RATE, (i) => run(pacedNames[i]!)));
    const fedBurst = await federated('burst', burstNames, (run) => mapLimit(burstNames, BURST_CONCURRENCY, run));

    section('federation vs. baseline');
    figure('paced: GpuJob / pod p50, p99', `${(fedPaced.p50 / basePaced.p50).toFixed(1)}× / ${(fedPaced.p99 / basePaced.p99).toFixed(1)}× (${ms(fedPaced.p50)} vs ${ms(basePaced.p50)}, ${ms(fedPaced.p99)} vs ${ms(basePaced.p99)})`);
    figure('burst: GpuJob / pod p50, p99', `${(fedBurst.p50 / baseBurst.p50).toFixed(1)}× / ${(fedBurst.p99 / baseBurst.p99).toFixed(1)}× (${ms(fedBurst.p50)} vs ${ms(baseBurst.p50)}, ${ms(fedBurst.p99)} vs ${ms(baseBurst.p99)})`, { text: 'p50 within 3×', met: fedBurst.p50 <= 3 * baseBurst.p50 });
    figure('paced: p50 within 3× (issue 15)', `${(fedPaced.p50 / basePaced.p50).toFixed(1)}×`, { text: '≤ 3×', met: fedPaced.p50 <= 3 * basePaced.p50 });
    const fedRate = scheduledThroughputs.get('burst') ?? NaN;
    const podRate = throughputs.get('burst') ?? NaN;
    figure(`burst of ${BURST_JOBS}: create → Scheduled vs create → bound`, `${fedRate.toFixed(1)} jobs/s vs ${podRate.toFixed(1)} pods/s = ${(fedRate / podRate).toFixed(2)}×`, { text: '≥ 1.0×', met: fedRate >= podRate });
    const hubNow = procSample(hub.process.pid);
    if (hubNow) figure(`hub process after ${JOBS + BURST_JOBS} jobs`, `RSS ${mib(hubNow.rssBytes)}, CPU ${hubNow.cpuSeconds.toFixed(1)} s in total; ${await heapLine(hub.metricsPort)}`);

    // Steady state: nothing changes but heartbeats (every 500 ms per agent). Before issue 15 each was
    // a GpuProvider status write; now liveness stays in the hub's memory and status is written once a
    // minute at rest. Counted: GpuProvider resourceVersions seen by a watch over the window.
    const writes = new Map<string, Set<string>>();
    const offWrites = gpInformer.on('update', (p) => {
      const seen = writes.get(p.metadata.name!) ?? new Set<string>();
      seen.add(p.metadata.resourceVersion!);
      writes.set(p.metadata.name!, seen);
    });
    const q0 = await reconcileStats(hub.metricsPort);
    const c0 = procSample(hub.process.pid);
    await sleep(REST_SECONDS * 1000);
    const q1 = await reconcileStats(hub.metricsPort);
    const c1 = procSample(hub.process.pid);
    offWrites();
    figure(`steady state, ${JOBS + BURST_JOBS} jobs Running, ${REST_SECONDS} s`, `${((q1.count - q0.count) / REST_SECONDS).toFixed(1)} GpuJob reconciles/s (nothing to do), hub CPU ${c0 && c1 ? cpuPercent(c0, c1).toFixed(0) : '?'}% of one core`);
    const perProvider = providers.map((p) => writes.get(providerName[p.name]!)?.size ?? 0);
    const perMinute = Math.max(...perProvider) / (REST_SECONDS / 60);
    figure(`  GpuProvider writes at rest (heartbeat 500 ms)`, `${perProvider.join(', ')} in ${REST_SECONDS} s (p1, p2, p3): at most ${perMinute.toFixed(1)} per provider per minute`, { text: '≤ 1 per provider per minute', met: perMinute <= 1 });

    // Their deletion (the hub cancels each attempt; agents delete the pods) goes on during the trials.
    const del = await hubCluster.kubectl(['delete', 'gpujobs', '--all', '-n', NS, '--wait=false']);
    if (del.code) console.log(`(deleting the ${JOBS + BURST_JOBS} GpuJobs: ${del.stderr.trim()})`);

    // --- 3. provider loss ---------------------------------------------------------------------
    section(`provider loss: SIGKILL the agent running a job → the job Running elsewhere (providerLostAfter ${DEFAULT_PROVIDER_LOST_AFTER_MS / 1000} s, the default)`);
    const total: number[] = [];
    const detect: number[] = [];
    const replace: number[] = [];
    for (let trial = 0; trial < FAILOVER_TRIALS; trial++) {
      const name = `failover-${trial}`;
      created.set(name, nowMs());
      await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: GPUJOB_PLURAL, namespace: NS, body: jobBody(name) });
      // The first epoch that runs (an attempt the provider refused would have been replaced).
      const firstEpoch = await waitFor(`${name} Running`, () => { const e = [...(runningAt.get(name)?.keys() ?? [])]; return e.length ? Math.min(...e) : undefined; }, { timeoutMs: 60_000, intervalMs: 100 });
      const provider = jobInformer.get(`${NS}/${name}`)!.status!.placement!.provider!;
      const victim = clusterOf(provider)!;
      const agent = agents[victim]!;
      await sleep(Math.random() * 1_000); // not in step with the heartbeats
      const killedAt = nowMs();
      process.kill(agent.process.pid, 'SIGKILL');
      await agent.process.exited;
      const movedAt = await waitFor(`${name} Running elsewhere`, () => [...(runningAt.get(name)?.entries() ?? [])].find(([epoch]) => epoch > firstEpoch)?.[1], { timeoutMs: 90_000, intervalMs: 100 });
      const lostAt = ready.get(provider)?.ready === false ? ready.get(provider)!.at : NaN;
      const job = jobInformer.get(`${NS}/${name}`)!;
      total.push(movedAt - killedAt);
      detect.push(lostAt - killedAt);
      replace.push(movedAt - lostAt);
      figure(`  trial ${trial + 1}: ${victim} lost, job moved to ${clusterOf(job.status?.placement?.provider ?? '') ?? '?'}`, `${ms(movedAt - killedAt)} (Ready=False after ${ms(lostAt - killedAt)}, Running elsewhere ${ms(movedAt - lostAt)} later)`);
      // The provider comes back (its zombie pod is fenced); the next trial starts from a full market.
      await agent.restart();
      yieldProviderSites();
      await waitFor(`${victim} Ready again`, () => (ready.get(provider)?.ready ? true : undefined), { timeoutMs: 60_000, intervalMs: 200 });
      await hubCluster.kubectl(['delete', 'gpujob', name, '-n', NS, '--wait=true', '--timeout=60s']);
    }
    const s = summarize(total);
    figure(`provider loss → job Running elsewhere (n=${s.n})`, `p50 ${ms(s.p50)}, max ${ms(s.max)}`, { text: '≤ 30 s', met: s.n > 0 && s.max <= 30_000 });
    const d = summarize(detect);
    const r = summarize(replace);
    figure('  of which: declared lost (providerLostAfter + check)', `p50 ${ms(d.p50)}, max ${ms(d.max)}`);
    figure('  of which: lost → Running elsewhere', `p50 ${ms(r.p50)}, max ${ms(r.max)}`);
  } finally {
    await stopInformers();
  }
}

reapStaleRuns(root);
const dir = join(root, String(process.pid));
const started = nowMs();
try {
  testbed = await startTestbed(join(dir, 'clusters'), [
    { name: 'hub', scheduler: false, controllerManager: false, ...(APISERVER_PROFILE ? { apiserverArgs: ['--profiling=true'] } : {}) },
    ...providers.map((p) => ({ name: p.name, gpuNodes: [p.nodes], ...(APISERVER_PROFILE ? { apiserverArgs: ['--profiling=true'] } : {}) })),
  ]);
  await installCrds(testbed.cluster('hub'));
  await testbed.cluster('hub').kubectl(['create', 'namespace', NS]);
  const p1: Cluster = testbed.cluster('p1');
  await p1.kubectl(['create', 'namespace', 'baseline']);
  await waitFor('baseline ServiceAccount', async () =>
    (await p1.kubeConfig.makeApiClient(CoreV1Api).readNamespacedServiceAccount({ name: 'default', namespace: 'baseline' })) ? true : undefined,
  { timeoutMs: 60_000 });
  console.log(`(test bed: ${providers.length + 1} clusters up in ${((nowMs() - started) / 1000).toFixed(1)} s; ${CORES} cores)`);
  await main(testbed);
} catch (err) {
  console.log(`bench stopped early: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  await Promise.all(Object.values(agents).map((a) => a.process.stop()));
  await hub?.process.stop();
  await testbed?.stop();
}
console.log(`\n(total ${process.uptime().toFixed(0)} s; ${loadLine()})`);
process.exit(0);
