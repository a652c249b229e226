// Client construction and a thin typed client for our custom resources. client-node 2.x methods
// take one object argument and return the body; patches default to JSON Patch, so merge patches
// carry a Content-Type override.
import {
  type ConfigurationOptions,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  type KubernetesObject,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import {
  GPUJOB_PLURAL,
  GPUPROVIDER_PLURAL,
  GROUP,
  type GpuJob,
  type GpuProvider,
  VERSION,
} from '../api/types.js';
import { reuseConnections } from './connections.js';

export interface KubeClients {
  kc: KubeConfig;
  core: CoreV1Api;
  coordination: CoordinationV1Api;
  customObjects: CustomObjectsApi;
}

/**
 * A kubeconfig from `path` when given; otherwise the in-cluster service account when running in a
 * pod; otherwise the default chain ($KUBECONFIG, ~/.kube/config).
 */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return reuseConnections(kc);
}

export function makeClients(kc: KubeConfig): KubeClients {
  reuseConnections(kc);
  return {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    coordination: kc.makeApiClient(CoordinationV1Api),
    customObjects: kc.makeApiClient(CustomObjectsApi),
  };
}

/** Request options that send the body as a JSON merge patch (RFC 7386). */
export const mergePatch: ConfigurationOptions = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** The HTTP status of a failed API call, whichever client-node path raised it. */
export function statusCodeOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === 'number') return e.code;
  if (typeof e.statusCode === 'number') return e.statusCode;
  return undefined;
}

export const isNotFound = (err: unknown): boolean => statusCodeOf(err) === 404;
export const isConflict = (err: unknown): boolean => statusCodeOf(err) === 409;

/** "namespace/name", or "name" for a cluster-scoped object: the key every runtime part uses. */
export function objectKey(obj: KubernetesObject): string {
  const { name = '', namespace } = obj.metadata ?? {};
  return namespace ? `${namespace}/${name}` : name;
}

export function parseKey(key: string): { namespace?: string; name: string } {
  const slash = key.indexOf('/');
  return slash < 0 ? { name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

export interface CustomResource {
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
}

export const GPUJOB_RESOURCE: CustomResource = { group: GROUP, version: VERSION, plural: GPUJOB_PLURAL, namespaced: true };
export const GPUPROVIDER_RESOURCE: CustomResource = {
  group: GROUP,
  version: VERSION,
  plural: GPUPROVIDER_PLURAL,
  namespaced: false,
};

export interface ObjectList<T> {
  metadata?: { resourceVersion?: string };
  items: T[];
}

export interface PatchOptions {
  /** 'merge' (default): RFC 7386 JSON merge patch; 'json': RFC 6902 JSON Patch. */
  type?: 'merge' | 'json';
  fieldManager?: string;
}

/** get/list/create/patch/patchStatus/delete for one custom resource; objects are plain JSON. */
export class CustomObjectClient<T extends KubernetesObject> {
  constructor(
    private readonly api: CustomObjectsApi,
    readonly resource: CustomResource,
    private readonly fieldManager?: string,
  ) {}

  /** The collection URL path (for watches): one namespace, or all of them when omitted. */
  path(namespace?: string): string {
    const { group, version, plural } = this.resource;
    return namespace && this.resource.namespaced
      ? `/apis/${group}/${version}/namespaces/${namespace}/${plural}`
      : `/apis/${group}/${version}/${plural}`;
  }

  async get(name: string, namespace?: string): Promise<T> {
    const { group, version, plural } = this.resource;
    if (!this.resource.namespaced) return this.api.getClusterCustomObject({ group, version, plural, name });
    return this.api.getNamespacedCustomObject({ group, version, plural, name, namespace: this.ns(namespace) });
  }

  async list(options: { namespace?: string; labelSelector?: string } = {}): Promise<ObjectList<T>> {
    const { group, version, plural } = this.resource;
    const { namespace, labelSelector } = options;
    if (this.resource.namespaced && namespace) {
      return this.api.listNamespacedCustomObject({ group, version, plural, namespace, labelSelector });
    }
    if (this.resource.namespaced) return this.api.listCustomObjectForAllNamespaces({ group, version, resourcePlural: plural, labelSelector });
    return this.api.listClusterCustomObject({ group, version, plural, labelSelector });
  }

  async create(obj: T): Promise<T> {
    const { group, version, plural } = this.resource;
    const fieldManager = this.fieldManager;
    if (!this.resource.namespaced) return this.api.createClusterCustomObject({ group, version, plural, body: obj, fieldManager });
    const namespace = this.ns(obj.metadata?.namespace);
    return this.api.createNamespacedCustomObject({ group, version, plural, namespace, body: obj, fieldManager });
  }

  async patch(name: string, namespace: string | undefined, body: object, options: PatchOptions = {}): Promise<T> {
    const { group, version, plural } = this.resource;
    const fieldManager = options.fieldManager ?? this.fieldManager;
    const config = options.type === 'json' ? undefined : mergePatch;
    if (!this.resource.namespaced) {
      return this.api.patchClusterCustomObject({ group, version, plural, name, body, fieldManager }, config);
    }
    return this.api.patchNamespacedCustomObject(
      { group, version, plural, name, namespace: this.ns(namespace), body, fieldManager },
      config,
    );
  }

  /** Patches the status subresource: only .status (and the resourceVersion precondition) count. */
  async patchStatus(name: string, namespace: string | undefined, body: object, options: PatchOptions = {}): Promise<T> {
    const { group, version, plural } = this.resource;
    const fieldManager = options.fieldManager ?? this.fieldManager;
    const config = options.type === 'json' ? undefined : mergePatch;
    if (!this.resource.namespaced) {
      return this.api.patchClusterCustomObjectStatus({ group, version, plural, name, body, fieldManager }, config);
    }
    return this.api.patchNamespacedCustomObjectStatus(
      { group, version, plural, name, namespace: this.ns(namespace), body, fieldManager },
      config,
    );
  }

  async delete(name: string, namespace?: string): Promise<void> {
    const { group, version, plural } = this.resource;
    if (!this.resource.namespaced) await this.api.deleteClusterCustomObject({ group, version, plural, name });
    else await this.api.deleteNamespacedCustomObject({ group, version, plural, name, namespace: this.ns(namespace) });
  }

  private ns(namespace: string | undefined): string {
    if (!namespace) throw new Error(`${this.resource.plural} are namespaced: a namespace is required`);
    return namespace;
  }
}

export function gpuJobClient(api: CustomObjectsApi, fieldManager?: string): CustomObjectClient<GpuJob> {
  return new CustomObjectClient<GpuJob>(api, GPUJOB_RESOURCE, fieldManager);
}

export function gpuProviderClient(api: CustomObjectsApi, fieldManager?: string): CustomObjectClient<GpuProvider> {
  return new CustomObjectClient<GpuProvider>(api, GPUPROVIDER_RESOURCE, fieldManager);
}
