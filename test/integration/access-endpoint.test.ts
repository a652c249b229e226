import { join } from 'node:path';
import { CoreV1Api, DiscoveryV1Api, Watch, type V1EndpointSlice } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AccessEndpointPublisher, leaderSliceName } from '../../operator/src/hub/access/leader-endpoint.js';
import { startHub, type RunningHub } from '../../operator/src/hub/hub.js';
import { HubMetrics } from '../../operator/src/metrics/hub-metrics.js';
import { parseExposition, valueOf } from '../../operator/src/metrics/testing/exposition.js';
import type { ChartIdentity } from '../../operator/src/testbed/chart-identity.js';
import { HUB_LEASE, HUB_RELEASE, HUB_RELEASE_NAMESPACE, hubIdentity } from '../../operator/src/testbed/federation.js';
import { runKubectl } from '../../operator/src/testbed/kubectl.js';
import { repoRoot } from '../../operator/src/testbed/tools.js';
import { waitFor } from '../../operator/src/testbed/wait.js';
import { createCa, issueCert } from '../../operator/src/tls/certs.js';
import { loadKubeConfig } from '../../operator/src/runtime/kube.js';

// HA with the access API (docs/access.md): the chart's access Service has no selector, and only
// the leading hub replica is its endpoint. Two hubs run with exactly the chart's identity against
// a real apiserver (and controller-manager); the EndpointSlice the chart makes is watched as they
// hand over. The addresses are from TEST-NET-1 (192.0.2.0/24): an EndpointSlice may not name a
// loopback address, and only the slice is under test here, not a connection through it (no pod
// network or kube-proxy exists on this test bed; the access e2e test routes the apiserver to the
// hub over loopback instead).

const kubeconfig = inject('kubeconfig');
const admin = loadKubeConfig(kubeconfig);
const SERVICE = `${HUB_RELEASE}-access`;
const SLICE = leaderSliceName(SERVICE);
const ACCESS_PORT = 8444; // values.yaml hub.access.port
const silent = pino({ level: 'silent' });
let identity: ChartIdentity;
let serving: { certPem: string; keyPem: string };
let caPem: string;
const hubs: RunningHub[] = [];
const metricsOf = new Map<string, HubMetrics>();
const gauge = async (name: string) => valueOf(parseExposition(await metricsOf.get(name)!.text()), 'fedgpu_hub_access_endpoint_published');

const discovery = () => admin.makeApiClient(DiscoveryV1Api);
const readSlice = () => discovery().readNamespacedEndpointSlice({ name: SLICE, namespace: HUB_RELEASE_NAMESPACE });
const addressesOf = (s: V1EndpointSlice | undefined) => (s?.endpoints ?? []).flatMap((ep) => ep.addresses);

/** The guard policy acts a moment after it is written: wait on a server-side dry run it refuses. */
async function policyInEffect(): Promise<void> {
  await waitFor('the access endpoint guard in effect', async () => {
    const res = await runKubectl(kubeconfig, ['label', 'endpointslice', SLICE, '-n', HUB_RELEASE_NAMESPACE, '--overwrite', 'kubernetes.io/service-name=probe', '--dry-run=server']);
    return res.code !== 0 ? true : undefined;
  }, { timeoutMs: 30_000, intervalMs: 200 });
}

async function startReplica(name: string, address: string): Promise<RunningHub> {
  const metrics = new HubMetrics({ processMetrics: false });
  metricsOf.set(name, metrics);
  const hub = await startHub({
    metrics,
    kubeConfig: identity.kubeConfig,
    tls: { caPem, certPem: serving.certPem, keyPem: serving.keyPem },
    logger: silent,
    leaderElection: { ...HUB_LEASE, identity: name, leaseDurationMs: 4_000, renewDeadlineMs: 3_000, retryPeriodMs: 200 },
    // The slice names the chart's access port (the container port); this hub listens on a free one,
    // which nothing here dials through the slice.
    // It re-reads the slice every 200 ms here (5 s by default), so a repair is seen within a test.
    access: { port: 0, certPem: serving.certPem, keyPem: serving.keyPem, endpoint: { service: SERVICE, namespace: HUB_RELEASE_NAMESPACE, address, podName: name, port: ACCESS_PORT, reassertMs: 200 } },
  });
  hubs.push(hub);
  return hub;
}

