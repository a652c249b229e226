import { createHash } from 'node:crypto';
import { CoreV1Api, NetworkingV1Api, RbacAuthorizationV1Api, type KubeConfig, type V1Namespace, type V1ResourceQuota } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { GPU_RESOURCE } from '../../api/constants.js';
import { compareStrings } from '../../core/order.js';
import { raisesBound, type QuotaWatch } from './quota-watch.js';

// One namespace per consumer on this provider (DESIGN §8): PodSecurity `restricted` enforced, a
// default-deny NetworkPolicy, a ResourceQuota and LimitRange bounding what the consumer's live
// attempts paid for. Created on the first attempt, deleted when the last one is gone. Other parts
// of the agent (rendezvous Services, egress policies, secrets) find an attempt's namespace with
// `tenantNamespaceName`.

export const TENANT_LABEL = 'fedgpu.io/tenant-hash';
export const TENANT_ANNOTATION = 'fedgpu.io/tenant';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'fedgpu-agent';
export const ENFORCE_LABEL = 'pod-security.kubernetes.io/enforce';
export const ENFORCE_VERSION_LABEL = 'pod-security.kubernetes.io/enforce-version';
export const DEFAULT_DENY_POLICY = 'fedgpu-default-deny';
export const ALLOW_DNS_POLICY = 'fedgpu-allow-dns';
export const QUOTA_NAME = 'fedgpu-attempts';
export const LIMIT_RANGE_NAME = 'fedgpu-containers';

/** The tenant's namespace name is taken by another tenant's namespace (a hash collision). */
export class TenantCollisionError extends Error {
  override name = 'TenantCollisionError';
}

/** The namespace refuses to be used: it does not enforce PodSecurity restricted. */
export class NamespaceNotRestrictedError extends Error {
  override name = 'NamespaceNotRestrictedError';
}

const hash = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 8);

/**
 * The provider-side namespace of a consumer (the hub namespace an attempt comes from):
 * `<prefix>-<readable part>-<hash>`, a DNS-1123 label whatever the hub sends.
 */
export function tenantNamespaceName(prefix: string, tenant: string): string {
  const suffix = hash(tenant);
  const room = 63 - prefix.length - suffix.length - 2;
  const readable = tenant.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, Math.max(0, room)).replace(/-+$/, '');
  return readable ? `${prefix}-${readable}-${suffix}` : `${prefix}-${suffix}`;
}

/** Whether a namespace enforces PodSecurity restricted at the latest version; the reason if not. */
export function restrictedProblem(ns: V1Namespace): string | undefined {
  const labels = ns.metadata?.labels ?? {};
  if (labels[ENFORCE_LABEL] !== 'restricted') {
    return `namespace ${ns.metadata?.name} does not enforce PodSecurity restricted (${ENFORCE_LABEL}=${labels[ENFORCE_LABEL] ?? 'unset'})`;
  }
  const version = labels[ENFORCE_VERSION_LABEL];
  if (version !== undefined && version !== 'latest') {
    return `namespace ${ns.metadata?.name} enforces PodSecurity restricted only at ${version}, not latest`;
  }
  return undefined;
}

/** What a consumer's live attempts on this provider paid for: the namespace's quota. */
export interface TenantUsage {
  pods: number;
  gpus: number;
}

/** The tenant LimitRange's ephemeral storage per container: without a limit, without a request, at most. */
export const EPHEMERAL_STORAGE_DEFAULT = '20Gi';
export const EPHEMERAL_STORAGE_DEFAULT_REQUEST = '1Gi';
export const EPHEMERAL_STORAGE_MAX = '200Gi';

