import https from 'node:https';
import { AdmissionregistrationV1Api, CoreV1Api, KubeConfig, Watch, NetworkingV1Api, NodeV1Api, RbacAuthorizationV1Api, PatchStrategy, setHeaderOptions, type V1Node, type V1Pod, type V1PodTemplateSpec } from '@kubernetes/client-node';
import { mergePatch } from '../../operator/src/runtime/kube.js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PodRunner } from '../../operator/src/agent/pods/runner.js';
import { buildInventory } from '../../operator/src/agent/inventory.js';
import { placementProblem } from '../../operator/src/agent/placement.js';
import { shareOnNode } from '../../operator/src/agent/node-share.js';
import { RuntimeClassOverheads } from '../../operator/src/agent/runtime-overhead.js';
import { withoutOverhead } from '../../operator/src/core/isolation/share.js';
import { gpuNodes } from '../../operator/src/testbed/kwok/gpu-nodes.js';
import { ACCESS_BINDING_NAME, TenantNamespaces, tenantNamespaceName } from '../../operator/src/agent/tenancy/namespace.js';
import { QuotaWatch } from '../../operator/src/agent/tenancy/quota-watch.js';
import { attemptStatus } from '../../operator/src/agent/attempt/report.js';
import { attemptName } from '../../operator/src/agent/attempt/rendezvous.js';
import { validateAgentMessage } from '../../operator/src/protocol/validate.js';
import { gpusByContainer } from '../../operator/src/core/isolation/allowlist.js';
import { HOSTILE_GPUS_PER_REPLICA, HOSTILE_TEMPLATES } from '../../operator/src/core/isolation/testing/hostile-templates.js';
import type { Assign } from '../../operator/src/gen/proto/fedgpu/v1/market.js';
import { chartIdentity, type ChartIdentity } from '../../operator/src/testbed/chart-identity.js';
import { waitFor } from '../../operator/src/testbed/wait.js';

// The agent's side of provider isolation, against a real kube-apiserver with PodSecurity
// admission: assignments sent straight to the pod runner (as a hostile or buggy hub would, the
// hub's admission bypassed) are refused with the field and no pod is made; each consumer gets a
// namespace of its own, restricted, default-deny, with a quota of what it paid for; a namespace
// that does not enforce restricted gets no pod; an apiserver refusal ends the attempt without
// stopping the next one.

const kubeconfig = inject('kubeconfig');
const kc = new KubeConfig();
kc.loadFromFile(kubeconfig);
const core = kc.makeApiClient(CoreV1Api);
const net = kc.makeApiClient(NetworkingV1Api);
const silent = pino({ level: process.env.DEBUG_AGENT ? 'debug' : 'silent' });
const PREFIX = `iso${process.pid % 10000}`;
const notRestricted: string[] = [];
// The agent runs as the chart makes it run: its ServiceAccount, ClusterRole and admission policy
// rendered by helm, never as system:masters; a permission the chart lacks fails these tests.
let identity: ChartIdentity;
let tenancy: TenantNamespaces;
let runner: PodRunner;

const ok = { metadata: { annotations: { 'fedgpu.io/sim-run-for': '30s' } }, spec: { containers: [{ name: 'main', image: 'example/train:v1' }] } };
let seq = 0;
function assign(tenant: string, template: V1PodTemplateSpec, replicas = 1, gpus = HOSTILE_GPUS_PER_REPLICA): Assign {
  seq++;
  return {
    jobUid: `0000${seq}-1111-4222-8333-${String(process.pid).padStart(12, '0')}`,
    epoch: 1,
    namespace: tenant,
    podTemplates: Array.from({ length: replicas }, () => Buffer.from(JSON.stringify(template))),
    nodeNames: Array.from({ length: replicas }, (_, i) => `gpu-node-${i}`),
    gpusPerReplica: gpus,
    checkpointDir: '',
    gracePeriodSeconds: 5,
    env: [{ name: 'FEDGPU_JOB', value: `${tenant}/job-${seq}` }],
    pricePerGpuHour: '1',
    coveredGpuSeconds: 0,
    secrets: [],
    secretsWithheld: false,
  };
}
const key = (a: Assign) => `${a.jobUid}/${a.epoch}`;

/** POST to a pod's exec, attach or portforward subresource with the agent's own token: status and message. */
async function connectAsAgent(namespace: string, pod: string, sub: string): Promise<{ status: number; message: string }> {
  const query = sub === 'portforward' ? 'ports=22' : 'container=c&stdout=true&command=id';
  const url = new URL(`${identity.kubeConfig.getCurrentCluster()!.server}/api/v1/namespaces/${namespace}/pods/${pod}/${sub}?${query}`);
  const options: https.RequestOptions = { method: 'POST', hostname: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, headers: {} };
  await identity.kubeConfig.applyToHTTPSOptions(options);
  return new Promise((resolve, reject) => {
    const req = https.request(options, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        let message = body;
        try {
          message = (JSON.parse(body) as { message?: string }).message ?? body;
        } catch {
          // not a Status
        }
        resolve({ status: res.statusCode ?? 0, message });
      });
    });
    req.on('error', reject);
    req.end();
  });
}
const podsOf = async (a: Assign) => (await core.listPodForAllNamespaces({ labelSelector: `fedgpu.io/job-uid=${a.jobUid}` })).items;
const managedNamespaces = async () =>
  (await core.listNamespace({ labelSelector: 'app.kubernetes.io/managed-by=fedgpu-agent' })).items
    .filter((n) => n.metadata?.name?.startsWith(`${PREFIX}-`) && !n.metadata.deletionTimestamp)
    .map((n) => n.metadata!.name!);

let started = 0;
beforeAll(async () => {
  identity = await chartIdentity(kubeconfig, 'iso-agent', `${PREFIX}sys`, [
    '--set', 'mode=provider', '--set', 'hub.address=hub.example.com:8443', '--set', 'provider.wallet=0x70997970C51812dc3A010C7d01b50e0d17dc79C8',
    '--set-string', 'provider.settings.pricePerGpuHour.NVIDIA-H100-80GB-HBM3=2.40', '--set', `provider.jobNamespace=${PREFIX}`,
  ]);
  // As the chart's agent runs: logs, exec and port-forward through the binding it makes per tenant namespace.
  tenancy = new TenantNamespaces(identity.kubeConfig, {
    prefix: PREFIX,
    onNotRestricted: (ns) => notRestricted.push(ns),
    accessRole: { clusterRole: `${identity.username.split(':').at(-1)}-tenant-access`, user: () => identity.username },
  }, silent);
  runner = new PodRunner(identity.kubeConfig, tenancy, silent);
  started = Date.now();
});
afterAll(async () => {
  runner.stop();
  await identity.remove();
  for (const name of await managedNamespaces().catch(() => [])) await core.deleteNamespace({ name }).catch(() => undefined);
  await core.deleteNamespace({ name: tenantNamespaceName(PREFIX, 'relabelled') }).catch(() => undefined);
});

