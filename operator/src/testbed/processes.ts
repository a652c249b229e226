import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PortTaken } from './free-port.js';
import { reapRealNodes } from './real-node/leftovers.js';
import { GiveUp } from './wait.js';

// Every process the test bed starts is recorded here and in a pid file, so it is stopped by its own
// process id: by stop(), by the exit handlers below when a test fails or is interrupted, and by
// `reapPidDir` when an earlier run was killed too hard to clean up after itself.

export interface ManagedProcess {
  name: string;
  pid: number;
  logPath: string;
  /** Where this run's output starts in logPath (the log is appended to across restarts). */
  logStart?: number;
  /** Resolves with the exit code (or signal) once the process has exited. */
  exited: Promise<number | string | null>;
  /** False once the process has exited. */
  running(): boolean;
  stop(timeoutMs?: number): Promise<void>;
}

const live = new Set<{ child: ChildProcess; pidFile: string }>();
let handlersInstalled = false;

function killAllSync(): void {
  for (const entry of live) {
    try {
      entry.child.kill('SIGKILL');
    } catch {
      // already gone
    }
    rmSync(entry.pidFile, { force: true });
  }
  live.clear();
}

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.once('exit', killAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      // A program with its own handler (the sandbox) shuts down gracefully; it exits, and the
      // 'exit' handler above still kills whatever it did not stop.
      if (process.listenerCount(signal) > 0) return;
      killAllSync();
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    });
  }
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  /** Directory for `<name>.log` and `<name>.pid`. */
  dir: string;
  env?: NodeJS.ProcessEnv;
}

export function startProcess(opts: StartOptions): ManagedProcess {
  installExitHandlers();
  mkdirSync(opts.dir, { recursive: true });
  const logPath = join(opts.dir, `${opts.name}.log`);
  const pidFile = join(opts.dir, `${opts.name}.pid`);
  const logStart = existsSync(logPath) ? statSync(logPath).size : 0;
  const log = openSync(logPath, 'a');
  const child = spawn(opts.command, opts.args, {
    stdio: ['ignore', log, log],
    env: { ...process.env, ...opts.env },
  });
  closeSync(log);
  if (child.pid === undefined) throw new Error(`could not start ${opts.command}`);
  const pid = child.pid;
  writeFileSync(pidFile, pidFileLine(pid, opts.command));
  const entry = { child, pidFile };
  live.add(entry);
  const exited = new Promise<number | string | null>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(entry);
      rmSync(pidFile, { force: true });
      resolve(code ?? signal);
    });
  });
  return {
    name: opts.name,
    pid,
    logPath,
    logStart,
    exited,
    running: () => child.exitCode === null && child.signalCode === null,
    async stop(timeoutMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * The error to throw from a wait when the awaited process has exited: it carries the last lines of
 * the process's log (a CI log shows the message, not the file), and is a PortTaken when the process
 * lost the race for a port that freePort had found free, so the caller can try fresh ports.
 */
export function exitedEarly(proc: ManagedProcess, label = proc.name): GiveUp {
  let output = '';
  try {
    output = readFileSync(proc.logPath).subarray(proc.logStart ?? 0).toString('utf8');
  } catch {
    // no log: the message says so below
  }
  const tail = output.trimEnd().split('\n').slice(-6).join('\n') || '(no output)';
  const message = `${label} exited; see ${proc.logPath}; its last lines:\n${tail}`;
  return /address already in use/i.test(output) ? new PortTaken(message) : new GiveUp(message);
}

/** Kills processes recorded in pid files under `dir` (recursively) that still run the recorded binary. */
export function reapPidDir(dir: string): number[] {
  const killed: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir, { recursive: true }) as string[];
  } catch {
    return killed;
  }
  for (const rel of entries.filter((e) => e.endsWith('.pid'))) {
    const file = join(dir, rel);
    const [pidText, command] = readFileSync(file, 'utf8').trim().split(' ');
    const pid = Number(pidText);
    if (Number.isInteger(pid) && pid > 1 && command && runsBinary(pid, command)) {
      try {
        process.kill(pid, 'SIGKILL');
        killed.push(pid);
      } catch {
        // exited meanwhile
      }
    }
    rmSync(file, { force: true });
  }
  return killed;
}

function runsBinary(pid: number, command: string): boolean {
  try {
    const argv0 = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0];
    return argv0 === command;
  } catch {
    return false;
  }
}

/**
 * A pid file's line: the pid and the binary, so a later reaper (reapPidDir) never kills an
 * unrelated process that reused the pid.
 */
export function pidFileLine(pid: number, binary: string): string {
  return `${pid} ${binary}\n`;
}

/**
 * The fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses):
 * [0] is field 3 (state), [n] field n + 3. undefined when the process is gone.
 */
export function procStatFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Whether a process with this pid is alive (and not a zombie). */
export function isAlive(pid: number): boolean {
  const fields = procStatFields(pid);
  return fields !== undefined && fields[0] !== 'Z';
}

/**
 * Reaps the test-bed folders `<root>/<pid>` whose owning test process is gone: what a run killed
 * too hard to clean up after itself left behind. Folders of runs still alive are left alone.
 */
export function reapStaleRuns(root: string): number[] {
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return [];
  }
  const killed: number[] = [];
  for (const entry of entries) {
    const owner = Number(entry);
    if (!Number.isInteger(owner) || owner === process.pid || isAlive(owner)) continue;
    killed.push(...reapPidDir(join(root, entry)));
    // Real nodes leave containers, mounts, cgroups and a bridge behind their processes.
    reapRealNodes(join(root, entry));
    rmSync(join(root, entry), { recursive: true, force: true });
  }
  return killed;
}
