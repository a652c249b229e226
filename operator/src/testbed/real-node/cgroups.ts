import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// A cgroup parent per real node (the kubelet's cgroupRoot), so several kubelets on one machine
// never share `kubepods`. The kubelet requires its cgroupRoot to exist in every hierarchy; on cgroup
// v1 each controller is its own mount, and a new cpuset is unusable until it inherits cpus and mems.

/** Mount points of the cgroup hierarchies (v1 controllers, or the one v2 tree). */
export function cgroupMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => {
      const sep = f.indexOf('-');
      return sep > 0 && (f[sep + 1] === 'cgroup' || f[sep + 1] === 'cgroup2');
    })
    .map((f) => f[4]!);
}

export function cgroupVersion(): 1 | 2 {
  return existsSync('/sys/fs/cgroup/cgroup.controllers') ? 2 : 1;
}

/** Creates `/<name>` in every hierarchy; returns the kubelet's cgroupRoot. */
export function createCgroupRoot(name: string): string {
  for (const mount of cgroupMounts()) {
    const dir = join(mount, name);
    mkdirSync(dir, { recursive: true });
    if (existsSync(join(mount, 'cpuset.cpus')) && existsSync(join(dir, 'cpuset.cpus'))) {
      for (const file of ['cpuset.cpus', 'cpuset.mems']) {
        if (readFileSync(join(dir, file), 'utf8').trim() === '') {
          writeFileSync(join(dir, file), readFileSync(join(mount, file), 'utf8').trim());
        }
      }
    }
  }
  return `/${name}`;
}

/** Pids of every process in the cgroup tree `/<name>` (any hierarchy sees all of them). */
export function cgroupPids(name: string): number[] {
  const pids = new Set<number>();
  const walk = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name === 'cgroup.procs') {
        for (const p of readFileSync(join(dir, e.name), 'utf8').split('\n')) if (p) pids.add(Number(p));
      }
    }
  };
  for (const mount of cgroupMounts()) walk(join(mount, name));
  return [...pids];
}

/** Removes the tree `/<name>` from every hierarchy, deepest first; cgroups still in use stay. */
export function removeCgroupRoot(name: string): string[] {
  const left: string[] = [];
  const remove = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) remove(join(dir, e.name));
    try {
      rmdirSync(dir);
    } catch {
      left.push(dir);
    }
  };
  for (const mount of cgroupMounts()) remove(join(mount, name));
  return left;
}
