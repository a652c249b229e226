import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { GiveUp } from './wait.js';

/** Lowest port freePort hands out: above the well-known and most fixed service ports. */
const LOWEST = 10_000;
/** Random ports tried below the ephemeral range before the kernel is asked for one. */
const TRIES = 64;

/**
 * Where freePort looks: from LOWEST to just below the kernel's ephemeral range
 * (/proc/sys/net/ipv4/ip_local_port_range), from which every outgoing connection takes its source
 * port. A port from there cannot be taken by a connection between freePort and the process that
 * binds it, which is how the test bed lost such races before; only another listener can. Undefined
 * where the range leaves no room (the kernel then picks, as before).
 */
export function portRangeBelowEphemeral(rangeFile = '/proc/sys/net/ipv4/ip_local_port_range'): [number, number] | undefined {
  try {
    const low = Number(readFileSync(rangeFile, 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low - 1 - LOWEST >= 1_000 ? [LOWEST, low - 1] : undefined;
  } catch {
    return undefined;
  }
}

const range = portRangeBelowEphemeral();

/** Binds `port` (0: any) on 127.0.0.1 and lets it go; the port bound, or undefined if taken. */
function probe(port: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' || err.code === 'EACCES' ? resolve(undefined) : reject(err)));
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * A TCP port on 127.0.0.1 that is free when returned (not reserved): a random one below the
 * ephemeral range (portRangeBelowEphemeral), else the kernel's choice.
 */
export async function freePort(random: () => number = Math.random, within: [number, number] | undefined = range): Promise<number> {
  if (within) {
    const [low, high] = within;
    for (let i = 0; i < TRIES; i++) {
      const port = await probe(low + Math.floor(random() * (high - low + 1)));
      if (port !== undefined) return port;
    }
  }
  const port = await probe(0);
  if (port === undefined) throw new Error('no free port on 127.0.0.1');
  return port;
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
