import { CoreV1Api, type KubeConfig, type V1Pod, type V1PodTemplateSpec } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Assign, AttemptSecret } from '../../gen/proto/fedgpu/v1/market.js';
import { NamespaceNotRestrictedError, TenantCollisionError, type TenantNamespaces } from '../tenancy/namespace.js';
import { buildJobPods, EPOCH_LABEL, JOB_UID_LABEL, MANAGED_BY, MANAGED_BY_LABEL, PodSecurityError, REPLICA_LABEL, requiredNode, ShareExceededError, type Assignment, type BuildOptions } from './build.js';
import { AttemptRefused, prepareAttempt, type EgressOffer } from '../attempt/prepare.js';
import { AttemptResources, type AttemptObjects } from '../attempt/resources.js';
import { ConcurrencyLimit } from '../../runtime/concurrency.js';
import { sleep } from '../../runtime/clock.js';

// Runs what the hub assigns, each consumer's attempts in that consumer's own namespace
// (agent/tenancy). Every operation is idempotent: creating a pod that exists is a no-op, deleting
// one that is gone too, and `resync` converges the cluster to the hub's full desired set, deleting
// pods of attempts the hub no longer wants (fenced zombies included) and the namespaces of
// consumers with no attempt left. One attempt's failure never stops the others.

export const attemptKey = (jobUid: string, epoch: number) => `${jobUid}/${epoch}`;
/** The attempt key a pod's labels name (job uid and epoch, as the agent set them). */
export const attemptKeyOfPod = (pod: V1Pod) => `${pod.metadata?.labels?.[JOB_UID_LABEL]}/${pod.metadata?.labels?.[EPOCH_LABEL]}`;

/**
 * The longest checkpoint grace an attempt gets (the CRD's bound on gracePeriodSeconds). The hub
 * enforces it too; the agent again, so a hostile hub cannot keep an owner's GPU for days after a
 * reclaim by sending a grace period of its choosing.
 */
export const MAX_GRACE_PERIOD_SECONDS = 3600;

/** Whether every replica of `assign` has a pod already, on the node and in the namespace it names. */
export function isPlacedAsAssigned(assign: Pick<Assign, 'jobUid' | 'epoch' | 'nodeNames'>, pods: readonly V1Pod[], namespace: string): boolean {
  const key = attemptKey(assign.jobUid, assign.epoch);
  const own = pods.filter((p) => attemptKeyOfPod(p) === key && p.metadata?.namespace === namespace);
  // The node a pod runs on, or the one its affinity pins it to before it is bound.
  return assign.nodeNames.length > 0 && assign.nodeNames.every((node, replica) => own.some((p) => p.metadata?.labels?.[REPLICA_LABEL] === String(replica) && (p.spec?.nodeName ?? requiredNode(p)) === node));
}

export function assignmentFromProto(assign: Assign): Assignment {
  return {
    jobUid: assign.jobUid,
    epoch: assign.epoch,
    tenant: assign.namespace,
    podTemplates: assign.podTemplates.map((b) => JSON.parse(Buffer.from(b).toString('utf8')) as V1PodTemplateSpec),
    nodeNames: assign.nodeNames,
    gpusPerReplica: assign.gpusPerReplica,
    checkpointDir: assign.checkpointDir || undefined,
    gracePeriodSeconds: Math.min(assign.gracePeriodSeconds, MAX_GRACE_PERIOD_SECONDS),
    env: assign.env,
  };
}

type Running = Assignment & { pricePerGpuHour: string; coveredGpuSeconds: number; namespace: string };

/**
 * Why the provider's apiserver refused a pod, as the attempt's reason (whose fault it is follows
 * from it, core/fault.ts):
 * - `InvalidTemplate` (422, 400): the consumer's template;
 * - `PodSecurityRefused`: the template against PodSecurity restricted;
 * - `ProviderRefused`: the agent's own rights (RBAC), which only the provider sets;
 * - `AdmissionRefused`: any other admission refusal (the LimitRange's bounds, a quota, an
 *   admission webhook or policy). The template's own choices can draw these (1Ti of
 *   ephemeral-storage against a 200Gi LimitRange): never the provider's fault, or a consumer could
 *   have any provider slashed at will.
 */
