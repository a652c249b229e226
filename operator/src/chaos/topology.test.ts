import { describe, expect, it } from 'vitest';
import type { HubProcess } from '../testbed/federation.js';
import type { ManagedProcess } from '../testbed/processes.js';
import { MAX_REPLICA_STARTS, superviseReplica } from './topology.js';

// The hub replica's supervisor with stand-in processes: a replica that exits is revived, a revival
// gives up after MAX_REPLICA_STARTS failed starts, restart() never runs a second process beside a
// revived one, and no process started while stop() runs outlives it.

interface FakeHub extends HubProcess {
  /** The process exits on its own (a leader that lost its Lease). */
  exit(): void;
}

let nextPid = 1000;
function fakeHub(): FakeHub {
  let running = true;
  let resolveExit!: (code: number | string | null) => void;
  const exited = new Promise<number | string | null>((r) => (resolveExit = r));
  const end = (code: number | string | null) => {
    if (!running) return;
    running = false;
    resolveExit(code);
  };
  const process: ManagedProcess = {
    name: 'hub',
    pid: nextPid++,
    logPath: '/dev/null',
    exited,
    running: () => running,
    async stop() {
      end('SIGTERM');
      await exited;
    },
  };
  return { process, grpcAddress: '127.0.0.1:1', metricsPort: 1, exit: () => end(1) };
}

/** A start() the test drives: each call waits until the test lets it finish (or fail). */
function controlledStarts() {
  const started: FakeHub[] = [];
  const pending: { finish(): void; fail(): void }[] = [];
  const start = () =>
    new Promise<HubProcess>((resolve, reject) => {
      pending.push({
        finish: () => {
          const hub = fakeHub();
          started.push(hub);
          resolve(hub);
        },
        fail: () => reject(new Error('port taken')),
      });
    });
  return { started, pending, start };
}

const tick = () => new Promise((r) => setTimeout(r, 5));
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !check(); i++) await tick();
  expect(check()).toBe(true);
}

async function replicaWith(starts: ReturnType<typeof controlledStarts>, log: string[] = []) {
  const ready = superviseReplica(0, 7000, starts.start, (l) => log.push(l), { backoffMs: () => 1 });
  await until(() => starts.pending.length === 1);
  starts.pending.shift()!.finish();
  return ready;
}

describe('superviseReplica', () => {
  it('revives a replica that exits on its own', async () => {
    const starts = controlledStarts();
    const replica = await replicaWith(starts);
    starts.started[0]!.exit();
    await until(() => starts.pending.length === 1);
    starts.pending.shift()!.finish();
    await until(() => replica.process === starts.started[1]);
    expect(replica.selfRestarts).toBe(1);
    await replica.stop();
    expect(starts.started.every((h) => !h.process.running())).toBe(true);
  });

  it('gives up after MAX_REPLICA_STARTS failed starts and says so', async () => {
    const starts = controlledStarts();
    const log: string[] = [];
    const replica = await replicaWith(starts, log);
    starts.started[0]!.exit();
    for (let i = 0; i < MAX_REPLICA_STARTS; i++) {
      await until(() => starts.pending.length === 1);
      starts.pending.shift()!.fail();
    }
    await until(() => log.some((l) => l.includes('giving up')));
    await tick();
    expect(starts.pending).toHaveLength(0);
    expect(log.filter((l) => l.includes('did not start (try'))).toHaveLength(MAX_REPLICA_STARTS);
    await replica.stop();
  });

  it('stops a process whose start was in flight when stop() began, before stop() returns', async () => {
    const starts = controlledStarts();
    const replica = await replicaWith(starts);
    starts.started[0]!.exit();
    await until(() => starts.pending.length === 1);
    let stopped = false;
    const stopping = replica.stop().then(() => (stopped = true));
    await tick();
    expect(stopped).toBe(false); // it waits for the revival in flight
    starts.pending.shift()!.finish();
    await stopping;
    expect(starts.started).toHaveLength(2);
    expect(starts.started.every((h) => !h.process.running())).toBe(true);
  });

  it('stops a process that restart() was starting when stop() began', async () => {
    const starts = controlledStarts();
    const replica = await replicaWith(starts);
    replica.hold();
    await starts.started[0]!.process.stop();
    const restarted = replica.restart();
    await until(() => starts.pending.length === 1);
    const stopping = replica.stop();
    starts.pending.shift()!.finish();
    await Promise.all([restarted, stopping]);
    expect(starts.started.every((h) => !h.process.running())).toBe(true);
  });

  it('restart() during a revival runs one process, not two', async () => {
    const starts = controlledStarts();
    const replica = await replicaWith(starts);
    starts.started[0]!.exit();
    await until(() => starts.pending.length === 1);
    const restarted = replica.restart();
    starts.pending.shift()!.finish();
    await restarted;
    await tick();
    expect(starts.pending).toHaveLength(0);
    expect(starts.started.filter((h) => h.process.running())).toEqual([replica.process]);
    await replica.stop();
  });

  it('a held replica is not revived; restart() brings it back', async () => {
    const starts = controlledStarts();
    const replica = await replicaWith(starts);
    replica.hold();
    starts.started[0]!.exit();
    await tick();
    expect(starts.pending).toHaveLength(0);
    const restarted = replica.restart();
    await until(() => starts.pending.length === 1);
    starts.pending.shift()!.finish();
    await restarted;
    expect(replica.process).toBe(starts.started[1]);
    expect(replica.selfRestarts).toBe(0);
    await replica.stop();
  });
});
