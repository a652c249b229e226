// Issue 3: the cost of the agent's inventory and how fast a change in a provider cluster reaches the
// hub. Prints numbers; asserts nothing.
//   (a) buildInventory over 1,000 kwok-style GPU nodes and 4,000 pods: pure, many iterations.
//   (b) a real provider cluster with 1,000 kwok GPU nodes, the real agent (the fedgpu CLI as a process)
//       and an in-process hub: node change (cordon, a pod taking GPUs, NotReady) → GpuProvider status
//       in the hub apiserver, p50/p95.
//   (c) the hub as a process (fedgpu hub) with 50 connected agents: RSS and CPU% over a 30 s window.
// Run: tsx bench/inventory.bench.ts [a] [b] [c]   (default: all three; BENCH_COMPILED_HUB=1 adds the compiled hub to (c))
import { join } from 'node:path';
import { CoreV1Api, PatchStrategy, setHeaderOptions, type V1Node, type V1Pod } from '@kubernetes/client-node';
import { Wallet } from 'ethers';
import { pino } from 'pino';
import { Agent, inventoryMessage } from '../operator/src/agent/agent.js';
import { buildInventory, type ProviderSettings } from '../operator/src/agent/inventory.js';
import { GPU_RESOURCE, SIM_NODE_DOWN_LABEL } from '../operator/src/api/constants.js';
import { GPUPROVIDER_PLURAL, type GpuProvider } from '../operator/src/api/types.js';
import type { Inventory } from '../operator/src/gen/proto/fedgpu/v1/market.js';
import {
  hubPki,
  installCrds,
  readyStatus,
  startAgent,
  startHubProcess,
  startTestHub,
  type HubPki,
  type HubProcess,
} from '../operator/src/testbed/federation.js';
import { gpuNodes, KWOK_MANAGED_LABEL, type GpuNodeGroup } from '../operator/src/testbed/kwok/gpu-nodes.js';
import { reapStaleRuns } from '../operator/src/testbed/processes.js';
import { startTestbed, type Testbed } from '../operator/src/testbed/testbed.js';
import { repoRoot } from '../operator/src/testbed/tools.js';
import { waitFor } from '../operator/src/testbed/wait.js';
import { issueCert } from '../operator/src/tls/index.js';
import {
  compileOperator,
  CORES,
  cpuPercent,
  heapLine,
  heapSnapshotFlags,
  INSPECT_FLAG,
  liveHeap,
  loadLine,
  printHeapTop,
  figure,
  listCustom,
  NO_TARGET,
  machineLine,
  mapLimit,
  mib,
  ms,
  nowMs,
  procSample,
  ProcSampler,
  retrying,
  section,
  sleep,
  startCompiledHubProcess,
  summarize,
  watchObjects,
} from './support.js';

// Its "tsx" hub is startHubProcess's, which now runs the bundled binary unless told otherwise.
process.env.FEDGPU_TESTBED_FROM_SOURCES ??= '1';

const parts = new Set(process.argv.slice(2).filter((a) => /^[abc]$/.test(a)));
const run = (p: string) => parts.size === 0 || parts.has(p);

const H100 = 'NVIDIA-H100-80GB-HBM3';
const A100 = 'NVIDIA-A100-SXM4-80GB';
const L40S = 'NVIDIA-L40S';
const RTX4090 = 'NVIDIA-GeForce-RTX-4090';
const SETTINGS: ProviderSettings = {
  pricePerGpuHour: { [H100]: '2.40', [A100]: '1.60', [L40S]: '0.90', [RTX4090]: '0.45' },
  electricity: { pricePerKWh: '0.20', pue: 1.3 },
};
const NODES = 1_000;
const PODS = 4_000;
const GPUS_PER_NODE = 8;
const CHANGES = 21; // 7 of each kind; every change is reverted, and reverts are timed too
const AGENTS = 50;
const WINDOW_MS = 30_000;
const AGENT_HEARTBEAT_MS = 2_000; // `fedgpu agent --heartbeat-interval` default
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

console.log(`== inventory bench (issue 3)`);
console.log(machineLine());

