import { describe, expect, it } from 'vitest';
import { SchedulingBackoff } from './queue.js';

describe('SchedulingBackoff', () => {
  it('doubles per failure up to the cap, and holds the job off market events until then', () => {
    const b = new SchedulingBackoff({ initialMs: 1_000, maxMs: 5_000 });
    expect([0, 1, 2, 3, 4].map(() => b.unschedulable('ns/a', 0))).toEqual([1_000, 2_000, 4_000, 5_000, 5_000]);
    expect(b.isBackingOff('ns/a', 4_999)).toBe(true);
    expect(b.isBackingOff('ns/a', 5_000)).toBe(false);
    expect(b.isBackingOff('ns/other', 0)).toBe(false);
  });

  it('clear() starts the next failure from the initial delay', () => {
    const b = new SchedulingBackoff({ initialMs: 100, maxMs: 1_000 });
    b.unschedulable('k', 0);
    b.unschedulable('k', 0);
    b.clear('k');
    expect(b.isBackingOff('k', 0)).toBe(false);
    expect(b.unschedulable('k', 0)).toBe(100);
    expect(b.size).toBe(1);
  });
});