export interface TenancyOptions {
  /** Prefix of every tenant namespace (the chart's provider.jobNamespace). */
  prefix: string;
  /** Allow DNS egress from job pods (the rest stays denied). */
  allowDns?: boolean;
  /** Ephemeral storage a container gets by default and at most (root filesystem writes, logs). */
  defaultEphemeralStorage?: string;
  maxEphemeralStorage?: string;
  /** Called when a namespace is refused for not enforcing restricted. */
  onNotRestricted?: (namespace: string, reason: string) => void;
  /** The set of refused namespaces (`unisolated()`) changed. */
  onIsolationChanged?: () => void;
  /** The agent's watch of its quotas (agent/tenancy/quota-watch.ts): a raised bound is awaited there until in force. */
  quotas?: QuotaWatch;
  /** How long a raised bound is awaited before the pods go anyway. Default 250 ms. */
  quotaInForceWaitMs?: number;
  /**
   * The ClusterRole with the agent's log, exec and port-forward rights, bound to `user` (the agent's
   * own username, agent/identity.ts) in each tenant namespace it prepares: the chart grants them
   * nowhere else. Absent: nothing is bound (rights granted cluster-wide, outside the chart).
   */
  accessRole?: { clusterRole: string; user: () => string | undefined };
}

export const ACCESS_BINDING_NAME = 'fedgpu-tenant-access';

/** A quota write: the bound written, whether it rose above the one in force, and the version written. */
interface WrittenQuota {
  hard: Record<string, string>;
  raised: boolean;
  resourceVersion: string | undefined;
}

const isCode = (err: unknown, code: number) => (err as { code?: number }).code === code;

/** How long a prepared namespace is trusted to still hold its policies, service account and limits. */
const REPREPARE_AFTER_MS = 60_000;
/** How long a raised quota bound is awaited before the pod goes anyway (its create then retries a stale refusal). */
const QUOTA_IN_FORCE_WAIT_MS = 250;

export class TenantNamespaces {
  private readonly core: CoreV1Api;
  private readonly net: NetworkingV1Api;
  private readonly rbac: RbacAuthorizationV1Api;
  /** Namespaces refused for not enforcing restricted, with why; until one passes again or is deleted. */
  private readonly refused = new Map<string, string>();

  /** Namespaces this process fully prepared: their uid and when (see ensure's fast path). */
  private readonly prepared = new Map<string, { uid: string; atMs: number }>();
  /** Per namespace (writeQuota): the last quota write in the chain, and the next one while it has not started. */
  private readonly quotaWrites = new Map<string, { tail: Promise<unknown>; queued?: { create: boolean; promise: Promise<WrittenQuota> } }>();

  constructor(
    kubeConfig: KubeConfig,
    private readonly options: TenancyOptions,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.net = kubeConfig.makeApiClient(NetworkingV1Api);
    this.rbac = kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  }

  nameOf(tenant: string): string {
    return tenantNamespaceName(this.options.prefix, tenant);
  }

  /** Whether every pod of a tenant namespace may reach DNS (its own policy, written at prepare). */
  get allowsDns(): boolean {
    return this.options.allowDns !== false;
  }

  /** Whether `namespace` is one of ours (pods there are the agent's to manage). */
  owns(namespace: string | undefined): boolean {
    return namespace !== undefined && namespace.startsWith(`${this.options.prefix}-`);
  }

