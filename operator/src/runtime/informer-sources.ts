// What an Informer lists and watches: our custom resources (plain JSON, cluster-scoped or
// namespaced) and the core kinds the operator reads (typed client-node models).
import type { CoreV1Api, KubernetesListObject, KubernetesObject, V1Node, V1Pod } from '@kubernetes/client-node';
// Not re-exported from the package root; it is what the typed API uses to decode list responses,
// so watch events decoded with it have the same shape (Dates, not strings) as listed objects.
import { ObjectSerializer } from '@kubernetes/client-node/dist/serializer.js';
import type { InformerSource } from './informer.js';
import type { CustomObjectClient } from './kube.js';

export interface SelectorOptions {
  /** One namespace; all namespaces when omitted (ignored for cluster-scoped kinds). */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

export function customResourceSource<T extends KubernetesObject>(
  client: CustomObjectClient<T>,
  options: Omit<SelectorOptions, 'fieldSelector'> = {},
): InformerSource<T> {
  const namespace = client.resource.namespaced ? options.namespace : undefined;
  return {
    path: client.path(namespace),
    labelSelector: options.labelSelector,
    list: async () => (await client.list({ namespace, labelSelector: options.labelSelector })) as KubernetesListObject<T>,
    description: namespace ? `${client.resource.plural} in ${namespace}` : client.resource.plural,
  };
}

export interface TypedSourceOptions<T extends KubernetesObject> {
  /** Collection path, e.g. /api/v1/namespaces/ns/secrets. */
  path: string;
  /** The typed client-node list call, with the same selectors as below. */
  list: () => Promise<KubernetesListObject<T>>;
  /** client-node's model name for one item, e.g. 'V1Secret'; watch events are decoded into it. */
  model: string;
  labelSelector?: string;
  fieldSelector?: string;
  description?: string;
}

/** Any kind that client-node has a typed model for (the core kinds and other built-ins). */
export function typedSource<T extends KubernetesObject>(options: TypedSourceOptions<T>): InformerSource<T> {
  const { model, ...rest } = options;
  return { ...rest, decode: (raw) => ObjectSerializer.deserialize(raw, model) as T, ...(model === 'V1Secret' ? { sensitive: true } : {}) };
}

export function podSource(core: CoreV1Api, options: SelectorOptions = {}): InformerSource<V1Pod> {
  const { namespace, labelSelector, fieldSelector } = options;
  return typedSource<V1Pod>({
    path: namespace ? `/api/v1/namespaces/${namespace}/pods` : '/api/v1/pods',
    labelSelector,
    fieldSelector,
    list: () =>
      namespace
        ? core.listNamespacedPod({ namespace, labelSelector, fieldSelector })
        : core.listPodForAllNamespaces({ labelSelector, fieldSelector }),
    model: 'V1Pod',
    description: namespace ? `pods in ${namespace}` : 'pods',
  });
}

export function nodeSource(core: CoreV1Api, options: Omit<SelectorOptions, 'namespace'> = {}): InformerSource<V1Node> {
  const { labelSelector, fieldSelector } = options;
  return typedSource<V1Node>({
    path: '/api/v1/nodes',
    labelSelector,
    fieldSelector,
    list: () => core.listNode({ labelSelector, fieldSelector }),
    model: 'V1Node',
    description: 'nodes',
  });
}
