import { NON_PUBLIC_V4 } from '../../operator/src/core/egress.js';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, DiscoveryV1Api, NetworkingV1Api, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuJob } from '../../operator/src/api/types.js';
import type { RunningHub } from '../../operator/src/hub/hub.js';
import type { Cluster } from '../../operator/src/testbed/cluster.js';
import { HUB_RELEASE, HUB_RELEASE_NAMESPACE, hubPki, installCrds, providerClient, readyStatus, startAgent, startTestHub, type AgentHandle } from '../../operator/src/testbed/federation.js';
import { reapStaleRuns } from '../../operator/src/testbed/processes.js';
import { startTestbed, type Testbed } from '../../operator/src/testbed/testbed.js';
import { repoRoot } from '../../operator/src/testbed/tools.js';
import { waitFor } from '../../operator/src/testbed/wait.js';
import { applyYaml, endSimulatedPods, getGpuJob, gpuJobYaml, kubectlOk, waitGpuJobPhase } from './support/gpu-jobs.js';

// Issue 14 end to end on real provider apiservers: gang rendezvous (headless Service, gang
// NetworkPolicy, env), consumers kept apart, secrets to the winner only and gone after every end,
// and egress profiles deciding placement.

const H100 = 'NVIDIA-H100-80GB-HBM3';
const LOST_AFTER_MS = 8_000;
const RESYNC_MESSAGE_BYTES = 1_000; // an Assign here is 200–700 bytes (a 4-replica gang the largest)

let testbed: Testbed;
let hub: RunningHub;
let runDir: string;
const agents: Record<string, AgentHandle> = {};
const names: Record<string, string> = {};
const root = join(repoRoot, '.testbed', 'e2e-job-environment');

// alpha offers DNS only (the default); beta offers the internet.
const providerSpecs = [
  { name: 'alpha', region: 'eu-west', egress: undefined, nodes: { prefix: 'al', count: 3, gpusPerNode: 8, product: H100, memoryMiB: 81559 } },
  { name: 'beta', region: 'us-east', egress: { mode: 'internet' as const }, nodes: { prefix: 'be', count: 3, gpusPerNode: 8, product: H100, memoryMiB: 81559 } },
];

beforeAll(async () => {
  reapStaleRuns(root);
  runDir = join(root, String(process.pid));
  testbed = await startTestbed(join(runDir, 'clusters'), [{ name: 'hub', scheduler: false }, ...providerSpecs.map((p) => ({ name: p.name, gpuNodes: [p.nodes] }))]);
  await installCrds(testbed.cluster('hub'));
  for (const ns of ['ml', 'ml2']) await testbed.cluster('hub').kubectl(['create', 'namespace', ns]);
  const pki = await hubPki(join(runDir, 'pki'));
  // A Resync of more than a couple of attempts goes in parts here (production: 16 MiB less a margin).
  hub = await startTestHub(testbed.cluster('hub'), pki, runDir, LOST_AFTER_MS, { resyncMessageBytes: RESYNC_MESSAGE_BYTES });
  for (const p of providerSpecs) {
    agents[p.name] = await startAgent(p.name, testbed.cluster(p.name), pki, `127.0.0.1:${hub.port}`, {
      displayName: p.name,
      region: p.region,
      pricePerGpuHour: { [H100]: '2.00' },
      ...(p.egress ? { egress: p.egress } : {}),
    });
  }
  for (const p of providerSpecs) {
    const gp = await waitFor(`${p.name} Ready`, async () => {
      const gp = await providerClient(testbed.cluster('hub')).byWallet(agents[p.name]!.wallet.address);
      return readyStatus(gp)?.status === 'True' && gp?.status?.pools?.length ? gp : undefined;
    }, { timeoutMs: 90_000 });
    names[p.name] = gp.metadata.name!;
  }
}, 300_000);

afterAll(async () => {
  await Promise.all(Object.values(agents).map((a) => a.process.stop()));
  await hub?.stop();
  await testbed?.stop();
});

const hubCluster = () => testbed.cluster('hub');
const getJob = (name: string, namespace = 'ml') => getGpuJob(hubCluster(), name, namespace);
const waitPhase = (name: string, phase: string, namespace = 'ml', timeoutMs = 90_000) => waitGpuJobPhase(hubCluster(), name, phase, { namespace, timeoutMs });
const jobYaml = (name: string, spec: Record<string, unknown>, { namespace = 'ml', runFor }: { namespace?: string; runFor?: string } = {}) =>
  gpuJobYaml(name, spec, { namespace, annotations: runFor ? { 'fedgpu.io/sim-run-for': runFor } : {}, container: { command: ['torchrun', 'train.py'] } });
