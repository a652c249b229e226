// The per-process HTTP endpoint (node:http): /metrics for Prometheus, /healthz for liveness (an
// answer at all means the event loop turns), /readyz for readiness. Loopback by default: exposing
// it is a deployment decision (--metrics-bind-address).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../runtime/logger.js';

export interface Readiness {
  ready: boolean;
  /** One line per check, shown in the response body (what `kubectl describe` prints on failure). */
  checks: Record<string, boolean>;
}

export interface MetricsServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port (reported by `port`). */
  port: number;
  metrics: () => Promise<string>;
  contentType: string;
  readiness: () => Readiness;
  logger?: Logger;
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    handle(options, req, res).catch((err: unknown) => {
      options.logger?.error({ err, path: req.url }, 'metrics endpoint failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    });
  });
  // Scrapes are small and quick; a stuck client must not hold a socket forever.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  options.logger?.info({ host: options.host ?? '127.0.0.1', port }, 'metrics endpoint listening');
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Prometheus keeps its connection alive between scrapes: do not wait for it.
        server.closeAllConnections();
      }),
  };
}

async function handle(options: MetricsServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
    return;
  }
  switch (path) {
    case '/metrics': {
      const body = await options.metrics();
      res.writeHead(200, { 'content-type': options.contentType }).end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    case '/healthz':
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    case '/readyz': {
      const { ready, checks } = options.readiness();
      const lines = Object.entries(checks).map(([name, ok]) => `[${ok ? '+' : '-'}] ${name}\n`);
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(`${lines.join('')}${ready ? 'ok' : 'not ready'}\n`);
      return;
    }
    default:
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  }
}
