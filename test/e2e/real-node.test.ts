import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { GpuJob } from '../../operator/src/api/types.js';
import type { RunningHub } from '../../operator/src/hub/hub.js';
import type { Cluster } from '../../operator/src/testbed/cluster.js';
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
import { busyboxImage } from '../../operator/src/testbed/real-node/images.js';
import { startTestbed, type Testbed } from '../../operator/src/testbed/testbed.js';
import { repoRoot, toolPath } from '../../operator/src/testbed/tools.js';
import { waitFor } from '../../operator/src/testbed/wait.js';
import { parseQuantity } from '../../operator/src/core/idle.js';
import { applyYaml, getGpuJob, hasStarted, waitGpuJob } from './support/gpu-jobs.js';

// Issue 17: GpuJobs run real containers on a real node (kubelet, containerd, runc, CNI) of a
// provider cluster; limits, exit codes and signals are the kernel's, not kwok's. The real node
// advertises a GPU product no other node has, so every job here lands on it; a second provider
// gets a kwok node of that product only when the reclaim test needs somewhere to resume.

const PRODUCT = 'NVIDIA-GeForce-RTX-4070';
const REAL_NODE = 'homelab-real-0';

let testbed: Testbed;
let hub: RunningHub;
const agents: Record<string, AgentHandle> = {};
const names: Record<string, string> = {};
const root = join(repoRoot, '.testbed', 'e2e-real-node');

beforeAll(async () => {
  reapStaleRuns(root);
  const dir = join(root, String(process.pid));
  testbed = await startTestbed(join(dir, 'clusters'), [
    { name: 'hub', scheduler: false },
    { name: 'homelab', realNodes: [{ name: REAL_NODE, gpus: 1, product: PRODUCT, memoryMiB: 12282 }] },
    { name: 'backup', kwok: true },
  ]);
  await installCrds(testbed.cluster('hub'));
  await testbed.cluster('hub').kubectl(['create', 'namespace', 'ml']);
  const pki = await hubPki(join(dir, 'pki'));
  hub = await startTestHub(testbed.cluster('hub'), pki, dir, 8_000);
  const prices: Record<string, string> = { homelab: '0.20', backup: '0.60' };
  for (const name of ['homelab', 'backup']) {
    agents[name] = await startAgent(name, testbed.cluster(name), pki, `127.0.0.1:${hub.port}`, {
      displayName: name,
      region: 'eu-west',
      pricePerGpuHour: { [PRODUCT]: prices[name]! },
    });
  }
  for (const name of ['homelab', 'backup']) {
    const gp = await waitFor(`${name} Ready with its pool`, async () => {
      const gp = await providerClient(testbed.cluster('hub')).byWallet(agents[name]!.wallet.address);
      return readyStatus(gp)?.status === 'True' && (name === 'backup' || gp?.status?.pools?.length) ? gp : undefined;
    }, { timeoutMs: 60_000 });
    names[name] = gp.metadata.name!;
  }
});

afterAll(async () => {
  await Promise.all(Object.values(agents).map((a) => a.process.stop()));
  await hub?.stop();
  await testbed?.stop();
});

const hubCluster = () => testbed.cluster('hub');
const homelab = () => testbed.cluster('homelab');
const getJob = (name: string) => getGpuJob(hubCluster(), name);
const waitJob = (name: string, what: string, done: (job: GpuJob) => boolean, timeoutMs = 90_000) => waitGpuJob(hubCluster(), name, what, done, { timeoutMs });

