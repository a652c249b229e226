import { CoreV1Api, type KubeConfig, NetworkingV1Api, type V1NetworkPolicy, type V1Secret, type V1Service } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { EPOCH_LABEL, JOB_UID_LABEL, MANAGED_BY, MANAGED_BY_LABEL } from '../pods/build.js';
import { ATTEMPT_OBJECT_LABEL, attemptName } from './rendezvous.js';

// The objects an attempt owns besides its pods (headless Service, NetworkPolicies, the Secret of
// its secrets), created with the pods (the Secret before them) and deleted with the attempt.
// Idempotent like the pods: creating what exists and deleting what is gone are no-ops, so repeats
// and resyncs converge.

export interface AttemptObjects {
  services: V1Service[];
  policies: V1NetworkPolicy[];
  secrets: V1Secret[];
}

const code = (err: unknown) => (err as { code?: number }).code;
const ignore = (...codes: number[]) => (err: unknown) => {
  if (!codes.includes(code(err) ?? 0)) throw err;
};

export class AttemptResources {
  private readonly core: CoreV1Api;
  private readonly net: NetworkingV1Api;

  constructor(kubeConfig: KubeConfig, private readonly logger: Logger) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.net = kubeConfig.makeApiClient(NetworkingV1Api);
  }

  /**
   * What must exist before any pod of the attempt: its Secret (a pod that names a missing Secret
   * waits on the kubelet's backoff, seconds on a real node). Never logged: it carries the
   * consumer's values.
   */
  async ensureBeforePods(objects: AttemptObjects): Promise<void> {
    await Promise.all(objects.secrets.map((body) => this.core.createNamespacedSecret({ namespace: body.metadata!.namespace!, body }).catch(ignore(409))));
  }

  /**
   * What may go up beside the pods, all at once: the headless Service and the allow rules. The
   * tenant namespace's default deny selects every pod already, so a pod that exists before its
   * allow rules is only more isolated for a moment, never less.
   */
  async ensureBesidePods(objects: AttemptObjects): Promise<void> {
    await Promise.all([
      ...objects.policies.map((body) => this.net.createNamespacedNetworkPolicy({ namespace: body.metadata!.namespace!, body }).catch(ignore(409))),
      ...objects.services.map((body) => this.core.createNamespacedService({ namespace: body.metadata!.namespace!, body }).catch(ignore(409))),
    ]);
  }

  /** Deletes everything the attempt owns in `namespace` (its pods are the runner's business). */
  async remove(namespace: string, jobUid: string, epoch: number): Promise<void> {
    await this.removeWhere(namespace, `${JOB_UID_LABEL}=${jobUid},${EPOCH_LABEL}=${epoch},${MANAGED_BY_LABEL}=${MANAGED_BY}`);
  }

  /** Resync: deletes the objects of every attempt not in `wanted` (keys `jobUid/epoch`). */
  async prune(namespace: string, wanted: ReadonlySet<string>): Promise<void> {
    const keep = [...wanted].map((key) => {
      const [jobUid, epoch] = key.split('/');
      return attemptName(jobUid ?? '', Number(epoch));
    });
    const notWanted = keep.length ? `,${ATTEMPT_OBJECT_LABEL} notin (${keep.join(',')})` : '';
    await this.removeWhere(namespace, `${ATTEMPT_OBJECT_LABEL},${MANAGED_BY_LABEL}=${MANAGED_BY}${notWanted}`);
  }

  // Deleted by label selector: the agent never reads (lists or gets) a Secret, so its ClusterRole
  // grants none of that, and a stray goes even when its name is unknown.
  private async removeWhere(namespace: string, labelSelector: string): Promise<void> {
    // Secrets first: the consumer's values leave the provider before anything else is tidied.
    await this.core.deleteCollectionNamespacedSecret({ namespace, labelSelector }).catch(ignore(404));
    // Services have no delete-collection in the API: listed (not secret) and deleted one by one.
    const services = await this.core.listNamespacedService({ namespace, labelSelector });
    for (const svc of services.items) await this.core.deleteNamespacedService({ name: svc.metadata!.name!, namespace }).catch(ignore(404));
    await this.net.deleteCollectionNamespacedNetworkPolicy({ namespace, labelSelector }).catch(ignore(404));
    this.logger.debug({ namespace, selector: labelSelector }, 'deleted per-attempt objects');
  }
}