const kubectl = kubectlOk;
const apply = (yaml: string) => applyYaml(hubCluster(), yaml);
const deleteJob = (name: string, namespace = 'ml') => kubectl(hubCluster(), ['delete', 'gj', name, '-n', namespace, '--wait=false']);

const core = (c: Cluster) => c.kubeConfig.makeApiClient(CoreV1Api);
const net = (c: Cluster) => c.kubeConfig.makeApiClient(NetworkingV1Api);
const podsOf = async (cluster: Cluster, job: GpuJob) =>
  (await core(cluster).listPodForAllNamespaces({ labelSelector: `fedgpu.io/job-uid=${job.metadata.uid}` })).items;
const attemptObjects = async (cluster: Cluster, job: GpuJob) => {
  const labelSelector = `fedgpu.io/job-uid=${job.metadata.uid}`;
  const [services, policies, secrets] = await Promise.all([
    core(cluster).listServiceForAllNamespaces({ labelSelector }),
    net(cluster).listNetworkPolicyForAllNamespaces({ labelSelector }),
    core(cluster).listSecretForAllNamespaces({ labelSelector }),
  ]);
  return { services: services.items, policies: policies.items, secrets: secrets.items };
};
/** The attempt's objects once `made` holds: its Service and policies go up beside its pods, not before them. */
const madeAttemptObjects = (cluster: Cluster, job: GpuJob, made: (o: Awaited<ReturnType<typeof attemptObjects>>) => boolean) =>
  waitFor(`the objects of ${job.metadata.name}'s attempt`, async () => {
    const o = await attemptObjects(cluster, job);
    return made(o) ? o : undefined;
  }, { timeoutMs: 30_000 });
const waitObjectsGone = (cluster: Cluster, job: GpuJob, what: string) =>
  waitFor(what, async () => {
    const o = await attemptObjects(cluster, job);
    return o.services.length + o.policies.length + o.secrets.length === 0 ? true : undefined;
  }, { timeoutMs: 60_000, intervalMs: 250 });
const clusterOf = (job: GpuJob) => (job.status?.placement?.provider === names.alpha ? testbed.cluster('alpha') : testbed.cluster('beta'));

/** Whether a matchLabels selector picks the pod (what a NetworkPolicy implementation does). */
const selects = (matchLabels: Record<string, string> | undefined, pod: V1Pod) =>
  Object.entries(matchLabels ?? {}).every(([k, v]) => pod.metadata?.labels?.[k] === v);
const envOf = (pod: V1Pod) => Object.fromEntries((pod.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value]));

