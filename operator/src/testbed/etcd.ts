import { join } from 'node:path';
import { freePort, onFreshPorts } from './free-port.js';
import { exitedEarly, startProcess, type ManagedProcess } from './processes.js';
import { toolPath } from './tools.js';
import { waitFor } from './wait.js';

export interface Etcd {
  url: string;
  process: ManagedProcess;
  stop(): Promise<void>;
}

/**
 * One etcd on loopback. Several test-bed apiservers share it, each under its own --etcd-prefix.
 * fsync is off: this is throw-away test data and the disk here is slow.
 */
export function startEtcd(dir: string): Promise<Etcd> {
  return onFreshPorts(() => startEtcdOnce(dir));
}

async function startEtcdOnce(dir: string): Promise<Etcd> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const proc = startProcess({
    name: 'etcd',
    command: toolPath('etcd'),
    dir,
    args: [
      '--name=testbed',
      `--data-dir=${join(dir, 'etcd-data')}`,
      `--listen-client-urls=${url}`,
      `--advertise-client-urls=${url}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=testbed=${peer}`,
      '--unsafe-no-fsync',
      '--quota-backend-bytes=4294967296',
      '--log-level=warn',
    ],
  });
  await waitFor(
    'etcd health',
    async () => {
      if (!proc.running()) throw exitedEarly(proc);
      const res = await fetch(`${url}/health`);
      return res.ok ? true : undefined;
    },
    { timeoutMs: 30_000 },
  );
  return { url, process: proc, stop: () => proc.stop() };
}
