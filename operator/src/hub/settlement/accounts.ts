import { CoreV1Api, type KubeConfig, type V1Namespace } from '@kubernetes/client-node';
import { getAddress, isAddress } from 'ethers';
import type { Logger } from 'pino';
import { CONSUMER_WALLET_LABEL } from '../../api/constants.js';
import { typedSource } from '../../runtime/informer-sources.js';
import { Informer } from '../../runtime/informer.js';

// Who pays for a namespace's jobs: the consumer wallet named by the label
// fedgpu.io/consumer-wallet=<0x address> on the Namespace. The consumer deposits on chain itself
// (`fedgpu deposit`); the hub only ever locks, pays from and refunds to that deposit.

/** wallet: who pays; namespaceUid: the namespace instance its consent names (chain/tenant.ts). */
export type ConsumerLookup = { wallet: string; namespaceUid: string } | { problem: string };

const beingDeleted = (namespace: string) => `namespace ${namespace} is being deleted: nothing more is escrowed for it`;

/** The consumer wallet of a namespace, from its labels, and the namespace's uid (pure). */
export function consumerOfNamespace(namespace: string, ns: Pick<V1Namespace, 'metadata'> | undefined): ConsumerLookup {
  const labels = ns?.metadata?.labels;
  const value = labels?.[CONSUMER_WALLET_LABEL];
  if (!value) {
    return { problem: `waiting for a consumer wallet: namespace ${namespace} has no label ${CONSUMER_WALLET_LABEL}=<0x address> (this hub settles on chain)` };
  }
  if (!isAddress(value)) return { problem: `waiting for a consumer wallet: label ${CONSUMER_WALLET_LABEL}=${value} on namespace ${namespace} is not an 0x address` };
  const namespaceUid = ns?.metadata?.uid;
  if (!namespaceUid) return { problem: `waiting for a consumer wallet: namespace ${namespace} has no uid yet` };
  if (ns?.metadata?.deletionTimestamp) return { problem: beingDeleted(namespace) };
  return { wallet: getAddress(value), namespaceUid };
}

/** Namespaces as the hub sees them (a watch, so a label added later takes effect at once). */
export class ConsumerAccounts {
  readonly namespaces: Informer<V1Namespace>;

  private readonly core: CoreV1Api;

  constructor(kubeConfig: KubeConfig, logger: Logger) {
    const core = (this.core = kubeConfig.makeApiClient(CoreV1Api));
    this.namespaces = new Informer(
      typedSource<V1Namespace>({ path: '/api/v1/namespaces', list: () => core.listNamespace(), model: 'V1Namespace', description: 'namespaces' }),
      { kubeConfig, logger },
    );
  }

  consumerOf(namespace: string | undefined): ConsumerLookup {
    if (!namespace) return { problem: 'the job has no namespace' };
    if (!this.namespaces.hasSynced()) return { problem: 'waiting for the settlement controller to start' };
    return consumerOfNamespace(namespace, this.namespaces.get(namespace));
  }

  /**
   * Read live just before an escrow opens: the namespace is still the one whose uid the consent is
   * checked against. The watch may lag a deletion and a re-creation under the same name (a watch
   * restarting after an error waits up to 30 s); spending the old namespace's consent for the new
   * one's job is what the uid in the tenant is there to stop.
   */
  async stillTheSame(namespace: string, uid: string): Promise<string | undefined> {
    try {
      const live = await this.core.readNamespace({ name: namespace });
      if (live.metadata?.uid !== uid) return `waiting for a consumer wallet: namespace ${namespace} was re-created (uid ${live.metadata?.uid}, the hub's cache had ${uid})`;
      if (live.metadata?.deletionTimestamp) return beingDeleted(namespace);
      return undefined;
    } catch (err) {
      if ((err as { code?: number }).code === 404) return `waiting for a consumer wallet: namespace ${namespace} is gone`;
      return `waiting for the hub apiserver to confirm namespace ${namespace}: ${(err as Error).message.split('\n')[0]}`;
    }
  }
}
