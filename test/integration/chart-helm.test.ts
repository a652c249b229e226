import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { CLEANUP_FINALIZER } from '../../operator/src/api/constants.js';
import { runKubectl } from '../../operator/src/testbed/kubectl.js';
import { reapStaleRuns } from '../../operator/src/testbed/processes.js';
import { startTestbed, type Testbed } from '../../operator/src/testbed/testbed.js';
import { repoRoot, toolPath } from '../../operator/src/testbed/tools.js';
import { waitFor } from '../../operator/src/testbed/wait.js';

// The chart, with the real helm: lint, render, schema refusals, then real installs (the hub into
// a cluster of its own, the agent into the shared one) and the RBAC each ServiceAccount ends up
// with, asked of the apiserver itself.

type Obj = Record<string, any>;
interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

const kubeconfig = inject('kubeconfig');
const kubectl = (args: string[], stdin?: string) => runKubectl(kubeconfig, args, stdin);
const chart = join(repoRoot, 'charts', 'fedgpu');
// This file's own directory: helm's caches and config (helm uses $HOME by default) and the
// extra hub cluster.
const runsRoot = join(repoRoot, '.testbed', 'chart');
const workDir = join(runsRoot, String(process.pid));
const helmHome = join(workDir, 'helm');

function helm(args: string[]): Promise<Result> {
  const env = {
    ...process.env,
    HELM_CACHE_HOME: join(helmHome, 'cache'),
    HELM_CONFIG_HOME: join(helmHome, 'config'),
    HELM_DATA_HOME: join(helmHome, 'data'),
  };
  return new Promise((resolve) => {
    execFile(toolPath('helm'), args, { env, timeout: 120_000, maxBuffer: 32 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

const WALLET = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
const MARKET = '0x5FbDB2315678afecb367f032d93F642f64180aa3';
const set = (values: Record<string, string | number | boolean>) => Object.entries(values).flatMap(([k, v]) => ['--set', `${k}=${v}`]);
const HUB = set({ mode: 'hub', 'hub.chain.marketAddress': MARKET });
const PROVIDER_NO_PRICE = set({ mode: 'provider', 'hub.address': 'hub.example.com:8443', 'provider.wallet': WALLET });
const PROVIDER = [...PROVIDER_NO_PRICE, '--set-string', 'provider.settings.pricePerGpuHour.NVIDIA-H100-80GB-HBM3=2.40'];

async function render(values: string[], extra: string[] = []): Promise<Obj[]> {
  const res = await helm(['template', 'rel', chart, '--namespace', 'fedgpu-system', ...values, ...extra]);
  expect(res.code, res.stderr).toBe(0);
  return parseAllDocuments(res.stdout)
    .map((d) => d.toJSON() as Obj | null)
    .filter((o): o is Obj => o !== null);
}
const kinds = (objs: Obj[]) => objs.map((o) => o.kind).sort();
const one = (objs: Obj[], kind: string, name?: string): Obj => {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  expect(found, `${kind} ${name ?? ''}`).toHaveLength(1);
  return found[0]!;
};

/** PodSecurity "restricted", as the brief for both binaries spells it out. */
function expectRestricted(podSpec: Obj): void {
  expect(podSpec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } });
  for (const c of podSpec.containers) {
    expect(c.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 10001,
      runAsGroup: 10001,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.resources.requests).toBeDefined();
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
  }
}

afterAll(() => rmSync(workDir, { recursive: true, force: true }));

describe('helm lint', () => {
  it.each([
    ['hub', HUB],
    ['provider', PROVIDER],
  ])('passes --strict in %s mode with the minimal values', async (_mode, values) => {
    const res = await helm(['lint', '--strict', chart, ...values]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toContain('0 chart(s) failed');
  });

  it.each(['hub', 'provider'])('passes --strict with ci/%s-values.yaml (the values chart-testing uses)', async (mode) => {
    const res = await helm(['lint', '--strict', chart, '-f', join(chart, 'ci', `${mode}-values.yaml`)]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toContain('0 chart(s) failed');
  });

  it('fails without a mode', async () => {
    const res = await helm(['lint', chart]);
    expect(res.code).not.toBe(0);
    expect(res.stdout + res.stderr).toMatch(/\/mode.*'hub', 'provider'/);
  });
});

describe('helm template', () => {
  it('renders the hub: HA Deployment, RBAC, Services, PDB; no agent objects, no Secrets', async () => {
    const objs = await render(HUB);
    expect(kinds(objs)).toEqual([
      'ClusterRole', 'ClusterRoleBinding', 'Deployment', 'PodDisruptionBudget', 'Role', 'RoleBinding',
      'Service', 'Service', 'ServiceAccount',
      // The job finalizer, status and secrets guards.
      'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicy',
      'ValidatingAdmissionPolicyBinding', 'ValidatingAdmissionPolicyBinding', 'ValidatingAdmissionPolicyBinding',
    ]);
    const deploy = one(objs, 'Deployment', 'rel-fedgpu');
    expect(deploy.spec.replicas).toBe(2);
    const pod = deploy.spec.template.spec;
    expect(pod.serviceAccountName).toBe('rel-fedgpu');
    expectRestricted(pod);
    const c = pod.containers[0];
    expect(c.args.slice(0, 4)).toEqual(['hub', '--grpc-port=8443', '--metrics-port=9090', '--leader-elect=true']);
    expect(c.args).toContain('--leader-election-id=rel-fedgpu-leader');
    expect(c.args).toContain('--grpc-host=0.0.0.0');
    expect(c.args).toContain('--idle-compaction=true');
    expect(c.args).toContain('--metrics-bind-address=0.0.0.0');
    expect(c.args).toContain('--tls-ca=/var/run/fedgpu/tls/ca.crt');
    expect(pod.volumes.find((v: Obj) => v.name === 'tls').secret.secretName).toBe('rel-fedgpu-tls');
    expect(c.args).toContain(`--market-address=${MARKET}`);
    expect(c.ports).toEqual([
      { name: 'grpc', containerPort: 8443, protocol: 'TCP' },
      { name: 'metrics', containerPort: 9090, protocol: 'TCP' },
    ]);
    // Keys only ever come from Secrets.
    const env = Object.fromEntries(c.env.map((e: Obj) => [e.name, e]));
    expect(env.FEDGPU_CHAIN_RPC_URL.valueFrom.secretKeyRef).toEqual({ name: 'rel-fedgpu-chain', key: 'rpc-url' });
    expect(env.FEDGPU_SETTLER_KEY.valueFrom.secretKeyRef).toEqual({ name: 'rel-fedgpu-chain', key: 'settler-key' });
    // The only literal values are the runtime's memory settings; nothing secret is ever a literal.
    expect(c.env.filter((e: Obj) => 'value' in e).map((e: Obj) => e.name)).toEqual(['NODE_OPTIONS', 'GLIBC_TUNABLES']);
    const anti = pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm;
    expect(anti.topologyKey).toBe('kubernetes.io/hostname');
    expect(anti.labelSelector.matchLabels).toEqual(deploy.spec.selector.matchLabels);

    expect(one(objs, 'PodDisruptionBudget').spec).toMatchObject({ minAvailable: 1, selector: deploy.spec.selector });
    expect(one(objs, 'Service', 'rel-fedgpu-grpc').spec.ports[0]).toMatchObject({ port: 8443, targetPort: 'grpc' });
    expect(one(objs, 'Service', 'rel-fedgpu-metrics').spec.ports[0]).toMatchObject({ port: 9090, targetPort: 'metrics' });

    // Least privilege, by construction: no pods and no secrets anywhere; leases only.
    const rules: Obj[] = [...one(objs, 'ClusterRole').rules, ...one(objs, 'Role').rules];
    expect(rules.flatMap((r) => r.resources)).not.toContain('pods');
    // Secrets: the attempt's own are created and deleted, never read back (no get, list or watch).
    for (const r of rules.filter((r) => r.resources.includes('secrets'))) expect(r.verbs).toEqual(['create', 'delete', 'deletecollection']);
    expect(one(objs, 'Role').rules.flatMap((r: Obj) => r.resources)).toEqual(['leases', 'leases']);
    for (const o of objs) expect(o.metadata.labels['app.kubernetes.io/instance'], o.kind).toBe('rel');
  });

  it('renders the agent: one replica, cluster-wide tenant writes narrowed by an admission policy', async () => {
    const objs = await render(PROVIDER);
    expect(kinds(objs)).toEqual([
      'ClusterRole', 'ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'Deployment', 'ServiceAccount', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding',
    ]);
    // The second ClusterRole is bound by the agent itself, per tenant namespace: logs, exec, port-forward.
    expect(one(objs, 'ClusterRole', 'rel-fedgpu-tenant-access').rules.map((r: Obj) => r.resources).flat().sort()).toEqual(['pods/exec', 'pods/log', 'pods/portforward']);
    const deploy = one(objs, 'Deployment');
    expect(deploy.spec.replicas).toBe(1);
    expect(deploy.spec.strategy.type).toBe('Recreate');
    const pod = deploy.spec.template.spec;
    expectRestricted(pod);
    const c = pod.containers[0];
    expect(c.args.slice(0, 3)).toEqual(['agent', '--hub-address=hub.example.com:8443', '--wallet-key-file=/var/run/fedgpu/wallet/private-key']);
    expect(c.args).toContain('--job-namespace=fedgpu-jobs');
    expect(c.args).toContain('--settings=/etc/fedgpu/settings.yaml');
    expect(c.args.some((a: string) => a.startsWith('--runtime-class') || a === '--no-tenant-dns')).toBe(false);
    expect(c.env.find((e: Obj) => e.name === 'FEDGPU_WALLET_ADDRESS').value).toBe(WALLET);
    // Prices stay decimal strings on their way to the agent.
    const settings = parse(one(objs, 'ConfigMap', 'rel-fedgpu-settings').data['settings.yaml']);
    expect(settings).toEqual({ pricePerGpuHour: { 'NVIDIA-H100-80GB-HBM3': '2.40' } });
    expect(deploy.spec.template.metadata.annotations['checksum/settings']).toMatch(/^[0-9a-f]{64}$/);
    const volumes = Object.fromEntries(pod.volumes.map((v: Obj) => [v.name, v]));
    expect(volumes.tls.secret.secretName).toBe('rel-fedgpu-tls');
    expect(volumes.wallet.secret.secretName).toBe('rel-fedgpu-wallet');

    const rules: Obj[] = one(objs, 'ClusterRole', 'rel-fedgpu').rules;
    // Secrets: the attempt's own are created and deleted, never read back (no get, list or watch).
    for (const r of rules.filter((r) => r.resources.includes('secrets'))) expect(r.verbs).toEqual(['create', 'delete', 'deletecollection']);
    expect(rules.flatMap((r) => r.resources)).not.toContain('configmaps');
    // RBAC: its own tenant-access binding only (the admission policy keeps it to that role, to
    // itself, in its tenant namespaces): create/update rolebindings, bind that one role by name.
    expect(rules.filter((r) => r.apiGroups.includes('rbac.authorization.k8s.io'))).toEqual([
      { apiGroups: ['rbac.authorization.k8s.io'], resources: ['rolebindings'], verbs: ['create', 'update'] },
      { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterroles'], resourceNames: ['rel-fedgpu-tenant-access'], verbs: ['bind'] },
    ]);
    expect(rules.flatMap((r) => r.resources)).not.toContain('pods/log');
    expect(one(objs, 'Deployment').spec.template.spec.containers[0].args).toContain('--tenant-access-role=rel-fedgpu-tenant-access');
    const policy = one(objs, 'ValidatingAdmissionPolicy');
    expect(policy.spec.matchConditions[0].expression).toBe("request.userInfo.username == \"system:serviceaccount:fedgpu-system:rel-fedgpu\"");
    expect(one(objs, 'ValidatingAdmissionPolicyBinding').spec).toEqual({ policyName: policy.metadata.name, validationActions: ['Deny'] });
  });

  it('turns the hub\'s idle compaction off, and refuses a value that is not true or false', async () => {
    const objs = await render(HUB, ['--set', 'hub.idleCompaction=false']);
    expect(one(objs, 'Deployment').spec.template.spec.containers[0].args).toContain('--idle-compaction=false');
    await expect(render(HUB, ['--set', 'hub.idleCompaction=sometimes'])).rejects.toThrow(/idleCompaction/);
  });

  it('passes the runtime class and the DNS choice to the agent; the policy can be left out', async () => {
    const objs = await render(PROVIDER, ['--set', 'provider.runtimeClassName=gvisor', '--set', 'provider.allowDNS=false', '--set', 'provider.admissionPolicy.enabled=false']);
    const args = one(objs, 'Deployment').spec.template.spec.containers[0].args;
    expect(args).toContain('--runtime-class=gvisor');
    expect(args).toContain('--no-tenant-dns');
    expect(kinds(objs)).not.toContain('ValidatingAdmissionPolicy');
  });

  it('passes the owner\'s access choices per pool to the agent, and refuses one that is not true or false', async () => {
    const objs = await render(PROVIDER, [
      '--set', 'provider.settings.access.portForward=false',
      '--set', 'provider.settings.accessByProduct.NVIDIA-H100-80GB-HBM3.exec=false',
    ]);
    const settings = parse(one(objs, 'ConfigMap', 'rel-fedgpu-settings').data['settings.yaml']);
    expect(settings.access).toEqual({ portForward: false });
    expect(settings.accessByProduct).toEqual({ 'NVIDIA-H100-80GB-HBM3': { exec: false } });
    const bad = await helm(['template', 'rel', chart, ...PROVIDER, '--set-string', 'provider.settings.access.exec=no']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/access.*exec/);
  });

  it('renders the read-only market role for consumers only with the access API', async () => {
    expect((await render(HUB)).some((o) => o.metadata.name === 'fedgpu-market-viewer')).toBe(false);
    const role = one(await render(HUB, ['--set', 'hub.access.enabled=true', '--set', 'hub.access.caBundle=Y2E=']), 'ClusterRole', 'fedgpu-market-viewer');
    expect(role.rules).toEqual([{ apiGroups: ['fedgpu.io'], resources: ['gpuproviders'], verbs: ['get', 'list', 'watch'] }]);
  });

  it('routes the access API to the leader alone: a Service without selector, an empty slice only the hub updates, and its guard', async () => {
    const access = ['--set', 'hub.access.enabled=true', '--set', 'hub.access.caBundle=Y2E='];
    const objs = await render(HUB, access);
    const service = one(objs, 'Service', 'rel-fedgpu-access');
    expect(service.spec.selector).toBeUndefined();
    expect([service.spec.ipFamilyPolicy, service.spec.ipFamilies]).toEqual(['SingleStack', ['IPv4']]);
    expect(service.spec.ports).toEqual([{ name: 'access', port: 443, targetPort: 'access', protocol: 'TCP' }]);
    const slice = one(objs, 'EndpointSlice', 'rel-fedgpu-access-leader');
    expect(slice.metadata.labels).toMatchObject({ 'kubernetes.io/service-name': 'rel-fedgpu-access', 'endpointslice.kubernetes.io/managed-by': 'fedgpu-hub' });
    // No endpoints in the manifest: they are the leader's, and an upgrade must not reset them.
    expect(slice.endpoints).toBeUndefined();
    expect(slice.addressType).toBe('IPv4');
    expect(slice.ports).toEqual([{ name: 'access', port: 8444, protocol: 'TCP' }]);
    const rules = one(objs, 'Role', 'rel-fedgpu').rules.filter((r: Obj) => r.apiGroups.includes('discovery.k8s.io'));
    expect(rules).toEqual([{ apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], resourceNames: ['rel-fedgpu-access-leader'], verbs: ['get', 'update'] }]);
    expect(one(objs, 'Deployment', 'rel-fedgpu').spec.template.spec.containers[0].args).toContain('--access-service=rel-fedgpu-access');
    expect(one(objs, 'Deployment', 'rel-fedgpu').spec.template.spec.containers[0].args).toContain('--access-sessions-per-user=16');
    const guard = one(objs, 'ValidatingAdmissionPolicy', 'rel-fedgpu-access-endpoint-guard');
    expect(guard.spec.matchConditions).toEqual([{ name: 'the-access-slice', expression: 'object.metadata.namespace == "fedgpu-system" && object.metadata.name == "rel-fedgpu-access-leader"' }]);
    expect(guard.spec.validations.map((v: Obj) => v.expression).join('\n')).toContain('p.port == 8444');
    expect(one(objs, 'ValidatingAdmissionPolicyBinding', 'rel-fedgpu-access-endpoint-guard').spec.validationActions).toEqual(['Deny']);
    const v6 = await render(HUB, [...access, '--set', 'hub.access.endpointAddressType=IPv6']);
    expect(one(v6, 'EndpointSlice', 'rel-fedgpu-access-leader').addressType).toBe('IPv6');
    expect(one(v6, 'Service', 'rel-fedgpu-access').spec.ipFamilies).toEqual(['IPv6']);
    // Without the access API: none of it, and no right to any slice.
    const without = await render(HUB);
    expect(without.filter((o) => o.kind === 'EndpointSlice' || o.metadata.name === 'rel-fedgpu-access-endpoint-guard')).toEqual([]);
    expect(one(without, 'Role', 'rel-fedgpu').rules.some((r: Obj) => r.apiGroups.includes('discovery.k8s.io'))).toBe(false);
  });

  it("pins the agent's pods to the owner's RuntimeClass and toleration keys in its admission policy", async () => {
    const rules = async (extra: string[]) => (one(await render(PROVIDER, extra), 'ValidatingAdmissionPolicy', 'rel-fedgpu-agent-scope').spec.validations as Obj[]).map((v) => `${v.expression}`).join('\n');
    // No class chosen: no rule on it. One chosen: every pod runs under it.
    expect(await rules([])).not.toContain('runtimeClassName');
    expect(await rules(['--set', 'provider.runtimeClassName=gvisor'])).toContain('has(object.spec.runtimeClassName) && object.spec.runtimeClassName == "gvisor"');
    expect(await rules(['--set', 'provider.admissionPolicy.extraTolerationKeys[0]=example.com/spot'])).toContain('["nvidia.com/gpu","node.kubernetes.io/not-ready","node.kubernetes.io/unreachable","example.com/spot"]');
  });

  it('renders no PodDisruptionBudget for a single hub replica (it would block drains)', async () => {
    const objs = await render(HUB, ['--set', 'hub.replicas=1']);
    expect(kinds(objs)).not.toContain('PodDisruptionBudget');
  });

  it('renders the GpuJob finalizer-at-create policy at the version the cluster serves, and only in hub mode', async () => {
    const served = (version: string) => ['--api-versions', `admissionregistration.k8s.io/${version}/MutatingAdmissionPolicy`];
    const policyKinds = (objs: Obj[]) => objs.filter((o) => o.kind.startsWith('MutatingAdmissionPolicy')).map((o) => `${o.apiVersion} ${o.kind}`).sort();
    expect(policyKinds(await render(HUB))).toEqual([]);
    expect(policyKinds(await render(HUB, served('v1beta1')))).toEqual([
      'admissionregistration.k8s.io/v1beta1 MutatingAdmissionPolicy', 'admissionregistration.k8s.io/v1beta1 MutatingAdmissionPolicyBinding',
    ]);
    const both = await render(HUB, [...served('v1'), ...served('v1beta1')]);
    expect(policyKinds(both)).toEqual(['admissionregistration.k8s.io/v1 MutatingAdmissionPolicy', 'admissionregistration.k8s.io/v1 MutatingAdmissionPolicyBinding']);
    const policy = one(both, 'MutatingAdmissionPolicy', 'rel-fedgpu-job-finalizer');
    expect(policy.spec.matchConstraints.resourceRules).toEqual([{ apiGroups: ['fedgpu.io'], apiVersions: ['*'], operations: ['CREATE'], resources: ['gpujobs'] }]);
    // A policy that fails never blocks a create (the hub adds the finalizer then), and runs once.
    expect(policy.spec).toMatchObject({ failurePolicy: 'Ignore', reinvocationPolicy: 'Never' });
    expect(policy.spec.matchConditions.map((c: Obj) => c.expression)).toEqual([`!has(object.metadata.finalizers) || !('${CLEANUP_FINALIZER}' in object.metadata.finalizers)`]);
    expect(policy.spec.mutations[0]).toMatchObject({ patchType: 'ApplyConfiguration' });
    expect(policy.spec.mutations[0].applyConfiguration.expression).toContain(`"${CLEANUP_FINALIZER}"`);
    expect(one(both, 'MutatingAdmissionPolicyBinding').spec.policyName).toBe('rel-fedgpu-job-finalizer');
    expect(policyKinds(await render(HUB, [...served('v1'), '--set', 'hub.jobFinalizer.addAtCreate=false']))).toEqual([]);
    expect(policyKinds(await render(PROVIDER, served('v1')))).toEqual([]);
  });

  it('renders the guard that lets only the hub and cluster admins take the finalizer off a GpuJob', async () => {
    const objs = await render(HUB);
    const guard = one(objs, 'ValidatingAdmissionPolicy', 'rel-fedgpu-job-finalizer-guard');
    expect(guard.spec.failurePolicy).toBe('Fail');
    expect(guard.spec.matchConstraints.resourceRules).toEqual([{ apiGroups: ['fedgpu.io'], apiVersions: ['*'], operations: ['UPDATE'], resources: ['gpujobs'] }]);
    // The exemption is the chart's own hub ServiceAccount, by name.
    expect(guard.spec.matchConditions[0].expression).toBe('request.userInfo.username != "system:serviceaccount:fedgpu-system:rel-fedgpu"');
    expect(one(objs, 'ServiceAccount').metadata.name).toBe('rel-fedgpu');
    expect(one(objs, 'ValidatingAdmissionPolicyBinding', 'rel-fedgpu-job-finalizer-guard').spec).toEqual({ policyName: 'rel-fedgpu-job-finalizer-guard', validationActions: ['Deny'] });
    expect((await render(HUB, ['--set', 'hub.jobFinalizer.guard=false'])).filter((o) => o.metadata.name.includes('job-finalizer-guard'))).toEqual([]);
    expect((await render(PROVIDER)).filter((o) => o.metadata.name.includes('job-finalizer'))).toEqual([]);
  });

  it('renders the guard that lets only the hub and cluster admins write a GpuJob status', async () => {
    const objs = await render(HUB);
    const guard = one(objs, 'ValidatingAdmissionPolicy', 'rel-fedgpu-job-status-guard');
    expect(guard.spec.matchConstraints.resourceRules).toEqual([{ apiGroups: ['fedgpu.io'], apiVersions: ['*'], operations: ['UPDATE'], resources: ['gpujobs/status'] }]);
    expect(guard.spec.matchConditions[0].expression).toBe('request.userInfo.username != "system:serviceaccount:fedgpu-system:rel-fedgpu"');
    expect(one(objs, 'ValidatingAdmissionPolicyBinding', 'rel-fedgpu-job-status-guard').spec).toEqual({ policyName: 'rel-fedgpu-job-status-guard', validationActions: ['Deny'] });
    expect((await render(HUB, ['--set', 'hub.jobStatusGuard=false'])).filter((o) => o.metadata.name.includes('job-status-guard'))).toEqual([]);
    expect((await render(PROVIDER)).filter((o) => o.metadata.name.includes('job-status-guard'))).toEqual([]);
  });

  it('renders the guard that refuses a GpuJob naming a Secret its writer may not read', async () => {
    const objs = await render(HUB);
    const guard = one(objs, 'ValidatingAdmissionPolicy', 'rel-fedgpu-job-secrets-guard');
    expect(guard.spec.matchConstraints.resourceRules).toEqual([{ apiGroups: ['fedgpu.io'], apiVersions: ['*'], operations: ['CREATE', 'UPDATE'], resources: ['gpujobs'] }]);
    expect(guard.spec.validations[0].expression).toContain("check('get').allowed()");
    expect((await render(HUB, ['--set', 'hub.jobSecretsGuard=false'])).filter((o) => o.metadata.name.includes('job-secrets-guard'))).toEqual([]);
    expect((await render(PROVIDER)).filter((o) => o.metadata.name.includes('job-secrets-guard'))).toEqual([]);
  });

  describe('ServiceMonitor and PrometheusRule', () => {
    const monitoring = ['--api-versions', 'monitoring.coreos.com/v1'];

    it('are absent when the cluster does not serve monitoring.coreos.com/v1', async () => {
      const objs = await render(HUB);
      expect(kinds(objs)).not.toContain('ServiceMonitor');
      expect(kinds(objs)).not.toContain('PrometheusRule');
    });

    it('are rendered when it does, and the rules are the plain rules file', async () => {
      const objs = await render(HUB, monitoring);
      const sm = one(objs, 'ServiceMonitor');
      expect(sm.spec.endpoints).toEqual([{ port: 'metrics', path: '/metrics', interval: '30s' }]);
      // The ServiceMonitor selects the metrics Service only.
      const metricsSvc = one(objs, 'Service', 'rel-fedgpu-metrics');
      expect(metricsSvc.metadata.labels).toMatchObject(sm.spec.selector.matchLabels);
      expect(one(objs, 'Service', 'rel-fedgpu-grpc').metadata.labels).not.toMatchObject(sm.spec.selector.matchLabels);
      const plain = parse(readFileSync(join(repoRoot, 'deploy', 'prometheus', 'fedgpu-alerts.yaml'), 'utf8'));
      expect(one(objs, 'PrometheusRule').spec).toEqual(plain);
    });

    it('follow runbookBaseUrl and their enabled flags, and never render in provider mode', async () => {
      const moved = await render(HUB, [...monitoring, '--set', 'hub.monitoring.prometheusRule.runbookBaseUrl=https://wiki.example/rb']);
      const urls = one(moved, 'PrometheusRule').spec.groups.flatMap((g: Obj) => g.rules.map((r: Obj) => r.annotations.runbook_url));
      expect(urls).toHaveLength(9);
      expect(urls).toContain('https://wiki.example/rb#hubnoleader');
      expect(urls).toContain('https://wiki.example/rb#hubaccessendpointmissing');
      const off = await render(HUB, [...monitoring, '--set', 'hub.monitoring.serviceMonitor.enabled=false',
        '--set', 'hub.monitoring.prometheusRule.enabled=false']);
      expect(kinds(off)).not.toContain('ServiceMonitor');
      expect(kinds(off)).not.toContain('PrometheusRule');
      const agent = await render(PROVIDER, monitoring);
      expect(kinds(agent)).not.toContain('PrometheusRule');
    });
  });
});

describe('values schema', () => {
  // [case, --set values, text the error must contain: the value's path, and the rule]
  const bad: [string, string[], string[]][] = [
    ['mode missing', [], ["at '/mode'", "'hub', 'provider'"]],
    ['mode unknown', set({ mode: 'hubb', 'hub.chain.marketAddress': MARKET }), ["at '/mode'", "'hub', 'provider'"]],
    ['wallet not an address', [...PROVIDER, ...set({ 'provider.wallet': '0x1234' })], ["at '/provider/wallet'", "'0x1234'"]],
    ['wallet is a private key', [...PROVIDER, ...set({ 'provider.wallet': `0x${'ab'.repeat(32)}` })], ["at '/provider/wallet'"]],
    ['wallet missing in provider mode', set({ mode: 'provider', 'hub.address': 'hub.example.com:8443' }), ["at '/provider/wallet'"]],
    ['hub.address missing in provider mode', set({ mode: 'provider', 'provider.wallet': WALLET }), ["at '/hub/address'"]],
    ['hub.address without a port', [...PROVIDER, ...set({ 'hub.address': 'hub.example.com' })], ["at '/hub/address'"]],
    ['a market address that is not one', set({ mode: 'hub', 'hub.chain.marketAddress': '0x12' }), ["at '/hub/chain/marketAddress'", "'0x12'"]],
    ['chain.enabled not a boolean', [...HUB, ...set({ 'hub.chain.enabled': 'maybe' })], ["at '/hub/chain/enabled'"]],
    ['zero hub replicas', [...HUB, ...set({ 'hub.replicas': 0 })], ["at '/hub/replicas'", 'minimum']],
    ['negative CPU request', [...HUB, ...set({ 'hub.resources.requests.cpu': -1 })], ["at '/hub/resources/requests/cpu'", 'minimum']],
    ['negative memory limit', [...PROVIDER, '--set-string', 'provider.resources.limits.memory=-256Mi'],
      ["at '/provider/resources/limits/memory'"]],
    ['unknown top-level key', [...HUB, ...set({ replicas: 3 })], ["additional properties 'replicas' not allowed"]],
    ['misspelt nested key', [...HUB, ...set({ 'hub.leaderElection': true })], ["at '/hub'", "'leaderElection' not allowed"]],
    ['port out of range', [...HUB, ...set({ 'hub.grpcPort': 70000 })], ["at '/hub/grpcPort'", 'maximum']],
    ['job namespace not a DNS label', [...PROVIDER, ...set({ 'provider.jobNamespace': 'GPU_Jobs' })], ["at '/provider/jobNamespace'"]],
    ['unknown service type', [...HUB, ...set({ 'hub.service.grpc.type': 'Ingress' })], ["at '/hub/service/grpc/type'"]],
    ['unknown access endpoint address type', [...HUB, ...set({ 'hub.access.endpointAddressType': 'FQDN' })], ["at '/hub/access/endpointAddressType'"]],
    // As a values file would give it: YAML reads 2.40 as a float, and floats lose cents.
    ['price as a number', [...PROVIDER_NO_PRICE, '--set-json', 'provider.settings.pricePerGpuHour={"NVIDIA-H100-80GB-HBM3":2.4}'],
      ["at '/provider/settings/pricePerGpuHour/NVIDIA-H100-80GB-HBM3'"]],
    ['negative price', [...PROVIDER, '--set-string', 'provider.settings.defaultPricePerGpuHour=-1'], ["at '/provider/settings/defaultPricePerGpuHour'"]],
    ['availability window hour 25', [...PROVIDER, '--set-string', 'provider.settings.availability.windows[0].start=25:00',
      '--set-string', 'provider.settings.availability.windows[0].end=06:00'], ["at '/provider/settings/availability/windows/0/start'"]],
  ];

  it('refuses a hub without a market address, naming the value and the explicit way to run without a chain', async () => {
    const res = await helm(['template', 'rel', chart, ...set({ mode: 'hub' })]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('hub.chain.marketAddress is required in hub mode');
    expect(res.stderr).toContain('set hub.chain.enabled=false explicitly');
    expect(res.stderr).not.toContain('does not match pattern');
  });

  it('runs a hub without a chain only on the explicit value: no chain flags, no chain Secret', async () => {
    const objs = await render(set({ mode: 'hub', 'hub.chain.enabled': false }));
    const c = one(objs, 'Deployment', 'rel-fedgpu').spec.template.spec.containers[0];
    expect(c.args.filter((a: string) => a.startsWith('--market-address') || a.startsWith('--confirmations'))).toEqual([]);
    expect(c.env.map((e: Obj) => e.name)).not.toContain('FEDGPU_CHAIN_RPC_URL');
    expect(c.env.map((e: Obj) => e.name)).not.toContain('FEDGPU_SETTLER_KEY');
    // With the chain on (the default), the Secret keys are required: a missing key stops the pod.
    const on = one(await render(HUB), 'Deployment', 'rel-fedgpu').spec.template.spec.containers[0];
    const rpc = on.env.find((e: Obj) => e.name === 'FEDGPU_CHAIN_RPC_URL');
    expect(rpc.valueFrom.secretKeyRef.optional).not.toBe(true);
    expect(on.args).toContain(`--market-address=${MARKET}`);
  });

  it('passes hub.chain.chainId as --chain-id only when set (0: the hub asks the chain)', async () => {
    const args = async (values: Record<string, number>) => one(await render([...HUB, ...set(values)]), 'Deployment', 'rel-fedgpu').spec.template.spec.containers[0].args as string[];
    expect((await args({})).filter((a) => a.startsWith('--chain-id'))).toEqual([]);
    expect((await args({ 'hub.chain.chainId': 31337 })).filter((a) => a.startsWith('--chain-id'))).toEqual(['--chain-id=31337']);
    const refused = await helm(['template', 'rel', chart, ...HUB, ...set({ 'hub.chain.chainId': -1 })]);
    expect(refused.stderr).toContain("at '/hub/chain/chainId'");
  });

  it('refuses a provider without any price, naming the value', async () => {
    const res = await helm(['template', 'rel', chart, ...PROVIDER_NO_PRICE]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('provider.settings: set pricePerGpuHour');
  });

  it.each(bad)('refuses %s', async (_case, values, expected) => {
    const res = await helm(['template', 'rel', chart, ...values]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("values don't meet the specifications of the schema");
    for (const text of expected) expect(res.stderr).toContain(text);
  });
});

describe('helm install into real apiservers', () => {
  // The hub goes into a cluster of its own, as in production: its install creates the CRDs, which
  // the shared apiserver must not get from here (crds.test.ts server-side-applies them and would
  // conflict with helm's field manager). The agent goes into the shared one, with --skip-crds.
  const hub = { release: 'chart-hub', ns: 'chart-hub', sa: 'chart-hub-fedgpu', kubeconfig: '' };
  const agent = { release: 'chart-agent', ns: 'chart-agent', sa: 'chart-agent-fedgpu', jobs: 'chart-agent-jobs', kubeconfig };
  let testbed: Testbed | undefined;
  const notes: Record<string, string> = {};
  const get = async (cfg: string, args: string[]): Promise<Obj> => {
    const res = await runKubectl(cfg, ['get', ...args, '-o', 'json']);
    expect(res.code, res.stderr).toBe(0);
    return JSON.parse(res.stdout);
  };

  beforeAll(async () => {
    reapStaleRuns(runsRoot);
    const started = Date.now();
    testbed = await startTestbed(join(workDir, 'testbed'), [{ name: 'hub', scheduler: false, controllerManager: false }]);
    hub.kubeconfig = testbed.cluster('hub').kubeconfigPath;
    console.log(`hub cluster started in ${Date.now() - started} ms`);
    const common = ['--create-namespace', '--wait=false', '--timeout', '2m'];
    const h = await helm(['install', hub.release, chart, '--kubeconfig', hub.kubeconfig, '-n', hub.ns, ...common, ...HUB,
      '--set', 'hub.address=hub.example.com:8443']);
    expect(h.code, h.stderr).toBe(0);
    notes.hub = h.stdout;
    const a = await helm(['install', agent.release, chart, '--kubeconfig', agent.kubeconfig, '-n', agent.ns, ...common, '--skip-crds',
      ...PROVIDER, '--set', `provider.jobNamespace=${agent.jobs}`]);
    expect(a.code, a.stderr).toBe(0);
    notes.agent = a.stdout;
  });

  afterAll(async () => {
    await helm(['uninstall', agent.release, '-n', agent.ns, '--kubeconfig', agent.kubeconfig, '--wait=false']);
    await kubectl(['delete', 'namespace', agent.ns, agent.jobs, '--ignore-not-found', '--wait=false']);
    await testbed?.stop();
  });

  it('creates the hub objects and the CRDs, and prints the next steps', async () => {
    const sel = ['-n', hub.ns, '-l', `app.kubernetes.io/instance=${hub.release}`];
    const list = await get(hub.kubeconfig, ['deployment,serviceaccount,service,poddisruptionbudget,role,rolebinding,secret', ...sel]);
    expect(list.items.map((o: Obj) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'Deployment/chart-hub-fedgpu', 'PodDisruptionBudget/chart-hub-fedgpu', 'Role/chart-hub-fedgpu', 'RoleBinding/chart-hub-fedgpu',
      'Service/chart-hub-fedgpu-grpc', 'Service/chart-hub-fedgpu-metrics', 'ServiceAccount/chart-hub-fedgpu',
    ]);
    await get(hub.kubeconfig, ['clusterrole/chart-hub-fedgpu', 'clusterrolebinding/chart-hub-fedgpu']);
    // Nothing secret was created: keys come from Secrets the operator makes out of band.
    expect((await get(hub.kubeconfig, ['secrets', '-n', hub.ns, '-l', 'app.kubernetes.io/managed-by=Helm'])).items).toEqual([]);
    for (const crd of ['gpujobs.fedgpu.io', 'gpuproviders.fedgpu.io']) {
      const obj = await get(hub.kubeconfig, [`crd/${crd}`]);
      expect(obj.status.conditions.find((c: Obj) => c.type === 'Established')?.status, crd).toBe('True');
    }
    expect((await runKubectl(hub.kubeconfig, ['get', 'gp'])).code).toBe(0);
    // helm found MutatingAdmissionPolicy in the cluster's discovery (the test bed serves the 1.34
    // beta): every GpuJob gets the hub's finalizer at create (a server-side dry run shows it).
    await get(hub.kubeconfig, ['mutatingadmissionpolicy/chart-hub-fedgpu-job-finalizer', 'mutatingadmissionpolicybinding/chart-hub-fedgpu-job-finalizer']);
    // A finalizer the consumer set stays beside the hub's (an apply configuration merges the set).
    const job = stringify({ apiVersion: 'fedgpu.io/v1alpha1', kind: 'GpuJob', metadata: { name: 'probe', namespace: 'default', finalizers: ['example.com/keep'] },
      spec: { template: { spec: { containers: [{ name: 'main', image: 'example/train:v1' }] } }, budget: { maxPricePerGpuHour: '1' } } });
    const probed = await waitFor('the finalizer policy in effect', async () => {
      const res = await runKubectl(hub.kubeconfig, ['create', '-f', '-', '--dry-run=server', '-o', 'json'], job);
      return res.code === 0 && (JSON.parse(res.stdout) as Obj).metadata.finalizers?.includes(CLEANUP_FINALIZER) ? JSON.parse(res.stdout) as Obj : undefined;
    }, { timeoutMs: 30_000, intervalMs: 200 });
    expect([...probed.metadata.finalizers].sort()).toEqual([CLEANUP_FINALIZER, 'example.com/keep'].sort());
    expect(notes.hub).toContain('kubectl get gp');
    expect(notes.hub).toContain('--set hub.address=hub.example.com:8443');
    expect(notes.hub).toContain('fedgpu certs issue');
    expect(notes.hub).toContain('create secret generic chart-hub-fedgpu-tls');
  });

  // What the agent may do as the chart made it, tried against the real apiserver (server dry-run,
  // so RBAC and the ValidatingAdmissionPolicy both answer).
  const asAgent = (args: string[], stdin?: string) =>
    kubectl([...args, '--dry-run=server', `--as=system:serviceaccount:${agent.ns}:${agent.sa}`], stdin);
  const tenantNs = (name: string, labels: Record<string, string>) => stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
  const restricted = { 'app.kubernetes.io/managed-by': 'fedgpu-agent', 'pod-security.kubernetes.io/enforce': 'restricted' };

  it('creates the agent objects and its admission policy; no job namespace up front', async () => {
    const list = await get(agent.kubeconfig, ['deployment,serviceaccount,configmap', '-n', agent.ns, '-l', `app.kubernetes.io/instance=${agent.release}`]);
    expect(list.items.map((o: Obj) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'ConfigMap/chart-agent-fedgpu-settings', 'Deployment/chart-agent-fedgpu', 'ServiceAccount/chart-agent-fedgpu',
    ]);
    await get(agent.kubeconfig, ['clusterrole/chart-agent-fedgpu', 'clusterrolebinding/chart-agent-fedgpu']);
    await get(agent.kubeconfig, ['validatingadmissionpolicy/chart-agent-fedgpu-agent-scope', 'validatingadmissionpolicybinding/chart-agent-fedgpu-agent-scope']);
    expect(notes.agent).toContain(`kubectl -n ${agent.ns} logs deploy/chart-agent-fedgpu`);
    expect(notes.agent).toContain('fedgpu stake');
    expect(notes.agent).toContain('kubectl get gp');
    // The tenant namespace the test's pods use, made as the agent makes them.
    const made = await kubectl(['create', '-f', '-'], tenantNs(agent.jobs, { ...restricted, 'pod-security.kubernetes.io/enforce-version': 'latest' }));
    expect(made.code, made.stderr).toBe(0);
    // The apiserver enforces a new policy once its admission informer has the policy and its
    // binding, a moment after the install (CI once ran the next test first): wait for that event.
    await waitFor('the agent admission policy in effect', async () => {
      const res = await asAgent(['create', '-f', '-'], tenantNs('policy-probe', restricted));
      return res.code !== 0 && res.stderr.includes('may only create namespaces named') ? true : undefined;
    }, { timeoutMs: 60_000, intervalMs: 200 });
  });

  it.each([
    ['a tenant namespace with PodSecurity restricted', ['create', '-f', '-'], tenantNs(`${agent.jobs}-team-a-0123abcd`, restricted), undefined],
    ['a namespace outside its prefix', ['create', '-f', '-'], tenantNs('owner-stuff', restricted), 'may only create namespaces named'],
    ['a tenant namespace without restricted', ['create', '-f', '-'], tenantNs(`${agent.jobs}-x-0123abcd`, { 'app.kubernetes.io/managed-by': 'fedgpu-agent', 'pod-security.kubernetes.io/enforce': 'privileged' }), 'PodSecurity restricted'],
    ['deleting an owner namespace (its own)', ['delete', 'namespace', 'chart-agent'], undefined, 'may only change or delete the tenant namespaces'],
    ['a pod in default', ['create', '-f', '-'], stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default' }, spec: { containers: [{ name: 'c', image: 'x' }] } }), 'may only write pods in its tenant namespaces'],
    ['a pod in its own namespace', ['create', '-f', '-'], stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'chart-agent' }, spec: { containers: [{ name: 'c', image: 'x' }] } }), 'may only write pods in its tenant namespaces'],
    ['a NetworkPolicy in kube-system', ['create', '-f', '-'], stringify({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'open', namespace: 'kube-system' }, spec: { podSelector: {} } }), 'may only write networkpolicies'],
  ] as [string, string[], string | undefined, string | undefined][])('as the agent: %s', async (_what, args, stdin, refusal) => {
    const res = await asAgent(args, stdin);
    if (refusal === undefined) expect(res.code, res.stderr).toBe(0);
    else {
      expect(res.code).not.toBe(0);
      expect(res.stderr).toContain(refusal);
    }
  });

  it('job namespace refuses a pod that is fine under baseline but not restricted', async () => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'root', namespace: agent.jobs },
      spec: { containers: [{ name: 'c', image: 'example/train' }] } }; // runs as root, keeps capabilities
    const res = await kubectl(['create', '--dry-run=server', '-f', '-'], stringify(pod));
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('violates PodSecurity "restricted:latest"');
  });

  it.each(['hub', 'agent'])('%s pod template passes PodSecurity restricted admission', async (which) => {
    const r = which === 'hub' ? hub : agent;
    const deploy = await get(r.kubeconfig, [`deployment/${r.sa}`, '-n', r.ns]);
    // Admitted as a pod of the job namespace's default ServiceAccount (its own SA lives elsewhere).
    const { serviceAccountName: _a, serviceAccount: _b, ...spec } = deploy.spec.template.spec;
    await waitFor('the job namespace default ServiceAccount', async () =>
      (await kubectl(['get', 'serviceaccount/default', '-n', agent.jobs])).code === 0 ? true : undefined);
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: `${which}-restricted-check`, namespace: agent.jobs }, spec };
    const res = await kubectl(['create', '--dry-run=server', '-f', '-'], stringify(pod));
    expect(res.code, res.stderr).toBe(0);
  });

  // [what, namespace (or -A), allowed?, the question as `kubectl auth can-i` takes it]
  type Check = [string, string, boolean, string[]];
  const canI = async (r: { kubeconfig: string; ns: string; sa: string }, args: string[], where: string): Promise<boolean> => {
    const scope = where === '-A' ? ['-A'] : ['-n', where];
    const res = await runKubectl(r.kubeconfig, ['auth', 'can-i', ...args, ...scope, `--as=system:serviceaccount:${r.ns}:${r.sa}`]);
    expect(res.stdout.trim(), res.stderr).toMatch(/^(yes|no)$/);
    return res.stdout.trim() === 'yes';
  };

  const hubChecks: Check[] = [
    ['patch gpujobs/status', 'team-a', true, ['patch', 'gpujobs.fedgpu.io', '--subresource=status']],
    ['update gpujobs/finalizers', 'team-a', true, ['update', 'gpujobs.fedgpu.io', '--subresource=finalizers']],
    ['watch gpujobs everywhere', '-A', true, ['watch', 'gpujobs.fedgpu.io']],
    ['create gpuproviders', '-A', true, ['create', 'gpuproviders.fedgpu.io']],
    ['patch gpuproviders/status', '-A', true, ['patch', 'gpuproviders.fedgpu.io', '--subresource=status']],
    ['create events', 'team-a', true, ['create', 'events']],
    ['patch events.k8s.io events', 'default', true, ['patch', 'events.events.k8s.io']],
    ['get namespaces (consumer wallet label)', '-A', true, ['get', 'namespaces']],
    ['get its lease', 'chart-hub', true, ['get', 'leases.coordination.k8s.io/chart-hub-fedgpu-leader']],
    ['update its lease', 'chart-hub', true, ['update', 'leases.coordination.k8s.io/chart-hub-fedgpu-leader']],
    ['create a lease', 'chart-hub', true, ['create', 'leases.coordination.k8s.io']],
    ['create pods', 'chart-hub', false, ['create', 'pods']],
    ['create pods anywhere', '-A', false, ['create', 'pods']],
    ['delete gpujobs', 'team-a', false, ['delete', 'gpujobs.fedgpu.io']],
    ['delete gpuproviders', '-A', false, ['delete', 'gpuproviders.fedgpu.io']],
    ['list secrets in its namespace', 'chart-hub', false, ['list', 'secrets']],
    ['get its chain secret (the kubelet reads it, not the hub)', 'chart-hub', false, ['get', 'secrets/chart-hub-fedgpu-chain']],
    ['get its TLS secret', 'chart-hub', false, ['get', 'secrets/chart-hub-fedgpu-tls']],
    ['get secrets in another namespace', 'kube-system', false, ['get', 'secrets']],
    ['get secrets anywhere', '-A', false, ['get', 'secrets']],
    ['get another lease', 'kube-system', false, ['get', 'leases.coordination.k8s.io/kube-controller-manager']],
    ['update namespaces', '-A', false, ['update', 'namespaces']],
  ];
  it.each(hubChecks)('hub: %s (%s) → %s', async (_what, where, expected, args) => {
    expect(await canI(hub, args, where)).toBe(expected);
  });

  const agentChecks: Check[] = [
    ['list nodes', '-A', true, ['list', 'nodes']],
    ['watch nodes', '-A', true, ['watch', 'nodes']],
    ['list pods cluster-wide', '-A', true, ['list', 'pods']],
    ['watch pods in kube-system', 'kube-system', true, ['watch', 'pods']],
    // Pods, namespaces, policies, quotas: cluster-wide by RBAC (tenant namespaces are made on
    // demand); the admission policy above keeps them to the agent's own namespaces.
    ['create pods in a tenant namespace', 'chart-agent-jobs', true, ['create', 'pods']],
    ['delete pods in a tenant namespace', 'chart-agent-jobs', true, ['delete', 'pods']],
    ['read pod logs in a namespace without its binding', 'chart-agent-jobs', false, ['get', 'pods', '--subresource=log']],
    ['create events in a tenant namespace', 'chart-agent-jobs', true, ['create', 'events']],
    // Provider pod Events relayed to the GpuJob (agent/pod-events): read, never changed.
    ['watch events in a tenant namespace', 'chart-agent-jobs', true, ['watch', 'events']],
    ['list events in a tenant namespace', 'chart-agent-jobs', true, ['list', 'events']],
    ['delete events', 'chart-agent-jobs', false, ['delete', 'events']],
    ['update events', 'chart-agent-jobs', false, ['update', 'events']],
    ['create namespaces', '-A', true, ['create', 'namespaces']],
    ['delete namespaces', '-A', true, ['delete', 'namespaces']],
    ['create the default ServiceAccount of a tenant', 'chart-agent-jobs', true, ['create', 'serviceaccounts']],
    ['turn off the token of a tenant\'s default ServiceAccount', 'chart-agent-jobs', true, ['update', 'serviceaccounts']],
    ['create network policies in a tenant namespace', 'chart-agent-jobs', true, ['create', 'networkpolicies.networking.k8s.io']],
    ['update network policies in a tenant namespace', 'chart-agent-jobs', true, ['update', 'networkpolicies.networking.k8s.io']],
    ['create resource quotas in a tenant namespace', 'chart-agent-jobs', true, ['create', 'resourcequotas']],
    ['update resource quotas in a tenant namespace', 'chart-agent-jobs', true, ['update', 'resourcequotas']],
    ['create limit ranges in a tenant namespace', 'chart-agent-jobs', true, ['create', 'limitranges']],
    // A raised quota bound is awaited on a watch until in force (agent/tenancy/quota-watch.ts).
    ['watch resource quotas cluster-wide', '-A', true, ['watch', 'resourcequotas']],
    ['list resource quotas cluster-wide', '-A', true, ['list', 'resourcequotas']],
    ['watch limit ranges', '-A', false, ['watch', 'limitranges']],
    ['patch pods', 'chart-agent-jobs', false, ['patch', 'pods']],
    ['update namespaces (relabel PodSecurity)', '-A', false, ['update', 'namespaces']],
    ['patch namespaces (relabel PodSecurity)', '-A', false, ['patch', 'namespaces']],
    // The consumer's tunnel sessions (agent/access): logs, exec and port-forward of the attempt's
    // pods come only through the binding of <fullname>-tenant-access the agent writes in each
    // tenant namespace it makes (none exists in this one), never cluster-wide.
    ['exec into pods without its binding', 'chart-agent-jobs', false, ['create', 'pods', '--subresource=exec']],
    ['port-forward to pods without its binding', 'chart-agent-jobs', false, ['create', 'pods', '--subresource=portforward']],
    ['read pod logs without its binding', 'kube-system', false, ['get', 'pods', '--subresource=log']],
    ['attach to job pods', 'chart-agent-jobs', false, ['create', 'pods', '--subresource=attach']],
    ['create service account tokens', 'chart-agent-jobs', false, ['create', 'serviceaccounts', '--subresource=token']],
    ['create role bindings (its tenant-access binding; the admission policy fences them)', 'chart-agent-jobs', true, ['create', 'rolebindings.rbac.authorization.k8s.io']],
    ['bind its tenant-access role', '-A', true, ['bind', 'clusterroles.rbac.authorization.k8s.io/chart-agent-fedgpu-tenant-access']],
    ['bind any other role', '-A', false, ['bind', 'clusterroles.rbac.authorization.k8s.io/admin']],
    ['delete network policies (per-attempt rendezvous and egress)', 'chart-agent-jobs', true, ['delete', 'networkpolicies.networking.k8s.io']],
    ['get secrets anywhere', '-A', false, ['get', 'secrets']],
    ['get secrets in a tenant namespace', 'chart-agent-jobs', false, ['get', 'secrets']],
    // Per-attempt objects (docs/job-environment.md): the consumer's secrets, rendezvous Service and
    // policies are created and deleted (one by one or by label), never read back.
    ['create secrets in a tenant namespace', 'chart-agent-jobs', true, ['create', 'secrets']],
    ['delete secrets in a tenant namespace', 'chart-agent-jobs', true, ['delete', 'secrets']],
    ['delete secrets by label in a tenant namespace', 'chart-agent-jobs', true, ['deletecollection', 'secrets']],
    ['list secrets in a tenant namespace', 'chart-agent-jobs', false, ['list', 'secrets']],
    ['list secrets anywhere', '-A', false, ['list', 'secrets']],
    ['create services in a tenant namespace', 'chart-agent-jobs', true, ['create', 'services']],
    ['list services in a tenant namespace (to delete its attempt\'s)', 'chart-agent-jobs', true, ['list', 'services']],
    ['update services', 'chart-agent-jobs', false, ['update', 'services']],
    ['get secrets in its own namespace', 'chart-agent', false, ['get', 'secrets/chart-agent-fedgpu-wallet']],
    ['list gpujobs', '-A', false, ['list', 'gpujobs.fedgpu.io']],
    ['create gpujobs', 'chart-agent-jobs', false, ['create', 'gpujobs.fedgpu.io']],
    ['patch gpuproviders', '-A', false, ['patch', 'gpuproviders.fedgpu.io']],
    ['patch nodes', '-A', false, ['patch', 'nodes']],
    // A replica's CPU and memory share is net of its RuntimeClass's pod overhead (agent/runtime-overhead.ts).
    ['read a RuntimeClass', '-A', true, ['get', 'runtimeclasses.node.k8s.io']],
    ['create RuntimeClasses', '-A', false, ['create', 'runtimeclasses.node.k8s.io']],
    ['create deployments in a tenant namespace', 'chart-agent-jobs', false, ['create', 'deployments.apps']],
  ];
  it.each(agentChecks)('agent: %s (%s) → %s', async (_what, where, expected, args) => {
    expect(await canI(agent, args, where)).toBe(expected);
  });
});

