import { readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { reuseConnections } from '../../operator/src/runtime/connections.js';

// client-node 2.0.1 opens a new TLS connection for every request; reuseConnections keeps one
// kept-alive pool per cluster and user. Counted at the TCP level: every request goes through a
// loopback proxy in front of the real kube-apiserver that counts the connections it accepts.

const kubeconfig = inject('kubeconfig');
const REQUESTS = 30;

let proxy: { server: Server; port: number; accepted: number; sockets: Set<Socket> };

beforeAll(async () => {
  const target = new URL(kubeConfigFrom(kubeconfig).getCurrentCluster()!.server);
  const sockets = new Set<Socket>();
  const state = { accepted: 0 };
  const server = createServer((client) => {
    state.accepted++;
    const upstream = connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => (client.destroy(), upstream.destroy()));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  proxy = {
    server,
    port,
    sockets,
    get accepted() {
      return state.accepted;
    },
  } as typeof proxy;
});

afterAll(async () => {
  for (const s of proxy.sockets) s.destroy();
  await new Promise<void>((resolve) => proxy.server.close(() => resolve()));
});

/** The shared kubeconfig, with its server swapped for the counting proxy. */
function kubeConfigFrom(path: string, port?: number): KubeConfig {
  const kc = new KubeConfig();
  const text = readFileSync(path, 'utf8');
  kc.loadFromString(port === undefined ? text : text.replace(/server: https:\/\/127\.0\.0\.1:\d+/, `server: https://127.0.0.1:${port}`));
  return kc;
}

async function connectionsFor(kc: KubeConfig): Promise<number> {
  const core = kc.makeApiClient(CoreV1Api);
  const before = proxy.accepted;
  for (let i = 0; i < REQUESTS; i++) await core.listNamespace({ limit: 1 });
  return proxy.accepted - before;
}

describe('connections to the apiserver', () => {
  it('client-node alone opens a connection per request (the reason reuseConnections exists)', async () => {
    expect(await connectionsFor(kubeConfigFrom(kubeconfig, proxy.port))).toBeGreaterThanOrEqual(REQUESTS);
  });

  it('with reuseConnections, sequential requests share a kept-alive connection', async () => {
    // One, sometimes two (the first is not always kept for reuse), instead of one per request.
    expect(await connectionsFor(reuseConnections(kubeConfigFrom(kubeconfig, proxy.port)))).toBeLessThanOrEqual(2);
  });

  it('concurrent requests share a bounded pool, reused by the next burst', async () => {
    const kc = reuseConnections(kubeConfigFrom(kubeconfig, proxy.port));
    const core = kc.makeApiClient(CoreV1Api);
    const before = proxy.accepted;
    await Promise.all(Array.from({ length: 8 }, () => core.listNamespace({ limit: 1 })));
    const afterFirst = proxy.accepted - before;
    expect(afterFirst).toBeLessThanOrEqual(8);
    await Promise.all(Array.from({ length: 8 }, () => core.listNamespace({ limit: 1 })));
    // Without reuse: 16. With it the second burst rides at least some of the first one's
    // connections (the pool may close and reopen a few in between).
    expect(proxy.accepted - before).toBeLessThan(afterFirst * 2);
  });

  it('each cluster and user of one KubeConfig gets its own pool, kept across context switches', async () => {
    const base = kubeConfigFrom(kubeconfig, proxy.port);
    const cluster = base.getCurrentCluster()!;
    const user = base.getCurrentUser()!;
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [cluster],
      users: [user, { ...user, name: 'second' }],
      contexts: [
        { name: 'first', cluster: cluster.name, user: user.name },
        { name: 'second', cluster: cluster.name, user: 'second' },
      ],
      currentContext: 'first',
    });
    reuseConnections(kc);
    const core = kc.makeApiClient(CoreV1Api);
    const before = proxy.accepted;
    await core.listNamespace({ limit: 1 });
    kc.setCurrentContext('second');
    await core.listNamespace({ limit: 1 });
    kc.setCurrentContext('first');
    await core.listNamespace({ limit: 1 });
    expect(proxy.accepted - before).toBe(2);
  });
});