beforeAll(async () => {
  const crds = join(repoRoot, 'crds');
  for (const args of [['apply', '--server-side', '-f', crds], ['wait', '--for=condition=Established', '--timeout=60s', '-f', crds]]) {
    const res = await runKubectl(kubeconfig, args);
    expect(res.code, res.stderr).toBe(0);
  }
  identity = await hubIdentity({ kubeconfigPath: kubeconfig });
  const ca = await createCa('access-endpoint test CA');
  caPem = ca.certPem;
  serving = await issueCert(ca, { commonName: 'fedgpu-hub', ipAddresses: ['127.0.0.1'], usages: ['server'] });
  // The Service as the chart renders it: no selector, so no controller writes endpoints for it.
  await admin.makeApiClient(CoreV1Api).createNamespacedService({
    namespace: HUB_RELEASE_NAMESPACE,
    body: { metadata: { name: SERVICE }, spec: { type: 'ClusterIP', ports: [{ name: 'access', port: 443, targetPort: 'access', protocol: 'TCP' }] } },
  }).catch((err: { code?: number }) => {
    if (err.code !== 409) throw err;
  });
}, 120_000);

afterAll(async () => {
  for (const hub of hubs) await hub.stop().catch(() => undefined);
  await admin.makeApiClient(CoreV1Api).deleteNamespacedService({ name: SERVICE, namespace: HUB_RELEASE_NAMESPACE }).catch(() => undefined);
});

