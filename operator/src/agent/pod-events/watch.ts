// Watches core/v1 Events about pods in the agent's tenant namespaces: one watch per namespace that
// holds an attempt the agent runs, started and stopped as attempts come and go. core/v1 also shows
// events.k8s.io Events (the scheduler's FailedScheduling), so one kind covers kubelet and scheduler.
import { CoreV1Api, type CoreV1Event, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Informer } from '../../runtime/informer.js';
import { typedSource } from '../../runtime/informer-sources.js';

export class PodEventWatch {
  private readonly informers = new Map<string, Informer<CoreV1Event>>();
  private readonly core: CoreV1Api;
  private stopped = false;

  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly logger: Logger,
    private readonly onEvent: (event: CoreV1Event) => void,
  ) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
  }

  /** Watches exactly these namespaces from now on. */
  watchNamespaces(namespaces: ReadonlySet<string>): void {
    if (this.stopped) return;
    for (const [namespace, informer] of this.informers) {
      if (namespaces.has(namespace)) continue;
      this.informers.delete(namespace);
      void informer.stop();
    }
    for (const namespace of namespaces) {
      if (this.informers.has(namespace) || !namespace) continue;
      const fieldSelector = 'involvedObject.kind=Pod';
      const informer = new Informer<CoreV1Event>(
        typedSource<CoreV1Event>({
          path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`,
          fieldSelector,
          list: () => this.core.listNamespacedEvent({ namespace, fieldSelector }),
          model: 'CoreV1Event',
          description: `pod events in ${namespace}`,
        }),
        { kubeConfig: this.kubeConfig, logger: this.logger },
      );
      informer.on('add', (e) => this.onEvent(e));
      informer.on('update', (e) => this.onEvent(e));
      this.informers.set(namespace, informer);
      informer.start().catch((err: unknown) => {
        if (this.informers.get(namespace) === informer) this.logger.warn({ err, namespace }, 'could not watch pod events');
      });
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const all = [...this.informers.values()];
    this.informers.clear();
    await Promise.all(all.map((i) => i.stop()));
  }
}
