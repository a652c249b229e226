import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { GPUJOB_PLURAL, GROUP, VERSION, type GpuJob, type GpuProvider } from '../../operator/src/api/types.js';
import type { RunningHub } from '../../operator/src/hub/hub.js';
import { hubPki, installCrds, providerClient, readyStatus, startAgent, startTestHub, type AgentHandle } from '../../operator/src/testbed/federation.js';
import { reapStaleRuns } from '../../operator/src/testbed/processes.js';
import { startTestbed, type Testbed } from '../../operator/src/testbed/testbed.js';
import { repoRoot } from '../../operator/src/testbed/tools.js';
import { waitFor } from '../../operator/src/testbed/wait.js';

// A hostile provider owner (or anyone who may label namespaces there) strips PodSecurity
// `restricted` from a consumer's tenant namespace while a job runs in it. The agent must refuse the
// consumer's next pod there, the attempt must end with that reason (the provider's fault), and the
// GpuProvider on the hub must say so in its TenantIsolation condition, as `kubectl describe gp`
// shows; once the label is back, the consumer's next job runs there and the condition clears. The hub and the agent run
// with the chart's identities.

const H100 = 'NVIDIA-H100-80GB-HBM3';
const ENFORCE = 'pod-security.kubernetes.io/enforce';
const root = join(repoRoot, '.testbed', 'e2e-tenant-isolation');

let testbed: Testbed;
let hub: RunningHub;
let agent: AgentHandle;
let providerName = '';

beforeAll(async () => {
  reapStaleRuns(root);
  const dir = join(root, String(process.pid));
  testbed = await startTestbed(join(dir, 'clusters'), [
    { name: 'hub', scheduler: false },
    { name: 'home', gpuNodes: [{ prefix: 'home', count: 1, gpusPerNode: 8, product: H100, memoryMiB: 81559 }] },
  ]);
  await installCrds(testbed.cluster('hub'));
  await testbed.cluster('hub').kubectl(['create', 'namespace', 'team']);
  const pki = await hubPki(join(dir, 'pki'));
  hub = await startTestHub(testbed.cluster('hub'), pki, dir, 8_000);
  agent = await startAgent('home', testbed.cluster('home'), pki, `127.0.0.1:${hub.port}`, { displayName: 'home', pricePerGpuHour: { [H100]: '1.50' } });
  const gp = await waitFor('home Ready', async () => {
    const p = await providerClient(testbed.cluster('hub')).byWallet(agent.wallet.address);
    return readyStatus(p)?.status === 'True' && p?.status?.idleGpus === 8 ? p : undefined;
  }, { timeoutMs: 90_000 });
  providerName = gp.metadata.name!;
});

afterAll(async () => {
  await agent?.process.stop();
  await hub?.stop();
  await testbed?.stop();
});

const hubCluster = () => testbed.cluster('hub');
const home = () => testbed.cluster('home');
const getJob = async (name: string) =>
  (await hubCluster().kubeConfig.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: GPUJOB_PLURAL, namespace: 'team', name })) as GpuJob;
const isolation = (p: GpuProvider | undefined) => p?.status?.conditions?.find((c) => c.type === 'TenantIsolation');
const provider = () => providerClient(hubCluster()).byWallet(agent.wallet.address);
const podsOf = async (job: GpuJob) =>
  (await home().kubeConfig.makeApiClient(CoreV1Api).listPodForAllNamespaces({ labelSelector: `fedgpu.io/job-uid=${job.metadata.uid}` })).items;

async function submit(name: string): Promise<void> {
  const res = await hubCluster().kubectl(['apply', '-f', '-'], stringify({
    apiVersion: 'fedgpu.io/v1alpha1',
    kind: 'GpuJob',
    metadata: { name, namespace: 'team' },
    spec: {
      template: { metadata: { annotations: { 'fedgpu.io/sim-run-for': '600s' } }, spec: { containers: [{ name: 'main', image: 'example/train' }] } },
      budget: { maxPricePerGpuHour: '3' },
    },
  }));
  expect(res.code, res.stderr).toBe(0);
}