describe('gang rendezvous', () => {
  it('a 4-replica gang gets a headless Service whose endpoints are its pods, the env set, and a NetworkPolicy selecting exactly its pods', async () => {
    await apply(jobYaml('gang4', { replicas: 4, gpusPerReplica: 4, placement: { regions: ['eu-west'] } }));
    const job = await waitPhase('gang4', 'Running');
    const alpha = testbed.cluster('alpha');
    const pods = await waitFor('4 pods with IPs', async () => {
      const pods = await podsOf(alpha, job);
      return pods.length === 4 && pods.every((p) => p.status?.podIP) ? pods : undefined;
    });
    const { services, policies } = await madeAttemptObjects(alpha, job, (o) => o.services.length > 0 && o.policies.length > 0);
    expect(services).toHaveLength(1);
    const svc = services[0]!;
    expect(svc.spec?.clusterIP).toBe('None');
    // The endpoint-slice controller of the provider's own kube-controller-manager fills it from the selector.
    const slices = await waitFor('endpoints of all 4 replicas', async () => {
      const list = await alpha.kubeConfig.makeApiClient(DiscoveryV1Api).listEndpointSliceForAllNamespaces({ labelSelector: `kubernetes.io/service-name=${svc.metadata!.name}` });
      const endpoints = list.items.flatMap((s) => s.endpoints ?? []);
      return endpoints.length === 4 ? endpoints : undefined;
    });
    expect(slices.map((e) => e.addresses[0]).sort()).toEqual(pods.map((p) => p.status!.podIP!).sort());
    expect(slices.map((e) => e.hostname).sort()).toEqual(pods.map((p) => p.metadata!.name!).sort());

    const service = svc.metadata!.name!;
    for (const pod of pods) {
      const rank = pod.metadata!.labels!['fedgpu.io/replica']!;
      expect(pod.spec?.hostname).toBe(pod.metadata?.name);
      expect(pod.spec?.subdomain).toBe(service);
      expect(envOf(pod)).toMatchObject({
        MASTER_ADDR: `${service}-r0.${service}.${pod.metadata!.namespace}.svc`,
        MASTER_PORT: '29500',
        WORLD_SIZE: '4',
        RANK: rank,
        NODE_RANK: rank,
        PET_NNODES: '4',
        PET_NPROC_PER_NODE: '4',
        PET_NODE_RANK: rank,
        PET_MASTER_ADDR: `${service}-r0.${service}.${pod.metadata!.namespace}.svc`,
        PET_MASTER_PORT: '29500',
        FEDGPU_WORLD_GPUS: '16',
        FEDGPU_REPLICA: rank,
      });
    }
    // One policy per attempt, named like it: the gang on every port, and the job's egress need.
    expect(policies.map((p) => p.metadata?.name)).toEqual([service]);
    const gang = policies[0]!;
    expect(gang.spec?.policyTypes).toEqual(['Ingress', 'Egress']);
    const everyPod = (await core(alpha).listPodForAllNamespaces({ labelSelector: 'fedgpu.io/job-uid' })).items;
    expect(everyPod.filter((p) => selects(gang.spec?.podSelector?.matchLabels, p)).map((p) => p.metadata?.name).sort()).toEqual(pods.map((p) => p.metadata?.name).sort());
    // The default egress need is DNS: beyond the gang, port 53 only.
    expect(gang.spec?.egress?.flatMap((r) => r.ports ?? []).map((p) => p.port)).toEqual([53, 53]);

    await deleteJob('gang4');
    await waitObjectsGone(alpha, job, 'gang4 Service and policies deleted with the job');
  });

  it('two gangs of two consumers on one provider are kept apart by their policies', async () => {
    await apply(jobYaml('pair', { replicas: 2, placement: { regions: ['eu-west'] } }, { namespace: 'ml' }));
    await apply(jobYaml('pair', { replicas: 2, placement: { regions: ['eu-west'] } }, { namespace: 'ml2' }));
    const a = await waitPhase('pair', 'Running', 'ml');
    const b = await waitPhase('pair', 'Running', 'ml2');
    const alpha = testbed.cluster('alpha');
    const podsA = await podsOf(alpha, a);
    const podsB = await podsOf(alpha, b);
    expect(podsA).toHaveLength(2);
    expect(podsB).toHaveLength(2);
    for (const [mine, theirs, job] of [[podsA, podsB, a], [podsB, podsA, b]] as const) {
      const [gang, ...more] = (await madeAttemptObjects(alpha, job, (o) => o.policies.length > 0)).policies;
      expect(more).toEqual([]);
      const spec = gang!.spec!;
      // Selects its own pods and none of the other consumer's ...
      expect(mine.every((p) => selects(spec.podSelector?.matchLabels, p))).toBe(true);
      expect(theirs.some((p) => selects(spec.podSelector?.matchLabels, p))).toBe(false);
      // ... admits traffic only from its own pods, and sends on every port only to them (no
      // namespace-wide peer; DNS aside, which is port 53 only).
      const from = spec.ingress!.flatMap((r) => r._from ?? []);
      const to = spec.egress!.filter((r) => !r.ports).flatMap((r) => r.to ?? []);
      for (const peer of [...from, ...to]) {
        expect(peer.namespaceSelector).toBeUndefined();
        expect(theirs.some((p) => selects(peer.podSelector?.matchLabels, p))).toBe(false);
        expect(mine.every((p) => selects(peer.podSelector?.matchLabels, p))).toBe(true);
      }
    }
    await deleteJob('pair', 'ml');
    await deleteJob('pair', 'ml2');
    await waitObjectsGone(alpha, a, 'ml/pair objects gone');
    await waitObjectsGone(alpha, b, 'ml2/pair objects gone');
  });
});

