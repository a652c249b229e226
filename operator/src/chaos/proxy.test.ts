import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FaultProxy } from './proxy.js';

// The fault proxy on loopback sockets: bytes pass, are held by a blackhole and flow in order on
// heal, arrive late under a delay, and connections are refused while it refuses.

let echo: Server;
let proxy: FaultProxy;
const clients: Socket[] = [];

async function startEcho(): Promise<number> {
  echo = createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  return (echo.address() as { port: number }).port;
}

async function client(): Promise<{ socket: Socket; received: () => string }> {
  const socket = connect(proxy.port, '127.0.0.1');
  clients.push(socket);
  let data = '';
  socket.on('data', (c) => (data += c.toString()));
  socket.on('error', () => undefined);
  await new Promise<void>((r, j) => (socket.once('connect', r), socket.once('error', j)));
  return { socket, received: () => data };
}

const until = async (check: () => boolean, ms = 5_000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await proxy?.stop();
  await new Promise((r) => echo.close(r));
});

describe('FaultProxy', () => {
  it('passes bytes both ways', async () => {
    proxy = await FaultProxy.start({ host: '127.0.0.1', port: await startEcho() });
    const c = await client();
    c.socket.write('ping');
    await until(() => c.received() === 'ping');
  });

  it('holds bytes in a blackhole and delivers them in order on heal', async () => {
    proxy = await FaultProxy.start({ host: '127.0.0.1', port: await startEcho() });
    const c = await client();
    proxy.blackhole('from-target');
    c.socket.write('a');
    c.socket.write('b');
    await new Promise((r) => setTimeout(r, 200));
    expect(c.received()).toBe('');
    await proxy.heal();
    await until(() => c.received() === 'ab');
  });

  it('delays bytes by the given time', async () => {
    proxy = await FaultProxy.start({ host: '127.0.0.1', port: await startEcho() });
    const c = await client();
    proxy.delay(300, 'to-target');
    const sent = Date.now();
    c.socket.write('late');
    await until(() => c.received() === 'late');
    expect(Date.now() - sent).toBeGreaterThanOrEqual(290);
  });

  it('refuses connections while refusing, on the same port after heal', async () => {
    proxy = await FaultProxy.start({ host: '127.0.0.1', port: await startEcho() });
    const port = proxy.port;
    await proxy.refuse();
    await expect(client()).rejects.toThrow(/ECONNREFUSED/);
    await proxy.heal();
    expect(proxy.port).toBe(port);
    const c = await client();
    c.socket.write('back');
    await until(() => c.received() === 'back');
  });
});
