import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

// The supervisor's pid file: `sandbox down` signals the pid only while it is still the process that
// wrote the file; a stale record is harmless and an old-format one (a bare pid) is never killed.

const dir = mkdtempSync(join(tmpdir(), 'fedgpu-down-'));
process.env.FEDGPU_SANDBOX_DIR = dir; // read when state.ts loads, below
const { processIdentity, readSupervisor, sandboxDown, supervisorPidLine } = await import('./down.js');
const pidFile = join(dir, 'supervisor.pid');
/** Never a live pid: pids stay below pid_max. */
const freePid = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));

const children: ChildProcess[] = [];
/** A stand-in supervisor, bounded in time and stopped by its pid after each test. */
function sleeper(): ChildProcess & { pid: number } {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  children.push(child);
  return child as ChildProcess & { pid: number };
}
const exited = (child: ChildProcess) => new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));

afterEach(async () => {
  for (const child of children.splice(0)) {
    child.kill('SIGKILL');
    await exited(child);
  }
  rmSync(pidFile, { force: true });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readSupervisor', () => {
  it('knows the process that wrote the pid file', () => {
    writeFileSync(pidFile, supervisorPidLine());
    expect(readSupervisor(pidFile)).toEqual({ state: 'running', identity: processIdentity(process.pid) });
  });

  it('calls a reused pid stale: another start time, another boot, another binary', () => {
    const [pid, startTime, bootId, argv0] = supervisorPidLine().trimEnd().split(' ');
    for (const line of [
      `${pid} ${Number(startTime) + 1} ${bootId} ${argv0}`,
      `${pid} ${startTime} 00000000-0000-0000-0000-000000000000 ${argv0}`,
      `${pid} ${startTime} ${bootId} /usr/bin/something else`,
    ]) {
      writeFileSync(pidFile, `${line}\n`);
      expect(readSupervisor(pidFile)).toMatchObject({ state: 'stale', pid: Number(pid) });
    }
    writeFileSync(pidFile, `${freePid} ${startTime} ${bootId} ${argv0}\n`);
    expect(readSupervisor(pidFile)).toMatchObject({ state: 'stale', pid: freePid, why: 'no process has its pid' });
  });

  it('cannot verify an old-format pid file naming a live process', () => {
    writeFileSync(pidFile, `${process.pid}\n`);
    expect(readSupervisor(pidFile)).toMatchObject({ state: 'unverified', pid: process.pid });
    writeFileSync(pidFile, `${freePid}\n`);
    expect(readSupervisor(pidFile)).toEqual({ state: 'none' });
  });

  it('reads no pid from a missing or garbled file', () => {
    expect(readSupervisor(join(dir, 'missing.pid'))).toEqual({ state: 'none' });
    writeFileSync(pidFile, 'not a pid\n');
    expect(readSupervisor(pidFile)).toEqual({ state: 'none' });
  });
});

describe('sandboxDown', () => {
  it('stops a verified supervisor by its pid', async () => {
    const supervisor = sleeper();
    writeFileSync(pidFile, supervisorPidLine(supervisor.pid));
    const lines: string[] = [];
    await sandboxDown((l) => lines.push(l));
    await exited(supervisor);
    expect(supervisor.signalCode).toBe('SIGTERM');
    expect(lines[0]).toBe(`stopping sandbox supervisor (pid ${supervisor.pid})`);
    expect(existsSync(pidFile)).toBe(false);
  });

  it('refuses to kill a pid an old-format file names, and says so', async () => {
    const other = sleeper();
    writeFileSync(pidFile, `${other.pid}\n`);
    const lines: string[] = [];
    await sandboxDown((l) => lines.push(l));
    expect(processIdentity(other.pid)).toBeDefined();
    expect(other.exitCode === null && other.signalCode === null).toBe(true);
    expect(lines[0]).toMatch(new RegExp(`^not stopping pid ${other.pid}: .*older fedgpu`));
    // The pid file stays, so `sandbox up` still refuses to start over what may be a running sandbox.
    expect(existsSync(pidFile)).toBe(true);
    // Once that pid is gone, down clears it.
    other.kill('SIGKILL');
    await exited(other);
    await sandboxDown(() => undefined);
    expect(existsSync(pidFile)).toBe(false);
  });

  it('leaves alone the process that now has a stale record\'s pid', async () => {
    const other = sleeper();
    const [, startTime, bootId, argv0] = supervisorPidLine(other.pid).trimEnd().split(' ');
    writeFileSync(pidFile, `${other.pid} ${Number(startTime) - 1} ${bootId} ${argv0}\n`);
    const lines: string[] = [];
    await sandboxDown((l) => lines.push(l));
    expect(other.exitCode === null && other.signalCode === null).toBe(true);
    expect(lines[0]).toMatch(/is gone: its pid now belongs to another process/);
  });
});
