import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { CLEANUP_FINALIZER } from '../api/constants.js';
import { runKubectl } from './kubectl.js';
import { repoRoot, toolPath } from './tools.js';
import { waitFor } from './wait.js';

// Runs a component as the chart makes it run: renders the chart with helm, applies only its
// identity (ServiceAccount, ClusterRoles, Roles, bindings, admission policies, and the objects it
// may only update by name) to a real apiserver, and returns a kubeconfig holding a token of that
// ServiceAccount. A test that drives the agent or the hub through it fails when the chart grants
// too little. The render is told which admission policy APIs the apiserver serves, as
// `helm install` learns from discovery.

const IDENTITY_KINDS = new Set([
  'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding',
  'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding',
  'MutatingAdmissionPolicy', 'MutatingAdmissionPolicyBinding',
  // Made by the chart for the hub to update by name, which its Role allows and nothing more.
  'EndpointSlice',
]);

/** The admission policy kinds the chart looks for in .Capabilities, as helm `--api-versions` flags. */
async function servedPolicyApis(adminKubeconfig: string): Promise<string[]> {
  const flags: string[] = [];
  for (const version of ['v1', 'v1beta1']) {
    const res = await runKubectl(adminKubeconfig, ['get', '--raw', `/apis/admissionregistration.k8s.io/${version}`]);
    if (res.code !== 0) continue;
    const kinds = new Set(((JSON.parse(res.stdout) as { resources?: { kind: string }[] }).resources ?? []).map((r) => r.kind));
    for (const kind of ['MutatingAdmissionPolicy', 'ValidatingAdmissionPolicy']) {
      if (kinds.has(kind)) flags.push('--api-versions', `admissionregistration.k8s.io/${version}/${kind}`);
    }
  }
  return flags;
}

export interface ChartIdentity {
  /** `system:serviceaccount:<namespace>:<name>` */
  username: string;
  kubeConfig: KubeConfig;
  /** Deletes what was applied (cluster-scoped objects and the namespace). */
  remove(): Promise<void>;
}

