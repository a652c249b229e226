import { afterEach, describe, expect, it } from 'vitest';
import { type MetricsServer, type Readiness, startMetricsServer } from './http-server.js';

let server: MetricsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(readiness: () => Readiness, metrics = async () => 'fedgpu_up 1\n') {
  server = await startMetricsServer({ port: 0, metrics, contentType: 'text/plain; version=0.0.4; charset=utf-8', readiness });
  const base = `http://127.0.0.1:${server.port}`;
  return (path: string, init?: RequestInit) => fetch(base + path, init);
}

describe('metrics HTTP endpoint', () => {
  it('serves /metrics with the exposition content type', async () => {
    const get = await start(() => ({ ready: true, checks: {} }));
    const res = await get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(await res.text()).toBe('fedgpu_up 1\n');
  });

  it('answers /healthz whenever the process runs, and /readyz by its checks', async () => {
    let synced = false;
    const get = await start(() => ({ ready: synced, checks: { 'informers synced': synced, 'marketplace listening': true } }));
    expect((await get('/healthz')).status).toBe(200);
    let res = await get('/readyz');
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('[-] informers synced\n[+] marketplace listening\nnot ready\n');
    synced = true;
    res = await get('/readyz');
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/ok\n$/);
  });

  it('refuses other paths and methods, and turns a failing scrape into a 500', async () => {
    const get = await start(() => ({ ready: true, checks: {} }), async () => {
      throw new Error('boom');
    });
    expect((await get('/nope')).status).toBe(404);
    expect((await get('/metrics', { method: 'POST' })).status).toBe(405);
    expect((await get('/metrics')).status).toBe(500);
    expect((await get('/healthz')).status).toBe(200);
  });

  it('listens on loopback by default and closes with keep-alive clients connected', async () => {
    const get = await start(() => ({ ready: true, checks: {} }));
    await (await get('/metrics', { headers: { connection: 'keep-alive' } })).text();
    const closed = server!.close();
    server = undefined;
    await expect(closed).resolves.toBeUndefined();
  });
});