describe('the agent refuses hostile templates sent straight to it', () => {
  const hostileStarted = Date.now();
  afterAll(() => console.log(`agent: ${HOSTILE_TEMPLATES.length} hostile assignments refused in ${Date.now() - hostileStarted} ms`));

  it.each(HOSTILE_TEMPLATES.map((h) => [h.name, h] as const))('%s', async (_name, hostile) => {
    const a = assign('team-hostile', hostile.template);
    await runner.apply(a);
    const reason = runner.refused.get(key(a));
    expect(reason).toMatch(/^PodSecurityRefused: /);
    expect(reason).toContain(`template.${hostile.path}:`);
    expect(await podsOf(a)).toEqual([]);
  });

  it('made no namespace for a consumer whose every template was refused', async () => {
    expect(await managedNamespaces()).not.toContain(tenantNamespaceName(PREFIX, 'team-hostile'));
  });
});

describe('one namespace per consumer', () => {
  const a = assign('team-a', ok, 2, 2);
  const b = assign('team-b', {
    ...ok,
    spec: { containers: [{ name: 'main', image: 'example/train:v1' }, { name: 'side', image: 'example/side:v1' }] },
  });

  it('puts two consumers in two namespaces, restricted and closed to each other', async () => {
    await runner.apply(a);
    await runner.apply(b);
    expect(runner.refused.get(key(a))).toBeUndefined();
    const [podsA, podsB] = [await podsOf(a), await podsOf(b)];
    expect(podsA).toHaveLength(2);
    expect(podsB).toHaveLength(1);
    const nsA = podsA[0]!.metadata!.namespace!;
    const nsB = podsB[0]!.metadata!.namespace!;
    expect(nsA).toBe(tenantNamespaceName(PREFIX, 'team-a'));
    expect(nsB).toBe(tenantNamespaceName(PREFIX, 'team-b'));
    expect(nsA).not.toBe(nsB);
    for (const ns of [nsA, nsB]) {
      const labels = (await core.readNamespace({ name: ns })).metadata?.labels;
      expect(labels).toMatchObject({ 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/enforce-version': 'latest' });
      // Default deny: a policy selecting every pod for both directions, and no policy of the
      // namespace admits ingress from anywhere, so the other consumer's pods cannot reach these.
      const policies = (await net.listNamespacedNetworkPolicy({ namespace: ns })).items;
      const deny = policies.find((p) => p.metadata?.name === 'fedgpu-default-deny');
      expect(deny?.spec).toMatchObject({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
      expect(deny?.spec?.ingress ?? []).toEqual([]);
      expect(deny?.spec?.egress ?? []).toEqual([]);
      // The only ingress any policy admits is an attempt's own pods (its gang rendezvous): peers
      // chosen by the attempt's labels in this namespace, never another namespace or an address.
      for (const p of policies) {
        for (const rule of p.spec?.ingress ?? []) {
          for (const peer of rule._from ?? []) {
            expect(peer.namespaceSelector, p.metadata?.name).toBeUndefined();
            expect(peer.ipBlock, p.metadata?.name).toBeUndefined();
            expect(peer.podSelector?.matchLabels, p.metadata?.name).toEqual(p.spec?.podSelector?.matchLabels);
            expect(Object.keys(peer.podSelector?.matchLabels ?? {}).sort()).toEqual(['fedgpu.io/epoch', 'fedgpu.io/job-uid']);
          }
        }
      }
      // Egress: DNS only, on port 53.
      const egressPorts = policies.flatMap((p) => p.spec?.egress ?? []).flatMap((r) => r.ports ?? []).map((x) => x.port);
      expect(new Set(egressPorts)).toEqual(new Set([53]));
      const sa = await core.readNamespacedServiceAccount({ name: 'default', namespace: ns });
      expect(sa.automountServiceAccountToken).toBe(false);
    }
    // The pair has a policy of its own (its pods reach each other); the lone pod, asking only
    // DNS, has none: the namespace's default deny and DNS rule already say all it needs.
    const names = async (ns: string) => (await net.listNamespacedNetworkPolicy({ namespace: ns })).items.map((p) => p.metadata?.name).sort();
    expect(await names(nsA)).toEqual(['fedgpu-allow-dns', 'fedgpu-default-deny', attemptName(a.jobUid, a.epoch)].sort());
    expect(await names(nsB)).toEqual(['fedgpu-allow-dns', 'fedgpu-default-deny']);
    const quotaA = await core.readNamespacedResourceQuota({ name: 'fedgpu-attempts', namespace: nsA });
    expect(quotaA.spec?.hard).toEqual({ pods: '2', 'requests.nvidia.com/gpu': '4' });
    const limits = await core.readNamespacedLimitRange({ name: 'fedgpu-containers', namespace: nsB });
    expect(limits.spec?.limits[0]?.max).toEqual({ 'ephemeral-storage': '200Gi' });
  });

  it('gives GPUs to the billed container only, and runs every pod as a locked-down non-root user', async () => {
    const [pod] = await podsOf(b);
    expect(gpusByContainer(pod!)).toEqual({ main: HOSTILE_GPUS_PER_REPLICA, side: 0 });
    expect(pod!.spec).toMatchObject({ automountServiceAccountToken: false, enableServiceLinks: false, securityContext: { runAsNonRoot: true, runAsUser: 65532 } });
    for (const c of pod!.spec!.containers) {
      expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' }, readOnlyRootFilesystem: true });
      // The GPU variables are the device plugin's on the billed container; every other one is told
      // to see none, whatever its image says.
      const gpuEnv = c.env?.filter((e) => e.name.startsWith('NVIDIA_') || e.name === 'CUDA_VISIBLE_DEVICES');
      expect(gpuEnv).toEqual(c.name === 'main' ? [] : [{ name: 'NVIDIA_VISIBLE_DEVICES', value: 'void' }]);
    }
  });

  it('PodSecurity restricted in the tenant namespace refuses what the allowlist would, as a last line', async () => {
    const ns = tenantNamespaceName(PREFIX, 'team-a');
    const res = await core.createNamespacedPod({ namespace: ns, body: { metadata: { name: 'raw-root' }, spec: { hostNetwork: true, containers: [{ name: 'c', image: 'x', securityContext: { runAsUser: 0, capabilities: { add: ['NET_ADMIN'] } } }] } } }).catch((e: unknown) => e as { code: number; body: string });
    expect((res as { code: number }).code).toBe(403);
    expect(JSON.parse((res as { body: string }).body).message).toContain('violates PodSecurity "restricted:latest": host namespaces');
  });

  it('deletes a consumer\'s namespace when its last attempt is gone', async () => {
    await runner.cancel(b.jobUid, b.epoch, 0);
    const nsB = tenantNamespaceName(PREFIX, 'team-b');
    await waitFor('team-b namespace deleting', async () => ((await managedNamespaces()).includes(nsB) ? undefined : true), { timeoutMs: 30_000 });
    expect(await managedNamespaces()).toContain(tenantNamespaceName(PREFIX, 'team-a'));
  });

  it('runs a consumer\'s new attempt that arrives while its old namespace is still being deleted', async () => {
    const again = assign('team-b', ok);
    await runner.apply(again);
    expect(runner.refused.get(key(again))).toBeUndefined();
    const pods = await waitFor('the new attempt\'s pod', async () => ((await podsOf(again)).length === 1 ? podsOf(again) : undefined), { timeoutMs: 120_000 });
    expect(pods[0]!.metadata?.namespace).toBe(tenantNamespaceName(PREFIX, 'team-b'));
  });
});

describe('the chart\'s agent identity', () => {
  it('is what the runner uses, and it cannot write outside its tenant namespaces', async () => {
    expect(identity.username).toBe(`system:serviceaccount:${PREFIX}sys:iso-agent-fedgpu`);
    const asAgent = identity.kubeConfig.makeApiClient(CoreV1Api);
    const err = await asAgent.createNamespacedPod({ namespace: 'default', body: { metadata: { name: 'escape' }, spec: { containers: [{ name: 'c', image: 'x' }] } } }).catch((e: unknown) => e as { code: number; body: string });
    // RBAC lets it (tenant namespaces are made on demand); the chart's admission policy does not.
    expect((err as { code: number }).code).toBe(422);
    expect(JSON.parse((err as { body: string }).body).message).toContain('may only write pods in its tenant namespaces');
    const secrets = await asAgent.listNamespacedSecret({ namespace: `${PREFIX}sys` }).catch((e: unknown) => e as { code: number });
    expect((secrets as { code: number }).code).toBe(403);
  });

  it('cannot, inside its own tenant namespaces, name a node, leave the GPU nodes, take a system priority, mount a token or expose a Service (a stolen agent token)', async () => {
    const [ownPod] = (await core.listPodForAllNamespaces({ labelSelector: 'app.kubernetes.io/managed-by=fedgpu-agent' })).items.filter((p) => p.metadata?.namespace?.startsWith(`${PREFIX}-`));
    const tenant = ownPod!.metadata!.namespace!;
    const asAgent = identity.kubeConfig.makeApiClient(CoreV1Api);
    const refusal = (p: Promise<unknown>) => p.then(() => 'accepted', (e: { code?: number; body?: string }) => `${e.code}: ${JSON.parse(e.body ?? '{}').message ?? ''}`);
    // PodSecurity restricted is met, so the policy's own rule is what answers.
    const restricted = { securityContext: { runAsNonRoot: true, runAsUser: 65532, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } } };
    const container = { name: 'c', image: 'x', ...restricted, resources: { limits: { 'nvidia.com/gpu': '1' } } };
    const pod = (name: string, spec: Record<string, unknown>) => ({ metadata: { name }, spec: { automountServiceAccountToken: false, containers: [container], ...spec } });
    const podRule = 'the agent\'s pods name no node, no system priority class, and mount no service account token';
    // Past the scheduler and every taint (the control plane's too).
    expect(await refusal(asAgent.createNamespacedPod({ namespace: tenant, body: pod('pinned', { nodeName: 'control-plane-0' }) }))).toContain(podRule);
    expect(await refusal(asAgent.createNamespacedPod({ namespace: tenant, body: pod('critical', { priorityClassName: 'system-node-critical' }) }))).toContain(podRule);
    expect(await refusal(asAgent.createNamespacedPod({ namespace: tenant, body: { metadata: { name: 'token' }, spec: { containers: [container] } } }))).toContain(podRule);
    // On any node but a GPU node (no GPU asked), or on the control plane (its taint tolerated).
    expect(await refusal(asAgent.createNamespacedPod({ namespace: tenant, body: pod('cpu-only', { containers: [{ ...container, resources: {} }] }) })))
      .toContain('the agent\'s pods ask for at least one GPU on their first container');
    const controlPlane = [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }];
    expect(await refusal(asAgent.createNamespacedPod({ namespace: tenant, body: pod('on-control-plane', { tolerations: controlPlane }) })))
      .toContain('the agent\'s pods tolerate only nvidia.com/gpu, node.kubernetes.io/not-ready, node.kubernetes.io/unreachable');
    expect(await refusal(asAgent.createNamespacedPod({ namespace: tenant, body: pod('anywhere', { tolerations: [{ operator: 'Exists' }] }) })))
      .toContain('the agent\'s pods tolerate only');
    const service = (name: string, spec: Record<string, unknown>) => ({ metadata: { name }, spec: { ports: [{ port: 80 }], ...spec } });
    const serviceRule = 'the agent\'s Services are headless ClusterIP Services without external IPs';
    expect(await refusal(asAgent.createNamespacedService({ namespace: tenant, body: service('mitm', { clusterIP: 'None', externalIPs: ['203.0.113.10'] }) }))).toContain(serviceRule);
    expect(await refusal(asAgent.createNamespacedService({ namespace: tenant, body: service('exposed', { type: 'NodePort' }) }))).toContain(serviceRule);
    expect(await refusal(asAgent.createNamespacedService({ namespace: tenant, body: service('virtual', {}) }))).toContain(serviceRule);
    // A tenant namespace at an old PodSecurity version (v1.0 lets pods keep default capabilities).
    const old = await refusal(asAgent.createNamespace({ body: { metadata: { name: `${PREFIX}-old-psa`, labels: { 'app.kubernetes.io/managed-by': 'fedgpu-agent', 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/enforce-version': 'v1.0' } } } }));
    expect(old).toContain('with PodSecurity restricted enforced at the latest version');
    // What the agent itself makes still passes: a headless Service, as for a gang.
    const headless = await refusal(asAgent.createNamespacedService({ namespace: tenant, body: service('rendezvous', { clusterIP: 'None' }) }));
    expect(headless).toBe('accepted');
    await asAgent.deleteNamespacedService({ name: 'rendezvous', namespace: tenant });
  });

  it("reads logs only in its tenant namespaces, through the one binding it may write there (a stolen agent token)", async () => {
    const [ownPod] = (await core.listPodForAllNamespaces({ labelSelector: 'app.kubernetes.io/managed-by=fedgpu-agent' })).items.filter((p) => p.metadata?.namespace?.startsWith(`${PREFIX}-`));
    const tenant = ownPod!.metadata!.namespace!;
    const role = `${identity.username.split(':').at(-1)}-tenant-access`;
    // The binding the agent made when it prepared the namespace: its tenant-access role, to itself.
    const binding = await kc.makeApiClient(RbacAuthorizationV1Api).readNamespacedRoleBinding({ name: ACCESS_BINDING_NAME, namespace: tenant });
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role });
    expect(binding.subjects).toEqual([{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: identity.username }]);
    const asAgent = identity.kubeConfig.makeApiClient(CoreV1Api);
    const logOf = (namespace: string, name: string) => asAgent.readNamespacedPodLog({ namespace, name }).then(() => 200, (e: { code?: number }) => e.code ?? 0);
    // kube-system's pods (their logs may hold tokens): refused by RBAC, as any namespace but its own.
    await core.createNamespacedPod({ namespace: 'default', body: { metadata: { name: `${PREFIX}-owner-app` }, spec: { containers: [{ name: 'c', image: 'x' }] } } });
    try {
      expect(await logOf('default', `${PREFIX}-owner-app`)).toBe(403);
      // Its own job pod: allowed (400 here only because no kubelet runs this test bed's pods).
      expect(await logOf(tenant, ownPod!.metadata!.name!)).not.toBe(403);
    } finally {
      await core.deleteNamespacedPod({ namespace: 'default', name: `${PREFIX}-owner-app` }).catch(() => undefined);
    }
    // Granting itself more: another role, another subject, or its role outside its tenant namespaces.
    const rbac = identity.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
    const bind = (namespace: string, roleName: string, user: string) => rbac.createNamespacedRoleBinding({
      namespace,
      body: { metadata: { name: `grab-${Math.random().toString(36).slice(2, 8)}` }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: roleName }, subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }] },
    }).then(() => 'created', (e: { code?: number; body?: string }) => `${e.code}: ${JSON.parse(e.body ?? '{}').message ?? ''}`);
    expect(await bind(tenant, 'admin', identity.username)).toMatch(/^403: .*cannot bind|^403: .*escalat|^403/);
    expect(await bind(tenant, role, 'mallory')).toContain(`the agent may only bind ${role}, to itself`);
    expect(await bind('default', role, identity.username)).toContain('the agent may only write rolebindings in its tenant namespaces');
  });

  it('cannot exec, attach or port-forward into a pod outside its tenant namespaces (a stolen agent token)', async () => {
    // A pod of the owner's (a privileged DaemonSet's, in kube-system, say): RBAC grants the agent
    // exec and port-forward cluster-wide for its consumers' sessions; the chart's policy fences them.
    const owner = `${PREFIX}-owner`;
    await core.createNamespace({ body: { metadata: { name: owner } } });
    await core.createNamespacedPod({ namespace: owner, body: { metadata: { name: 'victim' }, spec: { containers: [{ name: 'c', image: 'x' }] } } });
    try {
      // RBAC refuses first (the agent holds these rights only through its binding in each tenant
      // namespace); the admission policy fences CONNECT too, should a binding ever be wider.
      for (const sub of ['exec', 'portforward', 'attach']) {
        const answer = await connectAsAgent(owner, 'victim', sub);
        expect(answer.status, `${sub}: ${answer.message}`).toBe(403);
        expect(answer.message).toContain(`cannot create resource "pods/${sub}"`);
      }
      // Its own consumers' pods stay reachable: the same request passes admission there (and is
      // answered 400 only because no kubelet runs this test bed's pods).
      const [ownPod] = (await core.listPodForAllNamespaces({ labelSelector: 'app.kubernetes.io/managed-by=fedgpu-agent' })).items.filter((p) => p.metadata?.namespace?.startsWith(`${PREFIX}-`));
      const own = await connectAsAgent(ownPod!.metadata!.namespace!, ownPod!.metadata!.name!, 'exec');
      expect(own.message).not.toContain('the agent may only');
      expect(own.status).toBe(400);
    } finally {
      await core.deleteNamespace({ name: owner }).catch(() => undefined);
    }
  });
});

describe('the agent judges where a hub places an attempt', () => {
  it("refuses a node outside its offered GPU pools (the owner's database node), making nothing", async () => {
    // A CPU node of the owner's, as a real Node object: no GPUs, no GPU product label.
    await core.createNode({ body: { metadata: { name: `${PREFIX}-db-0`, labels: { 'kubernetes.io/hostname': `${PREFIX}-db-0` } } } });
    try {
      const pools = async () => buildInventory((await core.listNode()).items, [], { pricePerGpuHour: { 'NVIDIA-H100-80GB-HBM3': '2.40' } }, Date.now());
      let current = await pools();
      const judged = new PodRunner(identity.kubeConfig, tenancy, silent, {}, undefined, undefined, (a) => placementProblem(a, current));
      const hostile = { ...assign('team-db', ok), nodeNames: [`${PREFIX}-db-0`] };
      await judged.apply(hostile);
      expect(judged.refused.get(key(hostile))).toBe(`PlacementRefused: node ${PREFIX}-db-0 is not in a GPU pool of this provider`);
      expect(await podsOf(hostile)).toEqual([]);
      expect(await managedNamespaces()).not.toContain(tenantNamespaceName(PREFIX, 'team-db'));
      // No GPU for a replica is refused the same way, wherever it goes.
      current = await pools();
      const noGpu = { ...assign('team-db', ok), gpusPerReplica: 0 };
      await judged.apply(noGpu);
      expect(judged.refused.get(key(noGpu))).toMatch(/^PlacementRefused: gpusPerReplica 0: every replica of an attempt gets at least one GPU/);
      judged.stop();
    } finally {
      await core.deleteNode({ name: `${PREFIX}-db-0` }).catch(() => undefined);
    }
  });
});

describe("each replica gets CPU and memory limits within its share of the node (a stranger's pod takes no more)", () => {
  // A node of its own (8 GPUs, 64 CPU, 512Gi), with an owner's pod on it holding 4 CPU and 32Gi:
  // the jobs share the other 60 CPU and 480Gi, 7.5 CPU and 60Gi per GPU. This apiserver has no
  // kube-scheduler: the e2e test beds bind such pods (every job pod there carries its share).
  const run = Date.now().toString(36);
  const nodeName = `${PREFIX}-share${run}-0`;
  const ownerNs = `${PREFIX}-owner-${run}`;
  let shared: PodRunner;
  // The agent's caches, read with its own identity before each assignment.
  let nodes: V1Node[] = [];
  let pods: V1Pod[] = [];
  const agentCore = () => identity.kubeConfig.makeApiClient(CoreV1Api);
  const refresh = async () => {
    nodes = (await agentCore().listNode()).items;
    pods = (await agentCore().listPodForAllNamespaces()).items;
  };
  const onShareNode = (a: Assign): Assign => ({ ...a, nodeNames: a.nodeNames.map(() => nodeName) });
  const millicores = (q: string | undefined) => (q === undefined ? 0 : q.endsWith('m') ? Number(q.slice(0, -1)) : Number(q) * 1000);

  beforeAll(async () => {
    await core.createNode({ body: gpuNodes({ prefix: `${PREFIX}-share${run}`, count: 1, gpusPerNode: 8, product: 'NVIDIA-H100-80GB-HBM3', memoryMiB: 81559 })[0]! });
    await core.createNamespace({ body: { metadata: { name: ownerNs } } });
    await core.createNamespacedPod({ namespace: ownerNs, body: { metadata: { name: 'owner-daemon' }, spec: { nodeName, containers: [{ name: 'c', image: 'example/daemon:v1', resources: { requests: { cpu: '4', memory: '32Gi' } } }] } } });
    shared = new PodRunner(identity.kubeConfig, tenancy, silent, {
      shareFor: (node, gpus) => shareOnNode(nodes, pods, (p) => shared.isManaged(p), node, gpus),
    });
  });
  afterAll(async () => {
    shared?.stop();
    await core.deleteNamespace({ name: ownerNs }).catch(() => undefined);
    await core.deleteNode({ name: nodeName }).catch(() => undefined);
  });

  it('a template without limits gets its share of what the owner leaves as limits and requests', async () => {
    await refresh();
    const a = onShareNode(assign('team-share', ok, 1, 1));
    await shared.apply(a);
    expect(shared.refused.get(key(a))).toBeUndefined();
    const [pod] = await podsOf(a);
    expect(pod!.spec?.containers[0]?.resources?.limits).toMatchObject({ cpu: '7500m', memory: '60Gi', 'nvidia.com/gpu': '1' });
    expect(pod!.spec?.containers[0]?.resources?.requests).toMatchObject({ cpu: '7500m', memory: '60Gi', 'nvidia.com/gpu': '1' });
  });

  it("a node filled with job pods beside the owner's: their requests add up to what the node has, no more", async () => {
    await refresh();
    const gang = onShareNode(assign('team-share', { ...ok, spec: { containers: [{ name: 'main', image: 'example/train:v1', resources: { limits: { cpu: '2' } } }, { name: 'side', image: 'example/side:v1' }] } }, 7, 1));
    await shared.apply(gang);
    expect(shared.refused.get(key(gang))).toBeUndefined();
    const gangPods = await podsOf(gang);
    expect(gangPods).toHaveLength(7);
    // The consumer's own 2 CPU kept; the sidecar gets the rest of the share.
    expect(gangPods[0]!.spec?.containers.map((c) => c.resources?.limits?.cpu)).toEqual(['2', '5500m']);
    await refresh();
    const onNode = pods.filter((p) => p.spec?.nodeName === nodeName || p.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms[0]?.matchFields?.[0]?.values?.[0] === nodeName);
    const cpu = onNode.flatMap((p) => p.spec?.containers ?? []).reduce((sum, c) => sum + millicores(c.resources?.requests?.cpu), 0);
    expect(onNode).toHaveLength(9);
    expect(cpu).toBe(64_000);
  });

  it("a RuntimeClass's pod overhead comes out of the share: a node full of such pods, overhead included, asks what it has", async () => {
    // Another node of the same size; the owner runs job pods under a class whose VM costs 250m and 160Mi a pod.
    const kataNode = `${PREFIX}-kata${run}-0`;
    const kata = `${PREFIX}-kata-${run}`;
    await core.createNode({ body: gpuNodes({ prefix: `${PREFIX}-kata${run}`, count: 1, gpusPerNode: 8, product: 'NVIDIA-H100-80GB-HBM3', memoryMiB: 81559 })[0]! });
    await kc.makeApiClient(NodeV1Api).createRuntimeClass({ body: { metadata: { name: kata }, handler: 'kata', overhead: { podFixed: { cpu: '250m', memory: '160Mi' } } } });
    try {
      // Read with the chart's agent identity (get on runtimeclasses).
      const overheads = new RuntimeClassOverheads(identity.kubeConfig, [kata], silent);
      await overheads.refresh();
      expect(overheads.of(kata)).toEqual({ cpuMilli: 250, memoryBytes: 160 * 1024 * 1024 });
      const underKata = new PodRunner(identity.kubeConfig, tenancy, silent, {
        runtimeClassFor: () => kata,
        shareFor: (node, gpus) => {
          const share = shareOnNode(nodes, pods, (p) => underKata.isManaged(p), node, gpus);
          return share && withoutOverhead(share, overheads.of(kata));
        },
      });
      await refresh();
      const gang = { ...assign('team-kata', ok, 8, 1), nodeNames: Array(8).fill(kataNode) };
      await underKata.apply(gang);
      underKata.stop();
      expect(underKata.refused.get(key(gang))).toBeUndefined();
      const made = await podsOf(gang);
      expect(made).toHaveLength(8);
      // The apiserver's RuntimeClass admission put the overhead on each pod; the containers got 8 CPU less it.
      expect(made[0]!.spec?.overhead).toEqual({ cpu: '250m', memory: '160Mi' });
      expect(made[0]!.spec?.containers[0]?.resources?.limits).toMatchObject({ cpu: '7750m', memory: '65376Mi' });
      const asked = made.reduce((sum, p) => sum + millicores(p.spec?.containers[0]?.resources?.requests?.cpu) + millicores(p.spec?.overhead?.cpu), 0);
      expect(asked).toBe(64_000);
    } finally {
      await kc.makeApiClient(NodeV1Api).deleteRuntimeClass({ name: kata }).catch(() => undefined);
      await core.deleteNode({ name: kataNode }).catch(() => undefined);
    }
  });

  it('a replica that asks more memory than its share is refused before anything is made, as a placement this node cannot take', async () => {
    await refresh();
    const greedy = onShareNode(assign('team-share-greedy', { ...ok, spec: { containers: [{ name: 'main', image: 'example/train:v1', resources: { limits: { memory: '100Gi' } } }] } }, 1, 1));
    await shared.apply(greedy);
    expect(shared.refused.get(key(greedy))).toBe(
      `PlacementRefused: replica 0 on node ${nodeName}: memory limits of the containers add up to 102400Mi (main 102400Mi): more than this replica's share of its node (1 of the 8 GPU(s) it has for jobs), 61440Mi`,
    );
    expect(await podsOf(greedy)).toEqual([]);
    expect(await managedNamespaces()).not.toContain(tenantNamespaceName(PREFIX, 'team-share-greedy'));
  });
});

describe('refusals reach the consumer and stop nothing else', () => {
  it('an apiserver refusal ends that attempt with the apiserver\'s message; the next assignment still runs', async () => {
    // The allowlist does not judge names; the provider's apiserver does (422).
    const bad = assign('team-c', { spec: { containers: [{ name: 'Main_1', image: 'example/train:v1' }] } });
    const good = assign('team-c', ok);
    await runner.apply(bad);
    await runner.apply(good);
    expect(runner.refused.get(key(bad))).toMatch(/^InvalidTemplate: Pod "fj-.*" is invalid: spec.containers\[0\].name/);
    expect(await podsOf(bad)).toEqual([]);
    expect(runner.refused.get(key(good))).toBeUndefined();
    expect(await podsOf(good)).toHaveLength(1);
  });

  it('makes every pod of a gang, and a replica the apiserver refuses takes the siblings made beside it along', async () => {
    const gang = assign('team-gang', ok, 12, 1);
    await runner.apply(gang);
    expect(runner.refused.get(key(gang))).toBeUndefined();
    const replicas = (await podsOf(gang)).map((p) => Number(p.metadata?.labels?.['fedgpu.io/replica'])).sort((a, b) => a - b);
    expect(replicas).toEqual(Array.from({ length: 12 }, (_, i) => i));
    // The provider's owner refuses replica 7 of every gang in this namespace (a policy of its own).
    // The pods are created a few at a time, so siblings exist when the refusal comes back.
    const namespace = tenantNamespaceName(PREFIX, 'team-gang');
    const admission = kc.makeApiClient(AdmissionregistrationV1Api);
    const name = `${PREFIX}-no-replica-7`;
    await admission.createValidatingAdmissionPolicy({ body: {
      metadata: { name },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: { resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }] },
        validations: [{ expression: "!has(object.metadata.labels) || !('fedgpu.io/replica' in object.metadata.labels) || object.metadata.labels['fedgpu.io/replica'] != '7'", message: 'the owner refuses replica 7' }],
      },
    } });
    await admission.createValidatingAdmissionPolicyBinding({ body: {
      metadata: { name },
      spec: { policyName: name, validationActions: ['Deny'], matchResources: { namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [namespace, tenantNamespaceName(PREFIX, 'team-gang-serial')] }] } } },
    } });
    try {
      const probe = { metadata: { name: 'probe', labels: { 'fedgpu.io/replica': '7' } }, spec: { containers: [{ name: 'c', image: 'x', securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } } }] } };
      await waitFor('the owner\'s policy in effect', async () => {
        const refused = await core.createNamespacedPod({ namespace, body: probe, dryRun: 'All' }).then(() => '', (err: { body?: string }) => String(err.body));
        return refused.includes('the owner refuses replica 7') ? true : undefined;
      }, { timeoutMs: 30_000, intervalMs: 100 });
      const split = assign('team-gang', ok, 12, 1);
      await runner.apply(split);
      expect(runner.refused.get(key(split))).toMatch(/the owner refuses replica 7/);
      expect(await podsOf(split)).toEqual([]);
      // The gang before it is untouched.
      expect(await podsOf(gang)).toHaveLength(12);
      // The refusal stops the creates still waiting: with one create at a time, replicas 8 to 11
      // are never made (not made and then deleted). The runner deletes only after every create has
      // settled, so on the watch every ADDED of the attempt comes before its first DELETED.
      const serial = new PodRunner(identity.kubeConfig, tenancy, silent, {}, undefined, undefined, undefined, { podCreatesAtOnce: 1 });
      // A tenant of its own: a runner bounds a tenant's quota by its own attempts.
      const stopped = assign('team-gang-serial', ok, 12, 1);
      const added = new Set<number>();
      const deleted = new Set<number>();
      const watch = await new Watch(kc).watch('/api/v1/pods', { labelSelector: `fedgpu.io/job-uid=${stopped.jobUid}` },
        (type: string, pod: V1Pod) => {
          const replica = Number(pod.metadata?.labels?.['fedgpu.io/replica']);
          if (type === 'ADDED') added.add(replica);
          if (type === 'DELETED') deleted.add(replica);
        }, () => undefined);
      try {
        await serial.apply(stopped);
        expect(serial.refused.get(key(stopped))).toMatch(/the owner refuses replica 7/);
        await waitFor('every pod the watch saw made also seen deleted', async () => (deleted.size > 0 && deleted.size === added.size ? true : undefined), { timeoutMs: 10_000, intervalMs: 20 });
        expect([...added].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6]);
      } finally {
        watch.abort();
        serial.stop();
      }
    } finally {
      await admission.deleteValidatingAdmissionPolicyBinding({ name }).catch(() => undefined);
      await admission.deleteValidatingAdmissionPolicy({ name }).catch(() => undefined);
    }
  });

  it('an attempt whose quota stays taken is refused once its retries are spent, not retried forever', async () => {
    // Another pod holds the consumer's quota (one the owner made there; a pod of an earlier epoch
    // stuck on a finalizer does the same). The runner's tries: a few ms each, not two minutes.
    const impatient = new PodRunner(identity.kubeConfig, tenancy, silent, {}, undefined, undefined, undefined, { retryDelaysMs: [10, 20] });
    const namespace = await tenancy.ensure('team-held', { pods: 1, gpus: 1 });
    await waitFor('the quota in force', async () => ((await core.readNamespacedResourceQuota({ name: 'fedgpu-attempts', namespace })).status?.hard?.pods === '1' ? true : undefined), { timeoutMs: 30_000, intervalMs: 50 });
    const restricted = { runAsNonRoot: true, runAsUser: 1000, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } };
    await core.createNamespacedPod({ namespace, body: { metadata: { name: 'holder' }, spec: { containers: [{ name: 'c', image: 'x', securityContext: restricted, resources: { limits: { 'nvidia.com/gpu': '1' } } }] } } });
    await waitFor('the holder counted', async () => ((await core.readNamespacedResourceQuota({ name: 'fedgpu-attempts', namespace })).status?.used?.pods === '1' ? true : undefined), { timeoutMs: 30_000, intervalMs: 50 });
    const held = assign('team-held', ok, 1, 1);
    await impatient.apply(held);
    await waitFor('the attempt refused', async () => impatient.refused.get(key(held)), { timeoutMs: 30_000, intervalMs: 20 });
    expect(impatient.refused.get(key(held))).toMatch(/^AdmissionRefused: .*exceeded quota/);
    expect(await podsOf(held)).toEqual([]);
    impatient.stop();
  });

  it('a refusal whose message is far longer than the hub accepts is still reported (the provider stays on the market)', async () => {
    // The consumer's template breaks one rule many times over, within what the GpuJob CRD admits
    // (32 ports, names of up to 15 characters, no pattern): the provider's apiserver lists every
    // field in its refusal. Reported as is, the hub would end the agent's stream at every reconnect.
    const ports = Array.from({ length: 32 }, (_, i) => ({ name: `Bad_Port_${i}`, containerPort: 8000 + i }));
    const noisy = assign('team-noisy', { ...ok, spec: { containers: [{ name: 'main', image: 'example/train:v1', ports }] } });
    await runner.apply(noisy);
    const refusal = runner.refused.get(key(noisy));
    expect(refusal).toMatch(/^InvalidTemplate: /);
    expect(refusal!.length).toBeGreaterThan(1024);
    const report = attemptStatus(noisy.jobUid, noisy.epoch, { phase: 'Failed', gpuSeconds: 0, reason: refusal!.split(':')[0], message: refusal!, pods: [] });
    expect(validateAgentMessage({ seq: 1, body: { $case: 'attemptStatus', value: report } }, 0).ok).toBe(true);
    expect(report.reason).toBe('InvalidTemplate');
  });

  it("a template beyond the provider's limits is refused as AdmissionRefused, never as the provider's own refusal", async () => {
    // The attack on providers: ask more ephemeral storage than the agent's LimitRange allows
    // (200Gi), so that every provider's apiserver refuses the pod. Called ProviderRefused, the hub
    // blamed and slashed each provider in turn; AdmissionRefused is nobody's fault.
    const greedy = assign('team-greedy', { ...ok, spec: { containers: [{ name: 'main', image: 'example/train:v1', resources: { limits: { 'ephemeral-storage': '1Ti' } } }] } });
    await runner.apply(greedy);
    const refusal = runner.refused.get(key(greedy));
    expect(refusal).toMatch(/^AdmissionRefused: .*ephemeral-storage.*200Gi/);
    expect(await podsOf(greedy)).toEqual([]);
    const report = attemptStatus(greedy.jobUid, greedy.epoch, { phase: 'Failed', gpuSeconds: 0, reason: refusal!.split(':')[0], message: refusal!, pods: [] });
    expect(report.reason).toBe('AdmissionRefused');
  });

  it('a resync with a refused attempt among others converges the others', async () => {
    const hostile = assign('team-d', HOSTILE_TEMPLATES[0]!.template);
    const fine = assign('team-d', ok);
    await runner.resync([hostile, fine], runner.managed((await core.listPodForAllNamespaces({ labelSelector: 'app.kubernetes.io/managed-by=fedgpu-agent' })).items));
    expect(runner.refused.get(key(hostile))).toMatch(/^PodSecurityRefused: template\.spec\.hostNetwork/);
    expect(await podsOf(fine)).toHaveLength(1);
  });

  it('refuses to run pods in a tenant namespace that does not enforce restricted', async () => {
    const name = tenantNamespaceName(PREFIX, 'relabelled');
    await core.createNamespace({ body: { metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'fedgpu-agent', 'pod-security.kubernetes.io/enforce': 'privileged' } } } });
    const a = assign('relabelled', ok);
    await runner.apply(a);
    expect(runner.refused.get(key(a))).toMatch(/^TenantNamespaceNotRestricted: .*enforce=privileged/);
    expect(notRestricted).toContain(name);
    expect(await podsOf(a)).toEqual([]);
    // What the agent reports to the hub (the GpuProvider's TenantIsolation condition) ...
    expect(tenancy.unisolated()).toEqual([{ namespace: name, reason: expect.stringContaining('enforce=privileged') }]);
    // ... until the namespace enforces restricted again, seen at the next release pass.
    await core.patchNamespace({ name, body: { metadata: { labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await tenancy.release(new Set([...(await managedNamespaces()), name])); // deletes nothing: all in use
    expect(tenancy.unisolated()).toEqual([]);
  });

  it('starts nothing of an attempt re-sent without the Secrets its job names; keeps a running one', async () => {
    // A Resync re-sends every wanted attempt, and the hub may fail to read a job's Secrets just then:
    // an attempt this agent never started would run without them (its HF_TOKEN missing).
    const withheld = { ...assign('team-withheld', ok), secretsWithheld: true };
    await runner.apply(withheld);
    expect(runner.refused.get(key(withheld))).toBe('SecretsUnavailable: the hub sent this attempt without the Secrets its job names (it could not read them); nothing was started');
    expect(await podsOf(withheld)).toEqual([]);
    // One already running here keeps running when a resync re-sends it so.
    const running = assign('team-withheld', ok);
    await runner.apply(running);
    expect(await podsOf(running)).toHaveLength(1);
    const managed = runner.managed((await core.listPodForAllNamespaces({ labelSelector: 'app.kubernetes.io/managed-by=fedgpu-agent' })).items);
    await runner.resync([{ ...running, secretsWithheld: true }], managed);
    expect(runner.refused.has(key(running))).toBe(false);
    expect(await podsOf(running)).toHaveLength(1);
    // The copy an earlier Assign carried serves one re-sent without it (as a retry is, not yet
    // counted as started): not refused, the Secrets still there.
    const given = { ...assign('team-withheld', ok), secrets: [{ name: 'hf', data: { token: Buffer.from('v') }, env: [{ name: 'HF_TOKEN', key: 'token' }], mountPath: '' }] };
    await runner.apply(given);
    await runner.apply({ ...given, secrets: [], secretsWithheld: true });
    expect(runner.refused.has(key(given))).toBe(false);
    const [pod] = await podsOf(given);
    expect(pod?.spec?.containers[0]?.env?.some((e) => e.name === 'HF_TOKEN')).toBe(true);
  });

  it("refuses to share a tenant namespace whose name another consumer's collides with, sending the job elsewhere", async () => {
    // The names keep 32 bits of the consumer's hash: a hub namespace named with the victim's long
    // prefix and a brute-forced hash gets the same name here. Made first by the attacker's attempt,
    // that namespace says whose it is; the victim's attempt is refused there, not run beside it.
    const name = tenantNamespaceName(PREFIX, 'team-victim');
    await core.createNamespace({ body: { metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'fedgpu-agent', 'pod-security.kubernetes.io/enforce': 'restricted' }, annotations: { 'fedgpu.io/tenant': 'team-attacker' } } } });
    const a = assign('team-victim', ok);
    await runner.apply(a);
    expect(runner.refused.get(key(a))).toBe(`PlacementRefused: namespace ${name} belongs to consumer "team-attacker", not "team-victim": their names collide on this provider; refusing to share it`);
    expect(await podsOf(a)).toEqual([]);
    await core.deleteNamespace({ name });
  });

  it('re-checks a namespace it prepared: one loosened after an attempt ran gets no further pod', async () => {
    const first = assign('team-loosened', ok);
    await runner.apply(first);
    expect(await podsOf(first)).toHaveLength(1);
    const name = tenantNamespaceName(PREFIX, 'team-loosened');
    // Whoever can label namespaces in the provider cluster weakens PodSecurity under a live tenant.
    await core.patchNamespace({ name, body: { metadata: { labels: { 'pod-security.kubernetes.io/enforce': 'baseline' } } } }, mergePatch);
    expect((await core.readNamespace({ name })).metadata?.labels?.['pod-security.kubernetes.io/enforce']).toBe('baseline');
    const next = assign('team-loosened', ok);
    await runner.apply(next);
    expect(runner.refused.get(key(next))).toMatch(/^TenantNamespaceNotRestricted: .*enforce=baseline/);
    expect(await podsOf(next)).toEqual([]);
  });

  it('a burst of one consumer\'s attempts all get their pods (quota admission races are retried, not taken for "exists")', async () => {
    const burst = Array.from({ length: 48 }, () => assign('team-burst', ok, 1, 1));
    await Promise.all(burst.map((a) => runner.apply(a)));
    const namespace = tenantNamespaceName(PREFIX, 'team-burst');
    const pods = (await core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/managed-by=fedgpu-agent' })).items;
    expect(pods).toHaveLength(48);
    expect(burst.filter((a) => runner.refused.has(key(a)))).toEqual([]);
  });

  it('keeps a tenant namespace whose last attempt ends just as the next one comes (not deleted under it)', async () => {
    const first = assign('team-handover', ok);
    await runner.apply(first);
    const namespace = tenantNamespaceName(PREFIX, 'team-handover');
    const uid = (await core.readNamespace({ name: namespace })).metadata?.uid;
    // The cancel lists the unused namespaces while the next assignment of the same consumer comes.
    const cancelled = runner.cancel(first.jobUid, first.epoch, 0);
    const next = assign('team-handover', ok);
    await Promise.all([cancelled, runner.apply(next)]);
    // Its pod comes once the first attempt's pod has left the quota (the runner retries on its own).
    await waitFor('the next attempt\'s pod', async () => ((await podsOf(next)).length === 1 ? true : undefined), { timeoutMs: 30_000 });
    expect(runner.refused.get(key(next))).toBeUndefined();
    const ns = await core.readNamespace({ name: namespace });
    expect(ns.metadata?.uid).toBe(uid);
    expect(ns.metadata?.deletionTimestamp).toBeUndefined();
  });

  it('moves the quota bound of a prepared namespace with each attempt', async () => {
    const first = assign('team-quota', ok, 1, 2);
    await runner.apply(first);
    const second = assign('team-quota', ok, 2, 3);
    await runner.apply(second);
    const quota = (await core.listNamespacedResourceQuota({ namespace: tenantNamespaceName(PREFIX, 'team-quota') })).items[0];
    expect(quota?.spec?.hard).toMatchObject({ pods: '3', 'requests.nvidia.com/gpu': '8' });
    expect(await podsOf(second)).toHaveLength(2);
  });
});

