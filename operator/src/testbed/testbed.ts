import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startCluster, type Cluster, type ClusterOptions } from './cluster.js';
import { startEtcd, type Etcd } from './etcd.js';

export interface TestbedClusterSpec extends Omit<ClusterOptions, 'dir' | 'etcd'> {
  name: string;
}

export interface Testbed {
  dir: string;
  etcd: Etcd;
  clusters: Map<string, Cluster>;
  cluster(name: string): Cluster;
  stop(): Promise<void>;
}

/**
 * Starts several clusters side by side on loopback, sharing one etcd. Clusters start one after
 * another: on two cores, parallel apiserver start-ups only slow each other down.
 */
export async function startTestbed(dir: string, specs: TestbedClusterSpec[]): Promise<Testbed> {
  mkdirSync(dir, { recursive: true });
  const etcd = await startEtcd(join(dir, 'etcd'));
  const clusters = new Map<string, Cluster>();
  const stop = async () => {
    await Promise.all([...clusters.values()].map((c) => c.stop()));
    await etcd.stop();
  };
  try {
    for (const spec of specs) {
      const { name, ...rest } = spec;
      clusters.set(name, await startCluster(name, { ...rest, dir: join(dir, name), etcd }));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    dir,
    etcd,
    clusters,
    cluster(name) {
      const c = clusters.get(name);
      if (!c) throw new Error(`no cluster named ${name}`);
      return c;
    },
    stop,
  };
}