describe("the access Service's endpoint follows the hub leader", () => {
  it('is empty as the chart makes it, names the leader alone, and moves to the successor on hand-over', async () => {
    // Every state the slice goes through, in order, from the apiserver's watch.
    const states: string[] = [];
    const watch = await new Watch(admin).watch(
      `/apis/discovery.k8s.io/v1/namespaces/${HUB_RELEASE_NAMESPACE}/endpointslices`,
      { fieldSelector: `metadata.name=${SLICE}` },
      (_phase: string, obj: V1EndpointSlice) => {
        const state = addressesOf(obj).join(',') || '(none)';
        if (states.at(-1) !== state) states.push(state);
      },
      () => undefined,
    );
    try {
      expect(addressesOf(await readSlice())).toEqual([]);
      const first = await startReplica('hub-a', '192.0.2.1');
      await waitFor('hub-a to lead', () => (first.roles.isLeader ? true : undefined), { timeoutMs: 30_000 });
      const published = await waitFor('hub-a published', async () => {
        const slice = await readSlice();
        return addressesOf(slice).includes('192.0.2.1') ? slice : undefined;
      }, { timeoutMs: 30_000, intervalMs: 100 });
      expect(published.endpoints).toEqual([
        expect.objectContaining({ addresses: ['192.0.2.1'], conditions: expect.objectContaining({ ready: true }), targetRef: expect.objectContaining({ kind: 'Pod', name: 'hub-a', namespace: HUB_RELEASE_NAMESPACE }) }),
      ]);
      expect(published.ports).toEqual([expect.objectContaining({ name: 'access', port: ACCESS_PORT, protocol: 'TCP' })]);
      // The chart's labels stay, so helm still owns the object; the Service label ties it to the Service.
      expect(published.metadata?.labels).toMatchObject({ 'kubernetes.io/service-name': SERVICE, 'app.kubernetes.io/managed-by': 'Helm' });

      // The gauge is set once the publish call returns, a moment after the write is visible.
      await waitFor('hub-a counts itself published', async () => ((await gauge('hub-a')) === 1 ? true : undefined), { timeoutMs: 10_000, intervalMs: 50 });
      const second = await startReplica('hub-b', '192.0.2.2');
      expect(second.roles.isLeader).toBe(false);
      expect(await gauge('hub-b')).toBe(0);
      // A graceful stop (a rolling update): hub-a withdraws itself before it lets go of the Lease.
      await first.stop();
      await waitFor('hub-b to lead', () => (second.roles.isLeader ? true : undefined), { timeoutMs: 30_000 });
      await waitFor('hub-b published', async () => (addressesOf(await readSlice()).join() === '192.0.2.2' ? true : undefined), { timeoutMs: 30_000, intervalMs: 100 });
      await waitFor('hub-b counts itself published', async () => ((await gauge('hub-b')) === 1 ? true : undefined), { timeoutMs: 10_000, intervalMs: 50 });
      expect(await gauge('hub-a')).toBe(0);
      // Never a stand-by, never two replicas at once, and no stale leader after its successor.
      expect(states).toEqual(['(none)', '192.0.2.1', '(none)', '192.0.2.2']);
    } finally {
      watch.abort();
    }
  });

  it("does not let a replica that stepped down withdraw its successor's endpoint", async () => {
    await waitFor('a published leader', async () => (addressesOf(await readSlice()).join() === '192.0.2.2' ? true : undefined), { timeoutMs: 30_000, intervalMs: 100 });
    // hub-a's publisher, late: it reads the slice, sees hub-b, and leaves it.
    const late = new AccessEndpointPublisher({ kubeConfig: identity.kubeConfig, endpoint: { service: SERVICE, namespace: HUB_RELEASE_NAMESPACE, address: '192.0.2.1', port: ACCESS_PORT, podName: 'hub-a' }, logger: silent });
    expect(await late.withdraw()).toBe(false);
    expect(addressesOf(await readSlice())).toEqual(['192.0.2.2']);
    // The same pod IP for another pod (hub-a restarted into hub-b's old IP, say): not hub-a's either.
    const samePodIp = new AccessEndpointPublisher({ kubeConfig: identity.kubeConfig, endpoint: { service: SERVICE, namespace: HUB_RELEASE_NAMESPACE, address: '192.0.2.2', port: ACCESS_PORT, podName: 'hub-a' }, logger: silent });
    expect(await samePodIp.withdraw()).toBe(false);
    expect(addressesOf(await readSlice())).toEqual(['192.0.2.2']);
  });

  it('withdraws only the version it read: a successor that writes in between keeps its endpoint', async () => {
    // hub-b's withdraw, with a write by someone else landing between its read and its write.
    const racing = new AccessEndpointPublisher({ kubeConfig: identity.kubeConfig, endpoint: { service: SERVICE, namespace: HUB_RELEASE_NAMESPACE, address: '192.0.2.2', port: ACCESS_PORT, podName: 'hub-b' }, logger: silent });
    const api = (racing as unknown as { api: DiscoveryV1Api }).api;
    const replace = api.replaceNamespacedEndpointSlice.bind(api);
    let interleaved = false;
    api.replaceNamespacedEndpointSlice = (async (param: Parameters<DiscoveryV1Api['replaceNamespacedEndpointSlice']>[0]) => {
      const now = await readSlice();
      await discovery().replaceNamespacedEndpointSlice({ name: SLICE, namespace: HUB_RELEASE_NAMESPACE, body: { ...now, metadata: { ...now.metadata, annotations: { 'example.com/touched': 'yes' } } } });
      interleaved = true;
      return replace(param);
    }) as DiscoveryV1Api['replaceNamespacedEndpointSlice'];
    expect(await racing.withdraw()).toBe(false); // 409: the version it read is gone
    expect(interleaved).toBe(true);
    expect(addressesOf(await readSlice())).toEqual(['192.0.2.2']);
  });

  it('puts the endpoint back when someone edits it while the replica leads', async () => {
    const slice = await readSlice();
    await discovery().replaceNamespacedEndpointSlice({ name: SLICE, namespace: HUB_RELEASE_NAMESPACE, body: { ...slice, endpoints: [{ addresses: ['192.0.2.66'], conditions: { ready: true } }] } });
    // The running leader's own loop repairs it on its next read.
    await waitFor('the leader to repair its endpoint', async () => (addressesOf(await readSlice()).join() === '192.0.2.2' ? true : undefined), { timeoutMs: 30_000, intervalMs: 50 });
    expect((await readSlice()).endpoints?.[0]?.targetRef?.name).toBe('hub-b');
  });

  it("gives a stolen hub credential no way to add endpoints to any other Service, or to delete the leader's slice", async () => {
    await policyInEffect();
    const asHub = identity.kubeConfig.makeApiClient(DiscoveryV1Api);
    // The gRPC Service agents dial: an extra slice for it would send agents to the thief.
    const foreign: V1EndpointSlice = {
      metadata: { name: `${HUB_RELEASE}-grpc-extra`, labels: { 'kubernetes.io/service-name': `${HUB_RELEASE}-grpc`, 'endpointslice.kubernetes.io/managed-by': 'fedgpu-hub' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['192.0.2.99'], conditions: { ready: true } }],
      ports: [{ name: 'grpc', port: 8443, protocol: 'TCP' }],
    };
    await expect(asHub.createNamespacedEndpointSlice({ namespace: HUB_RELEASE_NAMESPACE, body: foreign })).rejects.toMatchObject({ code: 403 });
    await expect(asHub.deleteNamespacedEndpointSlice({ name: SLICE, namespace: HUB_RELEASE_NAMESPACE })).rejects.toMatchObject({ code: 403 });
    await expect(asHub.listNamespacedEndpointSlice({ namespace: HUB_RELEASE_NAMESPACE })).rejects.toMatchObject({ code: 403 });
    // Its own slice, which it may update, relabelled for the gRPC Service: the chart's guard refuses it.
    const slice = await asHub.readNamespacedEndpointSlice({ name: SLICE, namespace: HUB_RELEASE_NAMESPACE });
    const relabelled = { ...slice, metadata: { ...slice.metadata, labels: { ...slice.metadata?.labels, 'kubernetes.io/service-name': `${HUB_RELEASE}-grpc` } }, ports: [{ name: 'grpc', port: 8443, protocol: 'TCP' }] };
    await expect(asHub.replaceNamespacedEndpointSlice({ name: SLICE, namespace: HUB_RELEASE_NAMESPACE, body: relabelled })).rejects.toMatchObject({ code: 403, body: expect.stringContaining(`belongs to Service ${SERVICE}`) });
    const otherPort = { ...slice, ports: [{ name: 'grpc', port: 8443, protocol: 'TCP' }] };
    await expect(asHub.replaceNamespacedEndpointSlice({ name: SLICE, namespace: HUB_RELEASE_NAMESPACE, body: otherPort })).rejects.toMatchObject({ code: 403, body: expect.stringContaining('access port only') });
    const unmanaged = { ...slice, metadata: { ...slice.metadata, labels: { ...slice.metadata?.labels, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' } } };
    await expect(asHub.replaceNamespacedEndpointSlice({ name: SLICE, namespace: HUB_RELEASE_NAMESPACE, body: unmanaged })).rejects.toMatchObject({ code: 403, body: expect.stringContaining('managed by fedgpu-hub') });
    // Pointed at another port of its own choosing (a kubelet's 10250, etcd's 2379): refused.
    const kubeletPort = { ...slice, ports: [{ name: 'access', port: 10250, protocol: 'TCP' }] };
    await expect(asHub.replaceNamespacedEndpointSlice({ name: SLICE, namespace: HUB_RELEASE_NAMESPACE, body: kubeletPort })).rejects.toMatchObject({ code: 403, body: expect.stringContaining(`access, ${ACCESS_PORT}/TCP`) });
    // An owner that does not exist would have the garbage collector delete the slice for it.
    const owned = { ...slice, metadata: { ...slice.metadata, ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'gone', uid: '00000000-0000-0000-0000-000000000001' }] } };
    await expect(asHub.replaceNamespacedEndpointSlice({ name: SLICE, namespace: HUB_RELEASE_NAMESPACE, body: owned })).rejects.toMatchObject({ code: 403, body: expect.stringContaining('has no owner') });
    const held = { ...slice, metadata: { ...slice.metadata, finalizers: ['example.com/hold'] } };
    await expect(asHub.replaceNamespacedEndpointSlice({ name: SLICE, namespace: HUB_RELEASE_NAMESPACE, body: held })).rejects.toMatchObject({ code: 403, body: expect.stringContaining('no finalizers') });
    expect(addressesOf(await readSlice())).toEqual(['192.0.2.2']);
  });

  it('leaves the slice empty once every replica stopped, and still writable through the guard (a later install or upgrade)', async () => {
    await policyInEffect();
    for (const hub of hubs.splice(0)) await hub.stop();
    // Emptied, it reads back with endpoints null: an admission rule that took its size would
    // refuse every later write of it, helm's and kubectl's included.
    expect(addressesOf(await readSlice())).toEqual([]);
    const relabelled = await runKubectl(kubeconfig, ['label', 'endpointslice', SLICE, '-n', HUB_RELEASE_NAMESPACE, '--overwrite', 'example.com/upgraded=yes']);
    expect(relabelled.code, relabelled.stderr).toBe(0);
  });

  it('refuses at start an address no EndpointSlice can hold, before it listens or leads', async () => {
    await expect(startHub({
      kubeConfig: identity.kubeConfig,
      tls: { caPem, certPem: serving.certPem, keyPem: serving.keyPem },
      logger: silent,
      access: { port: 0, certPem: serving.certPem, keyPem: serving.keyPem, endpoint: { service: SERVICE, namespace: HUB_RELEASE_NAMESPACE, address: '127.0.0.1' } },
    })).rejects.toThrow(/the access endpoint: 127\.0\.0\.1 is a loopback address/);
  });
});