describe('heap cap', () => {
  const nodeOptions = (objs: Obj[], name: string) =>
    (one(objs, 'Deployment', name).spec.template.spec.containers[0].env as { name: string; value?: string }[]).find((e) => e.name === 'NODE_OPTIONS')?.value;
  const envValue = (objs: Obj[], name: string, key: string) =>
    (one(objs, 'Deployment', name).spec.template.spec.containers[0].env as { name: string; value?: string }[]).find((e) => e.name === key)?.value;
  it('sizes --max-old-space-size to heapPercentOfLimit of the memory limit, and leaves it out without a limit', async () => {
    expect(nodeOptions(await render(HUB), 'rel-fedgpu')).toBe('--max-old-space-size=307 --max-semi-space-size=4'); // 60 % of 512Mi
    expect(nodeOptions(await render(HUB, ['--set', 'hub.resources.limits.memory=1Gi', '--set', 'hub.heapPercentOfLimit=75']), 'rel-fedgpu')).toBe('--max-old-space-size=768 --max-semi-space-size=4');
    expect(nodeOptions(await render(HUB, ['--set', 'hub.resources.limits=null']), 'rel-fedgpu')).toBe('--max-semi-space-size=4');
    expect(nodeOptions(await render(HUB, ['--set', 'hub.resources.limits=null', '--set', 'hub.extraNodeOptions=']), 'rel-fedgpu')).toBeUndefined();
    expect(nodeOptions(await render(PROVIDER), 'rel-fedgpu')).toBe('--max-old-space-size=153'); // 60 % of 256Mi
    const bad = await helm(['template', 'rel', chart, ...HUB, '--set', 'hub.resources.limits.memory=1T']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('resources.limits.memory "1T"');
  });

  it('gives the hub a small young generation and malloc tunables, each settable and removable; the agent neither', async () => {
    expect(envValue(await render(HUB), 'rel-fedgpu', 'GLIBC_TUNABLES')).toBe('glibc.malloc.mmap_threshold=8192');
    expect(envValue(await render(HUB, ['--set', 'hub.glibcTunables=glibc.malloc.arena_max=2']), 'rel-fedgpu', 'GLIBC_TUNABLES')).toBe('glibc.malloc.arena_max=2');
    expect(envValue(await render(HUB, ['--set', 'hub.glibcTunables=']), 'rel-fedgpu', 'GLIBC_TUNABLES')).toBeUndefined();
    expect(nodeOptions(await render(HUB, ['--set', 'hub.extraNodeOptions=--max-semi-space-size=8']), 'rel-fedgpu')).toBe('--max-old-space-size=307 --max-semi-space-size=8');
    const agent = await render(PROVIDER);
    expect(nodeOptions(agent, 'rel-fedgpu')).toBe('--max-old-space-size=153');
    expect(envValue(agent, 'rel-fedgpu', 'GLIBC_TUNABLES')).toBeUndefined();
    const quoted = await helm(['template', 'rel', chart, ...HUB, '--set-string', 'hub.extraNodeOptions=--a"b']);
    expect(quoted.code).not.toBe(0);
    expect(quoted.stderr).toContain('extraNodeOptions');
  });
});
