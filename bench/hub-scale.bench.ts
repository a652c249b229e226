// Issue 15: one hub, 1,000 providers, through the protocol. 1,000 simulated agents, each an
// in-process gRPC client over its own mutual-TLS channel with a real wallet proof (EIP-191 over the
// hub's challenge), 10 nodes × 8 H100 each, heartbeats at the hub's default interval (2 s) and
// answers to pings and bandwidth probes, like the real agent's stream client. On Assign an agent
// reports the attempt Running and, 100 ms later, an inventory with those GPUs busy (the real agent's
// debounce). Against them the compiled hub (`fedgpu hub` as a process, esbuild output, as the image
// runs it) on a real kube-apiserver with its real registry, then 10,000 GpuJobs of 1 GPU.
// Prints: hub CPU at rest (% of one core), GpuProvider writes at rest per provider per minute,
// placement throughput (create → Scheduled, → Running), compiled hub RSS and live heap.
// Shortcuts: the agents share one client certificate (identity is the wallet proof, as in
// test/integration/grpc-hub-registry.test.ts); they run in this bench process, which competes with
// the hub and its apiserver for the same 2 cores. A registration the hub refuses or drops is retried
// with the real agent's backoff, and a registered stream the hub ends is reconnected, as the real
// agent does; both are counted by reason and printed, so a loaded machine does not end the run
// and a hub that sheds agents still shows.
// The hub runs with the NODE_OPTIONS the chart gives it for its default memory limit.
// Run: tsx bench/hub-scale.bench.ts [agents=1000] [jobs=10000] [restSeconds=60]
//   BENCH_REGISTER_CONCURRENCY=16: registrations in flight; BENCH_CPU_PROFILE=1: the hub's CPU
//   profile while agents register, while it places and at rest with the jobs running; BENCH_HEAP_PROFILE=1: its heap snapshot at
//   the end (largest constructors; the .heapsnapshot stays under .testbed/bench-hub-scale/<pid>/).
//   BENCH_HUB_LD_PRELOAD=<path to a malloc .so> and BENCH_HUB_MALLOC_CONF=<jemalloc options>: try
//   another allocator in the hub alone (docs/benchmarks.md, "Another allocator, a smaller V8 heap").
//   BENCH_PROBE_ECHO=1: agents echo the bandwidth probe whole, as agents did before its digest.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { credentials, type ClientDuplexStream } from '@grpc/grpc-js';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { Wallet } from 'ethers';
import { GPUJOB_PLURAL, GPUPROVIDER_PLURAL, GROUP, VERSION, type GpuJob, type GpuProvider } from '../operator/src/api/types.js';
import { AgentMessage, AttemptPhase, HubMessage, type Inventory, MarketplaceClient, MarketplaceService } from '../operator/src/gen/proto/fedgpu/v1/market.js';
import { signChallenge } from '../operator/src/protocol/wallet-proof.js';
import { backoffDelay } from '../operator/src/protocol/reconnect.js';
import { hubPki, installCrds, readyStatus, type HubProcess } from '../operator/src/testbed/federation.js';
import { reapStaleRuns } from '../operator/src/testbed/processes.js';
import { startTestbed, type Testbed } from '../operator/src/testbed/testbed.js';
import { repoRoot } from '../operator/src/testbed/tools.js';
import { waitFor } from '../operator/src/testbed/wait.js';
import { issueCert } from '../operator/src/tls/certs.js';
import {
  chartGlibcTunables,
  chartNodeFlags,
  compileOperator,
  hubAllocatorEnv,
  cpuPercent,
  figure,
  heapLine,
  heapSnapshotFlags,
  INSPECT_FLAG,
  listCustom,
  listNamespacedCustom,
  liveHeap,
  loadLine,
  memoryMap,
  memoryMapLine,
  machineLine,
  mapLimit,
  mib,
  ms,
  nowMs,
  printCpuTop,
  printHeapTop,
  benchProbeAnswer,
  benchProbeAnswerKind,
  procSample,
  ProcSampler,
  reconcileStats,
  retrying,
  section,
  sleep,
  startCompiledHubProcess,
  startCpuProfile,
  summarize,
  watchObjects,
} from './support.js';

