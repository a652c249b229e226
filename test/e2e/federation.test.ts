import { join } from 'node:path';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLEANUP_FINALIZER } from '../../operator/src/api/constants.js';
import { GPUJOB_PLURAL, GROUP, VERSION, type GpuJob } from '../../operator/src/api/types.js';
import type { RunningHub } from '../../operator/src/hub/hub.js';
import { reapStaleRuns } from '../../operator/src/testbed/processes.js';
import { startTestbed, type Testbed } from '../../operator/src/testbed/testbed.js';
import { repoRoot } from '../../operator/src/testbed/tools.js';
import { waitFor } from '../../operator/src/testbed/wait.js';
import {
  hubPki,
  installCrds,
  poolIdle,
  providerClient,
  readyStatus,
  startAgent,
  startTestHub,
  type AgentHandle,
  type HubPki,
} from '../../operator/src/testbed/federation.js';

// Issue 3 end to end: a hub and two provider clusters on real apiservers with kwok GPU nodes, real
// agents (the fedgpu CLI, as processes), real gRPC over mutual TLS with wallet proofs.

const H100 = 'NVIDIA-H100-80GB-HBM3';
const RTX4090 = 'NVIDIA-GeForce-RTX-4090';
const LOST_AFTER_MS = 4_000;

let testbed: Testbed;
let pki: HubPki;
let hub: RunningHub;
const agents: Record<string, AgentHandle> = {};
const root = join(repoRoot, '.testbed', 'e2e-federation');

beforeAll(async () => {
  reapStaleRuns(root);
  const dir = join(root, String(process.pid));
  testbed = await startTestbed(join(dir, 'clusters'), [
    { name: 'hub', scheduler: false },
    { name: 'dc', gpuNodes: [{ prefix: 'h100', count: 2, gpusPerNode: 8, product: H100, memoryMiB: 81559, taint: true }] },
    { name: 'gamer', gpuNodes: [{ prefix: 'rtx', count: 4, gpusPerNode: 1, product: RTX4090, memoryMiB: 24564 }] },
  ]);
  await installCrds(testbed.cluster('hub'));
  pki = await hubPki(join(dir, 'pki'));
  hub = await startTestHub(testbed.cluster('hub'), pki, dir, LOST_AFTER_MS);
  agents.dc = await startAgent('dc', testbed.cluster('dc'), pki, `127.0.0.1:${hub.port}`, {
    displayName: 'Datacenter rack 12',
    region: 'eu-west',
    pricePerGpuHour: { [H100]: '2.40' },
    electricity: { pricePerKWh: '0.20', pue: 1.3 },
  });
  agents.gamer = await startAgent('gamer', testbed.cluster('gamer'), pki, `127.0.0.1:${hub.port}`, {
    pricePerGpuHour: { [RTX4090]: '0.45' },
  });
});

afterAll(async () => {
  await Promise.all(Object.values(agents).map((a) => a.process.stop()));
  await hub?.stop();
  await testbed?.stop();
});

const providers = () => providerClient(testbed.cluster('hub'));

async function waitIdle(agent: AgentHandle, product: string, idle: number): Promise<number> {
  const started = Date.now();
  await waitFor(`${product} idle = ${idle}`, async () => (poolIdle(await providers().byWallet(agent.wallet.address), product) === idle ? true : undefined), {
    timeoutMs: 20_000,
    intervalMs: 50,
  });
  return Date.now() - started;
}

