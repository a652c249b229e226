import { existsSync, readFileSync, rmSync } from 'node:fs';
import { procStatFields, reapPidDir } from '../testbed/processes.js';
import { reapRealNodes } from '../testbed/real-node/leftovers.js';
import { readStatus, sandboxDir, supervisorPidPath, writeStatus } from './state.js';

/**
 * Stops the sandbox: asks its supervisor to shut down cleanly (SIGTERM), then kills by pid anything
 * the supervisor could not stop (it may have been killed itself). The supervisor is signalled only
 * when its pid file proves the pid is still the process that wrote it.
 */
export async function sandboxDown(log: (line: string) => void = console.log): Promise<{ killed: number[] }> {
  const supervisor = readSupervisor();
  if (supervisor.state === 'running') {
    const { identity } = supervisor;
    log(`stopping sandbox supervisor (pid ${identity.pid})`);
    signal(identity, 'SIGTERM');
    for (let i = 0; i < 100 && isSameProcess(identity); i++) await new Promise((r) => setTimeout(r, 200));
    signal(identity, 'SIGKILL');
  } else if (supervisor.state === 'unverified') {
    // Nothing else is touched either: its children and its pid file stay, so `sandbox up` keeps
    // refusing to start over a sandbox that may still run, until the pid is gone.
    log(`not stopping pid ${supervisor.pid}: ${supervisor.why}. If it is the sandbox's supervisor, stop it with 'kill ${supervisor.pid}', then run 'make sandbox-down' again; if it is not (the pid was reused), delete ${supervisorPidPath}`);
    return { killed: [] };
  } else if (supervisor.state === 'stale') {
    log(`the sandbox supervisor (pid ${supervisor.pid}) is gone: ${supervisor.why}`);
  }
  const killed = reapPidDir(sandboxDir);
  if (killed.length) log(`killed ${killed.length} leftover process(es): ${killed.join(', ')}`);
  // A real node's containers outlive its kubelet and containerd; its record says what to remove.
  reapRealNodes(sandboxDir);
  rmSync(supervisorPidPath, { force: true });
  const status = readStatus();
  if (status) writeStatus({ ...status, state: 'stopped' });
  log('sandbox is down');
  return { killed };
}

// The supervisor's pid file records who the process is, not just its pid, so that `sandbox down`
// never signals an unrelated process that reused the pid (after a reboot, or a long time later):
//   <pid> <start time in clock ticks after boot> <boot id> <argv[0]>
// The first field is the pid, as in every other pid file of the test bed.

export interface ProcessIdentity {
  pid: number;
  /** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks after boot. */
  startTime: string;
  /** /proc/sys/kernel/random/boot_id: a different boot means a different process, whatever its pid. */
  bootId: string;
  argv0: string;
}

/** Who the process with this pid is now; undefined when it is gone, a zombie, or /proc cannot say. */
export function processIdentity(pid: number): ProcessIdentity | undefined {
  try {
    const fields = procStatFields(pid);
    const [state, startTime] = [fields?.[0], fields?.[22 - 3]];
    if (state === 'Z' || !startTime) return undefined;
    const argv0 = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
    return { pid, startTime, bootId: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(), argv0 };
  } catch {
    return undefined;
  }
}

/** The line `sandbox up` writes to supervisor.pid for this process (the bare pid where /proc cannot say more). */
export function supervisorPidLine(pid = process.pid): string {
  const id = processIdentity(pid);
  return id ? `${id.pid} ${id.startTime} ${id.bootId} ${id.argv0}\n` : `${pid}\n`;
}

export type SupervisorRecord =
  /** No pid file, or one naming no process. */
  | { state: 'none' }
  /** The process that wrote the pid file is gone (its pid may belong to another process now). */
  | { state: 'stale'; pid: number; why: string }
  /** The process that wrote the pid file runs. */
  | { state: 'running'; identity: ProcessIdentity }
  /** A process with the pid runs, but the pid file (an older format) cannot show it is the supervisor. */
  | { state: 'unverified'; pid: number; why: string };

export function readSupervisor(path = supervisorPidPath): SupervisorRecord {
  if (!existsSync(path)) return { state: 'none' };
  const [pidText = '', startTime, bootId, ...argv0] = readFileSync(path, 'utf8').replace(/\n$/, '').split(' ');
  const pid = Number(pidText);
  if (!/^\d+$/.test(pidText) || pid <= 1) return { state: 'none' };
  const now = processIdentity(pid);
  if (startTime === undefined || bootId === undefined || argv0.length === 0) {
    return now
      ? { state: 'unverified', pid, why: `${path} holds only a pid, which a running process has, and cannot show that process is the sandbox's (a pid file from an older fedgpu, or the pid reused after a reboot)` }
      : { state: 'none' };
  }
  const recorded: ProcessIdentity = { pid, startTime, bootId, argv0: argv0.join(' ') };
  if (!now) return { state: 'stale', pid, why: 'no process has its pid' };
  if (now.bootId !== recorded.bootId) return { state: 'stale', pid, why: 'the machine has rebooted since; its pid now belongs to another process' };
  if (now.startTime !== recorded.startTime || now.argv0 !== recorded.argv0) return { state: 'stale', pid, why: `its pid now belongs to another process (${now.argv0})` };
  return { state: 'running', identity: recorded };
}

/** Whether the process named by this identity still runs (the pid has not been reused since). */
export function isSameProcess(id: ProcessIdentity): boolean {
  const now = processIdentity(id.pid);
  return now !== undefined && now.startTime === id.startTime && now.bootId === id.bootId && now.argv0 === id.argv0;
}

/** Signals the process only while it is still the one identified (it may have exited, and its pid been reused). */
function signal(id: ProcessIdentity, name: NodeJS.Signals): void {
  if (!isSameProcess(id)) return;
  try {
    process.kill(id.pid, name);
  } catch {
    // exited meanwhile
  }
}