export function refusalReason(err: unknown): string {
  const e = err as { code?: number; body?: unknown; message?: string };
  let message = e.message ?? String(err);
  try {
    const body = typeof e.body === 'string' ? JSON.parse(e.body) : e.body;
    if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') message = (body as { message: string }).message;
  } catch {
    // not JSON: keep the error's own message
  }
  if (e.code === 422 || e.code === 400) return `InvalidTemplate: ${message}`;
  if (e.code === 403 && /PodSecurity/.test(message)) return `PodSecurityRefused: ${message}`;
  if (e.code === 403 && !RBAC_DENIAL.test(message)) return `AdmissionRefused: ${message}`;
  return `ProviderRefused: ${message}`;
}

/** The apiserver's RBAC refusal: `pods is forbidden: User "…" cannot create resource "pods" …`. */
const RBAC_DENIAL = /is forbidden: User "[^"]*" cannot [a-z]+ resource/;

const isRefusal = (err: unknown) => [400, 403, 422].includes((err as { code?: number }).code ?? 0);
/** A 409 from the quota admission's own update conflict, not from an existing pod. */
const isQuotaConflict = (err: unknown) => (err as { code?: number }).code === 409 && /resourcequotas/.test(refusalReason(err));
/** Quota still held by pods of an attempt that is going away: wait for them, not a refusal. */
const isQuotaBusy = (err: unknown) => (err as { code?: number }).code === 403 && /exceeded quota/.test(refusalReason(err));
/**
 * The tenant namespace is going away under the attempt: its last attempt ended and the agent
 * deleted it just as this assignment came. Not a refusal: it is made again once it is gone.
 */
const isNamespaceTerminating = (err: unknown) => (err as { code?: number }).code === 403 && /being terminated/.test(refusalReason(err));
/** Retries of an attempt the cluster cannot take yet (quota still held, namespace still being
 * deleted, apiserver away): about two minutes in all; then quota waits are refused, the rest wait
 * for the next resync. */
const PREPARING_AT_ONCE = 16;
const QUOTA_CONFLICT_TRIES = 5;
/** Pods of one attempt (a gang's replicas) created at once. */
const POD_CREATES_AT_ONCE = 8;
/** Short waits for the admission's quota cache; after them a still exceeded quota is really held (a pod going away). */
const QUOTA_CACHE_WAITS_MS = [10, 20, 40, 80];
const RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000, 15000, 30000, 60000];
const ms = (x: number) => Math.round(x * 10) / 10;

export class PodRunner {
  private readonly core: CoreV1Api;
  /** Attempts this agent runs, by `jobUid/epoch`. */
  readonly assignments = new Map<string, Running>();
  /** Attempts refused before or while creating pods, with the reason (reported as Failed). */
  readonly refused = new Map<string, string>();
  /** The Secrets each attempt was last given (an Assign that carried them), for one re-sent without them. */
  private readonly secretsOf = new Map<string, AttemptSecret[]>();
  private readonly retries = new Map<string, { count: number; timer: NodeJS.Timeout }>();
  /** Per-attempt Service, NetworkPolicies and Secret (agent/attempt/). */
  private readonly attempts: AttemptResources;
  /** Ended attempts whose per-attempt objects are already deleted. */
  private readonly released = new Set<string>();
  /**
   * Attempts being set up at once. Each takes a few requests to the provider's apiserver; a burst
   * of hundreds of assignments sent at once would exceed its in-flight limit and be answered 429.
   */
  private readonly preparing = new ConcurrencyLimit(PREPARING_AT_ONCE);