function helm(args: string[], home: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data') };
  return new Promise((resolve) => {
    execFile(toolPath('helm'), args, { env, timeout: 120_000, maxBuffer: 32 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

// A token outlives any test run and a sandbox left up for days (a kubelet would rotate it hourly).
const TOKEN_DURATION = '720h';

// One helm render per set of values and process: several clusters of a test bed share it.
const renders = new Map<string, Promise<IdentityObject[]>>();

type IdentityObject = { kind: string; metadata: { name: string; namespace?: string } };

async function renderIdentity(release: string, namespace: string, values: string[]): Promise<IdentityObject[]> {
  const home = mkdtempSync(join(tmpdir(), 'fedgpu-helm-'));
  try {
    const rendered = await helm(['template', release, join(repoRoot, 'charts', 'fedgpu'), '--namespace', namespace, ...values], home);
    if (rendered.code !== 0) throw new Error(`helm template failed: ${rendered.stderr}`);
    return parseAllDocuments(rendered.stdout).map((d) => d.toJS() as IdentityObject).filter((o) => o && IDENTITY_KINDS.has(o.kind));
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

function renderedIdentity(release: string, namespace: string, values: string[]): Promise<IdentityObject[]> {
  const key = JSON.stringify([release, namespace, values]);
  let render = renders.get(key);
  if (!render) {
    render = renderIdentity(release, namespace, values);
    renders.set(key, render);
    render.catch(() => renders.delete(key)); // a failed render is tried again next time
  }
  return render;
}

// One identity per cluster, release and values: hub replicas (or hubs restarted) on one cluster share it.
const shared = new Map<string, Promise<ChartIdentity>>();

/** chartIdentity, installed once per cluster (by kubeconfig path), release and values in this process. */
export function sharedChartIdentity(adminKubeconfig: string, release: string, namespace: string, values: string[]): Promise<ChartIdentity> {
  const key = JSON.stringify([adminKubeconfig, release, namespace, values]);
  let identity = shared.get(key);
  if (!identity) {
    identity = chartIdentity(adminKubeconfig, release, namespace, values);
    shared.set(key, identity);
    identity.catch(() => shared.delete(key));
  }
  return identity;
}

/** Installs the identity the chart gives `release` in `namespace` (values as helm `--set` pairs). */
export async function chartIdentity(adminKubeconfig: string, release: string, namespace: string, values: string[]): Promise<ChartIdentity> {
  const objects = await renderedIdentity(release, namespace, [...values, ...await servedPolicyApis(adminKubeconfig)]);
  const sa = objects.find((o) => o.kind === 'ServiceAccount');
  if (!sa) throw new Error('the chart rendered no ServiceAccount');
  const probe = policyProbe(objects, namespace);
  // The probed policy and its binding go last, so that once it refuses, the apiserver has read every
  // other policy and binding too (see policiesInEffect).
  const ordered = probe ? [...objects.filter((o) => !probe.objects.includes(o)), ...probe.objects] : objects;
  await runKubectl(adminKubeconfig, ['create', 'namespace', namespace]);
  const applied = await runKubectl(adminKubeconfig, ['apply', '-f', '-'], ordered.map((o) => stringify(o)).join('---\n'));
  if (applied.code !== 0) throw new Error(`applying the chart's identity failed: ${applied.stderr}`);
  const username = `system:serviceaccount:${namespace}:${sa.metadata.name}`;
  if (objects.some((o) => o.kind === 'ValidatingAdmissionPolicyBinding')) await policiesInEffect(adminKubeconfig, username, probe);
  if (objects.some((o) => o.kind === 'MutatingAdmissionPolicyBinding')) await finalizerAtCreateInEffect(adminKubeconfig, namespace);
  const token = await runKubectl(adminKubeconfig, ['create', 'token', sa.metadata.name, '-n', namespace, `--duration=${TOKEN_DURATION}`]);
  if (token.code !== 0) throw new Error(`token request failed: ${token.stderr}`);
  const admin = new KubeConfig();
  admin.loadFromFile(adminKubeconfig);
  const cluster = admin.getCurrentCluster()!;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [cluster],
    users: [{ name: sa.metadata.name, token: token.stdout.trim() }],
    contexts: [{ name: 'chart', cluster: cluster.name, user: sa.metadata.name }],
    currentContext: 'chart',
  });
  const clusterScoped = objects.filter((o) => !o.metadata.namespace && o.kind !== 'ServiceAccount' && o.kind !== 'Role' && o.kind !== 'RoleBinding');
  return {
    username,
    kubeConfig,
    async remove() {
      for (const o of clusterScoped) await runKubectl(adminKubeconfig, ['delete', o.kind, o.metadata.name, '--ignore-not-found', '--wait=false']);
      await runKubectl(adminKubeconfig, ['delete', 'namespace', namespace, '--ignore-not-found', '--wait=false']);
    },
  };
}

/** A request only one of the hub chart's admission policies refuses, and that policy's objects. */
interface PolicyProbe {
  policy: string;
  objects: IdentityObject[];
  /** kubectl arguments, run as cluster admin (the policy exempts no one). */
  args: string[];
}

/**
 * The hub's probe: a server dry run, as admin, that takes the service-name label off the access
 * EndpointSlice, which the access endpoint guard refuses and nothing else does (RBAC would refuse
 * the hub's own identity before any policy is asked, so it cannot be the one probing). Undefined
 * for the agent, whose probe needs no object of the identity.
 */
function policyProbe(objects: IdentityObject[], namespace: string): PolicyProbe | undefined {
  const policy = objects.find((o) => o.kind === 'ValidatingAdmissionPolicy' && o.metadata.name.endsWith('-access-endpoint-guard'));
  if (!policy) return undefined;
  const binding = objects.find((o) => o.kind === 'ValidatingAdmissionPolicyBinding' && o.metadata.name === policy.metadata.name);
  const slice = objects.find((o) => o.kind === 'EndpointSlice' && o.metadata.name.endsWith('-access-leader'));
  if (!binding || !slice) throw new Error(`the chart rendered ${policy.metadata.name} without its binding or the access EndpointSlice`);
  return {
    policy: policy.metadata.name,
    objects: [policy, binding],
    args: ['label', 'endpointslice', slice.metadata.name, '-n', slice.metadata.namespace ?? namespace, 'kubernetes.io/service-name-', '--dry-run=server'],
  };
}

/**
 * Waits until the apiserver enforces the identity's admission policies: it does once its
 * admission informer has each policy and binding, a moment after they are written, and a test
 * that tries a refused request at once could see it pass. Each probe is a server dry run
 * (nothing is stored) that only a chart policy refuses.
 * - Hub: the access endpoint guard's probe (policyProbe), refused with that policy's name. The
 *   apiserver compiles its policies from its informers' caches all at once (k8s.io/apiserver
 *   admission/plugin/policy/generic, calculatePolicyData) and each informer sees writes in order;
 *   that policy and binding were applied last, so once it refuses, the hub's other policies
 *   (job status, finalizer and secrets guards) are in force too.
 * - Agent: a namespace no component may create, refused by the agent's scope policy (the agent
 *   may create namespaces, so RBAC lets it through to the policy).
 */
async function policiesInEffect(adminKubeconfig: string, username: string, probe: PolicyProbe | undefined): Promise<void> {
  await waitFor(`the chart's admission policies in effect for ${username}`, async () => {
    if (probe) {
      const res = await runKubectl(adminKubeconfig, probe.args);
      return res.code !== 0 && res.stderr.includes(probe.policy) ? true : undefined;
    }
    const res = await runKubectl(adminKubeconfig, ['create', 'namespace', 'fedgpu-policy-probe', '--dry-run=server', `--as=${username}`]);
    return res.code !== 0 ? true : undefined;
  }, { timeoutMs: 60_000, intervalMs: 200 });
}

/**
 * Waits until the hub chart's finalizer-at-create policy acts on a GpuJob create (server dry run,
 * nothing stored), so a test bed's first jobs take the path its later ones do. The apiserver
 * applies a policy to a custom resource only once it has the CRD's schema, some seconds after the
 * CRD is established; until then the policy is skipped (its failurePolicy is Ignore) and the hub
 * writes the finalizer itself. Without the GpuJob CRD there is nothing to wait for.
 */
async function finalizerAtCreateInEffect(adminKubeconfig: string, namespace: string): Promise<void> {
  if ((await runKubectl(adminKubeconfig, ['get', 'crd', 'gpujobs.fedgpu.io'])).code !== 0) return;
  const probe = stringify({
    apiVersion: 'fedgpu.io/v1alpha1', kind: 'GpuJob', metadata: { name: 'finalizer-probe', namespace },
    spec: { template: { spec: { containers: [{ name: 'main', image: 'example/probe' }] } }, budget: { maxPricePerGpuHour: '1' } },
  });
  await waitFor('the GpuJob finalizer-at-create policy in effect', async () => {
    const res = await runKubectl(adminKubeconfig, ['create', '-f', '-', '--dry-run=server', '-o', 'jsonpath={.metadata.finalizers}'], probe);
    return res.code === 0 && res.stdout.includes(CLEANUP_FINALIZER) ? true : undefined;
  }, { timeoutMs: 60_000, intervalMs: 200 });
}
