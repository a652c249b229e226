// GpuJobs on a test-bed hub, as the e2e tests drive them: kubectl that must succeed, a job's
// manifest, reading a job, and waiting until it reaches a phase or any state a probe names.
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { expect } from 'vitest';
import { stringify } from 'yaml';
import { JOB_UID_LABEL } from '../../../operator/src/agent/pods/build.js';
import { SIM_RUN_FOR_ANNOTATION } from '../../../operator/src/api/constants.js';
import { GPUJOB_PLURAL, GROUP, VERSION, type GpuJob } from '../../../operator/src/api/types.js';
import { mergePatch } from '../../../operator/src/runtime/kube.js';
import type { Cluster } from '../../../operator/src/testbed/cluster.js';
import { waitFor } from '../../../operator/src/testbed/wait.js';

/** Runs kubectl against `cluster`; a non-zero exit fails the test with kubectl's stderr. Returns stdout. */
export async function kubectlOk(cluster: Cluster, args: string[], input?: string): Promise<string> {
  const res = await cluster.kubectl(args, input);
  expect(res.code, res.stderr).toBe(0);
  return res.stdout;
}

/** `kubectl apply -f -` of `yaml`, which must succeed. */
export const applyYaml = (cluster: Cluster, yaml: string): Promise<string> => kubectlOk(cluster, ['apply', '-f', '-'], yaml);

export async function getGpuJob(cluster: Cluster, name: string, namespace = 'ml'): Promise<GpuJob> {
  const api = cluster.kubeConfig.makeApiClient(CustomObjectsApi);
  return (await api.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: GPUJOB_PLURAL, namespace, name })) as GpuJob;
}

export interface WaitJobOptions {
  namespace?: string;
  timeoutMs?: number;
  intervalMs?: number;
}

/** Polls the job until `probe` holds; on a timeout the error says where the job stood. */
export async function waitGpuJob(
  cluster: Cluster,
  name: string,
  what: string,
  probe: (job: GpuJob) => boolean,
  { namespace = 'ml', timeoutMs = 90_000, intervalMs = 250 }: WaitJobOptions = {},
): Promise<GpuJob> {
  let last: GpuJob | undefined;
  try {
    return await waitFor(`${namespace}/${name}: ${what}`, async () => {
      last = await getGpuJob(cluster, name, namespace);
      return probe(last) ? last : undefined;
    }, { timeoutMs, intervalMs });
  } catch (err) {
    throw new Error(`${(err as Error).message}; last status: ${JSON.stringify(last?.status)}`);
  }
}

/**
 * Running, or already ended well. A job of a few seconds may be over before a poll on a loaded
 * machine sees it run, and the hub writes Running and Succeeded in one go when both reports come
 * before its next reconcile.
 */
export const hasStarted = (job: GpuJob): boolean => job.status?.phase === 'Running' || job.status?.phase === 'Succeeded';

/** Waits for the job's phase; a job that Failed when another phase was awaited is reported as such. */
export function waitGpuJobPhase(cluster: Cluster, name: string, phase: string, options: WaitJobOptions = {}): Promise<GpuJob> {
  return waitGpuJob(cluster, name, phase, (job) => {
    if (job.status?.phase === 'Failed' && phase !== 'Failed') throw new Error(`${name} failed: ${job.status.message}`);
    return job.status?.phase === phase;
  }, options);
}

export interface GpuJobYamlOptions {
  namespace?: string;
  /** Annotations of the pod template (the kwok stages read fedgpu.io/sim-*). */
  annotations?: Record<string, string>;
  /** Fields of the one container, over name "main" and image "example/train". */
  container?: Record<string, unknown>;
}

/**
 * A GpuJob manifest: one container "main" of image example/train with a budget of 3 per GPU-hour;
 * `spec` replaces or adds top-level spec fields (a budget given there replaces the default whole).
 */
export function gpuJobYaml(name: string, spec: Record<string, unknown>, { namespace = 'ml', annotations = {}, container = {} }: GpuJobYamlOptions = {}): string {
  return stringify({
    apiVersion: 'fedgpu.io/v1alpha1',
    kind: 'GpuJob',
    metadata: { name, namespace },
    spec: {
      template: { metadata: { annotations }, spec: { containers: [{ name: 'main', image: 'example/train', ...container }] } },
      budget: { maxPricePerGpuHour: '3' },
      ...spec,
    },
  });
}

/**
 * Ends the job's kwok-simulated pods in `cluster` about a second from now (kwok reads the delay
 * again on every update). A test that checks a job while it runs gives it a long run time and
 * ends it this way once its checks are done: a short fixed run time may be over before a loaded
 * machine gets to the checks.
 */
export async function endSimulatedPods(cluster: Cluster, job: GpuJob): Promise<void> {
  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  const pods = await core.listPodForAllNamespaces({ labelSelector: `${JOB_UID_LABEL}=${job.metadata.uid}` });
  expect(pods.items.length, `pods of ${job.metadata.name} in ${cluster.name}`).toBeGreaterThan(0);
  for (const pod of pods.items) {
    await core.patchNamespacedPod(
      { name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body: { metadata: { annotations: { [SIM_RUN_FOR_ANNOTATION]: '1s' } } } },
      mergePatch,
    );
  }
}