const AGENTS = Math.max(1, Number(process.argv[2] ?? 0) || 1_000);
const JOBS = Math.max(1, Number(process.argv[3] ?? 0) || 10_000);
const REST_SECONDS = Math.max(10, Number(process.argv[4] ?? 0) || 60);
const NODES_PER_AGENT = 10;
const GPUS_PER_NODE = 8;
const H100 = 'NVIDIA-H100-80GB-HBM3';
const NS = 'scale';
const TARGET_CPU = 50;
/** Registrations in flight at once (a fleet coming up, or coming back after a hub restart). */
const REGISTER_CONCURRENCY = Math.max(1, Number(process.env.BENCH_REGISTER_CONCURRENCY ?? 0) || 16);
const CPU_PROFILE = Boolean(process.env.BENCH_CPU_PROFILE);
const HEAP_PROFILE = Boolean(process.env.BENCH_HEAP_PROFILE);
const TARGET_RSS = 200 * 2 ** 20;

console.log('== hub at market scale (issue 15)');
console.log(machineLine());
console.log(`setup                  compiled hub process; ${AGENTS} simulated agents over gRPC/mTLS with wallet proofs, ${NODES_PER_AGENT} nodes × ${GPUS_PER_NODE} H100 each; ${JOBS} GpuJobs of 1 GPU; agents answer the bandwidth probe ${benchProbeAnswerKind}`);

/** What went wrong while the agents registered and ran: counted and printed, never hidden. */
const trouble = { registrationRetries: new Map<string, number>(), streamsLost: new Map<string, number>() };
const count = (m: Map<string, number>, reason: string) => m.set(reason, (m.get(reason) ?? 0) + 1);
const counted = (m: Map<string, number>) => (m.size ? [...m.entries()].map(([r, n]) => `${n} ${r}`).join(', ') : 'none');
/** Milliseconds from opening the stream to Registered, per successful registration. */
const registrationMs: number[] = [];
/** Attempts per agent before the bench gives up (the real agent retries forever with backoff). */
const MAX_REGISTRATION_ATTEMPTS = 8;

/** One simulated agent: the protocol side of agent/stream/client.ts, without a cluster. */
class SimAgent {
  readonly wallet = new Wallet(`0x${randomBytes(32).toString('hex')}`);
  providerName = '';
  private call?: ClientDuplexStream<Uint8Array, HubMessage>;
  private seq = 0;
  private heartbeat?: NodeJS.Timeout;
  private publish?: NodeJS.Timeout;
  private reconnect?: NodeJS.Timeout;
  private closed = false;
  private readonly busy = new Map<string, number>(); // node → GPUs taken by assignments
  heartbeats = 0;

  constructor(private readonly client: MarketplaceClient, private readonly index: number) {}

