import { CoreV1Api, type KubeConfig, type V1Pod, type V1PodTemplateSpec } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Assign } from '../../gen/proto/fedgpu/v1/market.js';
import { buildJobPods, EPOCH_LABEL, JOB_UID_LABEL, MANAGED_BY, MANAGED_BY_LABEL, PodSecurityError, type Assignment } from './build.js';
import { AttemptRefused, prepareAttempt, type EgressOffer } from '../attempt/prepare.js';
import { AttemptResources, type AttemptObjects } from '../attempt/resources.js';

// Runs what the hub assigns, in the agent's one job namespace. Every operation is idempotent:
// creating a pod that exists is a no-op, deleting one that is gone too, and `resync` converges the
// namespace to the hub's full desired set, deleting pods of attempts the hub no longer wants
// (fenced zombies included).

export const attemptKey = (jobUid: string, epoch: number) => `${jobUid}/${epoch}`;

export function assignmentFromProto(assign: Assign): Assignment {
  return {
    jobUid: assign.jobUid,
    epoch: assign.epoch,
    podTemplates: assign.podTemplates.map((b) => JSON.parse(Buffer.from(b).toString('utf8')) as V1PodTemplateSpec),
    nodeNames: assign.nodeNames,
    gpusPerReplica: assign.gpusPerReplica,
    checkpointDir: assign.checkpointDir || undefined,
    gracePeriodSeconds: assign.gracePeriodSeconds,
    env: assign.env,
  };
}

export class PodRunner {
  private readonly core: CoreV1Api;
  /** Attempts this agent runs, by `jobUid/epoch`. */
  readonly assignments = new Map<string, Assignment & { pricePerGpuHour: string }>();
  /** Attempts refused before any pod was made, with the reason (reported as Failed). */
  readonly refused = new Map<string, string>();
  /** Per-attempt Service, NetworkPolicies and Secret (agent/attempt/). */
  private readonly attempts: AttemptResources;
  /** Ended attempts whose per-attempt objects are already deleted. */
  private readonly released = new Set<string>();

  constructor(
    kubeConfig: KubeConfig,
    private readonly namespace: string,
    private readonly logger: Logger,
    /** What each node's pool lets job pods reach (agent/attempt/egress.ts). */
    private readonly egressOffer?: EgressOffer,
  ) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.attempts = new AttemptResources(kubeConfig, logger);
  }

  async apply(assign: Assign): Promise<void> {
    const key = attemptKey(assign.jobUid, assign.epoch);
    const assignment = assignmentFromProto(assign);
    this.assignments.set(key, { ...assignment, pricePerGpuHour: assign.pricePerGpuHour });
    let pods: V1Pod[];
    let objects: AttemptObjects;
    try {
      pods = buildJobPods(assignment, this.namespace);
      const prepared = prepareAttempt(assign, pods, this.namespace, this.egressOffer);
      pods = prepared.pods;
      objects = prepared.objects;
    } catch (err) {
      const reason =
        err instanceof PodSecurityError ? `PodSecurityRefused: ${err.message}`
        : err instanceof AttemptRefused ? `${err.reason}: ${err.message}`
        : `InvalidAssignment: ${String(err)}`;
      this.refused.set(key, reason);
      this.logger.warn({ job: assign.jobUid, epoch: assign.epoch, reason }, 'assignment refused');
      return;
    }
    // An apiserver error here is not the job's fault: it propagates, and the next resync retries.
    if (!this.released.has(key)) await this.attempts.ensure(objects);
    for (const pod of pods) {
      try {
        await this.core.createNamespacedPod({ namespace: this.namespace, body: pod });
        this.logger.info({ job: assign.jobUid, epoch: assign.epoch, pod: pod.metadata?.name }, 'created job pod');
      } catch (err) {
        if ((err as { code?: number }).code !== 409) throw err;
      }
    }
  }

  async cancel(jobUid: string, epoch: number, gracePeriodSeconds: number): Promise<void> {
    this.assignments.delete(attemptKey(jobUid, epoch));
    this.refused.delete(attemptKey(jobUid, epoch));
    await this.deletePods(`${JOB_UID_LABEL}=${jobUid},${EPOCH_LABEL}=${epoch}`, gracePeriodSeconds);
    await this.attempts.remove(this.namespace, jobUid, epoch);
    this.released.delete(attemptKey(jobUid, epoch));
  }

  /** The attempt ended (its pods are done): its Service, policies and Secret go now, not at cancel. */
  async release(jobUid: string, epoch: number): Promise<void> {
    const key = attemptKey(jobUid, epoch);
    if (this.released.has(key)) return;
    await this.attempts.remove(this.namespace, jobUid, epoch);
    this.released.add(key);
  }

  /** Owner reclaim: deletes the attempt's pods with their checkpoint grace, keeping the assignment to report on. */
  async reclaim(jobUid: string, epoch: number, gracePeriodSeconds: number): Promise<void> {
    await this.deletePods(`${JOB_UID_LABEL}=${jobUid},${EPOCH_LABEL}=${epoch}`, gracePeriodSeconds);
  }

  /** Converges to exactly the hub's desired attempts. */
  async resync(desired: Assign[], managedPods: readonly V1Pod[]): Promise<void> {
    const wanted = new Set(desired.map((a) => attemptKey(a.jobUid, a.epoch)));
    for (const key of [...this.assignments.keys()]) if (!wanted.has(key)) this.assignments.delete(key);
    for (const key of [...this.released]) if (!wanted.has(key)) this.released.delete(key);
    const stale = new Map<string, { jobUid: string; epoch: string }>();
    for (const pod of managedPods) {
      const jobUid = pod.metadata?.labels?.[JOB_UID_LABEL];
      const epoch = pod.metadata?.labels?.[EPOCH_LABEL];
      if (jobUid && epoch && !wanted.has(`${jobUid}/${epoch}`)) stale.set(`${jobUid}/${epoch}`, { jobUid, epoch });
    }
    for (const { jobUid, epoch } of stale.values()) {
      this.logger.info({ job: jobUid, epoch }, 'deleting pods the hub no longer wants');
      await this.deletePods(`${JOB_UID_LABEL}=${jobUid},${EPOCH_LABEL}=${epoch}`, 0);
    }
    await this.attempts.prune(this.namespace, wanted);
    for (const assign of desired) await this.apply(assign);
  }

  /** Pods this agent manages, from the informer cache. */
  managed(pods: readonly V1Pod[]): V1Pod[] {
    return pods.filter(
      (p) => p.metadata?.namespace === this.namespace && p.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY,
    );
  }

  private async deletePods(labelSelector: string, gracePeriodSeconds: number): Promise<void> {
    const list = await this.core.listNamespacedPod({ namespace: this.namespace, labelSelector });
    for (const pod of list.items) {
      try {
        await this.core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace: this.namespace, gracePeriodSeconds });
      } catch (err) {
        if ((err as { code?: number }).code !== 404) throw err;
      }
    }
  }
}
