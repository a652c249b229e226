import type { GpuJob } from '../api/types.js';
import { isConflict, isNotFound, type CustomObjectClient } from '../runtime/kube.js';
import type { JobRecord } from './history.js';
import type { JobPlan } from './schedule.js';
import { JOB_NAMESPACE, PRODUCT } from './topology.js';

// The jobs of a chaos run as GpuJobs: simulated work of the planned length (kwok completes the pod),
// a non-zero exit where planned, the planned budget and deadline; deletions at their planned time.

export const PRICE_CAP = '3';
const DEFAULT_MAX_TOTAL = '1';

export function jobManifest(plan: JobPlan): GpuJob {
  return {
    apiVersion: 'fedgpu.io/v1alpha1',
    kind: 'GpuJob',
    metadata: { name: plan.name, namespace: JOB_NAMESPACE, labels: { 'fedgpu.io/chaos-kind': plan.kind } },
    spec: {
      template: {
        metadata: {
          annotations: {
            'fedgpu.io/sim-run-for': `${plan.runForS}s`,
            ...(plan.exitCode !== undefined ? { 'fedgpu.io/sim-exit-code': String(plan.exitCode) } : {}),
          },
        },
        spec: { containers: [{ name: 'work', image: 'example.com/chaos/work:1' }] },
      },
      replicas: plan.replicas,
      gpusPerReplica: plan.gpusPerReplica,
      gpu: { products: [PRODUCT] },
      budget: { maxPricePerGpuHour: PRICE_CAP, maxTotal: plan.maxTotal ?? DEFAULT_MAX_TOTAL },
      faultTolerance: { maxAttempts: 4, checkpoint: { gracePeriodSeconds: 2 } },
      ...(plan.activeDeadlineSeconds !== undefined ? { activeDeadlineSeconds: plan.activeDeadlineSeconds } : {}),
    },
  } as GpuJob;
}

/** Submits a planned job; retries while the hub apiserver is briefly unreachable. */
export async function submit(jobs: CustomObjectClient<GpuJob>, record: JobRecord, deadline: number): Promise<void> {
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    try {
      const created = await jobs.create(jobManifest(record.plan));
      record.uid = created.metadata.uid;
      record.lastSeen = created;
      return;
    } catch (err) {
      if (isConflict(err)) {
        const existing = await jobs.get(record.plan.name, JOB_NAMESPACE);
        record.uid = existing.metadata.uid;
        return;
      }
      await new Promise((r) => setTimeout(r, Math.min(200 * 2 ** attempt, 2_000)));
    }
  }
  throw new Error(`could not submit ${record.plan.name}`);
}

export async function remove(jobs: CustomObjectClient<GpuJob>, record: JobRecord): Promise<void> {
  try {
    record.lastSeen = await jobs.get(record.plan.name, JOB_NAMESPACE);
    await jobs.delete(record.plan.name, JOB_NAMESPACE);
    record.deletedAt = Date.now();
  } catch (err) {
    if (isNotFound(err)) record.deletedAt = Date.now();
    else throw err;
  }
}