// --- (a) --------------------------------------------------------------------------------------------

/** 1,000 nodes in four pools, as kwok leaves them (conditions, addresses, node info). */
function kwokNodes(count: number, prefix = 'gpu'): V1Node[] {
  const products = [
    { product: H100, memoryMiB: 81559 },
    { product: A100, memoryMiB: 81920 },
    { product: L40S, memoryMiB: 46068 },
    { product: RTX4090, memoryMiB: 24564 },
  ];
  const per = Math.ceil(count / products.length);
  const nodes = products.flatMap((p, i) =>
    gpuNodes({ prefix: `${prefix}-${i}`, count: Math.min(per, count - i * per), gpusPerNode: GPUS_PER_NODE, product: p.product, memoryMiB: p.memoryMiB, taint: i < 2 }),
  );
  const t = new Date().toISOString();
  for (const n of nodes) {
    n.metadata!.uid = crypto.randomUUID();
    n.metadata!.resourceVersion = '12345';
    n.metadata!.creationTimestamp = new Date(t);
    n.status = {
      ...n.status,
      phase: 'Running',
      conditions: ['Ready', 'MemoryPressure', 'DiskPressure', 'PIDPressure', 'NetworkUnavailable'].map((type) => ({
        type,
        status: type === 'Ready' ? 'True' : 'False',
        reason: type === 'Ready' ? 'KubeletReady' : 'KubeletHasNoIssue',
        message: '',
        lastHeartbeatTime: new Date(t),
        lastTransitionTime: new Date(t),
      })),
      addresses: [{ type: 'InternalIP', address: '127.0.0.1' }, { type: 'Hostname', address: n.metadata!.name! }],
      nodeInfo: { architecture: 'amd64', operatingSystem: 'linux', kubeletVersion: 'kwok-v0.8', containerRuntimeVersion: 'kwok-v0.8', bootID: '', kernelVersion: '', kubeProxyVersion: '', machineID: '', osImage: '', systemUUID: '' },
    };
  }
  return nodes;
}

/** 4,000 pods: three GPU pods per node (1–2 GPUs each, a few finished) and one CPU-only pod. */
function kwokPods(nodes: readonly V1Node[], count: number): V1Pod[] {
  const pods: V1Pod[] = [];
  for (let i = 0; i < count; i++) {
    const node = nodes[i % nodes.length]!.metadata!.name!;
    const gpu = i % 4 !== 3;
    const limits: Record<string, string> = { cpu: '4', memory: '16Gi', ...(gpu ? { [GPU_RESOURCE]: String(1 + (i % 2)) } : {}) };
    pods.push({
      metadata: {
        name: `pod-${i}`,
        namespace: gpu ? 'fedgpu-jobs' : 'kube-system',
        uid: crypto.randomUUID(),
        resourceVersion: String(1000 + i),
        labels: { app: `app-${i % 37}`, 'fedgpu.io/managed-by': 'fedgpu-agent' },
        annotations: { 'fedgpu.io/sim-run-for': '1h' },
      },
      spec: {
        nodeName: node,
        containers: [{ name: 'main', image: 'example/train', resources: { limits, requests: limits } }],
        tolerations: [{ key: GPU_RESOURCE, operator: 'Exists' }],
      },
      status: {
        phase: i % 50 === 0 ? 'Succeeded' : 'Running',
        conditions: [{ type: 'Ready', status: 'True' }],
        podIP: '10.244.0.1',
        hostIP: '127.0.0.1',
      },
    });
  }
  return pods;
}