/** A GpuJob whose one container runs `script` in the busybox image on the test product. */
async function submit(name: string, script: string, extra: { memoryLimit?: string; gracePeriodSeconds?: number } = {}): Promise<void> {
  // The agent makes the root filesystem read-only (as the real kubelet then enforces): checkpoints
  // go to a bounded emptyDir, the only writable volume a job may have.
  const checkpoints = extra.gracePeriodSeconds !== undefined;
  const yaml = stringify({
    apiVersion: 'fedgpu.io/v1alpha1',
    kind: 'GpuJob',
    metadata: { name, namespace: 'ml' },
    spec: {
      gpu: { products: [PRODUCT] },
      budget: { maxPricePerGpuHour: '1' },
      template: {
        spec: {
          containers: [{
            name: 'main',
            image: busyboxImage(),
            imagePullPolicy: 'IfNotPresent',
            command: ['/bin/sh', '-c', script],
            ...(extra.memoryLimit ? { resources: { limits: { memory: extra.memoryLimit } } } : {}),
            ...(checkpoints ? { volumeMounts: [{ name: 'checkpoints', mountPath: '/checkpoints' }] } : {}),
          }],
          ...(checkpoints ? { volumes: [{ name: 'checkpoints', emptyDir: { sizeLimit: '16Mi' } }] } : {}),
        },
      },
      ...(extra.gracePeriodSeconds
        ? { faultTolerance: { checkpoint: { gracePeriodSeconds: extra.gracePeriodSeconds, dir: '/checkpoints' } } }
        : {}),
    },
  });
  await applyYaml(hubCluster(), yaml);
}

// The agent runs each consumer's pods in a namespace of their own (PodSecurity restricted enforced).
const podsOf = async (cluster: Cluster, job: GpuJob): Promise<V1Pod[]> =>
  (await cluster.kubeConfig.makeApiClient(CoreV1Api).listPodForAllNamespaces({ labelSelector: `fedgpu.io/job-uid=${job.metadata.uid}` })).items;

/**
 * The job's pod on the real node once its container is running, or (`orEnded`) has started and
 * maybe ended already: a script of a few seconds may be done before a loaded machine's kubelet,
 * agent and hub have all said it runs.
 */
const podOnRealNode = (job: GpuJob, orEnded: boolean) =>
  waitFor(`${job.metadata.name}'s container ${orEnded ? 'started' : 'running'} on ${REAL_NODE}`, async () => {
    const [pod] = await podsOf(homelab(), job);
    const container = pod?.status?.containerStatuses?.[0];
    const ended = orEnded && container?.containerID !== undefined && container.state?.terminated !== undefined;
    return container?.state?.running || ended ? pod : undefined;
  }, { timeoutMs: 60_000, intervalMs: 250 });