describe('a gang whose replica fails', () => {
  it('ends the attempt: the agent stops the replicas still running, and keeps the failed one for its log', async () => {
    await apply(jobYaml('halfdead', { replicas: 2, placement: { regions: ['eu-west'] } }));
    const job = await waitPhase('halfdead', 'Running');
    const alpha = testbed.cluster('alpha');
    const pods = await podsOf(alpha, job);
    expect(pods).toHaveLength(2);
    const [failing, survivor] = pods.map((p) => ({ name: p.metadata!.name!, namespace: p.metadata!.namespace! }));
    // Replica 0's process exits (an OOM, a crash); replica 1 would wait on it in a collective for ever.
    await kubectl(alpha, ['patch', 'pod', failing!.name, '-n', failing!.namespace, '--subresource=status', '--type=merge', '-p', '{"status":{"phase":"Failed","reason":"","message":"the test failed it"}}']);
    const failed = await waitPhase('halfdead', 'Failed');
    expect(failed.status?.attempts?.at(-1)?.reason).toBe('ContainerFailed');
    await waitFor('the surviving replica stopped', async () => {
      const left = await core(alpha).readNamespacedPod({ name: survivor!.name, namespace: survivor!.namespace }).catch((err: { code?: number }) => (err.code === 404 ? undefined : Promise.reject(err)));
      return left === undefined || left.metadata?.deletionTimestamp ? true : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250 });
    const kept = await core(alpha).readNamespacedPod(failing!);
    expect(kept.metadata?.deletionTimestamp).toBeUndefined();
    await deleteJob('halfdead');
  });
});