function partA(): void {
  section(`(a) buildInventory: ${NODES} kwok-style GPU nodes, ${PODS} pods (pure, in this process)`);
  const nodes = kwokNodes(NODES);
  const pods = kwokPods(nodes, PODS);
  const now = Date.now();
  const time = (fn: () => unknown, maxIterations: number, maxMs: number) => {
    for (let i = 0; i < 20; i++) fn(); // warm-up
    const samples: number[] = [];
    const until = nowMs() + maxMs;
    while (samples.length < maxIterations && nowMs() < until) {
      const t = nowMs();
      fn();
      samples.push(nowMs() - t);
    }
    return summarize(samples);
  };
  const pools = buildInventory(nodes, pods, SETTINGS, now);
  const build = time(() => buildInventory(nodes, pods, SETTINGS, now), 2_000, 5_000);
  // What the agent does on every debounced change: build, translate to the proto message, and
  // serialise it to compare with the last one sent.
  const publish = time(() => JSON.stringify(inventoryMessage(buildInventory(nodes, pods, SETTINGS, now))), 2_000, 5_000);
  const idle = pools.reduce((n, p) => n + p.idle, 0);
  const total = pools.reduce((n, p) => n + p.total, 0);
  figure('result', `${pools.length} pools, ${idle}/${total} GPUs idle`);
  figure('buildInventory per computation', `p50 ${ms(build.p50, 2)}, p95 ${ms(build.p95, 2)}, mean ${ms(build.mean, 2)} over ${build.n} runs`, NO_TARGET);
  figure('  + inventoryMessage + JSON.stringify', `p50 ${ms(publish.p50, 2)}, p95 ${ms(publish.p95, 2)} over ${publish.n} runs (the agent's whole publish)`);
  figure('  recomputes/s on one core', `${Math.round(1000 / build.mean)}`);
}

// --- (b) and (c): real clusters ----------------------------------------------------------------------

const root = join(repoRoot, '.testbed', 'bench-inventory');
let testbed: Testbed | undefined;
const cleanups: (() => Promise<unknown>)[] = [];

async function createNodes(core: CoreV1Api, nodes: V1Node[], concurrency = 16): Promise<void> {
  await mapLimit(nodes, concurrency, (body) =>
    retrying(async () => {
      try {
        await core.createNode({ body });
      } catch (err) {
        if ((err as { code?: number }).code !== 409) throw err;
      }
    }),
  );
}

async function waitNodesReady(core: CoreV1Api, count: number, timeoutMs: number): Promise<void> {
  await waitFor(`${count} kwok nodes Ready`, async () => {
    const list = await core.listNode({ labelSelector: `${KWOK_MANAGED_LABEL}=true` });
    const ready = list.items.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
    return ready >= count ? true : undefined;
  }, { timeoutMs, intervalMs: 1_000 });
}

