import { createServer } from 'node:net';
import { GiveUp } from './wait.js';

/** Asks the kernel for a free TCP port on 127.0.0.1. The port is free when returned, not reserved. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** A started process could not bind a port freePort had found free: something took it in between. */
export class PortTaken extends GiveUp {}

/** How often a start on fresh ports is tried before its PortTaken is thrown. */
const PORT_TRIES = 4;

/**
 * Runs `start`, which takes its ports from freePort, again with fresh ports when it throws
 * PortTaken: a port is free when freePort returns it, not reserved, and outgoing connections take
 * their source ports from the same range.
 */
export async function onFreshPorts<T>(start: () => Promise<T>, tries = PORT_TRIES): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (!(err instanceof PortTaken) || attempt >= tries) throw err;
    }
  }
}