describe('secrets to the winner only', () => {
  const token = `tok-${randomBytes(12).toString('hex')}`;
  const variants = [token, Buffer.from(token).toString('base64')];

  async function secretsHolding(cluster: Cluster): Promise<string[]> {
    const list = await core(cluster).listSecretForAllNamespaces({ labelSelector: 'fedgpu.io/job-uid' });
    return list.items.filter((s) => Object.values(s.data ?? {}).some((v) => Buffer.from(v, 'base64').toString() === token)).map((s) => s.metadata!.name!);
  }

  async function expectNowhereOnTheHub(name: string): Promise<void> {
    const job = JSON.stringify(await getJob(name));
    const events = await kubectl(hubCluster(), ['get', 'events', '-n', 'ml', '-o', 'json']);
    const logs = [readFileSync(join(runDir, 'hub.log'), 'utf8'), ...Object.values(agents).map((a) => readFileSync(a.process.logPath, 'utf8'))];
    for (const v of variants) {
      expect(job).not.toContain(v);
      expect(events).not.toContain(v);
      for (const log of logs) expect(log).not.toContain(v);
    }
  }

  beforeAll(async () => {
    await kubectl(hubCluster(), ['create', 'secret', 'generic', 'hf', '-n', 'ml', `--from-literal=token=${token}`]);
    // The hub runs with the chart's identity, which reads no Secret: the consumer's grant of docs/secrets.md
    // (it names `absent` too: without a grant a missing Secret and a forbidden one look alike, a 403).
    await kubectl(hubCluster(), ['create', 'role', 'fedgpu-hub-job-secrets', '-n', 'ml', '--verb=get', '--resource=secrets', '--resource-name=hf', '--resource-name=absent']);
    await kubectl(hubCluster(), ['create', 'rolebinding', 'fedgpu-hub-job-secrets', '-n', 'ml', '--role=fedgpu-hub-job-secrets', `--serviceaccount=${HUB_RELEASE_NAMESPACE}:${HUB_RELEASE}`]);
  });

  it('reaches only the agent running the attempt, appears nowhere on the hub, and is gone when the attempt ends', async () => {
    await apply(jobYaml('reads-secret', { secrets: [{ name: 'hf', env: [{ name: 'HF_TOKEN', key: 'token' }], mountPath: '/var/run/secrets/hf' }] }, { runFor: '600s' }));
    const job = await waitPhase('reads-secret', 'Running');
    const winner = clusterOf(job);
    const other = winner === testbed.cluster('alpha') ? testbed.cluster('beta') : testbed.cluster('alpha');
    expect(await secretsHolding(winner)).toHaveLength(1);
    expect(await secretsHolding(other)).toEqual([]);
    const [pod] = await podsOf(winner, job);
    const env = pod!.spec!.containers[0]!.env!.find((e) => e.name === 'HF_TOKEN')!;
    expect(env.value).toBeUndefined();
    expect(env.valueFrom?.secretKeyRef?.name).toMatch(/-secrets$/);
    expect(pod!.spec!.containers[0]!.volumeMounts).toContainEqual(expect.objectContaining({ mountPath: '/var/run/secrets/hf', readOnly: true }));
    expect(JSON.stringify(pod)).not.toContain(token);
    await endSimulatedPods(winner, job);
    await waitPhase('reads-secret', 'Succeeded');
    await waitFor('the attempt Secret deleted once the attempt ended', async () => ((await secretsHolding(winner)).length === 0 ? true : undefined));
    await expectNowhereOnTheHub('reads-secret');
  });

  it('after a failover the new winner gets it, the old provider deletes its copy when it reconnects, and deletion removes the last', async () => {
    await apply(jobYaml('fails-over', { secrets: [{ name: 'hf', env: [{ name: 'HF_TOKEN', key: 'token' }] }] }));
    const first = await waitPhase('fails-over', 'Running');
    const lostName = first.status!.placement!.provider!;
    const lost = lostName === names.alpha ? 'alpha' : 'beta';
    const survivor = lost === 'alpha' ? 'beta' : 'alpha';
    expect(await secretsHolding(testbed.cluster(lost))).toHaveLength(1);
    expect(await secretsHolding(testbed.cluster(survivor))).toEqual([]);

    await agents[lost]!.process.stop(1);
    const moved = await waitFor('fails-over running on the survivor', async () => {
      const job = await getJob('fails-over');
      return job.status?.phase === 'Running' && job.status.placement?.provider === names[survivor] ? job : undefined;
    }, { timeoutMs: 120_000, intervalMs: 500 });
    expect(moved.status?.attempts?.[0]).toMatchObject({ outcome: 'Lost', provider: lostName });
    expect(await secretsHolding(testbed.cluster(survivor))).toHaveLength(1);
    // The lost provider's cluster still holds its copy while its agent is away ...
    expect(await secretsHolding(testbed.cluster(lost))).toHaveLength(1);
    await agents[lost]!.restart();
    // ... and its agent deletes it at the resync after reconnecting.
    await waitFor('the old copy deleted after reconnect', async () => ((await secretsHolding(testbed.cluster(lost))).length === 0 ? true : undefined), { timeoutMs: 90_000 });
    await waitFor(`${lost} Ready again`, async () => {
      const gp = await providerClient(hubCluster()).byWallet(agents[lost]!.wallet.address);
      return readyStatus(gp)?.status === 'True' ? true : undefined;
    }, { timeoutMs: 90_000 });

    await deleteJob('fails-over');
    await waitFor('the survivor copy deleted with the job', async () => ((await secretsHolding(testbed.cluster(survivor))).length === 0 ? true : undefined));
    await expectNowhereOnTheHub('reads-secret');
  });

  it('a job whose Secret does not exist waits and says which', async () => {
    // Not granted: the hub cannot tell a missing Secret from a forbidden one, and asks for the grant.
    await apply(jobYaml('ungranted-secret', { secrets: [{ name: 'elsewhere', env: [{ name: 'X', key: 'x' }] }] }));
    const ungranted = await waitFor('ungranted-secret explains itself', async () => {
      const job = await getJob('ungranted-secret');
      return job.status?.message?.startsWith('waiting for') ? job : undefined;
    });
    expect(ungranted.status?.message).toBe('waiting for a RoleBinding in namespace ml that lets the hub get Secret ml/elsewhere (see docs/secrets.md)');
    await deleteJob('ungranted-secret');
    await apply(jobYaml('no-secret', { secrets: [{ name: 'absent', env: [{ name: 'X', key: 'x' }] }] }));
    const job = await waitFor('no-secret explains itself', async () => {
      const job = await getJob('no-secret');
      return job.status?.message?.startsWith('waiting for') ? job : undefined;
    });
    expect(job.status?.message).toBe('waiting for Secret ml/absent (spec.secrets names it)');
    expect(job.status?.conditions?.find((c) => c.type === 'Scheduled')).toMatchObject({ status: 'False', reason: 'WaitingForSecrets' });
    expect(job.status?.attempts ?? []).toEqual([]);
    await deleteJob('no-secret');
  });
});