describe('federation', () => {
  it('registers both providers, Ready, with truthful idle GPUs per product', async () => {
    for (const agent of Object.values(agents)) {
      await waitFor('GpuProvider Ready', async () => (readyStatus(await providers().byWallet(agent.wallet.address))?.status === 'True' ? true : undefined), {
        timeoutMs: 60_000,
      });
    }
    const dc = await providers().byWallet(agents.dc!.wallet.address);
    expect(dc?.status?.pools).toHaveLength(1);
    expect(dc?.status?.pools?.[0]).toMatchObject({ gpuProduct: H100, memoryMiB: 81559, nodes: 2, total: 16, idle: 16, offered: true, pricePerGpuHour: '2.40' });
    // 700 W × 0.20 per kWh × PUE 1.3
    expect(dc?.status?.pools?.[0]?.breakEvenPricePerGpuHour).toBe('0.182');
    expect(dc?.status?.gpus).toBe('16/16');
    // The owner's declaration reaches the spec the scheduler reads.
    expect(dc?.spec).toMatchObject({ region: 'eu-west', displayName: 'Datacenter rack 12' });
    expect(dc?.status?.conditions?.find((c) => c.type === 'Registered')).toMatchObject({ status: 'True', reason: 'AgentConnected' });
    expect(dc?.status?.latency?.rttMs).toBeGreaterThan(0);
    const gamer = await providers().byWallet(agents.gamer!.wallet.address);
    expect(gamer?.status?.pools?.[0]).toMatchObject({ gpuProduct: RTX4090, total: 4, idle: 4 });
    // The printer columns read these fields.
    const table = await testbed.cluster('hub').kubectl(['get', 'gp']);
    expect(table.stdout).toMatch(/True\s+16\/16/);
  });

  it('follows pods taking GPUs, cordoned nodes and NotReady nodes', async () => {
    const dc = testbed.cluster('dc');
    const pod = `apiVersion: v1
kind: Pod
metadata: {name: owner-work, namespace: default}
spec:
  nodeName: h100-0
  tolerations: [{key: nvidia.com/gpu, operator: Exists}]
  containers: [{name: c, image: x, resources: {limits: {nvidia.com/gpu: 3}}}]
`;
    await dc.kubectl(['apply', '-f', '-'], pod);
    const podLatency = await waitIdle(agents.dc!, H100, 13);
    await dc.kubectl(['label', 'node', 'h100-1', 'fedgpu.io/sim-node-down=true']);
    const notReadyLatency = await waitIdle(agents.dc!, H100, 5);
    await dc.kubectl(['label', 'node', 'h100-1', 'fedgpu.io/sim-node-down-']);
    await waitIdle(agents.dc!, H100, 13);
    await dc.kubectl(['delete', 'pod', 'owner-work', '--grace-period=0', '--force']);
    await waitIdle(agents.dc!, H100, 16);

    const gamer = testbed.cluster('gamer');
    await gamer.kubectl(['cordon', 'rtx-2']);
    const cordonLatency = await waitIdle(agents.gamer!, RTX4090, 3);
    await gamer.kubectl(['uncordon', 'rtx-2']);
    await waitIdle(agents.gamer!, RTX4090, 4);
    console.log(`idle GPUs updated in the hub after: pod ${podLatency} ms, NotReady ${notReadyLatency} ms, cordon ${cordonLatency} ms`);
  });

  it('keeps a provider Ready through a short outage, declares it lost after providerLostAfter, and takes it back', async () => {
    const wallet = agents.gamer!.wallet.address;
    await agents.gamer!.process.stop(1); // SIGTERM, then SIGKILL after 1 ms: an abrupt loss
    const killedAt = Date.now();
    // Shorter than providerLostAfter: nothing changes but the heartbeat age. Waits for the hub to
    // see the stream gone (the event that matters), then reads Ready; a read that starts before
    // killedAt + providerLostAfter - one heartbeat interval must find it True, however loaded the
    // machine (the last heartbeat came at most one interval before the kill).
    const name = (await providers().byWallet(wallet))!.metadata.name!;
    await waitFor('the hub to see the stream gone', () => (hub.server.connectedProviders().includes(name) ? undefined : true), { timeoutMs: 30_000, intervalMs: 50 });
    const readAt = Date.now();
    const readyDuringOutage = readyStatus(await providers().byWallet(wallet))?.status;
    expect(readAt - killedAt, 'the hub took longer than providerLostAfter to see the disconnect').toBeLessThan(LOST_AFTER_MS - 600);
    expect(readyDuringOutage).toBe('True');
    await waitFor('Ready=False', async () => (readyStatus(await providers().byWallet(wallet))?.status === 'False' ? true : undefined), {
      timeoutMs: 30_000,
    });
    const lostAfter = Date.now() - killedAt;
    // Lost counts from the last heartbeat, which came up to one interval (500 ms) before the kill.
    expect(lostAfter).toBeGreaterThanOrEqual(LOST_AFTER_MS - 600);
    expect(readyStatus(await providers().byWallet(wallet))).toMatchObject({ reason: 'HeartbeatMissed' });
    // The hub writes the condition first and the Event after it.
    await waitFor('the HeartbeatMissed Event', async () => {
      const events = await testbed.cluster('hub').kubectl(['get', 'events', '-n', 'default', '--field-selector', 'reason=HeartbeatMissed', '-o', 'name']);
      return events.code === 0 && events.stdout.trim() !== '' ? true : undefined;
    }, { timeoutMs: 30_000 });

    await agents.gamer!.restart();
    await waitFor('Ready=True again', async () => (readyStatus(await providers().byWallet(wallet))?.status === 'True' ? true : undefined), {
      timeoutMs: 60_000,
    });
    // Still one GpuProvider per wallet.
    expect((await providers().list()).filter((p) => p.spec.wallet === wallet)).toHaveLength(1);
  });
});