describe('a tenant namespace stripped of PodSecurity restricted', () => {
  let tenantNamespace = '';

  it('starts isolated: the first job runs in a restricted tenant namespace and TenantIsolation is True', async () => {
    expect(isolation(await provider())).toMatchObject({ status: 'True', reason: 'NamespacesRestricted' });
    await submit('first');
    const job = await waitFor('first Running', async () => {
      const j = await getJob('first');
      return j.status?.phase === 'Running' ? j : undefined;
    }, { timeoutMs: 90_000, intervalMs: 250 });
    const pods = await podsOf(job);
    expect(pods).toHaveLength(1);
    tenantNamespace = pods[0]!.metadata!.namespace!;
    const ns = await home().kubeConfig.makeApiClient(CoreV1Api).readNamespace({ name: tenantNamespace });
    expect(ns.metadata?.labels?.[ENFORCE]).toBe('restricted');
  });

  it("refuses the consumer's next pod there with the reason, and the GpuProvider condition says so", async () => {
    // The provider cluster's admin strips the label while the first job runs in the namespace.
    const stripped = await home().kubectl(['label', 'namespace', tenantNamespace, `${ENFORCE}-`]);
    expect(stripped.code, stripped.stderr).toBe(0);
    await submit('second');
    const refused = await waitFor('second attempt 1 refused', async () => {
      const j = await getJob('second');
      const first = j.status?.attempts?.find((a) => a.epoch === 1);
      return first?.outcome && first.outcome !== 'Running' ? first : undefined;
    }, { timeoutMs: 60_000, intervalMs: 250 });
    // The provider's fault (the consumer pays nothing, the hub keeps it away from this provider), with the agent's reason.
    expect(refused).toMatchObject({ provider: providerName, outcome: 'Failed', reason: 'ProviderPreempted', faultOf: 'provider' });
    expect(refused.message).toContain(`TenantNamespaceNotRestricted: namespace ${tenantNamespace} does not enforce PodSecurity restricted (${ENFORCE}=unset)`);
    const condition = await waitFor('TenantIsolation False', async () => {
      const c = isolation(await provider());
      return c?.status === 'False' ? c : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250 });
    expect(condition.reason).toBe('NamespaceNotRestricted');
    expect(condition.message).toContain(`${tenantNamespace}: namespace ${tenantNamespace} does not enforce PodSecurity restricted`);
    // No pod of the second job reached the provider's apiserver; the first one is untouched.
    expect(await podsOf(await getJob('second'))).toEqual([]);
    expect(await podsOf(await getJob('first'))).toHaveLength(1);
    // What the provider's owner and the market operator see.
    // The hub writes the condition first and its Warning Event after it.
    const described = await waitFor('the NamespaceNotRestricted Event in kubectl describe', async () => {
      const res = await hubCluster().kubectl(['describe', 'gp', providerName]);
      return res.code === 0 && /Warning\s+NamespaceNotRestricted\s+.*fedgpu-hub/.test(res.stdout) ? res.stdout : undefined;
    }, { timeoutMs: 30_000 });
    expect(described).toMatch(new RegExp(`Message:\\s+the agent refuses job pods in 1 tenant namespace\\(s\\).*${tenantNamespace}.*\\s+Reason:\\s+NamespaceNotRestricted\\s+Status:\\s+False\\s+Type:\\s+TenantIsolation`));
  });

  it("clears once the namespace enforces restricted again, and the consumer's next job runs there", async () => {
    const restored = await home().kubectl(['label', 'namespace', tenantNamespace, `${ENFORCE}=restricted`]);
    expect(restored.code, restored.stderr).toBe(0);
    // (The refused job never comes back to this provider: it failed there by the provider's fault.)
    await submit('third');
    const third = await waitFor('third Running', async () => {
      const j = await getJob('third');
      return j.status?.phase === 'Running' ? j : undefined;
    }, { timeoutMs: 90_000, intervalMs: 250 });
    expect((await podsOf(third)).map((p) => p.metadata?.namespace)).toEqual([tenantNamespace]);
    await waitFor('TenantIsolation True again', async () => (isolation(await provider())?.status === 'True' ? true : undefined), { timeoutMs: 30_000, intervalMs: 250 });
  });
});