describe('egress profiles', () => {
  it('a job needing internet waits with the reason where no pool offers it, and is placed where one does', async () => {
    const market = await kubectl(hubCluster(), ['get', 'gp', '-o', 'json']);
    const pools = (JSON.parse(market) as { items: { metadata: { name: string }; status?: { pools?: { egress?: { mode?: string } }[] } }[] }).items;
    expect(pools.find((p) => p.metadata.name === names.beta)?.status?.pools?.[0]?.egress?.mode).toBe('internet');
    expect(pools.find((p) => p.metadata.name === names.alpha)?.status?.pools?.[0]?.egress?.mode ?? 'dns').toBe('dns');

    await apply(jobYaml('downloads', { network: { egress: { mode: 'internet' } }, placement: { regions: ['eu-west'] } }));
    const waiting = await waitFor('downloads explains itself', async () => {
      const job = await getJob('downloads');
      return job.status?.message?.includes('egress') ? job : undefined;
    });
    expect(waiting.status?.message).toBe('0/2 providers fit: 1 egress internet not offered, 1 region us-east not in eu-west');
    await kubectl(hubCluster(), ['patch', 'gj', 'downloads', '-n', 'ml', '--type=merge', '-p', JSON.stringify({ spec: { placement: { regions: ['eu-west', 'us-east'] } } })]);
    const running = await waitPhase('downloads', 'Running');
    expect(running.status?.placement?.provider).toBe(names.beta);
    const { policies } = await madeAttemptObjects(testbed.cluster('beta'), running, (o) => o.policies.length > 0);
    // The attempt's one policy: the gang, DNS, then every public address.
    expect(policies).toHaveLength(1);
    expect(policies[0]!.spec?.egress?.[2]?.to?.[0]?.ipBlock).toEqual({ cidr: '0.0.0.0/0', except: NON_PUBLIC_V4 });
    expect(NON_PUBLIC_V4).toEqual(expect.arrayContaining(['10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16']));
    await deleteJob('downloads');
    await waitObjectsGone(testbed.cluster('beta'), running, 'downloads objects gone');
  });
});

describe('API and examples', () => {
  it('the examples apply as they are, kubectl explain says what providers can see, and bad fields are refused by name', async () => {
    for (const f of ['gpujob-torchrun-gang.yaml', 'gpujob-secret.yaml', 'gpujob-internet.yaml']) {
      await kubectl(hubCluster(), ['apply', '--dry-run=server', '-n', 'ml', '-f', join(repoRoot, 'examples', f)]);
    }
    const explain = await kubectl(hubCluster(), ['explain', 'gpujob.spec.secrets']);
    expect(explain.replace(/\s+/g, ' ')).toContain("The provider's administrators can read whatever their cluster runs and mounts");
    const refused = async (spec: Record<string, unknown>) => {
      const res = await hubCluster().kubectl(['apply', '--dry-run=server', '-f', '-'], jobYaml('bad', spec));
      expect(res.code).not.toBe(0);
      return res.stderr;
    };
    expect(await refused({ secrets: [{ name: 'hf' }] })).toContain('set env, mountPath or both');
    expect(await refused({ network: { egress: { mode: 'cidrs' } } })).toContain('mode cidrs needs at least one destination');
    expect(await refused({ network: { egress: { mode: 'everything' } } })).toMatch(/spec.network.egress.mode: Unsupported value: "everything"/);
  });
});

describe('a resync too large for one message', () => {
  it('reaches the agent in parts: the attempts assigned while it was away all run once it is back', async () => {
    // Before parts, a provider's Resync over the message limit was not sent at all, so Assigns that
    // found no stream (a consumer's large templates could push it there) never arrived.
    const alpha = agents.alpha!;
    await alpha.process.stop();
    const jobs = ['part-a', 'part-b', 'part-c'];
    try {
      // Placed while its stream is down but it still counts as a blip (providerLostAfter 8 s).
      for (const name of jobs) await apply(jobYaml(name, { replicas: 2, placement: { regions: ['eu-west'] } }));
      for (const name of jobs) {
        await waitFor(`${name} placed on alpha`, async () => ((await getJob(name)).status?.placement?.provider === names.alpha ? true : undefined), { timeoutMs: 5_000, intervalMs: 100 });
      }
    } finally {
      await alpha.restart();
    }
    for (const name of jobs) {
      const running = await waitPhase(name, 'Running');
      expect(running.status?.attempts).toHaveLength(1); // delivered by the resync, not moved after a loss
    }
    const log = readFileSync(join(runDir, 'hub.log'), 'utf8');
    expect(log).toMatch(new RegExp(`"provider":"${names.alpha}","attempts":\\d+,"parts":\\d+.*"msg":"resync sent in parts"`));
    for (const name of jobs) await deleteJob(name);
  });
});
