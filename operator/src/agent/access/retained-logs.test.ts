import { mkdtempSync, readdirSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RetainedLogs, retainedView } from './retained-logs.js';

function retainedAt(clock: { now: number }, retentionMs = 60_000) {
  const dir = mkdtempSync(join(tmpdir(), 'fedgpu-retained-'));
  return { dir, logs: new RetainedLogs({ dir, maxBytesPerReplica: 16, retentionMs, now: () => clock.now }) };
}

describe('RetainedLogs', () => {
  it('keeps only the tail of each replica', () => {
    const clock = { now: Date.now() };
    const { logs } = retainedAt(clock);
    logs.keep('job-a', 1, 0, Buffer.from('0123456789abcdefTAIL'));
    expect(logs.read('job-a', 1, 0)?.toString()).toBe('456789abcdefTAIL');
    expect(logs.read('job-a', 1, 1)).toBeUndefined();
  });

  it("forgets every attempt of a deleted job, and a tail fetched after that is not written", () => {
    const clock = { now: Date.now() };
    const { dir, logs } = retainedAt(clock);
    logs.keep('job-a', 1, 0, Buffer.from('attempt 1'));
    logs.keep('job-a', 2, 1, Buffer.from('attempt 2'));
    logs.keep('job-b', 1, 0, Buffer.from('other job'));
    logs.keep('job-a', 1, 0, Buffer.from('x again\n')); // kept again without a name: the old one is not left
    expect(logs.containerOf('job-a', 1, 0)).toBeUndefined();
    logs.forgetJob('job-a');
    expect(readdirSync(dir).sort()).toEqual(['job-b_e1_r0.log']);
    logs.keep('job-a', 2, 0, Buffer.from('late'));
    expect(logs.read('job-a', 2, 0)).toBeUndefined();
    expect(logs.read('job-b', 1, 0)?.toString()).toBe('other job');
    // A uid outside the strict pattern touches nothing.
    logs.forgetJob('../job-b');
    expect(readdirSync(dir)).toHaveLength(1);
  });

  it('keeps at most its total, dropping the oldest tails first (the attack: a wide gang of chatty failing replicas fills the agent volume)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedgpu-retained-'));
    const logs = new RetainedLogs({ dir, maxBytesPerReplica: 16, maxTotalBytes: 48, retentionMs: 3_600_000 });
    const t = Date.now() / 1000;
    for (let r = 0; r < 64; r++) {
      logs.keep('job-a', 1, r, Buffer.from('x'.repeat(16)));
      // Distinct ages, oldest first (mtime resolution varies by filesystem).
      utimesSync(join(dir, `job-a_e1_r${r}.log`), t - 1000 + r, t - 1000 + r);
    }
    const left = readdirSync(dir).sort();
    expect(left).toEqual(['job-a_e1_r61.log', 'job-a_e1_r62.log', 'job-a_e1_r63.log']);
    expect(logs.read('job-a', 1, 63)?.toString()).toBe('x'.repeat(16));
  });

  it('drops a tail and the name of its container together, never one without the other', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedgpu-retained-'));
    const logs = new RetainedLogs({ dir, maxBytesPerReplica: 16, maxTotalBytes: 60, retentionMs: 3_600_000 });
    const t = Date.now() / 1000;
    for (let r = 0; r < 8; r++) {
      logs.keep('job-a', 1, r, Buffer.from('x'.repeat(16)), 'main');
      for (const ext of ['log', 'container']) utimesSync(join(dir, `job-a_e1_r${r}.${ext}`), t - 1000 + r, t - 1000 + r);
    }
    const left = readdirSync(dir).sort();
    const tails = left.filter((f) => f.endsWith('.log'));
    expect(tails.length).toBeGreaterThan(0);
    expect(left).toEqual(tails.flatMap((f) => [f.replace(/\.log$/, '.container'), f]).sort());
  });

  it('hides and sweeps tails past the retention time', () => {
    const clock = { now: Date.now() };
    const { dir, logs } = retainedAt(clock, 60_000);
    logs.keep('job-a', 1, 0, Buffer.from('old'));
    logs.keep('job-c', 1, 0, Buffer.from('new'));
    // job-a's file was written two minutes ago.
    const old = new Date(clock.now - 120_000);
    utimesSync(join(dir, 'job-a_e1_r0.log'), old, old);
    expect(logs.has('job-a', 1, 0)).toBe(false);
    expect(logs.has('job-c', 1, 0)).toBe(true);
    logs.sweep();
    expect(readdirSync(dir)).toEqual(['job-c_e1_r0.log']);
    clock.now += 61_000;
    logs.sweep();
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('RetainedLogs: whose tail', () => {
  it('records the container a tail is of, refuses a name that is not a container name, and forgets it with the job', () => {
    const logs = new RetainedLogs({ dir: mkdtempSync(join(tmpdir(), 'fedgpu-retained-')), maxBytesPerReplica: 1024, retentionMs: 60_000 });
    logs.keep('job-a', 1, 0, Buffer.from('x\n'), 'trainer');
    logs.keep('job-a', 1, 1, Buffer.from('y\n'), '../../etc');
    logs.keep('job-a', 2, 0, Buffer.from('z\n'));
    expect(logs.containerOf('job-a', 1, 0)).toBe('trainer');
    expect(logs.containerOf('job-a', 1, 1)).toBeUndefined();
    expect(logs.containerOf('job-a', 2, 0)).toBeUndefined();
    logs.forgetJob('job-a');
    expect(logs.containerOf('job-a', 1, 0)).toBeUndefined();
    expect(logs.read('job-a', 1, 0)).toBeUndefined();
  });
});

describe('retainedView', () => {
  const now = Date.parse('2026-12-02T12:00:00Z');
  const kept = Buffer.from([
    'ut line cut by the byte bound',
    '2026-12-02T09:00:00.123456789Z three hours ago',
    '2026-12-02T11:59:30Z half a minute ago',
    '2026-12-02T11:59:59.5Z just now',
    '',
  ].join('\n'));

  it('strips the stamps unless --timestamps, as a live log has none', () => {
    expect(retainedView(kept, { tailLines: -1, sinceSeconds: 0, timestamps: false, stamped: true }, now).toString()).toBe(
      'ut line cut by the byte bound\nthree hours ago\nhalf a minute ago\njust now\n',
    );
    expect(retainedView(kept, { tailLines: 1, sinceSeconds: 0, timestamps: true, stamped: true }, now).toString()).toBe('2026-12-02T11:59:59.5Z just now\n');
  });

  it('keeps only lines newer than --since, then the last --tail of them; the cut first line, of unknown age, goes', () => {
    expect(retainedView(kept, { tailLines: -1, sinceSeconds: 60, timestamps: false, stamped: true }, now).toString()).toBe('half a minute ago\njust now\n');
    expect(retainedView(kept, { tailLines: 1, sinceSeconds: 3600, timestamps: false, stamped: true }, now).toString()).toBe('just now\n');
    expect(retainedView(kept, { tailLines: -1, sinceSeconds: 1, timestamps: true, stamped: true }, now).toString()).toBe('2026-12-02T11:59:59.5Z just now\n');
    expect(retainedView(kept, { tailLines: -1, sinceSeconds: 0, timestamps: false, stamped: true }, now).toString()).toContain('ut line cut by the byte bound\n');
  });

  it('serves a tail kept without stamps (by an older agent) as it was, even lines the app stamped itself', () => {
    const old = Buffer.from('2026-12-02T09:00:00Z app stamp\nstep 2\nstep 3');
    expect(retainedView(old, { tailLines: 2, sinceSeconds: 60, timestamps: false, stamped: false }, now).toString()).toBe('step 2\nstep 3');
    expect(retainedView(old, { tailLines: -1, sinceSeconds: 60, timestamps: false, stamped: false }, now).toString()).toContain('2026-12-02T09:00:00Z app stamp\n');
  });

  it('passes bytes that are not UTF-8 through untouched, and keeps an unfinished last line', () => {
    const latin1 = Buffer.concat([Buffer.from('2026-12-02T11:59:59Z caf'), Buffer.from([0xe9, 0xff]), Buffer.from('\n2026-12-02T11:59:59Z no newline')]);
    const out = retainedView(latin1, { tailLines: -1, sinceSeconds: 60, timestamps: false, stamped: true }, now);
    expect(out.equals(Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9, 0xff]), Buffer.from('\nno newline')]))).toBe(true);
  });
});
