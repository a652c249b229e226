import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuJob } from '../../operator/src/api/types.js';
import type { RunningHub } from '../../operator/src/hub/hub.js';
import type { Cluster } from '../../operator/src/testbed/cluster.js';
import type { GpuNodeGroup } from '../../operator/src/testbed/kwok/gpu-nodes.js';
import {
  hubPki,
  installCrds,
  providerClient,
  readyStatus,
  startAgent,
  startTestHub,
  type AgentHandle,
} from '../../operator/src/testbed/federation.js';
import { reapStaleRuns } from '../../operator/src/testbed/processes.js';
import { startTestbed, type Testbed } from '../../operator/src/testbed/testbed.js';
import { repoRoot } from '../../operator/src/testbed/tools.js';
import { waitFor } from '../../operator/src/testbed/wait.js';
import { applyYaml, endSimulatedPods, getGpuJob, gpuJobYaml, hasStarted, waitGpuJob, waitGpuJobPhase } from './support/gpu-jobs.js';

// Issue 4 end to end: GpuJobs applied to a real hub apiserver are placed by the scheduler on one of
// three real provider clusters, run there as pods (kwok), and survive provider loss.

const H100 = 'NVIDIA-H100-80GB-HBM3';
const RTX3090 = 'NVIDIA-GeForce-RTX-3090';
// Long enough for an agent process to restart (tsx start-up takes seconds on a loaded 2-core machine).
const LOST_AFTER_MS = 8_000;

let testbed: Testbed;
let hub: RunningHub;
const agents: Record<string, AgentHandle> = {};
const names: Record<string, string> = {};
const root = join(repoRoot, '.testbed', 'e2e-scheduling');

const providerSpecs: { name: string; region: string; latency: string; prices: Record<string, string>; nodes: GpuNodeGroup }[] = [
  { name: 'dc', region: 'eu-west', latency: '5ms', prices: { [H100]: '2.40' }, nodes: { prefix: 'dc-h100', count: 2, gpusPerNode: 8, product: H100, memoryMiB: 81559, taint: true } },
  { name: 'cloud', region: 'us-east', latency: '80ms', prices: { [H100]: '2.10' }, nodes: { prefix: 'cl-h100', count: 2, gpusPerNode: 8, product: H100, memoryMiB: 81559 } },
  { name: 'farm', region: 'eu-central', latency: '30ms', prices: { [RTX3090]: '0.35' }, nodes: { prefix: 'farm', count: 3, gpusPerNode: 4, product: RTX3090, memoryMiB: 24576 } },
];

beforeAll(async () => {
  reapStaleRuns(root);
  const dir = join(root, String(process.pid));
  testbed = await startTestbed(join(dir, 'clusters'), [
    { name: 'hub', scheduler: false },
    ...providerSpecs.map((p) => ({ name: p.name, gpuNodes: [p.nodes] })),
  ]);
  await installCrds(testbed.cluster('hub'));
  await testbed.cluster('hub').kubectl(['create', 'namespace', 'ml']);
  const pki = await hubPki(join(dir, 'pki'));
  hub = await startTestHub(testbed.cluster('hub'), pki, dir, LOST_AFTER_MS);
  for (const p of providerSpecs) {
    agents[p.name] = await startAgent(p.name, testbed.cluster(p.name), pki, `127.0.0.1:${hub.port}`, {
      displayName: p.name,
      region: p.region,
      pricePerGpuHour: p.prices,
    }, undefined, ['--simulated-latency', p.latency]);
  }
  for (const p of providerSpecs) {
    const gp = await waitFor(`${p.name} Ready with measured RTT`, async () => {
      const gp = await providerClient(testbed.cluster('hub')).byWallet(agents[p.name]!.wallet.address);
      return readyStatus(gp)?.status === 'True' && (gp?.status?.latency?.rttMs ?? 0) > 0 && gp?.status?.pools?.length ? gp : undefined;
    }, { timeoutMs: 60_000 });
    names[p.name] = gp.metadata.name!;
  }
});

