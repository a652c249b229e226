import { describe, expect, it } from 'vitest';
import type { GpuJob } from '../../api/types.js';
import { judgePodEvent, PodEventBook, recordedPodEvent, stuckMessage, withStuckReason } from './pod-events.js';

const job = (over: Partial<NonNullable<GpuJob['status']>> = {}): GpuJob =>
  ({
    apiVersion: 'fedgpu.io/v1alpha1',
    kind: 'GpuJob',
    metadata: { name: 'trainer', namespace: 'ml', uid: 'job-a' },
    spec: { template: {}, replicas: 2 },
    status: {
      phase: 'Scheduled',
      currentEpoch: 2,
      attempts: [
        { epoch: 1, provider: 'dc', startTime: '2026-01-01T00:00:00Z', endTime: '2026-01-01T00:01:00Z', outcome: 'Reclaimed' },
        { epoch: 2, provider: 'cloud', startTime: '2026-01-01T00:02:00Z', outcome: 'Running' },
      ],
      ...over,
    },
  }) as unknown as GpuJob;

describe('judgePodEvent', () => {
  it("accepts the current attempt's provider for the attempt's replicas", () => {
    expect(judgePodEvent(job(), 'cloud', { epoch: 2, replica: 1 })).toEqual({ ok: true });
  });

  it('refuses another provider, an old or ended attempt, a replica the job lacks, an unknown job', () => {
    expect(judgePodEvent(job(), 'dc', { epoch: 2, replica: 0 })).toEqual({ ok: false, why: 'other_provider' });
    expect(judgePodEvent(job(), 'dc', { epoch: 1, replica: 0 })).toEqual({ ok: false, why: 'not_current_attempt' });
    expect(judgePodEvent(job(), 'cloud', { epoch: 3, replica: 0 })).toEqual({ ok: false, why: 'not_current_attempt' });
    expect(judgePodEvent(job(), 'cloud', { epoch: 2, replica: 2 })).toEqual({ ok: false, why: 'no_such_replica' });
    expect(judgePodEvent(undefined, 'cloud', { epoch: 2, replica: 0 })).toEqual({ ok: false, why: 'unknown_job' });
    const ended = job();
    ended.status!.attempts![1]!.endTime = '2026-01-01T00:03:00Z';
    expect(judgePodEvent(ended, 'cloud', { epoch: 2, replica: 0 })).toEqual({ ok: false, why: 'not_current_attempt' });
  });
});

describe('recordedPodEvent', () => {
  it('names replica and provider, keeps the reason', () => {
    expect(recordedPodEvent('cloud', { type: 'Warning', reason: 'FailedScheduling', message: '0/1 nodes are available', replica: 0 })).toEqual({
      type: 'Warning',
      reason: 'FailedScheduling',
      message: 'replica 0 on provider cloud: 0/1 nodes are available',
    });
  });

  it('treats the text as hostile: one printable bounded line, a safe reason', () => {
    const r = recordedPodEvent('cloud', { type: 'Nasty', reason: 'x y', message: `a\r\n\u0007b\u009b\u2066c${'z'.repeat(4000)}`, replica: 0 });
    expect(r.type).toBe('Normal');
    expect(r.reason).toBe('ProviderEvent');
    expect(r.message).toMatch(/^replica 0 on provider cloud: a b cz+…$/);
    expect(r.message).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2066]/);
    expect(r.message.length).toBeLessThan(600);
    expect(recordedPodEvent('cloud', { type: 'Warning', reason: 'Failed', message: '\n\n', replica: 0 }).message).toBe('replica 0 on provider cloud: (no message)');
  });
});

describe('withStuckReason', () => {
  const stuck = { epoch: 2, message: stuckMessage({ type: 'Warning', reason: 'Failed', message: 'replica 0 on provider cloud: ErrImagePull' }) };

  it('says why the current attempt waits', () => {
    expect(withStuckReason(job().status!, stuck).message).toBe('Failed: replica 0 on provider cloud: ErrImagePull');
  });

  it('leaves the message alone once running, ended, for another epoch, or without a reason', () => {
    const base = job({ message: 'scheduled on cloud' }).status!;
    expect(withStuckReason({ ...base, phase: 'Running' }, stuck).message).toBe('scheduled on cloud');
    expect(withStuckReason(base, { ...stuck, epoch: 1 }).message).toBe('scheduled on cloud');
    expect(withStuckReason(base, undefined).message).toBe('scheduled on cloud');
    const started = job({ message: 'scheduled on cloud' }).status!;
    started.attempts![1]!.runningTime = '2026-01-01T00:02:30Z';
    expect(withStuckReason(started, stuck).message).toBe('scheduled on cloud');
  });
});

describe('PodEventBook', () => {
  it('bounds each job by a bucket and the number of jobs it remembers', () => {
    let now = 0;
    const book = new PodEventBook({ burst: 2, refillMs: 1_000, maxJobs: 3 }, () => now);
    expect([book.admit('a'), book.admit('a'), book.admit('a')]).toEqual([true, true, false]);
    now += 1_000;
    expect(book.admit('a')).toBe(true);
    // Half an interval is half a token: not enough yet; the other half makes one.
    now += 500;
    expect(book.admit('a')).toBe(false);
    now += 500;
    expect(book.admit('a')).toBe(true);
    book.setStuck('a', { epoch: 1, message: 'x' });
    expect(book.stuck('a')).toEqual({ epoch: 1, message: 'x' });
    for (const j of ['b', 'c', 'd']) book.admit(j);
    expect(book.size).toBe(3);
    expect(book.stuck('a')).toBeUndefined();
    book.forget('d');
    expect(book.size).toBe(2);
  });
});
