import { describe, expect, it } from 'vitest';
import type { PodEvent } from '../../gen/proto/fedgpu/v1/market.js';
import { PendingPodEvents } from './pending.js';

const event = (jobUid: string, epoch: number, reason: string): PodEvent => ({ jobUid, epoch, replica: 0, type: 'Warning', reason, message: reason, count: 1 });

describe('PendingPodEvents', () => {
  it('keeps the newest events up to its bound, and hands back only live attempts\' ones in batches', () => {
    const pending = new PendingPodEvents(4);
    for (const [i, reason] of ['A', 'B', 'C', 'D', 'E', 'F'].entries()) pending.add(event(i % 2 ? 'live' : 'gone', 1, reason));
    expect(pending.size).toBe(4);
    expect(pending.dropped).toBe(2);
    const batches = pending.take((jobUid) => jobUid === 'live', 1);
    expect(batches.map((b) => b.map((e) => e.reason))).toEqual([['D'], ['F']]);
    expect(pending.size).toBe(0);
    expect(pending.take(() => true, 32)).toEqual([]);
  });

  it('drops the events of an attempt that ended or was replaced while the stream was down', () => {
    const pending = new PendingPodEvents();
    pending.add(event('job', 1, 'ErrImagePull'));
    pending.add(event('job', 2, 'FailedScheduling'));
    expect(pending.take((_, epoch) => epoch === 2, 32)).toEqual([[event('job', 2, 'FailedScheduling')]]);
  });
});