  constructor(
    kubeConfig: KubeConfig,
    private readonly tenancy: TenantNamespaces,
    private readonly logger: Logger,
    private readonly buildOptions: BuildOptions = {},
    /** What each node's pool lets job pods reach (agent/attempt/egress.ts). */
    private readonly egressOffer?: EgressOffer,
    /** An attempt was refused ("jobUid/epoch"): the agent reports it (a retry may refuse long after its Assign). */
    private readonly onRefused?: (key: string) => void,
    /** Why this provider does not take an attempt's placement (agent/placement.ts), checked before its pods exist. */
    private readonly placementProblem?: (assign: Assign) => string | undefined,
    /** Pods of one attempt created at once (bench/gang-start.bench.ts compares 1 with the default); the waits between tries of an attempt. */
    private readonly pacing: { podCreatesAtOnce?: number; retryDelaysMs?: readonly number[] } = {},
  ) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.attempts = new AttemptResources(kubeConfig, logger);
  }

  /** The namespace an attempt's pods live in (for rendezvous Services, secrets, policies). */
  namespaceOf(jobUid: string, epoch: number): string | undefined {
    return this.assignments.get(attemptKey(jobUid, epoch))?.namespace;
  }

  /**
   * Runs one assignment; a refusal ends the attempt with the reason, never throws. `started`: its
   * pods exist already (a resync of a running attempt), so its placement is not judged again: an
   * owner who cordons the node later reclaims it through the announced path, with its grace.
   */
  apply(assign: Assign, started = false): Promise<void> {
    const key = attemptKey(assign.jobUid, assign.epoch);
    // Re-sent without its Secrets (the hub could not read them then): the copy this agent was
    // given before still serves, for a retry or a replica made again.
    const kept = assign.secretsWithheld ? this.secretsOf.get(key) : undefined;
    if (kept) assign = { ...assign, secrets: kept, secretsWithheld: false };
    else if (assign.secrets.length > 0) this.secretsOf.set(key, assign.secrets);
    const assignment = assignmentFromProto(assign);
    const namespace = this.tenancy.nameOf(assignment.tenant ?? '');
    // Recorded at once, so the attempt is known (and reported, and cancellable) while it waits.
    const entry: Running = { ...assignment, pricePerGpuHour: assign.pricePerGpuHour, coveredGpuSeconds: assign.coveredGpuSeconds, namespace };
    this.assignments.set(key, entry);
    this.logger.info({ job: assign.jobUid, epoch: assign.epoch, namespace, queued: this.preparing.pending.waiting }, 'assignment received');
    // A Cancel (or a newer Assign) that arrived while it waited wins: nothing is created for it.
    return this.preparing.run(async () => {
      if (this.assignments.get(key) === entry) await this.applyNow(key, assign, assignment, namespace, started);
    });
  }

  private async applyNow(key: string, assign: Assign, assignment: Assignment, namespace: string, started = false): Promise<void> {
    if (this.refused.has(key)) return;
    const startedMs = performance.now();
    const refuse = (reason: string) => {
      this.refused.set(key, reason);
      this.secretsOf.delete(key);
      this.logger.warn({ job: assign.jobUid, epoch: assign.epoch, namespace, reason }, 'assignment refused');
      this.onRefused?.(key);
    };
    const misplaced = started ? undefined : this.placementProblem?.(assign);
    if (misplaced) return refuse(`PlacementRefused: ${misplaced}`);
    // Re-sent without the Secrets its job names (the hub could not read them then): an attempt not
    // started here would run without them. Refused; the hub places the job again, reading them.
    // (A gang only partly made counts as not started: its missing replicas would lack them.)
    if (!started && assign.secretsWithheld) {
      return refuse('SecretsUnavailable: the hub sent this attempt without the Secrets its job names (it could not read them); nothing was started');
    }
    let pods: V1Pod[];
    let objects: AttemptObjects;
    try {
      pods = buildJobPods(assignment, namespace, started ? { ...this.buildOptions, clampToShare: true } : this.buildOptions);
      const prepared = prepareAttempt(assign, pods, namespace, this.egressOffer, this.tenancy.allowsDns, started);
      pods = prepared.pods;
      objects = prepared.objects;
    } catch (err) {
      return refuse(
        err instanceof PodSecurityError ? `PodSecurityRefused: ${err.message}`
        // Not the consumer's fault nor the provider's: this node is too small for it, another may not be.
        : err instanceof ShareExceededError ? `PlacementRefused: ${err.message}`
        : err instanceof AttemptRefused ? `${err.reason}: ${err.message}`
        : `InvalidAssignment: ${String(err)}`,
      );
    }
    try {
      await this.tenancy.ensure(assignment.tenant ?? '', () => this.usageOf(namespace));
    } catch (err) {
      if (err instanceof NamespaceNotRestrictedError) return refuse(`TenantNamespaceNotRestricted: ${err.message}`);
      // Another consumer's namespace has this one's name here: nobody's fault this side, the job goes elsewhere.
      if (err instanceof TenantCollisionError) return refuse(`PlacementRefused: ${err.message}`);
      // The apiserver is away or the namespace is still being deleted: try again shortly.
      this.logger.warn({ err, job: assign.jobUid, epoch: assign.epoch, namespace }, 'could not prepare the tenant namespace; retrying');
      this.retryLater(key, assign, started);
      return;
    }
    // Cancelled (or resynced away) while the namespace was made ready: no pod for it.
    if (!this.assignments.has(key)) return;
    // An apiserver error here is not the job's fault (a namespace still terminating, say): try again shortly.
    const cannotCreate = (err: unknown) => {
      this.logger.warn({ err, job: assign.jobUid, epoch: assign.epoch, namespace }, 'could not create the attempt\'s Service, policies or Secret; retrying');
      this.retryLater(key, assign, started);
    };
    const namespaceReadyMs = performance.now();
    const withObjects = !this.released.has(key);
    if (withObjects) {
      try {
        await this.attempts.ensureBeforePods(objects);
      } catch (err) {
        return cannotCreate(err);
      }
    }
    // The Service and allow rules are written while the pods are: one round trip fewer on the way to
    // a running pod. Settled to a value, so an early return below leaves no rejection unhandled.
    const besidePods = withObjects ? this.attempts.ensureBesidePods(objects).then(() => undefined, (err: unknown) => err ?? new Error('attempt objects failed')) : Promise.resolve(undefined);
    // A gang's pods are created at once (a few at a time), not one after another: a 64-replica
    // gang otherwise waits 64 apiserver round trips for its last pod. Quota admission batches the
    // usage updates of one namespace; the conflicts it still loses are retried in createPod.
    const creating = new ConcurrencyLimit(this.pacing.podCreatesAtOnce ?? POD_CREATES_AT_ONCE);
    // The first failure stops the creates still waiting for a slot, as the loop before did: a gang
    // the apiserver refuses costs one refused create, not one per replica, and makes no pods that
    // would only be deleted. So does a Cancel meanwhile.
    let stopped = false;
    const failures = (await Promise.all(pods.map((pod) => creating.run(async () => {
      if (stopped || !this.assignments.has(key)) return undefined;
      try {
        const podStartMs = performance.now();
        const staleQuotaWaits = await this.createPod(namespace, pod);
        // Where the attempt's setup time went (bench/stage-times.ts reads these).
        const timings = { namespaceMs: ms(namespaceReadyMs - startedMs), podMs: ms(performance.now() - podStartMs), staleQuotaWaits };
        this.logger.info({ job: assign.jobUid, epoch: assign.epoch, pod: pod.metadata?.name, namespace, ...timings }, 'created job pod');
        return undefined;
      } catch (err) {
        // 409 is two things: the pod exists (a repeat: fine), or the quota admission lost a race
        // with another writer of the namespace's ResourceQuota (the pod was NOT created: retry).
        if ((err as { code?: number }).code === 409 && !isQuotaConflict(err)) return undefined;
        stopped = true;
        return { pod: pod.metadata?.name, err };
      }
    })))).filter((f) => f !== undefined);
    if (!this.assignments.has(key)) {
      // Cancelled while its pods were being created: the Cancel's delete may have run before the
      // last of them landed.
      await this.deletePods(namespace, `${JOB_UID_LABEL}=${assign.jobUid},${EPOCH_LABEL}=${assign.epoch}`, 0).catch(() => undefined);
      return;
    }
    if (failures.length > 0) {
      // The most telling failure decides: a refusal ends the attempt whatever else happened; a
      // namespace being deleted is made again; anything else is tried again shortly, and a quota
      // still exceeded once the retries are spent is a refusal too (as in the loop before).
      const refusal = failures.find((f) => isRefusal(f.err) && !isQuotaBusy(f.err) && !isNamespaceTerminating(f.err));
      const { pod, err } = refusal ?? failures.find((f) => isNamespaceTerminating(f.err)) ?? failures[0]!;
      if (isQuotaConflict(err)) {
        this.logger.warn({ job: assign.jobUid, epoch: assign.epoch, pod }, 'quota admission kept conflicting; retrying the attempt');
        if (this.retryLater(key, assign, started)) return;
      }
      if (isQuotaBusy(err) && this.retryLater(key, assign, started)) return;
      if (isNamespaceTerminating(err)) {
        this.tenancy.forget(namespace);
        this.logger.warn({ job: assign.jobUid, epoch: assign.epoch, namespace }, 'the tenant namespace is being deleted; making it again once it is gone');
        this.retryLater(key, assign, started);
        return;
      }
      if (isRefusal(err)) {
        // Pods of the attempt made beside the refused one go: an attempt runs whole or not at all.
        refuse(refusalReason(err));
        await this.deletePods(namespace, `${JOB_UID_LABEL}=${assign.jobUid},${EPOCH_LABEL}=${assign.epoch}`, 0).catch(() => undefined);
        return;
      }
      this.logger.error({ err, job: assign.jobUid, epoch: assign.epoch, pod }, 'could not create job pod; retrying');
      this.retryLater(key, assign, started);
      return;
    }
    const failed = await besidePods;
    if (failed) return cannotCreate(failed);
    this.retries.delete(key);
  }

  /**
   * Creates a pod, again at once while the quota admission only lost an update race (a burst of
   * pods in one namespace), and again after a few ms while it still judges by the bound before the
   * one just written. The agent waits for a raised bound to be in force first (status.hard, on its
   * own watch: agent/tenancy/quota-watch.ts), but the admission reads its own cache, which may
   * still be a moment behind, and the wait gives up after a while.
   */
  private async createPod(namespace: string, body: V1Pod): Promise<number> {
    let conflicts = 0;
    let stale = 0;
    for (;;) {
      try {
        await this.core.createNamespacedPod({ namespace, body });
        return stale;
      } catch (err) {
        if (isQuotaConflict(err) && ++conflicts < QUOTA_CONFLICT_TRIES) continue;
        const wait = isQuotaBusy(err) ? QUOTA_CACHE_WAITS_MS[stale++] : undefined;
        if (wait === undefined) throw err;
        await sleep(wait);
      }
    }
  }

  /** Tries the attempt again after a backoff; false when out of tries. */
  private retryLater(key: string, assign: Assign, started: boolean): boolean {
    const count = this.retries.get(key)?.count ?? 0;
    const delay = (this.pacing.retryDelaysMs ?? RETRY_DELAYS_MS)[count];
    if (delay === undefined) return false;
    this.logger.info({ job: assign.jobUid, epoch: assign.epoch, delayMs: delay }, 'the cluster cannot take the attempt yet; retrying');
    const timer = setTimeout(() => {
      if (!this.assignments.has(key)) return;
      this.apply(assign, started).catch((err: unknown) => this.logger.error({ err, job: assign.jobUid }, 'retry failed'));
    }, delay);
    timer.unref();
    this.retries.set(key, { count: count + 1, timer });
    return true;
  }

  private forgetRetry(key: string): void {
    const retry = this.retries.get(key);
    if (retry) clearTimeout(retry.timer);
    this.retries.delete(key);
  }

  /** Stops pending retries (the agent is stopping). */
  stop(): void {
    for (const key of [...this.retries.keys()]) this.forgetRetry(key);
  }

  async cancel(jobUid: string, epoch: number, gracePeriodSeconds: number): Promise<void> {
    const key = attemptKey(jobUid, epoch);
    this.forgetRetry(key);
    const namespace = this.assignments.get(key)?.namespace;
    this.assignments.delete(key);
    this.secretsOf.delete(key);
    this.refused.delete(key);
    if (namespace) await this.deletePods(namespace, `${JOB_UID_LABEL}=${jobUid},${EPOCH_LABEL}=${epoch}`, gracePeriodSeconds);
    await this.releaseNamespaces();
    if (namespace) await this.attempts.remove(namespace, jobUid, epoch);
    this.released.delete(key);
  }

  /** The attempt ended (its pods are done): its Service, policies and Secret go now, not at cancel. */
  async release(jobUid: string, epoch: number): Promise<void> {
    const key = attemptKey(jobUid, epoch);
    this.secretsOf.delete(key); // the attempt ended: no pod of it is made again
    const namespace = this.assignments.get(key)?.namespace;
    if (this.released.has(key) || !namespace) return;
    await this.attempts.remove(namespace, jobUid, epoch);
    this.released.add(key);
  }

  /**
   * A gang's attempt failed while some of its pods still run (one replica exited, the others wait
   * on it in a collective for ever): those stop, with the checkpoint grace. The ended pods stay for
   * their logs until the attempt is cancelled.
   */
  async stopSurvivors(jobUid: string, epoch: number, pods: readonly V1Pod[], gracePeriodSeconds: number): Promise<void> {
    const namespace = this.assignments.get(attemptKey(jobUid, epoch))?.namespace;
    if (!namespace) return;
    for (const pod of pods) {
      const phase = pod.status?.phase;
      const name = pod.metadata?.name;
      if (!name || phase === 'Succeeded' || phase === 'Failed' || pod.metadata?.deletionTimestamp) continue;
      try {
        await this.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds });
      } catch (err) {
        if ((err as { code?: number }).code !== 404) throw err;
      }
    }
  }

  /** Owner reclaim or budget stop: deletes the attempt's pods with their checkpoint grace, keeping the assignment to report on. */
  async reclaim(jobUid: string, epoch: number, gracePeriodSeconds: number): Promise<void> {
    const namespace = this.assignments.get(attemptKey(jobUid, epoch))?.namespace;
    if (namespace) await this.deletePods(namespace, `${JOB_UID_LABEL}=${jobUid},${EPOCH_LABEL}=${epoch}`, gracePeriodSeconds);
  }

  /** Converges to exactly the hub's desired attempts; one attempt's trouble never stops the rest. */
  async resync(desired: Assign[], managedPods: readonly V1Pod[]): Promise<void> {
    const wanted = new Set(desired.map((a) => attemptKey(a.jobUid, a.epoch)));
    for (const key of [...this.assignments.keys()]) if (!wanted.has(key)) this.assignments.delete(key);
    for (const key of [...this.secretsOf.keys()]) if (!wanted.has(key)) this.secretsOf.delete(key);
    for (const key of [...this.refused.keys()]) if (!wanted.has(key)) this.refused.delete(key);
    for (const key of [...this.retries.keys()]) if (!wanted.has(key)) this.forgetRetry(key);
    const stale = new Map<string, { jobUid: string; epoch: string; namespace: string }>();
    for (const key of [...this.released]) if (!wanted.has(key)) this.released.delete(key);
    for (const pod of managedPods) {
      const jobUid = pod.metadata?.labels?.[JOB_UID_LABEL];
      const epoch = pod.metadata?.labels?.[EPOCH_LABEL];
      const namespace = pod.metadata?.namespace;
      if (jobUid && epoch && namespace && !wanted.has(`${jobUid}/${epoch}`)) stale.set(`${namespace}/${jobUid}/${epoch}`, { jobUid, epoch, namespace });
    }
    for (const { jobUid, epoch, namespace } of stale.values()) {
      this.logger.info({ job: jobUid, epoch, namespace }, 'deleting pods the hub no longer wants');
      await this.deletePods(namespace, `${JOB_UID_LABEL}=${jobUid},${EPOCH_LABEL}=${epoch}`, 0).catch((err: unknown) =>
        this.logger.error({ err, job: jobUid, epoch }, 'could not delete stale pods; the next resync retries'),
      );
    }
    // Usage first, so each tenant's quota already covers all its wanted attempts.
    for (const assign of desired) {
      const a = assignmentFromProto(assign);
      this.assignments.set(attemptKey(a.jobUid, a.epoch), { ...a, pricePerGpuHour: assign.pricePerGpuHour, coveredGpuSeconds: assign.coveredGpuSeconds, namespace: this.tenancy.nameOf(a.tenant ?? '') });
    }
    // Per-attempt objects of unwanted attempts in namespaces still in use (the others go whole).
    for (const namespace of new Set([...this.assignments.values()].map((a) => a.namespace))) {
      await this.attempts.prune(namespace, wanted).catch((err: unknown) => this.logger.error({ err, namespace }, 'could not prune per-attempt objects; the next resync retries'));
    }
    // At once, bounded by `preparing`: a provider running hundreds of attempts resyncs in seconds.
    // The placement check is skipped only for an attempt whose every replica already runs where
    // the hub says, in its tenant's namespace: a (hostile) hub cannot resync a known attempt onto
    // other nodes, more replicas or another tenant past the check.
    await Promise.all(desired.map((assign) => this.apply(assign, isPlacedAsAssigned(assign, managedPods, this.tenancy.nameOf(assign.namespace)))));
    await this.releaseNamespaces();
  }

  /** Pods this agent manages, from the informer cache. */
  managed(pods: readonly V1Pod[]): V1Pod[] {
    return pods.filter((p) => this.isManaged(p));
  }

  /** Whether `pod` is a job pod of this agent's (in a tenant namespace, with its label). */
  isManaged(pod: V1Pod): boolean {
    return this.tenancy.owns(pod.metadata?.namespace) && pod.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY;
  }

  /** What the live attempts of one namespace paid for: the quota it gets. */
  private usageOf(namespace: string): { pods: number; gpus: number } {
    let pods = 0;
    let gpus = 0;
    for (const [key, a] of this.assignments) {
      if (a.namespace !== namespace || this.refused.has(key)) continue;
      pods += a.podTemplates.length;
      gpus += a.podTemplates.length * a.gpusPerReplica;
    }
    return { pods, gpus };
  }

  /** Namespaces of consumers with no attempt left on this provider go. */
  private async releaseNamespaces(): Promise<void> {
    const inUse = () => new Set([...this.assignments.values()].map((a) => a.namespace));
    await this.tenancy.release(inUse).catch((err: unknown) => this.logger.error({ err }, 'could not delete unused tenant namespaces; retrying later'));
  }

  private async deletePods(namespace: string, labelSelector: string, gracePeriodSeconds: number): Promise<void> {
    const list = await this.core.listNamespacedPod({ namespace, labelSelector });
    for (const pod of list.items) {
      try {
        await this.core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace, gracePeriodSeconds });
      } catch (err) {
        if ((err as { code?: number }).code !== 404) throw err;
      }
    }
  }
}
