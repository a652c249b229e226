// One kept-alive connection pool per cluster and user. @kubernetes/client-node 2.0.1 builds a new
// undici Agent in KubeConfig.createDispatcher for every request (it caches only the legacy https
// Agent), so every API call paid a fresh TCP + TLS handshake: 17–25 % of the hub's CPU in
// docs/benchmarks.md, and a new secure context in native memory each time. reuseConnections wraps
// that method on one KubeConfig so equal cluster, user and TLS material share one dispatcher.
import { createHash } from 'node:crypto';
import type { AgentOptions } from 'node:https';
import type { Cluster, KubeConfig } from '@kubernetes/client-node';

type CreateDispatcher = (cluster: Cluster | null, agentOptions: AgentOptions) => unknown;
interface DispatcherFactory {
  createDispatcher: CreateDispatcher;
}

const wrapped = new WeakSet<KubeConfig>();

/** Makes `kc` reuse one dispatcher (and so its kept-alive connections) per cluster, user and TLS material. Idempotent. */
export function reuseConnections(kc: KubeConfig): KubeConfig {
  if (wrapped.has(kc)) return kc;
  wrapped.add(kc);
  const factory = kc as unknown as DispatcherFactory;
  const create = factory.createDispatcher.bind(kc);
  const cache = new Map<string, unknown>();
  factory.createDispatcher = (cluster, agentOptions) => {
    const key = dispatcherKey(cluster, kc.getCurrentUser()?.name ?? '', agentOptions);
    if (cache.has(key)) return cache.get(key);
    const dispatcher = create(cluster, agentOptions);
    cache.set(key, dispatcher);
    return dispatcher;
  };
  return kc;
}

/**
 * Cluster and user names are not enough: a rotated client certificate (files re-read per request)
 * must get a new pool, so the key includes a digest of the TLS material.
 */
function dispatcherKey(cluster: Cluster | null, user: string, o: AgentOptions): string {
  const digest = createHash('sha256');
  for (const part of [o.ca, o.cert, o.key, o.pfx, o.passphrase, o.servername, String(o.rejectUnauthorized)]) {
    for (const item of (Array.isArray(part) ? part : [part]) as unknown[]) {
      digest.update(item === undefined ? '\0' : typeof item === 'string' || Buffer.isBuffer(item) ? item : JSON.stringify(item));
    }
    digest.update('\u0001');
  }
  return JSON.stringify([cluster?.name ?? '', cluster?.server ?? '', cluster?.proxyUrl ?? '', user, digest.digest('hex')]);
}
