import { CoreV1Api, CustomObjectsApi, type KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { API_VERSION, GPUPROVIDER_PLURAL, GROUP, VERSION, type GpuProvider, type GpuProviderSpec, type GpuProviderStatus } from '../../api/types.js';

// The few GpuProvider reads and writes the marketplace needs, behind an interface so the registry
// logic is tested without an apiserver. The Kubernetes implementation uses JSON merge patches on
// the status subresource: each write names only the fields it owns.
//
// A registration looks its wallet up in the hub's GpuProvider informer once that has synced: a
// LIST of every provider per registration made 1,000 agents connecting a quadratic load (each
// list parsed whole, most of the hub's CPU and garbage while a fleet came up, bench/hub-scale).

export interface ProviderEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface ProviderStore {
  /**
   * The GpuProvider whose spec.wallet is `wallet` (any letter case), as the apiserver has it now;
   * undefined when the store knows of none. One written moments ago may be missed: the caller
   * checks the wallet's own name (providerNameForWallet) before creating.
   */
  findByWallet(wallet: string): Promise<GpuProvider | undefined>;
  get(name: string): Promise<GpuProvider | undefined>;
  create(provider: GpuProvider): Promise<GpuProvider>;
  patchStatus(name: string, status: Partial<GpuProviderStatus>): Promise<void>;
  patchSpec(name: string, spec: Partial<GpuProviderSpec>): Promise<void>;
  event(provider: GpuProvider, event: ProviderEvent): Promise<void>;
}

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** A cache of every GpuProvider (the GpuJob controller's informer). */
export interface ProviderCache {
  list(): readonly GpuProvider[];
  hasSynced(): boolean;
}

export class KubeProviderStore implements ProviderStore {
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;

  constructor(
    kubeConfig: KubeConfig,
    private readonly eventNamespace = 'default',
    private readonly component = 'fedgpu-hub',
    /** Used for wallet look-ups once synced; before that (or without it) they LIST. */
    private readonly cache?: ProviderCache,
  ) {
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
    this.core = kubeConfig.makeApiClient(CoreV1Api);
  }

  async findByWallet(wallet: string): Promise<GpuProvider | undefined> {
    const owns = (p: GpuProvider | undefined) => p?.spec?.wallet?.toLowerCase() === wallet.toLowerCase();
    if (!this.cache?.hasSynced()) {
      const res = (await this.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: GPUPROVIDER_PLURAL })) as { items: GpuProvider[] };
      return res.items.find(owns);
    }
    const cached = this.cache.list().find(owns);
    if (!cached?.metadata.name) return undefined;
    // As the apiserver has it now (the cache may lag, e.g. a deleted provider or a changed wallet).
    const current = await this.get(cached.metadata.name);
    return owns(current) ? current : undefined;
  }

  async get(name: string): Promise<GpuProvider | undefined> {
    try {
      return (await this.custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: GPUPROVIDER_PLURAL, name })) as GpuProvider;
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw err;
    }
  }

  async create(provider: GpuProvider): Promise<GpuProvider> {
    return (await this.custom.createClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: GPUPROVIDER_PLURAL,
      body: provider,
    })) as GpuProvider;
  }

  async patchStatus(name: string, status: Partial<GpuProviderStatus>): Promise<void> {
    await this.custom.patchClusterCustomObjectStatus(
      { group: GROUP, version: VERSION, plural: GPUPROVIDER_PLURAL, name, body: { status } },
      mergePatch,
    );
  }

  async patchSpec(name: string, spec: Partial<GpuProviderSpec>): Promise<void> {
    await this.custom.patchClusterCustomObject({ group: GROUP, version: VERSION, plural: GPUPROVIDER_PLURAL, name, body: { spec } }, mergePatch);
  }

  async event(provider: GpuProvider, event: ProviderEvent): Promise<void> {
    const name = provider.metadata.name ?? '';
    const now = new Date();
    await this.core.createNamespacedEvent({
      namespace: this.eventNamespace,
      body: {
        metadata: { generateName: `${name}.`, namespace: this.eventNamespace },
        involvedObject: { apiVersion: API_VERSION, kind: 'GpuProvider', name, uid: provider.metadata.uid },
        type: event.type,
        reason: event.reason,
        message: event.message,
        source: { component: this.component },
        reportingComponent: this.component,
        reportingInstance: this.component,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    });
  }
}
