import { describe, expect, it, vi } from 'vitest';
import type { GpuJob } from '../../api/types.js';
import { endedAttempts, timedSchedule } from './metrics.js';

const job = (attempts: NonNullable<GpuJob['status']>['attempts']) => ({ status: { attempts } }) as GpuJob;

describe('GpuJob metrics hooks', () => {
  it('finds the attempts a status write ended, once', () => {
    const before = job([
      { epoch: 1, provider: 'a', endTime: 't0', faultOf: 'provider' },
      { epoch: 2, provider: 'b' },
    ]);
    const after = job([
      { epoch: 1, provider: 'a', endTime: 't0', faultOf: 'provider' },
      { epoch: 2, provider: 'b', endTime: 't1', faultOf: 'none' },
      { epoch: 3, provider: 'c' },
    ]);
    expect(endedAttempts(before, after).map((a) => a.epoch)).toEqual([2]);
    expect(endedAttempts(after, after)).toEqual([]);
  });

  it('times schedule() and survives a throwing hook', () => {
    const result = { kind: 'unschedulable' as const, reasons: {}, message: 'none' };
    const scheduled = vi.fn();
    expect(timedSchedule({ scheduled }, () => result)).toBe(result);
    expect(scheduled).toHaveBeenCalledWith(result, expect.any(Number));
    expect(timedSchedule({ scheduled: () => { throw new Error('x'); } }, () => result)).toBe(result);
    expect(timedSchedule(undefined, () => result)).toBe(result);
  });
});
