// GpuJobs on a test-bed hub, as the e2e tests drive them: kubectl that must succeed, a job's
// manifest, reading a job, and waiting until it reaches a phase or any state a probe names.
import { CustomObjectsApi } from '@kubernetes/client-node';
import { expect } from 'vitest';
import { stringify } from 'yaml';
import { GPUJOB_PLURAL, GROUP, VERSION, type GpuJob } from '../../../operator/src/api/types.js';
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
