import { describe, expect, it } from 'vitest';
import {
  AvailabilityError,
  compileAvailability,
  gpusAfterReserve,
  isAvailableAt,
  parseWindowText,
  subtractReserved,
} from './availability.js';
import type { Availability } from './types.js';

// 2024-01-01 was a Monday.
const utc = (day: number, hh: number, mm = 0): number => Date.UTC(2024, 0, day, hh, mm);

describe('isAvailableAt', () => {
  const nightsWeekdays: Availability = { windows: [{ start: '22:00', end: '06:00', days: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'] }] };
  const officeHours: Availability = { windows: [{ start: '09:00', end: '17:00' }] };
  const cet: Availability = { utcOffsetMinutes: 60, windows: [{ start: '09:00', end: '17:00' }] };
  const untilMidnight: Availability = { windows: [{ start: '18:00', end: '24:00' }] };
  const twoWindows: Availability = {
    windows: [
      { start: '00:00', end: '08:00', days: ['Sat', 'Sun'] },
      { start: '20:00', end: '23:00' },
    ],
  };

  it.each<[string, Availability | undefined, number, boolean]>([
    ['no availability at all', undefined, utc(1, 12), true],
    ['no windows', { windows: [] }, utc(1, 12), true],
    ['inside a daily window', officeHours, utc(1, 9), true],
    ['end is exclusive', officeHours, utc(1, 17), false],
    ['before the window', officeHours, utc(1, 8, 59), false],
    ['Mon 23:00 inside a window crossing midnight', nightsWeekdays, utc(1, 23), true],
    ['Tue 05:59 still the Monday night window', nightsWeekdays, utc(2, 5, 59), true],
    ['Tue 06:00 closed', nightsWeekdays, utc(2, 6), false],
    ['Sat 03:00 belongs to the Friday window', nightsWeekdays, utc(6, 3), true],
    ['Sat 23:00 has no window', nightsWeekdays, utc(6, 23), false],
    ['Mon 03:00 would be the Sunday window: none', nightsWeekdays, utc(1, 3), false],
    ['UTC offset: 08:30 UTC is 09:30 CET', cet, utc(1, 8, 30), true],
    ['UTC offset: 16:30 UTC is 17:30 CET', cet, utc(1, 16, 30), false],
    ['24:00 as an end', untilMidnight, utc(1, 23, 59), true],
    ['24:00 end excludes the next midnight', untilMidnight, utc(2, 0), false],
    ['second of two windows', twoWindows, utc(3, 21), true],
    ['weekend-only window on a weekday', twoWindows, utc(3, 3), false],
    ['weekend-only window on Sunday', twoWindows, utc(7, 3), true],
    ['before 1970 still works', officeHours, Date.UTC(1969, 11, 31, 10), true],
  ])('%s', (_name, availability, now, want) => {
    expect(isAvailableAt(availability, now)).toBe(want);
  });

  it('treats start == end as a full day from start', () => {
    const fullDay: Availability = { windows: [{ start: '06:00', end: '06:00', days: ['Mon'] }] };
    expect(isAvailableAt(fullDay, utc(1, 6))).toBe(true);
    expect(isAvailableAt(fullDay, utc(2, 5, 59))).toBe(true);
    expect(isAvailableAt(fullDay, utc(2, 6))).toBe(false);
    expect(isAvailableAt(fullDay, utc(1, 5, 59))).toBe(false);
  });
});

describe('compileAvailability validation', () => {
  it.each([
    ['bad clock', { windows: [{ start: '9:00', end: '17:00' }] }],
    ['hour 24 as start', { windows: [{ start: '24:00', end: '01:00' }] }],
    ['minute 60', { windows: [{ start: '09:60', end: '17:00' }] }],
    ['unknown weekday', { windows: [{ start: '09:00', end: '17:00', days: ['Funday'] }] }],
    ['offset beyond 14h', { utcOffsetMinutes: 900 }],
    ['negative reserve', { reservedGpus: -1 }],
  ])('rejects %s', (_name, availability) => {
    expect(() => compileAvailability(availability as Availability)).toThrow(AvailabilityError);
  });

  it('parses the short HH:MM-HH:MM form', () => {
    expect(parseWindowText('22:00-06:00', ['Fri'])).toEqual({ start: '22:00', end: '06:00', days: ['Fri'] });
    expect(() => parseWindowText('22:00')).toThrow(AvailabilityError);
    expect(() => parseWindowText('22:00-06:00-07:00')).toThrow(AvailabilityError);
  });
});

describe('reserved GPUs', () => {
  it.each([
    [8, 2, 6],
    [2, 8, 0],
    [3, 0, 3],
    [3, -1, 3],
  ])('gpusAfterReserve(%i, %i) = %i', (idle, reserved, want) => {
    expect(gpusAfterReserve(idle, reserved)).toBe(want);
  });

  it.each([
    ['takes from the smallest node first', [8, 1, 2], 2, [8, 0, 1]],
    ['spills over to bigger nodes', [8, 1, 2], 5, [6, 0, 0]],
    ['more than idle empties all', [1, 1], 9, [0, 0]],
    ['ties by name', [2, 2], 1, [1, 2]],
    ['nothing reserved', [4, 4], 0, [4, 4]],
  ])('%s', (_name, idle, reserved, want) => {
    const nodes = idle.map((idleGpus, i) => ({ name: `n${i}`, idleGpus }));
    expect(subtractReserved(nodes, reserved).map((n) => n.idleGpus)).toEqual(want);
    expect(nodes.map((n) => n.idleGpus)).toEqual(idle); // input untouched
  });
});
