import { join } from 'node:path';
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { Wallet } from 'ethers';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CLEANUP_FINALIZER } from '../../operator/src/api/constants.js';
import { GPUJOB_PLURAL, GPUPROVIDER_PLURAL, GROUP, VERSION, type GpuJob, type GpuProvider } from '../../operator/src/api/types.js';
import { ProviderProfile } from '../../operator/src/gen/proto/fedgpu/v1/market.js';
import { AccessAuthorizer } from '../../operator/src/hub/access/authorize.js';
import { loadRequestHeaderConfig } from '../../operator/src/hub/access/identity.js';
import { startHub, type RunningHub } from '../../operator/src/hub/hub.js';
import { HubMetrics } from '../../operator/src/metrics/hub-metrics.js';
import { parseExposition, valueOf } from '../../operator/src/metrics/testing/exposition.js';
import { ConsumerAccounts } from '../../operator/src/hub/settlement/accounts.js';
import type { ChartIdentity } from '../../operator/src/testbed/chart-identity.js';
import { HUB_LEASE, HUB_RELEASE, HUB_RELEASE_NAMESPACE, hubIdentity } from '../../operator/src/testbed/federation.js';
import { runKubectl } from '../../operator/src/testbed/kubectl.js';
import { repoRoot } from '../../operator/src/testbed/tools.js';
import { waitFor } from '../../operator/src/testbed/wait.js';
import { createCa, issueCert } from '../../operator/src/tls/certs.js';
import { loadKubeConfig } from '../../operator/src/runtime/kube.js';

// The hub with exactly the identity the chart gives it (helm-rendered ServiceAccount, ClusterRoles,
// Role and bindings, hub mode with the access API), against a real apiserver with RBAC. Every kind of
// API call the hub makes is driven here once and its effect read back as admin, so a permission the
// chart's hub RBAC lacks fails a named test (most hub writes only log a failure and carry on).
//  - Lease create/get/update (leader election)        - GpuJob watch, finalizer patch, status patch
//  - the chart's guard: only the hub takes its GpuJob finalizer off (a consumer through the chart's role cannot)
//  - GpuProvider create, spec patch, status patch      - core Events create and patch
//  - Namespace list/watch (consumer wallets)           - SubjectAccessReview create (access API)
//  - kube-system/extension-apiserver-authentication read (access API's front-proxy CA)

const kubeconfig = inject('kubeconfig');
const admin = loadKubeConfig(kubeconfig);
const NS = `hub-identity-${process.pid}`;
const silent = pino({ level: 'silent' });
let identity: ChartIdentity;
let hub: RunningHub;
const metrics = new HubMetrics({ processMetrics: false });

const custom = () => admin.makeApiClient(CustomObjectsApi);
const getJob = async (name: string) => (await custom().getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: GPUJOB_PLURAL, namespace: NS, name })) as GpuJob;
const getProvider = async (name: string) => (await custom().getClusterCustomObject({ group: GROUP, version: VERSION, plural: GPUPROVIDER_PLURAL, name })) as GpuProvider;

beforeAll(async () => {
  const crds = join(repoRoot, 'crds');
  for (const args of [['apply', '--server-side', '-f', crds], ['wait', '--for=condition=Established', '--timeout=60s', '-f', crds]]) {
    const res = await runKubectl(kubeconfig, args);
    expect(res.code, res.stderr).toBe(0);
  }
  await admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
  identity = await hubIdentity({ kubeconfigPath: kubeconfig });
  const ca = await createCa('hub-identity test CA');
  const serving = await issueCert(ca, { commonName: 'fedgpu-hub', ipAddresses: ['127.0.0.1'], usages: ['server'] });
  hub = await startHub({
    kubeConfig: identity.kubeConfig,
    tls: { caPem: ca.certPem, certPem: serving.certPem, keyPem: serving.keyPem },
    logger: silent,
    leaderElection: { ...HUB_LEASE, identity: `hub-identity-${process.pid}`, leaseDurationMs: 4_000, renewDeadlineMs: 3_000, retryPeriodMs: 200 },
    access: { port: 0, certPem: serving.certPem, keyPem: serving.keyPem },
    metrics,
  });
}, 120_000);

afterAll(async () => {
  await hub?.stop();
  await runKubectl(kubeconfig, ['delete', 'namespace', NS, '--wait=false']);
});

