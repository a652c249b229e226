import { createServer, connect, type Server, type Socket } from 'node:net';

// A loopback TCP proxy a test can cut and restore, to take a dependency (the chain's RPC endpoint)
// away from a process without stopping the dependency itself: stop() closes the listener and every
// open connection (clients see ECONNREFUSED/ECONNRESET), start() listens on the same port again.

export interface TcpProxy {
  port: number;
  url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }, scheme = 'http'): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((client) => {
        const upstream = connect(target.port, target.host);
        for (const sock of [client, upstream]) {
          sockets.add(sock);
          sock.on('close', () => sockets.delete(sock));
          sock.on('error', () => (client.destroy(), upstream.destroy()));
        }
        client.pipe(upstream).pipe(client);
      });
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        const address = s.address();
        if (address && typeof address === 'object') port = address.port;
        server = s;
        resolve();
      });
    });
  await listen();
  const proxy: TcpProxy = {
    port,
    url: `${scheme}://127.0.0.1:${port}`,
    async start() {
      if (!server) await listen();
    },
    async stop() {
      const s = server;
      server = undefined;
      if (!s) return;
      const closed = new Promise<void>((resolve) => s.close(() => resolve()));
      for (const sock of sockets) sock.destroy();
      sockets.clear();
      await closed;
    },
  };
  return proxy;
}