  /**
   * Registers, retrying a refused or broken registration with the real agent's jittered backoff
   * (protocol/reconnect.ts); every retry is counted by reason and printed with the figures.
   */
  async connect(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.connectOnce();
        return;
      } catch (err) {
        const reason = err instanceof RegistrationFailed ? err.reason : err instanceof Error ? err.message : String(err);
        count(trouble.registrationRetries, reason);
        if (attempt + 1 >= MAX_REGISTRATION_ATTEMPTS) throw new Error(`agent ${this.index}: no registration in ${MAX_REGISTRATION_ATTEMPTS} attempts (last: ${reason})`);
        await sleep(backoffDelay(attempt));
      }
    }
  }

  private connectOnce(): Promise<void> {
    this.call?.cancel();
    this.seq = 0;
    const call = this.client.makeBidiStreamRequest(MarketplaceService.connect.path, (b: Uint8Array) => Buffer.from(b), (b: Buffer) => HubMessage.decode(b));
    this.call = call;
    const opened = nowMs();
    let registered = false;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new RegistrationFailed('no Registered in 60 s')), 60_000);
      const lost = (reason: string) => {
        if (call !== this.call || this.closed) return;
        if (!registered) {
          clearTimeout(timer);
          reject(new RegistrationFailed(reason));
          return;
        }
        // A registered stream ended under the agent: count it, and come back as the real agent does.
        count(trouble.streamsLost, reason);
        registered = false;
        clearInterval(this.heartbeat);
        if (!this.closed) this.reconnect = setTimeout(() => void this.connect().catch(() => undefined), backoffDelay(0));
      };
      call.on('error', (err: { details?: string; message?: string }) => lost(`stream error: ${(err.details ?? err.message ?? '').split(':')[0]}`));
      call.on('end', () => lost('stream ended'));
      call.on('data', (m: HubMessage) => {
        const body = m.body;
        if (!body) return;
        switch (body.$case) {
          case 'challenge':
            this.send({ $case: 'hello', value: { walletAddress: this.wallet.address, agentVersion: 'bench', protocolVersion: 1 } });
            void signChallenge(this.wallet, { nonce: body.value.nonce, audience: body.value.audience, expiresAtUnixMs: body.value.expiresAtUnixMs }, this.wallet.address).then((proof) =>
              this.send({ $case: 'registerProof', value: proof }),
            );
            break;
          case 'registered':
            clearTimeout(timer);
            registered = true;
            registrationMs.push(nowMs() - opened);
            this.providerName = body.value.providerName;
            this.send({ $case: 'inventory', value: this.inventory() });
            clearInterval(this.heartbeat);
            this.heartbeat = setInterval(() => {
              this.heartbeats++;
              this.send({ $case: 'heartbeat', value: { sentAtUnixMs: Date.now(), pongFor: 0, bandwidthProbeResults: [] } });
            }, body.value.heartbeatIntervalMs || 2_000);
            resolve();
            break;
          case 'ping':
            this.send({ $case: 'heartbeat', value: { sentAtUnixMs: Date.now(), pongFor: body.value.id, bandwidthProbeResults: [] } });
            break;
          case 'bandwidthProbe':
            this.send({ $case: 'bandwidthProbeData', value: benchProbeAnswer(body.value) });
            break;
          case 'assign': {
            const a = body.value;
            for (const node of a.nodeNames) this.busy.set(node, (this.busy.get(node) ?? 0) + a.gpusPerReplica);
            this.send({ $case: 'attemptStatus', value: { jobUid: a.jobUid, epoch: a.epoch, phase: AttemptPhase.ATTEMPT_PHASE_RUNNING, gpuSeconds: 0, exitCode: 0, reason: '', message: '', podStates: [] } });
            this.publish ??= setTimeout(() => {
              this.publish = undefined;
              this.send({ $case: 'inventory', value: this.inventory() });
            }, 100);
            break;
          }
          case 'error':
            lost(`hub error ${body.value.reason}`);
            break;
          default:
            break;
        }
      });
    });
  }

  private inventory(): Inventory {
    const nodes = Array.from({ length: NODES_PER_AGENT }, (_, n) => {
      const name = `a${this.index}-n${n}`;
      return { name, totalGpus: GPUS_PER_NODE, idleGpus: Math.max(0, GPUS_PER_NODE - (this.busy.get(name) ?? 0)), ready: true, cordoned: false };
    });
    const idle = nodes.reduce((s, n) => s + n.idleGpus, 0);
    return {
      pools: [{ gpuProduct: H100, memoryMib: 81559, cudaDriverMajor: 12, nodes, total: NODES_PER_AGENT * GPUS_PER_NODE, allocatable: NODES_PER_AGENT * GPUS_PER_NODE, idle, pricePerGpuHour: (2 + (this.index % 50) / 100).toFixed(2), breakEvenPricePerGpuHour: '1.00', offered: true, notOfferedReason: 0, runtimeClassName: '', cpuMilliPerGpu: 0, memoryMibPerGpu: 0 }],
      unisolatedNamespaces: [],
    };
  }

  private send(body: NonNullable<AgentMessage['body']>): void {
    this.call?.write(AgentMessage.encode({ seq: ++this.seq, body }).finish());
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.reconnect);
    clearInterval(this.heartbeat);
    clearTimeout(this.publish);
    this.call?.end();
    this.client.close();
  }
}

class RegistrationFailed extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

function jobBody(name: string): GpuJob {
  return {
    apiVersion: 'fedgpu.io/v1alpha1',
    kind: 'GpuJob',
    metadata: { name, namespace: NS },
    spec: { template: { spec: { containers: [{ name: 'main', image: 'example/train' }] } }, gpusPerReplica: 1, gpu: { products: [H100] }, budget: { maxPricePerGpuHour: '3' } },
  } as GpuJob;
}