describe('a real node', () => {
  it('runs a GpuJob as a real container, non-root under PodSecurity restricted, to success', async () => {
    await submit('real-ok', 'id -u; echo "epoch $FEDGPU_EPOCH"; sleep 3; echo done');
    const running = await waitJob('real-ok', 'Running', hasStarted);
    expect(running.status?.placement?.provider).toBe(names.homelab);
    const pod = await podOnRealNode(running, true);
    expect(pod.spec?.nodeName).toBe(REAL_NODE);
    // A container ID from containerd: something really ran (kwok leaves none).
    expect(pod.status?.containerStatuses?.[0]?.containerID).toMatch(/^containerd:\/\/[0-9a-f]{64}$/);
    expect(pod.spec?.containers[0]?.securityContext).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false });
    // It passed PodSecurity `restricted`, enforced by the apiserver on the tenant namespace.
    const ns = await homelab().kubeConfig.makeApiClient(CoreV1Api).readNamespace({ name: pod.metadata!.namespace! });
    expect(ns.metadata?.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
    // The real log, served by the kubelet through the apiserver (its certificate checked against the CA).
    const logs = await waitFor('the container log', async () => {
      const res = await homelab().kubectl(['logs', '-n', pod.metadata!.namespace!, pod.metadata!.name!]);
      return res.code === 0 && res.stdout.includes('epoch 1') ? res.stdout : undefined;
    }, { timeoutMs: 30_000 });
    expect(logs.split('\n')[0]).toBe('65532');
    const done = await waitJob('real-ok', 'Succeeded', (j) => j.status?.phase === 'Succeeded' || j.status?.phase === 'Failed');
    expect(done.status?.phase, done.status?.message).toBe('Succeeded');
    expect(done.status?.attempts?.[0]).toMatchObject({ provider: names.homelab, outcome: 'Succeeded', faultOf: 'none' });
    expect(done.status?.cost?.gpuSeconds).toBeGreaterThanOrEqual(2);
  });

  it("bounds the container to its share of the node: the kernel's memory and CPU limits are the pod's, within what the node has", async () => {
    // cgroup v1 here (docs/real-node.md); v2's files as a fallback.
    await submit('real-share', [
      'echo "memory $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"',
      'echo "cpu $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d" " -f1 /sys/fs/cgroup/cpu.max)"',
      'sleep 2',
    ].join('; '));
    const running = await waitJob('real-share', 'Running', hasStarted);
    const pod = await podOnRealNode(running, true);
    const limits = pod.spec?.containers[0]?.resources?.limits ?? {};
    const node = await homelab().kubeConfig.makeApiClient(CoreV1Api).readNode({ name: REAL_NODE });
    // The node's one GPU is this replica's: its share is what the node has for jobs, never more.
    expect(parseQuantity(limits.memory!)).toBeGreaterThan(0);
    expect(parseQuantity(limits.memory!)).toBeLessThanOrEqual(parseQuantity(node.status!.allocatable!.memory!));
    expect(parseQuantity(limits.cpu!)).toBeLessThanOrEqual(parseQuantity(node.status!.allocatable!.cpu!));
    expect(pod.spec?.containers[0]?.resources?.requests).toMatchObject({ cpu: limits.cpu, memory: limits.memory });
    const logs = await waitFor('the cgroup limits in the log', async () => {
      const res = await homelab().kubectl(['logs', '-n', pod.metadata!.namespace!, pod.metadata!.name!]);
      return res.code === 0 && /^cpu /m.test(res.stdout) ? res.stdout : undefined;
    }, { timeoutMs: 30_000 });
    // What the kubelet and runc wrote into the container's cgroups: the limits the agent set.
    expect(logs).toContain(`memory ${parseQuantity(limits.memory!)}`);
    expect(logs).toContain(`cpu ${Math.round(parseQuantity(limits.cpu!) * 100_000)}`);
    await waitJob('real-share', 'Succeeded', (j) => j.status?.phase === 'Succeeded');
  });

  it('fails a job whose process exits 3, as the user\'s fault, without a retry', async () => {
    await submit('real-exit3', 'echo failing; exit 3');
    const job = await waitJob('real-exit3', 'Failed', (j) => j.status?.phase === 'Failed');
    expect(job.status?.attempts).toHaveLength(1);
    expect(job.status?.attempts?.[0]).toMatchObject({ provider: names.homelab, outcome: 'Failed', faultOf: 'user', reason: 'ContainerFailed', exitCode: 3 });
  });

  it('lets the real memory cgroup OOM-kill a container over its limit, and blames the user', async () => {
    // busybox tail keeps the current line in memory: /dev/zero has no newline, so it grows until killed.
    await submit('real-oom', 'echo filling memory; tail /dev/zero', { memoryLimit: '24Mi' });
    const submitted = await getJob('real-oom');
    // The kubelet reports why the container died (read from the kernel's OOM kill of its cgroup).
    const terminated = await waitFor('the container to be OOM-killed', async () => {
      const [pod] = await podsOf(homelab(), submitted);
      return pod?.status?.containerStatuses?.[0]?.state?.terminated;
    }, { timeoutMs: 90_000, intervalMs: 250 });
    expect(terminated).toMatchObject({ reason: 'OOMKilled', exitCode: 137 });
    const job = await waitJob('real-oom', 'Failed', (j) => j.status?.phase === 'Failed');
    expect(job.status?.attempts).toHaveLength(1);
    expect(job.status?.attempts?.[0]).toMatchObject({ provider: names.homelab, outcome: 'Failed', faultOf: 'user', exitCode: 137 });
  });

  it('delivers SIGTERM on an owner reclaim; the process saves its checkpoint within its grace, and the job resumes elsewhere', async () => {
    await submit('real-reclaim', [
      // It lingers 2 s after saving, inside its 10 s grace: the kubelet's log follower may stop at
      // the container's exit before the last lines reach the log file.
      'trap \'echo "SIGTERM: writing checkpoint"; echo "$step" > "$FEDGPU_CHECKPOINT_DIR/ckpt" && echo "checkpoint saved"; sleep 2; exit 0\' TERM',
      'step=0; echo "checkpoint dir $FEDGPU_CHECKPOINT_DIR"',
      'while :; do step=$((step+1)); echo "step $step loss 0.$((1000/step))"; sleep 1 & wait $!; done',
    ].join('\n'), { gracePeriodSeconds: 10 });
    const first = await waitJob('real-reclaim', 'Running', (j) => j.status?.phase === 'Running');
    expect(first.status?.placement?.provider).toBe(names.homelab);
    const pod = await podOnRealNode(first, false);
    expect(pod.spec?.terminationGracePeriodSeconds).toBe(10);
    // Somewhere to resume: the backup provider now lends a (kwok) node of the same product.
    await testbed.cluster('backup').addGpuNodes({ prefix: 'backup', count: 1, gpusPerNode: 1, product: PRODUCT, memoryMiB: 12282 });
    await waitFor('the backup pool in the market', async () => {
      const gp = await providerClient(hubCluster()).byWallet(agents.backup!.wallet.address);
      return gp?.status?.pools?.some((p) => p.gpuProduct === PRODUCT && p.idle === 1) ? true : undefined;
    }, { timeoutMs: 60_000 });
    // Follow the real log through the apiserver and the kubelet until the container ends.
    const follow = spawn(toolPath('kubectl'), [`--kubeconfig=${homelab().kubeconfigPath}`, 'logs', '-f', '-n', pod.metadata!.namespace!, pod.metadata!.name!]);
    let log = '';
    follow.stdout.on('data', (d: Buffer) => { log += d.toString(); });
    const ended = new Promise<void>((resolve) => follow.once('exit', () => resolve()));
    try {
      await waitFor('training steps in the log', () => (log.includes('step 2') ? true : undefined), { timeoutMs: 30_000 });
      await homelab().kubectl(['cordon', REAL_NODE]);
      await Promise.race([ended, new Promise((r) => setTimeout(r, 30_000))]);
    } finally {
      follow.kill();
    }
    expect(log).toContain('SIGTERM: writing checkpoint');
    expect(log).not.toMatch(/can't create|Read-only/);
    expect(log.trimEnd().endsWith('checkpoint saved'), log).toBe(true);
    // Epoch 2 placed on the backup provider is the resumption; whether kwok then reports it Running
    // is the fake node's business, not the real node's.
    const moved = await waitJob('real-reclaim', 'placed elsewhere', (j) => j.status?.currentEpoch === 2 && j.status.placement?.provider === names.backup);
    expect(moved.status?.attempts?.[0]).toMatchObject({ epoch: 1, provider: names.homelab, outcome: 'Reclaimed', faultOf: 'owner-reclaim', reason: 'OwnerReclaim' });
    expect(moved.status?.placement?.provider).toBe(names.backup);
    await homelab().kubectl(['uncordon', REAL_NODE]);
    await hubCluster().kubectl(['delete', 'gj', 'real-reclaim', '-n', 'ml']);
  });

  it('refuses, on the real kubelet, a root user that kwok would have run', async () => {
    // kwok accepts anything; the kubelet checks runAsNonRoot against the user it would run as.
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'as-root', namespace: 'default' },
      spec: {
        nodeName: REAL_NODE,
        containers: [{ name: 'main', image: busyboxImage(), command: ['true'], securityContext: { runAsUser: 0, runAsNonRoot: true } }],
      },
    };
    const res = await homelab().kubectl(['apply', '-f', '-'], JSON.stringify(pod));
    expect(res.code, res.stderr).toBe(0);
    const waiting = await waitFor('the kubelet to refuse the container', async () => {
      const p = await homelab().kubeConfig.makeApiClient(CoreV1Api).readNamespacedPod({ name: 'as-root', namespace: 'default' });
      return p.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CreateContainerConfigError' ? p : undefined;
    }, { timeoutMs: 60_000 });
    expect(waiting.status?.containerStatuses?.[0]?.state?.waiting?.message).toMatch(/non-root/);
    await homelab().kubectl(['delete', 'pod', 'as-root', '-n', 'default', '--grace-period=0', '--force']);
  });
});
