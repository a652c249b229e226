import { describe, expect, it } from 'vitest';
import { CliError, ExitCode } from '../errors.js';
import { pastStandbys } from './client.js';

const standby = () => new CliError('this hub replica (hub-b) is a stand-by; the leader is hub-a, which holds the agents\' streams: retry', ExitCode.Unreachable);
const unavailable = () => new CliError('the server is currently unable to handle the request (is the hub access API registered and the hub running? see docs/access.md)', ExitCode.Unreachable);

/** A fake clock: sleeping moves it; `open` answers from a script. */
function scripted(answers: (() => unknown)[]) {
  let t = 0;
  const slept: number[] = [];
  let calls = 0;
  return {
    slept,
    calls: () => calls,
    opts: {
      sleep: async (ms: number): Promise<void> => {
        slept.push(ms);
        t += ms;
      },
      now: () => t,
    },
    open: async () => {
      const answer = answers[Math.min(calls++, answers.length - 1)]!();
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
}

describe('opening an access session past a hub hand-over', () => {
  it("tries again after a stand-by's answer, a few times at once", async () => {
    const s = scripted([standby, standby, () => 'session']);
    expect(await pastStandbys(s.open, s.opts)).toBe('session');
    expect(s.slept).toEqual([250, 500]);
  });

  it('gives up on stand-bys after four more tries, with their answer', async () => {
    const s = scripted([standby]);
    await expect(pastStandbys(s.open, s.opts)).rejects.toThrow(/is a stand-by/);
    expect(s.calls()).toBe(5);
  });

  it('waits out an access API that is unavailable (no leader endpoint yet), saying so once', async () => {
    const notes: string[] = [];
    const s = scripted([unavailable, unavailable, unavailable, unavailable, unavailable, () => 'session']);
    expect(await pastStandbys(s.open, { ...s.opts, onWait: (e) => notes.push(e.message) })).toBe('session');
    expect(s.slept).toEqual([250, 500, 1000, 2000, 2000]);
    expect(notes).toHaveLength(1);
  });

  it('stops waiting after its time, with the apiserver\'s answer', async () => {
    const s = scripted([unavailable]);
    await expect(pastStandbys(s.open, { ...s.opts, unavailableForMs: 10_000 })).rejects.toThrow(/unable to handle the request/);
    expect(s.slept.reduce((a, b) => a + b, 0)).toBe(10_000);
  });

  it('does not retry a refusal or anything else', async () => {
    const forbidden = scripted([() => new CliError('User "carol" cannot create resource "gpujobs/exec"', ExitCode.Failure)]);
    await expect(pastStandbys(forbidden.open, forbidden.opts)).rejects.toThrow(/cannot create/);
    expect(forbidden.calls()).toBe(1);
    const unreachable = scripted([() => new CliError('cannot reach the hub cluster: connect ECONNREFUSED 127.0.0.1:6443', ExitCode.Unreachable)]);
    await expect(pastStandbys(unreachable.open, unreachable.opts)).rejects.toThrow(/cannot reach the hub cluster/);
    expect(unreachable.calls()).toBe(1);
  });
});