async function atRest(label: string, hub: HubProcess, providers: { on: (e: 'update', h: (p: GpuProvider) => void) => () => void }, profileDir?: string): Promise<void> {
  const writes = new Map<string, Set<string>>();
  const off = providers.on('update', (p) => {
    const seen = writes.get(p.metadata.name!) ?? new Set<string>();
    seen.add(p.metadata.resourceVersion!);
    writes.set(p.metadata.name!, seen);
  });
  const r0 = await reconcileStats(hub.metricsPort);
  const c0 = procSample(hub.process.pid);
  const load0 = loadLine();
  const profiling = CPU_PROFILE && profileDir ? await startCpuProfile(hub.process.logPath, profileDir) : undefined;
  await sleep(REST_SECONDS * 1000);
  const c1 = procSample(hub.process.pid);
  if (profiling && profileDir) {
    await profiling.stop();
    printCpuTop(`[${label}, at rest] hub`, profileDir);
  }
  const r1 = await reconcileStats(hub.metricsPort);
  off();
  const cpu = c0 && c1 ? cpuPercent(c0, c1) : NaN;
  const total = [...writes.values()].reduce((s, v) => s + v.size, 0);
  const max = Math.max(0, ...[...writes.values()].map((v) => v.size));
  const perMinute = total / AGENTS / (REST_SECONDS / 60);
  figure(`[${label}] hub CPU at rest, ${REST_SECONDS} s`, `${cpu.toFixed(1)}% of one core; ${((r1.count - r0.count) / REST_SECONDS).toFixed(1)} GpuJob reconciles/s (${load0} → ${loadLine()})`, { text: `≤ ${TARGET_CPU}%`, met: cpu <= TARGET_CPU });
  figure(`[${label}] GpuProvider writes at rest`, `${total} by ${writes.size} of ${AGENTS} providers in ${REST_SECONDS} s: ${perMinute.toFixed(2)} per provider per minute on average, at most ${(max / (REST_SECONDS / 60)).toFixed(1)} for one`, { text: '≤ 1 per provider per minute', met: max / (REST_SECONDS / 60) <= 1 });
  if (c1) figure(`[${label}] hub RSS`, `${mib(c1.rssBytes)} (high-water ${mib(c1.hwmBytes)}); ${await heapLine(hub.metricsPort)}`, { text: '≤ 200 MiB', met: c1.rssBytes <= TARGET_RSS });
  const map = await memoryMap(hub.process.pid, hub.process.logPath);
  if (map) figure(`[${label}] hub memory by kind`, memoryMapLine(map));
}