async function partB(tb: Testbed, pkiDir: string): Promise<void> {
  section(`(b) node change → GpuProvider status in the hub: ${NODES} kwok GPU nodes, real agent process, in-process hub`);
  const hubCluster = tb.cluster('hub');
  const dc = tb.cluster('dc');
  const core = dc.kubeConfig.makeApiClient(CoreV1Api);

  // 1,000 nodes in four pools, created concurrently through the API; kwok makes them Ready.
  const group: GpuNodeGroup = { prefix: 'n', count: NODES, gpusPerNode: GPUS_PER_NODE, product: H100, memoryMiB: 81559 };
  const nodes = gpuNodes(group);
  let t = nowMs();
  await createNodes(core, nodes);
  const createdMs = nowMs() - t;
  await waitNodesReady(core, NODES, 180_000);
  const readyMs = nowMs() - t;
  // The apiserver taints every new node not-ready and kube-controller-manager's node lifecycle
  // controller lifts the taint once the node is Ready, at a few nodes per second: ~4 minutes for
  // 1,000 nodes on this machine. The agent rightly counts a tainted node as not idle, so this cluster
  // runs without the controller-manager and the bench lifts the taints itself (a shortcut).
  t = nowMs();
  await mapLimit(nodes, 16, (n) => retrying(() => core.patchNode({ name: n.metadata!.name!, body: { spec: { taints: null } } }, mergePatch)));
  figure('create 1,000 nodes (16 concurrent)', `${(createdMs / 1000).toFixed(1)} s (${Math.round(NODES / (createdMs / 1000))} nodes/s); all Ready after ${(readyMs / 1000).toFixed(1)} s; taints lifted in ${((nowMs() - t) / 1000).toFixed(1)} s`);

  // Owner pods on the first 800 nodes (two GPUs each) so the agent's inventory has pods to count;
  // the changes below happen on the last 200 nodes, which start fully idle.
  const OWNER_PODS = 800;
  // No controller-manager here: the namespace's default ServiceAccount, which pods need, is made here.
  await core.createNamespace({ body: { metadata: { name: 'owner' } } });
  await core.createNamespacedServiceAccount({ namespace: 'owner', body: { metadata: { name: 'default' } } });
  const ownerPod = (name: string, node: string, gpus: number): V1Pod => ({
    metadata: { name, namespace: 'owner', annotations: { 'fedgpu.io/sim-run-for': '1h' } },
    spec: { nodeName: node, containers: [{ name: 'c', image: 'example/owner', resources: { limits: { [GPU_RESOURCE]: String(gpus) } } }] },
  });
  t = nowMs();
  await mapLimit(Array.from({ length: OWNER_PODS }, (_, i) => i), 32, (i) =>
    retrying(() => core.createNamespacedPod({ namespace: 'owner', body: ownerPod(`owner-${i}`, `n-${i}`, 2) })),
  );
  figure(`create ${OWNER_PODS} owner pods (32 concurrent)`, `${((nowMs() - t) / 1000).toFixed(1)} s`);

  const pki = await hubPki(pkiDir);
  const hub = await startTestHub(hubCluster, pki, tb.dir, 15_000);
  cleanups.push(() => hub.stop());
  const agent = await startAgent('dc', dc, pki, `127.0.0.1:${hub.port}`, { pricePerGpuHour: { [H100]: '2.40' } });
  cleanups.push(() => agent.process.stop());

  // The hub side: every GpuProvider status that reaches the hub apiserver, timestamped on arrival.
  const expectedTotal = NODES * GPUS_PER_NODE;
  let latest: GpuProvider | undefined;
  let waiter: { check: (p: GpuProvider) => boolean; resolve: (at: number) => void } | undefined;
  const informer = await watchObjects<GpuProvider>(hubCluster.kubeConfig, `/apis/fedgpu.io/v1alpha1/${GPUPROVIDER_PLURAL}`, listCustom(hubCluster.kubeConfig, GPUPROVIDER_PLURAL), (p, at) => {
    if (p.spec.wallet.toLowerCase() !== agent.wallet.address.toLowerCase()) return;
    latest = p;
    if (waiter?.check(p)) {
      const w = waiter;
      waiter = undefined;
      w.resolve(at);
    }
  });
  cleanups.push(() => informer.stop());
  t = nowMs();
  await waitFor('GpuProvider Ready with the whole inventory', () =>
    readyStatus(latest)?.status === 'True' && latest?.status?.totalGpus === expectedTotal ? true : undefined,
  { timeoutMs: 120_000, intervalMs: 200 });
  figure('agent start → GpuProvider Ready with 8,000 GPUs', `${((nowMs() - t) / 1000).toFixed(1)} s (idle ${latest?.status?.idleGpus}/${latest?.status?.totalGpus})`);

  const idleOf = (p: GpuProvider, node: string) => p.status?.pools?.[0]?.idleByNode?.find((n) => n.name === node)?.idle;
  const until = (check: (p: GpuProvider) => boolean, timeoutMs = 30_000) =>
    new Promise<number>((resolve, reject) => {
      if (latest && check(latest)) return resolve(nowMs());
      const timer = setTimeout(() => {
        waiter = undefined;
        reject(new Error('the hub did not see the change in time'));
      }, timeoutMs);
      waiter = { check, resolve: (at) => (clearTimeout(timer), resolve(at)) };
    });

  // Where the time goes: the hub's registry is wrapped (in this process) to timestamp each
  // inventory and heartbeat as the stream dispatches it to the registry, and how long the
  // GpuProvider status write behind it takes.
  type RegistryCalls = { onInventory: (name: string, inv: Inventory) => Promise<void>; onHeartbeat: (name: string, obs: unknown) => Promise<void> };
  const registry = hub.registry as unknown as RegistryCalls;
  const inventories: { at: number; inventory: Inventory }[] = [];
  const inventoryWrites: number[] = [];
  const heartbeatWrites: number[] = [];
  const onInventory = registry.onInventory.bind(registry);
  const onHeartbeat = registry.onHeartbeat.bind(registry);
  registry.onInventory = async (name, inventory) => {
    const at = nowMs();
    inventories.push({ at, inventory });
    await onInventory(name, inventory);
    inventoryWrites.push(nowMs() - at);
  };
  registry.onHeartbeat = async (name, obs) => {
    const at = nowMs();
    await onHeartbeat(name, obs);
    heartbeatWrites.push(nowMs() - at);
  };
  const inventoryIdle = (inv: Inventory, node: string) => inv.pools[0]?.nodes.find((n) => n.name === node)?.idleGpus;

  type Kind = 'cordon' | 'pod' | 'notready';
  const nodeReady = async (node: string) => (await core.readNode({ name: node })).status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  const changes: Record<Kind, { apply: (node: string) => Promise<unknown>; revert: (node: string) => Promise<unknown>; idleAfter: number; visible?: (node: string, applied: boolean) => Promise<boolean> }> = {
    cordon: {
      apply: (node) => core.patchNode({ name: node, body: { spec: { unschedulable: true } } }, mergePatch),
      revert: (node) => core.patchNode({ name: node, body: { spec: { unschedulable: null } } }, mergePatch),
      idleAfter: 0,
    },
    pod: {
      apply: (node) => core.createNamespacedPod({ namespace: 'owner', body: ownerPod(`take-${node}`, node, 3) }),
      revert: (node) => core.deleteNamespacedPod({ name: `take-${node}`, namespace: 'owner', gracePeriodSeconds: 0 }),
      idleAfter: GPUS_PER_NODE - 3,
    },
    notready: {
      apply: (node) => core.patchNode({ name: node, body: { metadata: { labels: { [SIM_NODE_DOWN_LABEL]: 'true' } } } }, mergePatch),
      revert: (node) => core.patchNode({ name: node, body: { metadata: { labels: { [SIM_NODE_DOWN_LABEL]: null } } } }, mergePatch),
      idleAfter: 0,
      // kwok, not the API call, turns the node's Ready condition: that time is kwok's, not ours.
      visible: async (node, applied) => (await nodeReady(node)) !== applied,
    },
  };
  interface Sample { total: number; provider: number; toHub: number; hubWrite: number }
  const measure = async (kind: Kind, node: string, apply: boolean): Promise<Sample> => {
    const change = changes[kind];
    const expected = apply ? change.idleAfter : GPUS_PER_NODE;
    const seen = inventories.length;
    const start = nowMs();
    const done = until((p) => idleOf(p, node) === expected);
    await (apply ? change.apply(node) : change.revert(node));
    let provider = nowMs();
    if (change.visible) {
      while (!(await change.visible(node, apply)) && nowMs() - start < 30_000) await sleep(25);
      provider = nowMs();
    }
    const end = await done;
    const arrived = inventories.slice(seen).find((x) => inventoryIdle(x.inventory, node) === expected)?.at ?? NaN;
    return { total: end - start, provider: provider - start, toHub: arrived - provider, hubWrite: end - arrived };
  };

  const kinds: Kind[] = ['cordon', 'pod', 'notready'];
  const samples: Record<Kind, { applied: Sample[]; reverted: Sample[] }> = { cordon: { applied: [], reverted: [] }, pod: { applied: [], reverted: [] }, notready: { applied: [], reverted: [] } };
  for (let i = 0; i < CHANGES; i++) {
    const kind = kinds[i % kinds.length]!;
    const node = `n-${OWNER_PODS + 7 * i}`;
    await sleep(200 + Math.random() * 300); // changes arrive apart, not in lockstep with heartbeats
    samples[kind].applied.push(await measure(kind, node, true));
    await sleep(200 + Math.random() * 300);
    samples[kind].reverted.push(await measure(kind, node, false));
  }
  const all: Sample[] = [];
  for (const kind of kinds) {
    const a = summarize(samples[kind].applied.map((x) => x.total));
    const r = summarize(samples[kind].reverted.map((x) => x.total));
    all.push(...samples[kind].applied, ...samples[kind].reverted);
    figure(`  ${kind.padEnd(8)} (n=${a.n}) and its revert (n=${r.n})`, `p50 ${ms(a.p50)}, p95 ${ms(a.p95)}; revert p50 ${ms(r.p50)}, p95 ${ms(r.p95)}`);
  }
  const s = summarize(all.map((x) => x.total));
  figure(`node change → hub GpuProvider status (n=${s.n})`, `p50 ${ms(s.p50)}, p95 ${ms(s.p95)}, max ${ms(s.max)}`, { text: 'every change visible within 2 s', met: s.n > 0 && s.max <= 2_000 });
  const ours = summarize(all.map((x) => x.total - x.provider));
  figure('  without kwok (change visible in the provider apiserver → hub)', `p50 ${ms(ours.p50)}, p95 ${ms(ours.p95)}, max ${ms(ours.max)}`);
  const stage = (label: string, pick: (x: Sample) => number, among = all) => {
    const v = summarize(among.map(pick).filter(Number.isFinite));
    figure(`    ${label}`, `p50 ${ms(v.p50)}, p95 ${ms(v.p95)}, max ${ms(v.max)}`);
  };
  stage('kwok turns Ready (NotReady changes only)', (x) => x.provider, [...samples.notready.applied, ...samples.notready.reverted]);
  stage('agent: watch → debounce → build → stream → hub registry', (x) => x.toHub);
  stage('hub: registry status write → visible in the hub apiserver', (x) => x.hubWrite);
  const iw = summarize(inventoryWrites);
  const hw = summarize(heartbeatWrites);
  figure('    hub GpuProvider write per inventory / heartbeat', `p50 ${ms(iw.p50)} / ${ms(hw.p50)}, p95 ${ms(iw.p95)} / ${ms(hw.p95)} (${iw.n} / ${hw.n} writes)`);
  figure('    GpuProvider object size', `${(JSON.stringify(latest).length / 1024).toFixed(0)} KiB of JSON (idleByNode lists all ${NODES} nodes)`);
  const agentCpu = procSample(agent.process.pid);
  if (agentCpu) figure('agent process after the run', `RSS ${mib(agentCpu.rssBytes)}, CPU ${agentCpu.cpuSeconds.toFixed(1)} s in total`);

  // The same pure computation over the real objects the cluster holds now.
  const realNodes = (await core.listNode()).items;
  const realPods = (await core.listPodForAllNamespaces()).items;
  const times: number[] = [];
  for (let i = 0; i < 220; i++) {
    const t0 = nowMs();
    buildInventory(realNodes, realPods, SETTINGS, Date.now());
    if (i >= 20) times.push(nowMs() - t0);
  }
  const real = summarize(times);
  figure(`buildInventory on the real objects (${realNodes.length} nodes, ${realPods.length} pods)`, `p50 ${ms(real.p50, 2)}, p95 ${ms(real.p95, 2)}`);

  await informer.stop();
  await agent.process.stop();
  await hub.stop();
  cleanups.length = 0;
}

