import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, onFreshPorts, portRangeBelowEphemeral, PortTaken } from './free-port.js';
import { exitedEarly, startProcess } from './processes.js';
import { GiveUp } from './wait.js';

const dir = mkdtempSync(join(tmpdir(), 'fedgpu-free-port-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function listenOn(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

/** A real process that binds `port` the way our tools do, and exits when it cannot. */
function listener(name: string, port: number) {
  return startProcess({
    name,
    command: process.execPath,
    dir,
    args: ['-e', `require('node:net').createServer().listen(${port}, '127.0.0.1', () => console.log('listening'))`],
  });
}

describe('freePort', () => {
  it('looks below the ephemeral range, where no outgoing connection takes a source port', () => {
    const file = join(dir, 'range');
    writeFileSync(file, '32768\t60999\n');
    expect(portRangeBelowEphemeral(file)).toEqual([10_000, 32_767]);
    writeFileSync(file, '10500 60999');
    expect(portRangeBelowEphemeral(file)).toBeUndefined(); // too little room: the kernel picks
    expect(portRangeBelowEphemeral(join(dir, 'absent'))).toBeUndefined();
  });

  it('hands out a port in that range, which a process can then bind', async () => {
    const range = portRangeBelowEphemeral();
    if (!range) return; // a kernel configured without room below its ephemeral range
    const port = await freePort();
    expect(port).toBeGreaterThanOrEqual(range[0]);
    expect(port).toBeLessThanOrEqual(range[1]);
    (await listenOn(port)).close();
  });

  it('skips a port someone listens on and tries another', async () => {
    const taken = await freePort();
    const squatter = await listenOn(taken);
    try {
      // The first pick is the taken port (the middle of a one-port-wide bucket), then anywhere.
      const range: [number, number] = [10_000, 32_767];
      const first = (taken - range[0] + 0.5) / (range[1] - range[0] + 1);
      let calls = 0;
      const port = await freePort(() => (calls++ === 0 ? first : Math.random()), range);
      expect(calls).toBeGreaterThanOrEqual(2);
      expect(port).not.toBe(taken);
      (await listenOn(port)).close();
    } finally {
      squatter.close();
    }
  });

  it('asks the kernel when every try is taken, or there is no range', async () => {
    const taken = await freePort();
    const squatter = await listenOn(taken);
    try {
      const port = await freePort(() => 0, [taken, taken]);
      expect(port).not.toBe(taken);
      expect(port).toBeGreaterThan(0);
      expect(await freePort(Math.random, undefined)).toBeGreaterThan(0);
    } finally {
      squatter.close();
    }
  });
});

describe('exitedEarly', () => {
  it('names a lost port race PortTaken and quotes the log', async () => {
    const port = await freePort();
    const squatter = await listenOn(port);
    try {
      const proc = listener('loser', port);
      await proc.exited;
      const err = exitedEarly(proc);
      expect(err).toBeInstanceOf(PortTaken);
      expect(err.message).toContain('loser exited');
      expect(err.message).toContain(String(port));
    } finally {
      squatter.close();
    }
  });

  it('reads only this run of an appended log: an earlier clash does not make a later crash a clash', async () => {
    const port = await freePort();
    const squatter = await listenOn(port);
    const first = listener('again', port);
    await first.exited;
    squatter.close();
    const crash = startProcess({ name: 'again', command: process.execPath, dir, args: ['-e', 'console.error("boom"); process.exit(3)'] });
    await crash.exited;
    const err = exitedEarly(crash, 'the crasher');
    expect(err).not.toBeInstanceOf(PortTaken);
    expect(err).toBeInstanceOf(GiveUp);
    expect(err.message).toMatch(/the crasher exited; .*\n.*boom/s);
  });
});

describe('onFreshPorts', () => {
  it('tries again after a PortTaken and returns the first success', async () => {
    let calls = 0;
    const value = await onFreshPorts(async () => {
      calls++;
      if (calls < 3) throw new PortTaken('taken');
      return 'up';
    });
    expect([value, calls]).toEqual(['up', 3]);
  });

  it('gives up after its tries with the last PortTaken', async () => {
    let calls = 0;
    await expect(onFreshPorts(async () => {
      calls++;
      throw new PortTaken(`taken ${calls}`);
    }, 2)).rejects.toThrow('taken 2');
    expect(calls).toBe(2);
  });

  it('does not retry any other failure', async () => {
    let calls = 0;
    await expect(onFreshPorts(async () => {
      calls++;
      throw new GiveUp('crashed');
    })).rejects.toThrow('crashed');
    expect(calls).toBe(1);
  });
});