async function main(tb: Testbed): Promise<void> {
  const hubCluster = tb.cluster('hub');
  const pki = await hubPki(join(tb.dir, 'pki'));
  const clientCert = await issueCert(pki.ca, { commonName: 'bench-agents', usages: ['client'] });
  const mainJs = compileOperator();
  const hubDir = join(tb.dir, 'hub');
  const nodeFlags = chartNodeFlags('hub');
  const tunables = chartGlibcTunables('hub');
  console.log(`hub node flags          ${nodeFlags.join(' ')}${tunables ? `; GLIBC_TUNABLES=${tunables}` : ''} (the chart's NODE_OPTIONS and env for its default hub memory limit, values.yaml)`);
  // One client certificate for every simulated agent (as the figures before 2026-12-02 were taken):
  // the hub is told not to bind certificates to wallets.
  const hub = await startCompiledHubProcess(mainJs, hubCluster, pki, hubDir, ['--certificate-names-wallet=false'], [...nodeFlags, INSPECT_FLAG, ...(HEAP_PROFILE ? heapSnapshotFlags(hubDir) : [])], hubAllocatorEnv(tunables));
  const profileDir = join(tb.dir, 'profiles');
  const sampler = new ProcSampler(hub.process.pid, 1_000);
  const providers = await watchObjects<GpuProvider>(hubCluster.kubeConfig, `/apis/${GROUP}/${VERSION}/${GPUPROVIDER_PLURAL}`, listCustom(hubCluster.kubeConfig, GPUPROVIDER_PLURAL), () => undefined);
  const scheduledAt = new Map<string, number>();
  const runningAt = new Map<string, number>();
  const jobs = await watchObjects<GpuJob>(hubCluster.kubeConfig, `/apis/${GROUP}/${VERSION}/namespaces/${NS}/${GPUJOB_PLURAL}`, listNamespacedCustom(hubCluster.kubeConfig, GPUJOB_PLURAL, NS), (j, at) => {
    const name = j.metadata.name!;
    if ((j.status?.phase === 'Scheduled' || j.status?.phase === 'Running') && !scheduledAt.has(name)) scheduledAt.set(name, at);
    if (j.status?.phase === 'Running' && !runningAt.has(name)) runningAt.set(name, at);
  });
  const agents: SimAgent[] = [];
  try {
    section(`${AGENTS} agents connect`);
    const [host, port] = hub.grpcAddress.split(':');
    const creds = () => credentials.createSsl(Buffer.from(pki.ca.certPem), Buffer.from(clientCert.keyPem), Buffer.from(clientCert.certPem));
    const t0 = nowMs();
    const registering = CPU_PROFILE ? await startCpuProfile(hub.process.logPath, profileDir) : undefined;
    await mapLimit(Array.from({ length: AGENTS }, (_, i) => i), REGISTER_CONCURRENCY, async (i) => {
      const agent = new SimAgent(new MarketplaceClient(`${host}:${port}`, creds(), { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' }), i);
      agents.push(agent);
      await agent.connect();
    });
    figure('agents registered (wallet proof, own mTLS channel each)', `${AGENTS} in ${((nowMs() - t0) / 1000).toFixed(1)} s, ${REGISTER_CONCURRENCY} at a time`);
    const reg = summarize(registrationMs);
    figure('  stream open → Registered', `p50 ${ms(reg.p50)}, p99 ${ms(reg.p99)}, max ${ms(reg.max)}; retries: ${counted(trouble.registrationRetries)}`);
    if (registering) {
      await registering.stop();
      printCpuTop('[registration] hub', profileDir);
    }
    const names = new Set(agents.map((a) => a.providerName));
    await waitFor('every provider Ready with its pools', () => {
      let n = 0;
      for (const p of providers.list()) if (names.has(p.metadata.name!) && readyStatus(p)?.status === 'True' && p.status?.idleGpus === NODES_PER_AGENT * GPUS_PER_NODE) n++;
      return n === AGENTS ? true : undefined;
    }, { timeoutMs: 600_000, intervalMs: 500 });
    figure('every GpuProvider Ready with its pools', `${((nowMs() - t0) / 1000).toFixed(1)} s after the first connect`);

    section(`at rest, ${AGENTS} agents, no jobs`);
    await atRest('no jobs', hub, providers);

    section(`${JOBS} GpuJobs of 1 GPU created 12 at a time`);
    const created = new Map<string, number>();
    const jobNames = Array.from({ length: JOBS }, (_, i) => `job-${i}`);
    const custom = hubCluster.kubeConfig.makeApiClient(CustomObjectsApi);
    const r0 = await reconcileStats(hub.metricsPort);
    const c0 = procSample(hub.process.pid);
    const placing = CPU_PROFILE ? await startCpuProfile(hub.process.logPath, profileDir) : undefined;
    const start = nowMs();
    let lastProgress = start;
    const createDone = mapLimit(jobNames, 12, async (name) => {
      created.set(name, nowMs());
      await retrying(() => custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: GPUJOB_PLURAL, namespace: NS, body: jobBody(name) }));
    }).then(() => nowMs());
    await waitFor('every job Scheduled', () => {
      if (nowMs() - lastProgress > 15_000) {
        lastProgress = nowMs();
        console.log(`  ${((nowMs() - start) / 1000).toFixed(0)} s: ${created.size} created, ${scheduledAt.size} scheduled, ${runningAt.size} running; hub RSS ${mib(procSample(hub.process.pid)?.rssBytes ?? 0)}; ${loadLine()}`);
      }
      return scheduledAt.size >= JOBS ? true : undefined;
    }, { timeoutMs: Number(process.env.BENCH_WAIT_MS ?? 1_500_000), intervalMs: 250 });
    const createdAllAt = await createDone;
    const scheduledWall = Math.max(...scheduledAt.values()) - start;
    const c1 = procSample(hub.process.pid);
    const r1 = await reconcileStats(hub.metricsPort);
    if (placing) {
      await placing.stop();
      printCpuTop('[placement] hub', profileDir);
    }
    figure('placement: create → Scheduled', `${JOBS} in ${(scheduledWall / 1000).toFixed(1)} s = ${(JOBS / (scheduledWall / 1000)).toFixed(1)} jobs/s (creates took ${((createdAllAt - start) / 1000).toFixed(1)} s = ${(JOBS / ((createdAllAt - start) / 1000)).toFixed(1)}/s)`);
    const lag = [...scheduledAt.entries()].map(([n, at]) => at - created.get(n)!).sort((a, b) => a - b);
    figure('  create → Scheduled per job', `p50 ${lag[Math.floor(lag.length / 2)]!.toFixed(0)} ms, p99 ${lag[Math.floor(lag.length * 0.99)]!.toFixed(0)} ms`);
    if (c0 && c1) figure('  hub CPU while placing', `${cpuPercent(c0, c1).toFixed(0)}% of one core; ${r1.count - r0.count} reconciles, ${(((r1.seconds - r0.seconds) / Math.max(1, r1.count - r0.count)) * 1000).toFixed(1)} ms each`);
    await waitFor('every job Running', () => (runningAt.size >= JOBS ? true : undefined), { timeoutMs: 600_000, intervalMs: 500 }).catch(() => undefined);
    figure('  create → Running (agents report at once)', `${runningAt.size} of ${JOBS} Running after ${((Math.max(...runningAt.values()) - start) / 1000).toFixed(1)} s`);
    figure('  hub RSS peak while placing', mib(sampler.peakRss));

    // The hub records two Events per job (Scheduled, Running) a few at a time, behind its status
    // writes: what is left of them after the last job runs is the burst's work, not rest.
    const core = hubCluster.kubeConfig.makeApiClient(CoreV1Api);
    const eventCount = async () => {
      const page = await core.listNamespacedEvent({ namespace: NS, limit: 1 });
      return page.items.length + (page.metadata?.remainingItemCount ?? 0);
    };
    const drainStart = nowMs();
    const drained = await waitFor('the hub\'s Events of the jobs written', async () => ((await eventCount()) >= 2 * JOBS ? true : undefined), { timeoutMs: 600_000, intervalMs: 1_000 }).then(() => true, () => false);
    figure('  the jobs\' Events written (2 per job)', `${drained ? '' : 'not all '}${(await eventCount())} after ${((nowMs() - drainStart) / 1000).toFixed(1)} s more`);

    section(`at rest, ${AGENTS} agents, ${JOBS} jobs Running`);
    await atRest(`${JOBS} jobs`, hub, providers, profileDir);
    const live = await liveHeap(hub.process.logPath);
    const gc = procSample(hub.process.pid);
    if (live && gc) figure('after a full GC', `live V8 heap ${mib(live.usedBytes)}, RSS ${mib(gc.rssBytes)}`, { text: '≤ 200 MiB', met: gc.rssBytes <= TARGET_RSS });
    const map = await memoryMap(hub.process.pid, hub.process.logPath);
    if (map) figure('  by kind, after GC', memoryMapLine(map));
    figure('heartbeats sent by the agents', `${agents.reduce((s, a) => s + a.heartbeats, 0)}`);
    figure('registered streams the hub ended', counted(trouble.streamsLost));
    if (HEAP_PROFILE) await printHeapTop('[compiled hub]', hub.process.pid, hubDir);
  } finally {
    sampler.stop();
    for (const a of agents) a.close();
    await Promise.all([providers.stop(), jobs.stop()]);
    await hub.process.stop();
  }
}

const root = join(repoRoot, '.testbed', 'bench-hub-scale');
reapStaleRuns(root);
let testbed: Testbed | undefined;
try {
  testbed = await startTestbed(join(root, String(process.pid), 'clusters'), [{ name: 'hub', scheduler: false, controllerManager: false }]);
  await installCrds(testbed.cluster('hub'));
  await testbed.cluster('hub').kubectl(['create', 'namespace', NS]);
  await main(testbed);
} catch (err) {
  console.log(`bench stopped early: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
} finally {
  await testbed?.stop();
}
console.log(`\n(total ${process.uptime().toFixed(0)} s; ${loadLine()})`);
process.exit(0);