  /**
   * Makes the tenant's namespace ready for pods and bounds it to `usage`; throws
   * NamespaceNotRestrictedError when the namespace exists without PodSecurity restricted.
   */
  async ensure(tenant: string, usage: TenantUsage | (() => TenantUsage)): Promise<string> {
    const name = this.nameOf(tenant);
    const usageNow = typeof usage === 'function' ? usage : () => usage;
    // Fast path, on the way of every assignment: a namespace this agent prepared recently only
    // needs its quota bound moved and its PodSecurity labels checked again (someone may strip
    // them at any time), one round trip with both calls in flight. The labels are read live, not
    // from a watch: a namespace relabelled just before the assignment must be seen as such. The
    // rest is re-applied when the namespace is new to this process, was re-created, or was last
    // prepared a while ago.
    const prepared = this.prepared.get(name);
    if (prepared && this.now() - prepared.atMs < REPREPARE_AFTER_MS) {
      const [read, quotaWrite] = await Promise.allSettled([
        this.core.readNamespace({ name }),
        this.writeQuota(name, usageNow, false),
      ]);
      if (read.status === 'rejected') throw read.reason;
      if (read.value.metadata?.uid === prepared.uid) {
        // The namespace's own state first: a loosened one is refused as such (the admission
        // policy refuses the quota write there too, with a less telling message).
        this.checkUsable(name, read.value, tenant);
        if (quotaWrite.status === 'fulfilled') return name;
        if (!isCode(quotaWrite.reason, 404)) throw quotaWrite.reason;
      }
    }
    const ns = await this.ensureNamespace(name, tenant);
    this.checkUsable(name, ns, tenant);
    const labels = { [MANAGED_BY_LABEL]: MANAGED_BY };
    // The namespace's own default ServiceAccount mounts nothing either (pods set it off as well).
    // (The controller-manager may have made it first: then it is replaced.)
    const sa = { metadata: { name: 'default', labels }, automountServiceAccountToken: false };
    // Replaced when present, so a policy someone loosened is put back.
    const deny = { metadata: { name: DEFAULT_DENY_POLICY, labels }, spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] } };
    const max = this.options.maxEphemeralStorage ?? EPHEMERAL_STORAGE_MAX;
    const accessUser = this.options.accessRole?.user();
    if (this.options.accessRole && !accessUser) this.logger.warn({ namespace: name }, 'the agent does not know its own username: no tenant-access binding, so logs, exec and port-forward of this namespace will be refused');
    const binding = this.options.accessRole && accessUser
      ? {
          metadata: { name: ACCESS_BINDING_NAME, labels },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: this.options.accessRole.clusterRole },
          subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: accessUser }],
        }
      : undefined;
    // Independent objects: written at once, all in place before any pod is created.
    await Promise.all([
      this.createOrReplace(
        () => this.core.createNamespacedServiceAccount({ namespace: name, body: sa }),
        () => this.core.replaceNamespacedServiceAccount({ name: 'default', namespace: name, body: sa }),
      ),
      this.createOrReplace(
        () => this.net.createNamespacedNetworkPolicy({ namespace: name, body: deny }),
        () => this.net.replaceNamespacedNetworkPolicy({ name: DEFAULT_DENY_POLICY, namespace: name, body: deny }),
      ),
      this.options.allowDns === false ? undefined : this.createOrReplace(
        () => this.net.createNamespacedNetworkPolicy({
          namespace: name,
          body: {
            metadata: { name: ALLOW_DNS_POLICY, labels },
            spec: {
              podSelector: {},
              policyTypes: ['Egress'],
              egress: [{ to: [{ namespaceSelector: {} }], ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] }],
            },
          },
        }),
        undefined,
      ),
      this.writeQuota(name, usageNow, true),
      binding === undefined ? undefined : this.createOrReplace(
        () => this.rbac.createNamespacedRoleBinding({ namespace: name, body: binding }),
        () => this.rbac.replaceNamespacedRoleBinding({ name: ACCESS_BINDING_NAME, namespace: name, body: binding }),
      ),
      this.createOrReplace(
        () => this.core.createNamespacedLimitRange({
          namespace: name,
          body: {
            metadata: { name: LIMIT_RANGE_NAME, labels },
            spec: {
              limits: [{
                type: 'Container',
                _default: { 'ephemeral-storage': this.options.defaultEphemeralStorage ?? EPHEMERAL_STORAGE_DEFAULT },
                defaultRequest: { 'ephemeral-storage': EPHEMERAL_STORAGE_DEFAULT_REQUEST },
                max: { 'ephemeral-storage': max },
              }],
            },
          },
        }),
        undefined,
      ),
    ]);
    if (ns.metadata?.uid) this.prepared.set(name, { uid: ns.metadata.uid, atMs: this.now() });
    return name;
  }

  /**
   * Writes the namespace's quota from the usage at the moment of writing, one write at a time per
   * namespace. Attempts of one consumer arrive in bursts; concurrent writes computed earlier could
   * land out of order and shrink the bound below what is already assigned (pods then refused for
   * exceeded quota). `create`: create it when missing (else a missing quota is a 404).
   */
  private async writeQuota(name: string, usage: () => TenantUsage, create: boolean): Promise<void> {
    const written = await this.chainQuotaWrite(name, usage, create);
    // The pods a raised bound admits go once it is in force (agent/tenancy/quota-watch.ts), waited
    // for here, outside the chain: the next write of the namespace need not wait for the
    // controller-manager too. A bound that did not rise needs no wait.
    if (written.raised) {
      await this.options.quotas?.quotaInForce(name, QUOTA_NAME, written.hard, written.resourceVersion, this.options.quotaInForceWaitMs ?? QUOTA_IN_FORCE_WAIT_MS);
    }
  }

  /** The quota writes of one namespace, one at a time (see writeQuota); resolves with what was written. */
  private chainQuotaWrite(name: string, usage: () => TenantUsage, create: boolean): Promise<WrittenQuota> {
    const write = async (): Promise<WrittenQuota> => {
      const u = usage();
      const hard = { pods: String(u.pods), [`requests.${GPU_RESOURCE}`]: String(u.gpus) };
      const body = { metadata: { name: QUOTA_NAME, labels: { [MANAGED_BY_LABEL]: MANAGED_BY } }, spec: { hard } };
      const replace = () => this.core.replaceNamespacedResourceQuota({ name: QUOTA_NAME, namespace: name, body });
      let written: V1ResourceQuota;
      if (!create) {
        written = await replace();
      } else {
        try {
          written = await this.core.createNamespacedResourceQuota({ namespace: name, body });
        } catch (err) {
          if (!isCode(err, 409)) throw err;
          written = await replace();
        }
      }
      // The status the write returned is the bound admission judged by until now.
      return { hard, raised: raisesBound(written.status?.hard, hard), resourceVersion: written.metadata?.resourceVersion };
    };
    // A write not yet started already covers this caller: it reads the usage when it starts, and
    // every assignment is recorded before it asks. So a burst of one consumer's attempts costs one
    // write per round trip, not one each (432 attempts queued behind 432 writes in the e2e bench).
    const state = this.quotaWrites.get(name);
    if (state?.queued && state.queued.create === create) return state.queued.promise;
    const queued = { create, promise: Promise.resolve<WrittenQuota>({ hard: {}, raised: false, resourceVersion: undefined }) };
    const start = () => {
      if (this.quotaWrites.get(name)?.queued === queued) this.quotaWrites.get(name)!.queued = undefined;
      return write();
    };
    const previous = state?.tail ?? Promise.resolve();
    queued.promise = previous.then(start, start);
    const tail = queued.promise.catch(() => undefined);
    this.quotaWrites.set(name, { tail, queued });
    void tail.then(() => {
      if (this.quotaWrites.get(name)?.tail === tail) this.quotaWrites.delete(name);
    });
    return queued.promise;
  }

  /** Throws unless pods of `tenant` may go into `ns` now (its own, not being deleted, PodSecurity restricted enforced). */
  private checkUsable(name: string, ns: V1Namespace, tenant: string): void {
    if (ns.metadata?.deletionTimestamp) {
      this.prepared.delete(name);
      throw new Error(`namespace ${name} is still being deleted; the next resync retries`);
    }
    // The name keeps 32 bits of the tenant's hash: a hub namespace named to collide with another
    // consumer's (a long shared prefix, then a brute-forced hash) would share its namespace here,
    // quota and all. The tenant each namespace was made for is written on it, and checked.
    const owner = ns.metadata?.annotations?.[TENANT_ANNOTATION];
    if (owner !== undefined && owner !== tenant.slice(0, 253)) {
      throw new TenantCollisionError(`namespace ${name} belongs to consumer ${JSON.stringify(owner)}, not ${JSON.stringify(tenant)}: their names collide on this provider; refusing to share it`);
    }
    const problem = restrictedProblem(ns);
    if (problem) {
      this.options.onNotRestricted?.(name, problem);
      this.markRefused(name, problem);
      this.logger.error({ namespace: name }, `refusing to run job pods: ${problem}`);
      throw new NamespaceNotRestrictedError(problem);
    }
    this.markRefused(name, undefined);
  }

  /** Tenant namespaces refused right now for not enforcing restricted (what the hub shows). */
  unisolated(): { namespace: string; reason: string }[] {
    return [...this.refused].map(([namespace, reason]) => ({ namespace, reason })).sort((a, b) => compareStrings(a.namespace, b.namespace));
  }

  private markRefused(name: string, reason: string | undefined): void {
    if (this.refused.get(name) === reason) return;
    if (reason === undefined) this.refused.delete(name);
    else this.refused.set(name, reason);
    this.options.onIsolationChanged?.();
  }

  /** Forgets that `name` was prepared: the next `ensure` takes the full path (it was deleted under us). */
  forget(name: string): void {
    this.prepared.delete(name);
  }

  /**
   * Deletes the namespaces of ours not in use. `inUse` is asked again right before each delete:
   * an assignment that came while the list was in flight keeps its namespace.
   */
  async release(inUse: ReadonlySet<string> | (() => ReadonlySet<string>)): Promise<string[]> {
    const used = typeof inUse === 'function' ? inUse : () => inUse;
    const list = await this.core.listNamespace({ labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY}` });
    // Refused namespaces looked at again: one restricted again (or unused) is no longer refused.
    const listed = new Map(list.items.map((ns) => [ns.metadata?.name ?? '', ns]));
    for (const name of [...this.refused.keys()]) {
      const ns = listed.get(name);
      if (!used().has(name)) this.markRefused(name, undefined);
      else if (ns) this.markRefused(name, restrictedProblem(ns));
    }
    const deleted: string[] = [];
    for (const ns of list.items) {
      const name = ns.metadata?.name;
      if (!name || !this.owns(name) || used().has(name) || ns.metadata?.deletionTimestamp) continue;
      try {
        this.prepared.delete(name);
        await this.core.deleteNamespace({ name });
        deleted.push(name);
        this.logger.info({ namespace: name }, 'deleted tenant namespace: its last attempt is gone');
      } catch (err) {
        if (!isCode(err, 404)) throw err;
      }
    }
    return deleted;
  }

  private async ensureNamespace(name: string, tenant: string): Promise<V1Namespace> {
    try {
      return await this.core.readNamespace({ name });
    } catch (err) {
      if (!isCode(err, 404)) throw err;
    }
    const body: V1Namespace = {
      metadata: {
        name,
        labels: {
          [MANAGED_BY_LABEL]: MANAGED_BY,
          [TENANT_LABEL]: hash(tenant),
          [ENFORCE_LABEL]: 'restricted',
          [ENFORCE_VERSION_LABEL]: 'latest',
          'pod-security.kubernetes.io/audit': 'restricted',
          'pod-security.kubernetes.io/warn': 'restricted',
        },
        annotations: { [TENANT_ANNOTATION]: tenant.slice(0, 253) },
      },
    };
    try {
      const created = await this.core.createNamespace({ body });
      this.logger.info({ namespace: name }, 'created tenant namespace');
      return created;
    } catch (err) {
      if (!isCode(err, 409)) throw err;
      return this.core.readNamespace({ name });
    }
  }

  /** Create; on conflict replace when a replacement is given, otherwise keep what is there. */
  private async createOrReplace(create: () => Promise<unknown>, replace: (() => Promise<unknown>) | undefined): Promise<void> {
    try {
      await create();
    } catch (err) {
      if (!isCode(err, 409)) throw err;
      if (replace) await replace();
    }
  }
}
