import { CoreV1Api, type Informer, type KubeConfig, type KubernetesObject, makeInformer, type V1Node, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';

// The agent's view of its own cluster: informers on nodes and pods, one callback on any change.
// client-node's ListWatch re-lists and re-watches on its own after a dropped watch; if it gives up
// with an error we start it again after a short, growing delay.

export interface ClusterWatch {
  nodes(): readonly V1Node[];
  pods(): readonly V1Pod[];
  stop(): Promise<void>;
}

/** What changed: a pod (the agent reports only its attempt again), a node, or anything (undefined: relisted). */
export type ClusterChange = { pod: V1Pod } | { node: V1Node } | undefined;

export async function watchCluster(kubeConfig: KubeConfig, logger: Logger, onChange: (change?: ClusterChange) => void): Promise<ClusterWatch> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const nodes = makeInformer<V1Node>(kubeConfig, '/api/v1/nodes', () => core.listNode());
  const pods = makeInformer<V1Pod>(kubeConfig, '/api/v1/pods', () => core.listPodForAllNamespaces());
  let stopped = false;
  const timers = new Set<NodeJS.Timeout>();
  const wire = <T extends KubernetesObject>(what: string, informer: Informer<T>, changeOf: (obj: T) => ClusterChange) => {
    informer.on('add', (obj) => onChange(changeOf(obj)));
    informer.on('update', (obj) => onChange(changeOf(obj)));
    informer.on('delete', (obj) => onChange(changeOf(obj)));
    let failures = 0;
    informer.on('connect', () => (failures = 0));
    informer.on('error', (err: unknown) => {
      if (stopped) return;
      failures++;
      const delay = Math.min(500 * 2 ** Math.min(failures, 6), 30_000);
      logger.warn({ err, what, retryInMs: delay }, 'watch failed; restarting');
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!stopped) informer.start().then(() => onChange(), () => undefined);
      }, delay);
      timers.add(timer);
    });
  };
  wire('nodes', nodes, (node) => ({ node }));
  wire('pods', pods, (pod) => ({ pod }));
  await Promise.all([nodes.start(), pods.start()]);
  onChange();
  return {
    nodes: () => nodes.list(),
    pods: () => pods.list(),
    async stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      await Promise.all([nodes.stop(), pods.stop()]);
    },
  };
}