afterAll(async () => {
  await Promise.all(Object.values(agents).map((a) => a.process.stop()));
  await hub?.stop();
  await testbed?.stop();
});

const hubCluster = () => testbed.cluster('hub');
const getJob = (name: string) => getGpuJob(hubCluster(), name);
const waitPhase = (name: string, phase: string, timeoutMs = 60_000) => waitGpuJobPhase(hubCluster(), name, phase, { timeoutMs, intervalMs: 200 });
const jobYaml = (name: string, spec: Record<string, unknown>, annotations: Record<string, string> = {}) => gpuJobYaml(name, spec, { annotations });
const apply = (yaml: string) => applyYaml(hubCluster(), yaml);

const podsOf = async (cluster: Cluster, job: GpuJob) => {
  const pods = await cluster.kubeConfig.makeApiClient(CoreV1Api).listPodForAllNamespaces({ labelSelector: `fedgpu.io/job-uid=${job.metadata.uid}` });
  return pods.items;
};

describe('scheduling', () => {
  it('places a job on the provider the score prefers, runs it to success, and explains why', async () => {
    await apply(jobYaml('near-h100', { gpusPerReplica: 4, gpu: { products: [H100] }, placement: { maxLatencyMs: 50 } }, { 'fedgpu.io/sim-run-for': '3s' }));
    const running = await waitGpuJob(hubCluster(), 'near-h100', 'started', hasStarted, { timeoutMs: 60_000, intervalMs: 200 });
    // cloud is cheaper but 80 ms away: the 50 ms limit leaves dc.
    expect(running.status?.placement?.provider).toBe(names.dc);
    expect(running.status?.placement?.score?.total).toBeGreaterThan(0);
    const pods = await podsOf(testbed.cluster('dc'), running);
    expect(pods).toHaveLength(1);
    expect(pods[0]?.spec?.containers[0]?.resources?.limits?.['nvidia.com/gpu']).toBe('4');
    const done = await waitPhase('near-h100', 'Succeeded');
    expect(done.status?.attempts?.[0]).toMatchObject({ epoch: 1, provider: names.dc, outcome: 'Succeeded', faultOf: 'none' });
    expect(done.status?.cost?.gpuSeconds).toBeGreaterThanOrEqual(8); // 4 GPUs × ≥ 2 s
    const describe = await hubCluster().kubectl(['describe', 'gj', 'near-h100', '-n', 'ml']);
    expect(describe.stdout).toMatch(/Scheduled\s+.*attempt 1 on gp-[0-9a-f]+ .*score/);
    const table = await hubCluster().kubectl(['get', 'gj', 'near-h100', '-n', 'ml']);
    expect(table.stdout).toMatch(/Succeeded\s+gp-[0-9a-f]+\s+4\s+1\s+0\.0/);
  });

  it('puts a 4-replica gang whole into one cluster, or keeps all of it waiting', async () => {
    await apply(jobYaml('gang', { replicas: 4, gpusPerReplica: 4, gpu: { products: [H100] } }));
    const running = await waitPhase('gang', 'Running');
    const provider = running.status?.placement?.provider;
    const cluster = provider === names.dc ? testbed.cluster('dc') : testbed.cluster('cloud');
    expect(await podsOf(cluster, running)).toHaveLength(4);
    expect(new Set(running.status?.placement?.nodes).size).toBe(2);
    // 20 H100s in one cluster exist nowhere: the whole gang waits, and says why.
    await apply(jobYaml('too-big', { replicas: 5, gpusPerReplica: 4, gpu: { products: [H100] } }));
    const waiting = await waitFor('too-big explains itself', async () => {
      const job = await getJob('too-big');
      return job.status?.message?.includes('providers fit') ? job : undefined;
    });
    expect(waiting.status?.phase).toBe('Pending');
    expect(waiting.status?.message).toMatch(/^0\/3 providers fit: /);
    expect(waiting.status?.conditions?.find((c) => c.type === 'Scheduled')).toMatchObject({ status: 'False', reason: 'Unschedulable' });
    for (const name of ['dc', 'cloud', 'farm']) {
      const pods = await testbed.cluster(name).kubeConfig.makeApiClient(CoreV1Api).listPodForAllNamespaces({ labelSelector: `fedgpu.io/job-uid=${waiting.metadata.uid}` });
      expect(pods.items).toHaveLength(0);
    }
    await hubCluster().kubectl(['delete', 'gj', 'gang', 'too-big', '-n', 'ml', '--wait=true']);
  });

  it("publishes what each GPU brings of its node's CPU and memory, and places a replica only where what it asks fits", async () => {
    // kwok's nodes have 64 CPU and 512Gi: 8 CPU and 64Gi per GPU on the 8-GPU H100 nodes, twice that on the 4-GPU farm.
    const pools = async (name: string) => (await providerClient(hubCluster()).byWallet(agents[name]!.wallet.address))?.status?.pools ?? [];
    expect((await pools('dc'))[0]).toMatchObject({ cpuMilliPerGpu: 8_000, memoryMiBPerGpu: 65_536 });
    expect((await pools('farm'))[0]).toMatchObject({ cpuMilliPerGpu: 16_000, memoryMiBPerGpu: 131_072 });
    const asking = (name: string, gpus: number) => gpuJobYaml(name, { gpusPerReplica: gpus, gpu: { products: [H100] } }, { container: { resources: { limits: { memory: '100Gi' } } } });
    // One H100 brings 64Gi: 100Gi waits, and says why.
    await apply(asking('too-hungry', 1));
    const waiting = await waitFor('too-hungry explains itself', async () => {
      const job = await getJob('too-hungry');
      return job.status?.message?.includes('per replica') ? job : undefined;
    });
    expect(waiting.status?.phase).toBe('Pending');
    expect(waiting.status?.message).toBe('0/3 providers fit: 2 NVIDIA-H100-80GB-HBM3 gives at most 8 CPU & 64Gi per replica < 0.01 CPU & 100Gi asked, 1 no NVIDIA-H100-80GB-HBM3 pool');
    // Two bring 128Gi: it runs, with its 100Gi and the CPU of its two GPUs as limits.
    await apply(asking('hungry', 2));
    const running = await waitPhase('hungry', 'Running');
    const cluster = running.status?.placement?.provider === names.dc ? testbed.cluster('dc') : testbed.cluster('cloud');
    const [pod] = await podsOf(cluster, running);
    expect(pod?.spec?.containers[0]?.resources?.limits).toMatchObject({ cpu: '16', memory: '100Gi', 'nvidia.com/gpu': '2' });
    expect(pod?.spec?.containers[0]?.resources?.requests).toMatchObject({ cpu: '16', memory: '100Gi' });
    expect(pod?.spec?.nodeName).toBeTruthy();
    await hubCluster().kubectl(['delete', 'gj', 'too-hungry', 'hungry', '-n', 'ml']);
  });

  it('keeps a job whose latency limit no provider meets waiting, with the reason', async () => {
    await apply(jobYaml('too-far', { gpu: { products: [RTX3090] }, placement: { maxLatencyMs: 2 } }));
    const job = await waitFor('too-far explains itself', async () => {
      const job = await getJob('too-far');
      return job.status?.message?.includes('rtt') ? job : undefined;
    });
    expect(job.status?.phase).toBe('Pending');
    expect(job.status?.message).toMatch(/rtt \d+ms > 2ms/);
    await hubCluster().kubectl(['delete', 'gj', 'too-far', '-n', 'ml']);
  });

  it('blames the user for a non-zero exit and does not retry it', async () => {
    await apply(jobYaml('crashes', { gpu: { products: [RTX3090] } }, { 'fedgpu.io/sim-run-for': '1s', 'fedgpu.io/sim-exit-code': '3' }));
    const job = await waitPhase('crashes', 'Failed');
    expect(job.status?.attempts).toHaveLength(1);
    expect(job.status?.attempts?.[0]).toMatchObject({ outcome: 'Failed', faultOf: 'user', reason: 'ContainerFailed', exitCode: 3 });
    expect(job.status?.conditions?.find((c) => c.type === 'Finished')).toMatchObject({ status: 'True', reason: 'ContainerFailed' });
  });

  it('deleting a running job leaves no pod in any cluster', async () => {
    await apply(jobYaml('to-delete', { gpu: { products: [RTX3090] } }));
    const running = await waitPhase('to-delete', 'Running');
    expect(await podsOf(testbed.cluster('farm'), running)).toHaveLength(1);
    const res = await hubCluster().kubectl(['delete', 'gj', 'to-delete', '-n', 'ml', '--wait=true', '--timeout=60s']);
    expect(res.code, res.stderr).toBe(0);
    await waitFor('pods gone', async () => ((await podsOf(testbed.cluster('farm'), running)).length === 0 ? true : undefined), { timeoutMs: 30_000 });
  });

  it('rides out a short disconnect, moves a job off a lost provider, and fences the zombie when it returns', async () => {
    await apply(jobYaml('survivor', { gpusPerReplica: 2, gpu: { products: [H100] }, placement: { maxLatencyMs: 50 } }, { 'fedgpu.io/sim-run-for': '40s' }));
    const first = await waitPhase('survivor', 'Running');
    expect(first.status?.placement?.provider).toBe(names.dc);

    // A blip shorter than providerLostAfter: the attempt keeps running, nothing is evicted.
    // Waits on the events that matter, not a fixed time: the hub sees the stream drop, then the
    // agent's new stream registered with a fresh heartbeat. From then on the provider cannot be
    // declared lost for this blip, so the job's state is final for it.
    await agents.dc!.process.stop(1);
    const killedAt = Date.now();
    await waitFor('the hub to see dc gone', () => (hub.server.connectedProviders().includes(names.dc!) ? undefined : true), { timeoutMs: 30_000, intervalMs: 50 });
    await agents.dc!.restart();
    await waitFor('dc back on the hub', () => (hub.server.connectedProviders().includes(names.dc!) && hub.registry.isReady(names.dc!) ? true : undefined), { timeoutMs: 60_000, intervalMs: 50 });
    const blipMs = Date.now() - killedAt;
    expect(blipMs, 'the agent took longer than providerLostAfter to come back: not a short blip').toBeLessThan(LOST_AFTER_MS);
    const afterBlip = await getJob('survivor');
    expect(afterBlip.status?.attempts).toHaveLength(1);
    expect(afterBlip.status?.phase).toBe('Running');

    // Now the provider really goes away: the job moves to the other H100 provider (the latency
    // limit is relaxed so it can).
    await agents.dc!.process.stop(1);
    await hubCluster().kubectl(['patch', 'gj', 'survivor', '-n', 'ml', '--type=merge', '-p', '{"spec":{"placement":{"maxLatencyMs":500}}}']);
    const moved = await waitFor('survivor running elsewhere', async () => {
      const job = await getJob('survivor');
      return job.status?.phase === 'Running' && job.status.currentEpoch === 2 ? job : undefined;
    }, { timeoutMs: 60_000 });
    expect(moved.status?.placement?.provider).toBe(names.cloud);
    expect(moved.status?.attempts?.[0]).toMatchObject({ epoch: 1, provider: names.dc, outcome: 'Lost', faultOf: 'provider', reason: 'ProviderLost' });
    // The zombie pods still run in dc's cluster while its agent is away.
    expect(await podsOf(testbed.cluster('dc'), first)).toHaveLength(1);

    // The provider comes back: its agent is resynced without the old attempt and deletes it.
    await agents.dc!.restart();
    await waitFor('zombie pods deleted', async () => ((await podsOf(testbed.cluster('dc'), first)).length === 0 ? true : undefined), { timeoutMs: 60_000 });
    const still = await getJob('survivor');
    expect(still.status?.currentEpoch).toBe(2);
    expect(still.status?.attempts?.[0]?.outcome).toBe('Lost');
    await hubCluster().kubectl(['delete', 'gj', 'survivor', '-n', 'ml']);
  });

  it('gives pods their checkpoint grace when the owner reclaims a node, and resumes elsewhere from the same checkpoint', async () => {
    await apply(jobYaml('reclaimed', {
      gpusPerReplica: 2,
      gpu: { products: [H100] },
      placement: { maxLatencyMs: 50 },
      faultTolerance: { checkpoint: { gracePeriodSeconds: 2, dir: 's3://ckpt/reclaimed' } },
    }));
    const first = await waitPhase('reclaimed', 'Running');
    expect(first.status?.placement?.provider).toBe(names.dc);
    const [pod] = await podsOf(testbed.cluster('dc'), first);
    expect(pod?.spec?.containers[0]?.env).toContainEqual({ name: 'FEDGPU_CHECKPOINT_DIR', value: 's3://ckpt/reclaimed' });
    expect(pod?.spec?.terminationGracePeriodSeconds).toBe(2);
    await hubCluster().kubectl(['patch', 'gj', 'reclaimed', '-n', 'ml', '--type=merge', '-p', '{"spec":{"placement":{"maxLatencyMs":500}}}']);
    await testbed.cluster('dc').kubectl(['cordon', pod!.spec!.nodeName!]);
    const moved = await waitFor('reclaimed running elsewhere', async () => {
      const job = await getJob('reclaimed');
      return job.status?.phase === 'Running' && job.status.currentEpoch === 2 ? job : undefined;
    }, { timeoutMs: 60_000 });
    expect(moved.status?.attempts?.[0]).toMatchObject({ epoch: 1, provider: names.dc, outcome: 'Reclaimed', faultOf: 'owner-reclaim', reason: 'OwnerReclaim' });
    expect(moved.status?.placement?.provider).toBe(names.cloud);
    const [resumed] = await podsOf(testbed.cluster('cloud'), moved);
    expect(resumed?.spec?.containers[0]?.env).toContainEqual({ name: 'FEDGPU_CHECKPOINT_DIR', value: 's3://ckpt/reclaimed' });
    expect(await podsOf(testbed.cluster('dc'), first)).toHaveLength(0);
    await testbed.cluster('dc').kubectl(['uncordon', pod!.spec!.nodeName!]);
    await hubCluster().kubectl(['delete', 'gj', 'reclaimed', '-n', 'ml']);
  });

  it('moves a job whose provider loses its agent and its apiserver, and runs it to success elsewhere', async () => {
    // Cheap 3090s win on price; H100s are acceptable too. It runs until the test ends its second
    // attempt: a short run time could end the first before the outage on a loaded machine.
    await apply(jobYaml('outage', { gpu: { products: [RTX3090, H100] } }, { 'fedgpu.io/sim-run-for': '600s' }));
    const first = await waitPhase('outage', 'Running');
    expect(first.status?.placement?.provider).toBe(names.farm);
    const farm = testbed.cluster('farm');
    await Promise.all([agents.farm!.process.stop(1), ...farm.processes.filter((p) => p.name === 'kube-apiserver').map((p) => p.stop(1))]);
    const moved = await waitGpuJob(hubCluster(), 'outage', 'running elsewhere', (j) => j.status?.phase === 'Running' && j.status.currentEpoch === 2, { timeoutMs: 90_000, intervalMs: 200 });
    const elsewhere = moved.status?.placement?.provider === names.dc ? 'dc' : 'cloud';
    await endSimulatedPods(testbed.cluster(elsewhere), moved);
    const done = await waitPhase('outage', 'Succeeded', 90_000);
    expect(done.status?.attempts).toHaveLength(2);
    expect(done.status?.attempts?.[0]).toMatchObject({ provider: names.farm, outcome: 'Lost', faultOf: 'provider' });
    expect(done.status?.attempts?.[1]).toMatchObject({ outcome: 'Succeeded', faultOf: 'none' });
    expect([names.dc, names.cloud]).toContain(done.status?.attempts?.[1]?.provider);
    // Only the successful attempt is billed.
    expect(done.status?.cost?.gpuSeconds).toBe(done.status?.attempts?.[1]?.gpuSeconds);
  });
});
