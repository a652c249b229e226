import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cgroupPids, removeCgroupRoot } from './cgroups.js';
import { deleteBridge } from './cni.js';

// What a real node leaves on the machine beyond its processes: container processes (children of
// containerd's shims, which outlive containerd), shims, mounts (root filesystems, network
// namespaces, shm), a cgroup tree and a bridge. The node records them in `real-node.json` when it
// starts, so that both its own stop and the reaper of a run killed too hard remove exactly these.

export interface RealNodeRecord {
  dir: string;
  socket: string;
  /** Short folder for what binds unix sockets (containerd; the kubelet's root-dir). */
  shortDir: string;
  cgroupName: string;
  bridge: string;
}

const RECORD = 'real-node.json';

export function writeRecord(record: RealNodeRecord): void {
  writeFileSync(join(record.dir, RECORD), `${JSON.stringify(record, null, 2)}\n`);
}

/** containerd-shim processes of one containerd (their command line names its socket). */
export function shimPids(socket: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.includes('containerd-shim') && argv.includes(socket)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Mount points at or under `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((m): m is string => m !== undefined && (m === dir || m.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
}

function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
}

const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Removes what the node left, once its kubelet and containerd have stopped: synchronous, so the
 * exit-time reaper can use it too. Bounded: gives up after a few seconds and says what stayed.
 */
export function cleanUpRealNode(record: RealNodeRecord): string[] {
  // Container processes first (every one is in the node's cgroup tree), then their shims.
  for (let i = 0; i < 30; i++) {
    const pids = [...cgroupPids(record.cgroupName), ...shimPids(record.socket)];
    if (pids.length === 0) break;
    killAll(pids);
    pause(100);
  }
  const dirs = [record.dir, record.shortDir].filter((d): d is string => typeof d === 'string' && d !== '');
  for (const mount of dirs.flatMap(mountsUnder)) {
    try {
      execFileSync('umount', ['-l', mount], { stdio: 'ignore' });
    } catch {
      // raced with another unmount
    }
  }
  let left: string[] = [];
  for (let i = 0; i < 20; i++) {
    left = removeCgroupRoot(record.cgroupName);
    if (left.length === 0) break;
    pause(100);
  }
  deleteBridge(record.bridge);
  if (record.shortDir) rmSync(record.shortDir, { recursive: true, force: true });
  return left.map((d) => `cgroup ${d} still in use`);
}

/** Cleans up after every real node recorded under `dir` (a run folder being reaped). */
export function reapRealNodes(dir: string): void {
  let entries: string[];
  try {
    entries = readdirSync(dir, { recursive: true }) as string[];
  } catch {
    return;
  }
  for (const rel of entries.filter((e) => e === RECORD || e.endsWith(`/${RECORD}`))) {
    const file = join(dir, rel);
    if (!existsSync(file)) continue;
    cleanUpRealNode(JSON.parse(readFileSync(file, 'utf8')) as RealNodeRecord);
  }
}