async function partC(tb: Testbed, pkiDir: string): Promise<void> {
  section(`(c) the hub as a process (fedgpu hub) with ${AGENTS} agents: RSS and CPU over ${WINDOW_MS / 1000} s`);
  console.log(`agents: ${AGENTS} in-process Agent objects (the real class: cluster informers, stream client, inventory), each with`);
  console.log(`its own wallet and client certificate, heartbeat every ${AGENT_HEARTBEAT_MS / 1000} s (the CLI default); ${AGENTS / 2} per small kwok cluster.`);
  console.log(`hub: defaults of \`fedgpu hub\` (providerLostAfter 15 s), as the test bed runs it (node --import tsx, via startHubProcess);`);
  console.log(`with BENCH_COMPILED_HUB=1 also as the image runs it (plain JavaScript, no tsx loader).`);
  const pki = await hubPki(pkiDir);
  await hubWithAgents(tb, pki, 'tsx', async (dir) => {
    // The test bed's hub process, with its inspector on loopback so the bench can read its live heap.
    const saved = process.env.NODE_OPTIONS;
    process.env.NODE_OPTIONS = `${saved ?? ''} ${INSPECT_FLAG}`.trim();
    try {
      return await startHubProcess(tb.cluster('hub'), pki, dir);
    } finally {
      if (saved === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = saved;
    }
  });
  if (!process.env.BENCH_COMPILED_HUB) return;
  const mainJs = compileOperator();
  await hubWithAgents(tb, pki, 'compiled', (dir) =>
    startCompiledHubProcess(mainJs, tb.cluster('hub'), pki, dir, [], [INSPECT_FLAG, ...(process.env.BENCH_HEAP_PROFILE ? heapSnapshotFlags(dir) : [])]),
  );
}

async function hubWithAgents(tb: Testbed, pki: HubPki, label: string, start: (dir: string) => Promise<HubProcess>): Promise<void> {
  const hubCluster = tb.cluster('hub');
  await hubCluster.kubectl(['delete', 'gpuproviders', '--all', '--wait=true']);
  const small = [tb.cluster('small-a'), tb.cluster('small-b')];
  const hub = await start(join(tb.dir, `hub-${label}`));
  cleanups.push(() => hub.process.stop());
  const apiserverPid = hubCluster.processes.find((p) => p.name === 'kube-apiserver')?.pid;
  const sampler = new ProcSampler(hub.process.pid, 1_000);

  // An idle hub first, for comparison.
  await sleep(2_000);
  const idle0 = procSample(hub.process.pid)!;
  await sleep(5_000);
  const idle1 = procSample(hub.process.pid)!;
  figure(`[${label}] hub, no agents (5 s)`, `RSS ${mib(idle1.rssBytes)}, CPU ${cpuPercent(idle0, idle1).toFixed(1)}%; ${await heapLine(hub.metricsPort)}`);

  const logger = pino({ level: 'warn' }, pino.destination({ dest: join(tb.dir, `agents-${label}.log`), sync: false, mkdir: true }));
  const agents: Agent[] = [];
  cleanups.push(async () => Promise.all(agents.map((a) => a.stop())));
  const wallets: string[] = [];
  let t = nowMs();
  await mapLimit(Array.from({ length: AGENTS }, (_, i) => i), 10, async (i) => {
    const wallet = Wallet.createRandom();
    const cert = await issueCert(pki.ca, { commonName: wallet.address, usages: ['client'] });
    const agent = new Agent({
      kubeConfig: small[i % small.length]!.kubeConfig,
      settings: { displayName: `agent ${i}`, pricePerGpuHour: { [H100]: '2.40', [RTX4090]: '0.45' } },
      jobNamespace: 'fedgpu-jobs',
      hubAddress: hub.grpcAddress,
      tls: { caPem: pki.ca.certPem, certPem: cert.certPem, keyPem: cert.keyPem },
      wallet: wallet as unknown as Wallet,
      logger,
      heartbeatIntervalMs: AGENT_HEARTBEAT_MS,
    });
    agents.push(agent);
    wallets.push(wallet.address.toLowerCase());
    await agent.start();
  });
  const list = listCustom<GpuProvider>(hubCluster.kubeConfig, GPUPROVIDER_PLURAL);
  await waitFor(`${AGENTS} GpuProviders Ready`, async () => {
    const ready = (await list()).items.filter((p) => wallets.includes(p.spec.wallet.toLowerCase()) && readyStatus(p)?.status === 'True').length;
    return ready === AGENTS ? true : undefined;
  }, { timeoutMs: 120_000, intervalMs: 1_000 });
  figure(`[${label}] ${AGENTS} agents registered and Ready`, `${((nowMs() - t) / 1000).toFixed(1)} s`);

  await sleep(3_000); // let the registration burst (bandwidth probes, first writes) pass
  const w0 = procSample(hub.process.pid)!;
  const a0 = apiserverPid ? procSample(apiserverPid) : undefined;
  const self0 = process.cpuUsage();
  t = nowMs();
  const windowStart = sampler.samples.length;
  await sleep(WINDOW_MS);
  const w1 = procSample(hub.process.pid)!;
  const a1 = apiserverPid ? procSample(apiserverPid) : undefined;
  const selfCpu = process.cpuUsage(self0);
  const inWindow = sampler.samples.slice(windowStart);
  const rssMax = Math.max(w1.rssBytes, ...inWindow.map((s) => s.rssBytes));
  const hubCpu = cpuPercent(w0, w1);
  figure(`[${label}] hub RSS with ${AGENTS} agents`, `${mib(w1.rssBytes)} at the end, ${mib(rssMax)} max in the window (+${mib(w1.rssBytes - idle1.rssBytes)} over idle)`, {
    text: '≤ 300 MiB (issue 4 hub bound, as a reference)',
    met: rssMax <= 300 * 2 ** 20,
  });
  figure(`[${label}]   memory breakdown`, await heapLine(hub.metricsPort));
  const live = await liveHeap(hub.process.logPath);
  const afterGc = procSample(hub.process.pid);
  if (live && afterGc) figure(`[${label}]   after a full GC`, `live V8 heap ${mib(live.usedBytes)}, RSS ${mib(afterGc.rssBytes)}`);
  figure(`[${label}] hub CPU with ${AGENTS} agents (${WINDOW_MS / 1000} s)`, `${hubCpu.toFixed(1)}% of one core (${CORES} cores on this machine)`, NO_TARGET);
  if (a0 && a1) figure(`[${label}]   hub kube-apiserver CPU`, `${cpuPercent(a0, a1).toFixed(1)}% of one core (a status write per heartbeat: ${(AGENTS / (AGENT_HEARTBEAT_MS / 1000)).toFixed(0)}/s)`);
  figure(`[${label}]   this process (the ${AGENTS} agents) CPU`, `${(((selfCpu.user + selfCpu.system) / 1e3 / (nowMs() - t)) * 100).toFixed(1)}% of one core`);
  sampler.stop();
  if (process.env.BENCH_HEAP_PROFILE && label === 'compiled') await printHeapTop(`[${label}]`, hub.process.pid, join(tb.dir, `hub-${label}`));

  await Promise.all(agents.map((a) => a.stop()));
  await hub.process.stop();
  cleanups.length = 0;
}

if (run('a')) partA();

if (run('b') || run('c')) {
  reapStaleRuns(root);
  const dir = join(root, String(process.pid));
  const t = nowMs();
  try {
    const specs = [
      { name: 'hub', scheduler: false, controllerManager: false },
      // No kube-scheduler (every pod here names its node), no kube-controller-manager (see partB).
      ...(run('b') ? [{ name: 'dc', scheduler: false, controllerManager: false, kwok: true }] : []),
      ...(run('c')
        ? [
            { name: 'small-a', scheduler: false, controllerManager: false, gpuNodes: [{ prefix: 'sa', count: 2, gpusPerNode: 8, product: H100, memoryMiB: 81559 }] },
            { name: 'small-b', scheduler: false, controllerManager: false, gpuNodes: [{ prefix: 'sb', count: 4, gpusPerNode: 1, product: RTX4090, memoryMiB: 24564 }] },
          ]
        : []),
    ];
    testbed = await startTestbed(join(dir, 'clusters'), specs);
    await installCrds(testbed.cluster('hub'));
    console.log(`\n(test bed: ${specs.length} clusters up in ${((nowMs() - t) / 1000).toFixed(1)} s)`);
    if (run('b')) {
      await partB(testbed, join(dir, 'pki-b'));
      await testbed.cluster('dc').stop(); // its 1,000 nodes' heartbeats would load (c)
    }
    if (run('c')) await partC(testbed, join(dir, 'pki-c'));
  } catch (err) {
    console.log(`bench stopped early: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await testbed?.stop();
  }
}
console.log(`\n(total ${process.uptime().toFixed(0)} s; ${loadLine()})`);
process.exit(0);