describe('with the agent\'s watch of its quotas', () => {
  // As the agent runs it: the watch under the chart's identity (its RBAC must allow list and watch).
  let quotas: QuotaWatch;
  let watched: TenantNamespaces;
  beforeAll(async () => {
    quotas = new QuotaWatch(identity.kubeConfig, silent, { labelSelector: 'app.kubernetes.io/managed-by=fedgpu-agent' });
    await quotas.start();
    watched = new TenantNamespaces(identity.kubeConfig, { prefix: PREFIX, quotas }, silent);
  });
  afterAll(async () => {
    await quotas.stop();
  });

  it('waits for a raised bound until the quota controller has put it in force, and no longer', async () => {
    const namespace = await watched.ensure('team-in-force', { pods: 1, gpus: 2 });
    const bound = { pods: '7', 'requests.nvidia.com/gpu': '14' };
    const quota = await core.readNamespacedResourceQuota({ name: 'fedgpu-attempts', namespace });
    const written = await core.replaceNamespacedResourceQuota({ name: 'fedgpu-attempts', namespace, body: { metadata: quota.metadata, spec: { hard: bound } } });
    // The write returns before the controller-manager copies the bound to status.hard, which is
    // what admission judges by; the wait ends on the watch event that shows it there.
    expect(await quotas.quotaInForce(namespace, 'fedgpu-attempts', bound, written.metadata?.resourceVersion, 30_000)).toBe(true);
    expect((await core.readNamespacedResourceQuota({ name: 'fedgpu-attempts', namespace })).status?.hard).toEqual(bound);
    // A bound never written is never in force: the wait gives up and says so.
    expect(await quotas.quotaInForce(namespace, 'fedgpu-attempts', { pods: '99', 'requests.nvidia.com/gpu': '99' }, written.metadata?.resourceVersion, 200)).toBe(false);
    // Nor is a bound the cache shows only at a version older than the write: 7 is in status now,
    // but a wait for a write not seen yet must not take that for it.
    const later = String(BigInt(written.metadata!.resourceVersion!) + 1_000_000n);
    expect(await quotas.quotaInForce(namespace, 'fedgpu-attempts', bound, later, 200)).toBe(false);
  });

  it('a raised bound is in force when the tenant namespace is ready', async () => {
    const patient = new TenantNamespaces(identity.kubeConfig, { prefix: PREFIX, quotas, quotaInForceWaitMs: 30_000 }, silent);
    const namespace = await patient.ensure('team-in-force', { pods: 1, gpus: 2 });
    for (const pods of [8, 9]) {
      await patient.ensure('team-in-force', { pods, gpus: 2 * pods });
      const quota = await core.readNamespacedResourceQuota({ name: 'fedgpu-attempts', namespace });
      expect(quota.status?.hard).toEqual({ pods: String(pods), 'requests.nvidia.com/gpu': String(2 * pods) });
    }
  });
});

afterAll(() => console.log(`agent isolation suite: ${Date.now() - started} ms`));
