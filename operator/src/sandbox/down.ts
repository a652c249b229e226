import { rmSync } from 'node:fs';
import { isAlive, reapPidDir } from '../testbed/processes.js';
import { reapRealNodes } from '../testbed/real-node/leftovers.js';
import { readStatus, readSupervisorPid, sandboxDir, supervisorPidPath, writeStatus } from './state.js';

/**
 * Stops the sandbox: asks its supervisor to shut down cleanly (SIGTERM), then kills by pid anything
 * the supervisor could not stop (it may have been killed itself).
 */
export async function sandboxDown(log: (line: string) => void = console.log): Promise<{ killed: number[] }> {
  const pid = readSupervisorPid();
  if (pid && isAlive(pid)) {
    log(`stopping sandbox supervisor (pid ${pid})`);
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 200));
    if (isAlive(pid)) process.kill(pid, 'SIGKILL');
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