describe("the hub runs with the chart's identity", () => {
  it('is the ServiceAccount the chart names, which is no cluster admin', async () => {
    expect(identity.username).toBe(`system:serviceaccount:${HUB_RELEASE_NAMESPACE}:${HUB_RELEASE}`);
    await expect(identity.kubeConfig.makeApiClient(CoreV1Api).listSecretForAllNamespaces()).rejects.toMatchObject({ code: 403 });
    await expect(identity.kubeConfig.makeApiClient(CoreV1Api).listPodForAllNamespaces()).rejects.toMatchObject({ code: 403 });
  });

  it("leads through the chart's Lease (create, then get and update by name)", async () => {
    await waitFor('the hub to lead', () => (hub.roles.isLeader ? true : undefined), { timeoutMs: 30_000 });
    const leases = admin.makeApiClient(CoordinationV1Api);
    const first = await leases.readNamespacedLease({ ...HUB_LEASE });
    expect(first.spec?.holderIdentity).toBe(`hub-identity-${process.pid}`);
    // Renewed: the same holder writes a newer renewTime.
    await waitFor('a renewal', async () => {
      const now = await leases.readNamespacedLease({ ...HUB_LEASE });
      return now.metadata?.resourceVersion !== first.metadata?.resourceVersion && now.spec?.holderIdentity === first.spec?.holderIdentity ? true : undefined;
    }, { timeoutMs: 10_000, intervalMs: 100 });
  });

  it('reconciles a GpuJob: finalizer, status and, on delete, lets it go', async () => {
    const created = await custom().createNamespacedCustomObject({
      group: GROUP, version: VERSION, plural: GPUJOB_PLURAL, namespace: NS,
      body: {
        apiVersion: `${GROUP}/${VERSION}`, kind: 'GpuJob', metadata: { name: 'waits' },
        spec: { template: { spec: { containers: [{ name: 'main', image: 'example/train:v1' }] } }, budget: { maxPricePerGpuHour: '1' } },
      },
    }) as GpuJob;
    const seen = await waitFor('the hub to take the job', async () => {
      const job = await getJob('waits');
      return job.metadata.finalizers?.includes(CLEANUP_FINALIZER) && job.status?.phase ? job : undefined;
    }, { timeoutMs: 30_000, intervalMs: 200 });
    expect(seen.metadata.uid).toBe(created.metadata.uid);
    // This apiserver serves no MutatingAdmissionPolicy (the suite's global setup), so the chart's
    // finalizer policy is not there and the hub wrote the finalizer itself, as its own field manager.
    expect(created.metadata.finalizers ?? []).toEqual([]);
    const finalizerOwners = (seen.metadata.managedFields ?? []).filter((m) => JSON.stringify(m.fieldsV1 ?? {}).includes('"f:finalizers"')).map((m) => m.manager);
    expect(finalizerOwners).toContain('fedgpu-gpujob-controller');
    // ... and counted it, so an SRE sees the policy is not doing it (docs/metrics.md).
    expect(valueOf(parseExposition(await metrics.text()), 'fedgpu_gpujob_finalizers_added_total')).toBeGreaterThanOrEqual(1);
    expect(seen.status?.conditions?.find((c) => c.type === 'Settled')).toMatchObject({ status: 'False', reason: 'NoChain' });
    await custom().deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: GPUJOB_PLURAL, namespace: NS, name: 'waits' });
    await waitFor('the hub to remove its finalizer', async () => {
      try {
        await getJob('waits');
        return undefined;
      } catch (err) {
        return (err as { code?: number }).code === 404 ? true : undefined;
      }
    }, { timeoutMs: 30_000, intervalMs: 200 });
  });

  it("refuses a consumer who takes the hub's finalizer off a GpuJob (to delete it past the hub); deleting stays theirs, and the hub still lets go", async () => {
    // mallory edits GpuJobs in NS through the chart's consumer role (update and patch included).
    const bound = await runKubectl(kubeconfig, ['create', 'rolebinding', 'mallory-edits', '-n', NS, '--clusterrole=fedgpu-job-editor', '--user=mallory']);
    expect(bound.code, bound.stderr).toBe(0);
    const asMallory = (args: string[], stdin?: string) => runKubectl(kubeconfig, [...args, '-n', NS, '--as=mallory'], stdin);
    const manifest = (finalizers?: string[]) => JSON.stringify({
      apiVersion: `${GROUP}/${VERSION}`, kind: 'GpuJob', metadata: { name: 'mallorys', ...(finalizers ? { finalizers } : {}) },
      spec: { template: { spec: { containers: [{ name: 'main', image: 'example/train:v1' }] } }, budget: { maxPricePerGpuHour: '1' } },
    });
    const created = await asMallory(['create', '-f', '-'], manifest());
    expect(created.code, created.stderr).toBe(0);
    await waitFor('the hub to guard the job', async () => {
      const job = await getJob('mallorys');
      return job.metadata.finalizers?.includes(CLEANUP_FINALIZER) && job.status?.phase ? true : undefined;
    }, { timeoutMs: 30_000, intervalMs: 200 });
    const strip = ['patch', 'gj', 'mallorys', '--type=merge', '-p', '{"metadata":{"finalizers":null}}'];
    // The apiserver enforces a policy a moment after it is written: wait on a server-side dry run.
    await waitFor('the finalizer guard in effect', async () => ((await asMallory([...strip, '--dry-run=server'])).code !== 0 ? true : undefined), { timeoutMs: 30_000, intervalMs: 200 });

    // Every way to write the list without it is refused, with the reason.
    for (const attempt of [
      asMallory(strip),
      asMallory(['patch', 'gj', 'mallorys', '--type=json', '-p', '[{"op":"remove","path":"/metadata/finalizers/0"}]']),
      asMallory(['patch', 'gj', 'mallorys', '--type=merge', '-p', '{"metadata":{"finalizers":["example.com/other"]}}']),
      getJob('mallorys').then((j) => asMallory(['replace', '-f', '-'], JSON.stringify({ ...j, metadata: { ...j.metadata, finalizers: [] } }))),
    ]) {
      const res = await attempt;
      expect(res.code).not.toBe(0);
      expect(res.stderr).toContain('only the fedgpu hub removes the fedgpu.io/cleanup finalizer');
    }
    expect((await getJob('mallorys')).metadata.finalizers).toEqual([CLEANUP_FINALIZER]);
    // The guard is that narrow: other changes, and a finalizer of their own beside it, still go through.
    const labelled = await asMallory(['label', 'gj', 'mallorys', 'team=ml']);
    expect(labelled.code, labelled.stderr).toBe(0);
    const added = await asMallory(['patch', 'gj', 'mallorys', '--type=json', '-p', '[{"op":"add","path":"/metadata/finalizers/-","value":"example.com/mine"}]']);
    expect(added.code, added.stderr).toBe(0);
    const dropped = await asMallory(['patch', 'gj', 'mallorys', '--type=json', '-p', '[{"op":"remove","path":"/metadata/finalizers/1"}]']);
    expect(dropped.code, dropped.stderr).toBe(0);

    // Deleting is theirs: the hub (its ServiceAccount passes the guard) cleans up and lets it go.
    const deleted = await asMallory(['delete', 'gj', 'mallorys', '--wait=false']);
    expect(deleted.code, deleted.stderr).toBe(0);
    await waitFor('the hub to remove its finalizer', async () => getJob('mallorys').then(() => undefined, (err: { code?: number }) => (err.code === 404 ? true : undefined)), { timeoutMs: 30_000, intervalMs: 200 });
  });

  it("refuses a consumer who writes a GpuJob's status (a free run: price 0, covered 0), whatever role its namespace grants; the hub still writes it", async () => {
    // The attack: a namespace owner's wildcard role reaches gpujobs/status; the hub resends the
    // attempt's price and covered GPU-seconds from status on every Resync (0 covered = no limit).
    const granted = await runKubectl(kubeconfig, ['create', 'role', 'status-writer', '-n', NS, '--verb=get,update,patch', '--resource=gpujobs/status,gpujobs']);
    expect(granted.code, granted.stderr).toBe(0);
    const bound = await runKubectl(kubeconfig, ['create', 'rolebinding', 'trudy-status', '-n', NS, '--role=status-writer', '--user=trudy']);
    expect(bound.code, bound.stderr).toBe(0);
    const asTrudy = (args: string[]) => runKubectl(kubeconfig, [...args, '-n', NS, '--as=trudy']);
    await custom().createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: GPUJOB_PLURAL, namespace: NS, body: {
      apiVersion: `${GROUP}/${VERSION}`, kind: 'GpuJob', metadata: { name: 'trudys' },
      spec: { template: { spec: { containers: [{ name: 'main', image: 'example/train:v1' }] } }, budget: { maxPricePerGpuHour: '1' } },
    } });
    await waitFor('the hub to write the job status', async () => ((await getJob('trudys')).status?.phase ? true : undefined), { timeoutMs: 30_000, intervalMs: 200 });
    const patch = ['patch', 'gj', 'trudys', '--subresource=status', '--type=merge', '-p', '{"status":{"message":"free"}}'];
    await waitFor('the status guard in effect', async () => ((await asTrudy([...patch, '--dry-run=server'])).code !== 0 ? true : undefined), { timeoutMs: 30_000, intervalMs: 200 });
    const res = await asTrudy(patch);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("only the fedgpu hub writes a GpuJob's status");
    expect((await getJob('trudys')).status?.message).not.toBe('free');
    // Only the status: the spec stays theirs to edit (within its CEL rules).
    const labelled = await asTrudy(['label', 'gj', 'trudys', 'team=ml']);
    expect(labelled.code, labelled.stderr).toBe(0);
    await custom().deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: GPUJOB_PLURAL, namespace: NS, name: 'trudys' });
  });

  it("refuses a job that names a Secret its writer may not read (the hub would hand a teammate's Secret to the writer's pods); allowed once they may", async () => {
    const secret = await runKubectl(kubeconfig, ['create', 'secret', 'generic', 'lead-token', '-n', NS, '--from-literal=token=s3cr3t']);
    expect(secret.code, secret.stderr).toBe(0);
    const edits = await runKubectl(kubeconfig, ['create', 'rolebinding', 'sam-edits', '-n', NS, '--clusterrole=fedgpu-job-editor', '--user=sam']);
    expect(edits.code, edits.stderr).toBe(0);
    const asSam = (args: string[], stdin?: string) => runKubectl(kubeconfig, [...args, '-n', NS, '--as=sam'], stdin);
    const manifest = (name: string) => JSON.stringify({
      apiVersion: `${GROUP}/${VERSION}`, kind: 'GpuJob', metadata: { name },
      spec: { template: { spec: { containers: [{ name: 'main', image: 'example/train:v1' }] } }, budget: { maxPricePerGpuHour: '1' }, secrets: [{ name: 'lead-token', env: [{ name: 'TOKEN', key: 'token' }] }] },
    });
    await waitFor('the secrets guard in effect', async () => ((await asSam(['create', '-f', '-', '--dry-run=server'], manifest('probe'))).code !== 0 ? true : undefined), { timeoutMs: 30_000, intervalMs: 200 });
    const refused = await asSam(['create', '-f', '-'], manifest('sams'));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('spec.secrets names a Secret of this namespace you may not read (get)');
    // A job without secrets, and one whose writer may read the Secret, go through.
    const reads = await runKubectl(kubeconfig, ['create', 'role', 'read-lead-token', '-n', NS, '--verb=get', '--resource=secrets', '--resource-name=lead-token']);
    expect(reads.code, reads.stderr).toBe(0);
    const bound = await runKubectl(kubeconfig, ['create', 'rolebinding', 'sam-reads', '-n', NS, '--role=read-lead-token', '--user=sam']);
    expect(bound.code, bound.stderr).toBe(0);
    await waitFor('sam may read it', async () => ((await asSam(['create', '-f', '-', '--dry-run=server'], manifest('probe'))).code === 0 ? true : undefined), { timeoutMs: 30_000, intervalMs: 200 });
    const allowed = await asSam(['create', '-f', '-'], manifest('sams'));
    expect(allowed.code, allowed.stderr).toBe(0);
    await custom().deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: GPUJOB_PLURAL, namespace: NS, name: 'sams' });
  });

  it('registers a provider: GpuProvider create, spec patch, status patch and an Event', async () => {
    const wallet = Wallet.createRandom().address;
    const info = { walletAddress: wallet, agentVersion: 'test', protocolVersion: 1, peer: '127.0.0.1:1' };
    const profile = (displayName: string) => ProviderProfile.fromPartial({ displayName });
    const name = await hub.registry.register(wallet, { ...info, profile: profile('first') });
    await hub.registry.register(wallet, { ...info, profile: profile('renamed') });
    const provider = await waitFor('the provider written', async () => {
      const p = await getProvider(name);
      return p.status?.conditions?.some((c) => c.type === 'Registered' && c.status === 'True') ? p : undefined;
    }, { timeoutMs: 10_000, intervalMs: 100 });
    expect(provider.spec.displayName).toBe('renamed');
    const events = await admin.makeApiClient(CoreV1Api).listEventForAllNamespaces({ fieldSelector: `involvedObject.name=${name}` });
    expect(events.items.map((e) => e.reason)).toContain('AgentConnected');
    await custom().deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: GPUPROVIDER_PLURAL, name });
  });

  it('watches namespaces for consumer wallets', async () => {
    const accounts = new ConsumerAccounts(identity.kubeConfig, silent);
    await accounts.namespaces.start();
    try {
      expect(accounts.namespaces.hasSynced()).toBe(true);
      expect(accounts.consumerOf(NS)).toEqual({ problem: expect.stringContaining(`namespace ${NS} has no label`) });
    } finally {
      await accounts.namespaces.stop();
    }
  });

  it("asks RBAC about access (SubjectAccessReview) and reads the apiserver's front-proxy CA", async () => {
    const authorizer = new AccessAuthorizer(identity.kubeConfig);
    const decision = await authorizer.check({ user: 'nobody', groups: [], extra: {} }, NS, 'waits', 'log');
    expect(decision).toMatchObject({ allowed: false, message: expect.stringContaining('cannot get resource "gpujobs/log"') });
    const config = await loadRequestHeaderConfig(identity.kubeConfig);
    expect(config.caPem).toContain('BEGIN CERTIFICATE');
  });
});
