import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../operator/src/testbed/processes.js';
import { startTestbed, type Testbed } from '../../operator/src/testbed/testbed.js';
import { repoRoot } from '../../operator/src/testbed/tools.js';
import { waitFor } from '../../operator/src/testbed/wait.js';

// The harness itself: three clusters side by side, GPU nodes that behave like a device plugin and
// GPU Feature Discovery left them, simulated pod lifecycles, and a teardown that leaves no process.

let testbed: Testbed | undefined;
afterAll(async () => testbed?.stop());

const podYaml = (name: string, annotations: Record<string, string>, gpus: number) => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  annotations: ${JSON.stringify(annotations)}
spec:
  restartPolicy: Never
  tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
  containers: [{name: main, image: example/train, resources: {limits: {nvidia.com/gpu: ${gpus}}}}]
`;

describe('test bed', () => {
  it('runs three clusters at once, simulates GPU pods, and stops with no process left', async () => {
    const started = Date.now();
    testbed = await startTestbed(join(repoRoot, '.testbed', 'harness', String(process.pid)), [
      { name: 'hub', scheduler: false },
      {
        name: 'dc',
        gpuNodes: [{ prefix: 'h100', count: 2, gpusPerNode: 8, product: 'NVIDIA-H100-80GB-HBM3', memoryMiB: 81559, taint: true }],
      },
      {
        name: 'gamer',
        gpuNodes: [{ prefix: 'rtx4090', count: 4, gpusPerNode: 1, product: 'NVIDIA-GeForce-RTX-4090', memoryMiB: 24564 }],
      },
    ]);
    console.log(`three clusters started in ${Date.now() - started} ms`);
    const pids = [testbed.etcd.process.pid, ...[...testbed.clusters.values()].flatMap((c) => c.processes.map((p) => p.pid))];
    expect(pids.every(isAlive)).toBe(true);
    expect(new Set([...testbed.clusters.values()].map((c) => c.server)).size).toBe(3);

    // GPU nodes carry the device-plugin resource and the GPU Feature Discovery labels.
    const dc = testbed.cluster('dc');
    const nodes = await dc.kubectl(['get', 'nodes', '-L', 'nvidia.com/gpu.product', '--no-headers']);
    expect(nodes.stdout).toMatch(/h100-0\s+Ready.*NVIDIA-H100-80GB-HBM3/);
    const core = dc.kubeConfig.makeApiClient(CoreV1Api);
    const node = await core.readNode({ name: 'h100-1' });
    expect(node.status?.allocatable?.['nvidia.com/gpu']).toBe('8');
    expect(node.metadata?.labels?.['nvidia.com/gpu.memory']).toBe('81559');
    expect(node.metadata?.labels?.['nvidia.com/cuda.driver.major']).toBe('580');
    expect(node.spec?.taints?.[0]).toMatchObject({ key: 'nvidia.com/gpu', effect: 'NoSchedule' });
    // The hub has no nodes; the gamer's cluster has its own.
    expect((await testbed.cluster('hub').kubectl(['get', 'nodes', '--no-headers'])).stdout.trim()).toBe('');
    expect((await testbed.cluster('gamer').kubectl(['get', 'nodes', '--no-headers'])).stdout.split('\n').filter(Boolean)).toHaveLength(4);

    // Pods: scheduled by the real kube-scheduler, run by kwok, end as their annotations say.
    await dc.kubectl(['apply', '-f', '-'], podYaml('ok', { 'fedgpu.io/sim-run-for': '2s' }, 4));
    await dc.kubectl(['apply', '-f', '-'], podYaml('crash', { 'fedgpu.io/sim-run-for': '1s', 'fedgpu.io/sim-exit-code': '7' }, 1));
    await dc.kubectl(['apply', '-f', '-'], podYaml('forever', {}, 8));
    const phase = async (name: string) => (await core.readNamespacedPod({ name, namespace: 'default' })).status?.phase;
    await waitFor('pod ok Succeeded', async () => ((await phase('ok')) === 'Succeeded' ? true : undefined), { timeoutMs: 30_000 });
    await waitFor('pod crash Failed', async () => ((await phase('crash')) === 'Failed' ? true : undefined), { timeoutMs: 30_000 });
    const crash = await core.readNamespacedPod({ name: 'crash', namespace: 'default' });
    expect(crash.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(7);
    expect(await phase('forever')).toBe('Running');

    // A node labelled down goes NotReady, and comes back when the label is removed.
    const ready = async () =>
      (await core.readNode({ name: 'h100-0' })).status?.conditions?.find((c) => c.type === 'Ready')?.status;
    await dc.kubectl(['label', 'node', 'h100-0', 'fedgpu.io/sim-node-down=true']);
    await waitFor('h100-0 NotReady', async () => ((await ready()) === 'False' ? true : undefined), { timeoutMs: 20_000 });
    await dc.kubectl(['label', 'node', 'h100-0', 'fedgpu.io/sim-node-down-']);
    await waitFor('h100-0 Ready again', async () => ((await ready()) === 'True' ? true : undefined), { timeoutMs: 20_000 });

    // Deleting a pod with a grace period removes it once the grace has passed.
    await dc.kubectl(['delete', 'pod', 'forever', '--grace-period=1', '--wait=false']);
    await waitFor('pod forever deleted', async () => {
      const list = await core.listNamespacedPod({ namespace: 'default' });
      return list.items.some((p) => p.metadata?.name === 'forever') ? undefined : true;
    }, { timeoutMs: 30_000 });

    const stopping = Date.now();
    await testbed.stop();
    testbed = undefined;
    console.log(`three clusters stopped in ${Date.now() - stopping} ms`);
    expect(pids.filter(isAlive)).toEqual([]);
  });
});