describe("the hub chart's GpuJob finalizer policy", () => {
  // The test bed's hub apiserver serves MutatingAdmissionPolicy (the 1.34 beta), so the chart
  // identity the hub runs with installed the policy: the finalizer is there from the create, and
  // the hub's placement is its status write alone.
  it('puts the finalizer on at create; the hub places and runs the job without writing it, and still lets it go on delete', async () => {
    const hubCluster = testbed.cluster('hub');
    expect((await hubCluster.kubectl(['create', 'namespace', 'policy'])).code).toBe(0);
    const custom = hubCluster.kubeConfig.makeApiClient(CustomObjectsApi);
    const body = {
      apiVersion: `${GROUP}/${VERSION}`, kind: 'GpuJob', metadata: { name: 'guarded' },
      spec: {
        template: { metadata: { annotations: { 'fedgpu.io/sim-run-for': '600s' } }, spec: { containers: [{ name: 'main', image: 'example/train' }] } },
        budget: { maxPricePerGpuHour: '3' },
      },
    };
    // No wait for the policy here: the chart identity the hub started with waited until it acts.
    const created = (await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: GPUJOB_PLURAL, namespace: 'policy', body })) as GpuJob;
    expect(created.metadata.finalizers).toEqual([CLEANUP_FINALIZER]);
    const get = async () => (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: GPUJOB_PLURAL, namespace: 'policy', name: 'guarded' })) as GpuJob;
    const running = await waitFor('guarded Running', async () => {
      const job = await get();
      return job.status?.phase === 'Running' ? job : undefined;
    }, { timeoutMs: 60_000, intervalMs: 200 });
    const owners = (running.metadata.managedFields ?? []).map((m) => ({ manager: m.manager, subresource: m.subresource ?? '', finalizers: JSON.stringify(m.fieldsV1 ?? {}).includes('"f:finalizers"') }));
    expect(owners).toContainEqual({ manager: 'fedgpu-gpujob-controller', subresource: 'status', finalizers: false });
    expect(owners.filter((o) => o.finalizers).map((o) => o.manager)).not.toContain('fedgpu-gpujob-controller');

    await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: GPUJOB_PLURAL, namespace: 'policy', name: 'guarded' });
    await waitFor('guarded gone (the hub cleaned up and removed its finalizer)', async () => get().then(() => undefined, (err: { code?: number }) => (err.code === 404 ? true : undefined)), { timeoutMs: 60_000, intervalMs: 200 });
  });
});
