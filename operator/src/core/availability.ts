// When an owner lends its GPUs. Windows are daily HH:MM ranges in the owner's fixed UTC offset; a
// window whose end is not after its start crosses midnight and belongs to the day it opens on (a
// Friday 22:00-06:00 window covers Friday night until Saturday 06:00, like cron). Pure arithmetic on
// epoch milliseconds: no Date, no time-zone database.

import type { Availability, AvailabilityWindow, Weekday } from './types.js';
import { compareStrings } from './order.js';

export const WEEKDAYS: readonly Weekday[] = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

const MINUTES_PER_DAY = 1440;
const ALL_DAYS = 0b1111111;
// 1970-01-01 was a Thursday: index 3 with Monday = 0.
const EPOCH_WEEKDAY = 3;
const CLOCK = /^([01][0-9]|2[0-3]):([0-5][0-9])$/;

/** A window reduced to minutes of the day and a bit set of opening weekdays (bit 0 = Monday). */
export interface CompiledWindow {
  startMinute: number;
  endMinute: number;
  dayMask: number;
}

/** Availability ready for fast checks; `windows` empty means always available. */
export interface CompiledAvailability {
  utcOffsetMinutes: number;
  windows: CompiledWindow[];
  reservedGpus: number;
}

export class AvailabilityError extends Error {
  override name = 'AvailabilityError';
}

/** Parse "HH:MM" (00:00-23:59) to minutes after midnight; "24:00" is accepted as an end. */
export function parseClock(text: string, allowEndOfDay = false): number {
  if (allowEndOfDay && text === '24:00') return MINUTES_PER_DAY;
  const match = CLOCK.exec(text);
  if (!match) throw new AvailabilityError(`invalid time ${JSON.stringify(text)}: want HH:MM`);
  return Number(match[1]) * 60 + Number(match[2]);
}

/** Parse the short form "HH:MM-HH:MM" (optionally with days) into an AvailabilityWindow. */
export function parseWindowText(text: string, days?: Weekday[]): AvailabilityWindow {
  const [start, end, ...rest] = text.split('-');
  if (start === undefined || end === undefined || rest.length > 0) {
    throw new AvailabilityError(`invalid window ${JSON.stringify(text)}: want HH:MM-HH:MM`);
  }
  parseClock(start);
  parseClock(end, true);
  return days === undefined ? { start, end } : { start, end, days };
}

/** Validate and compile one window; throws AvailabilityError on bad input. */
export function compileWindow(window: AvailabilityWindow): CompiledWindow {
  const startMinute = parseClock(window.start);
  const endMinute = parseClock(window.end, true);
  let dayMask = 0;
  for (const day of window.days ?? []) {
    const index = WEEKDAYS.indexOf(day);
    if (index < 0) throw new AvailabilityError(`invalid weekday ${JSON.stringify(day)}`);
    dayMask |= 1 << index;
  }
  return { startMinute, endMinute, dayMask: dayMask === 0 ? ALL_DAYS : dayMask };
}

/** Validate and compile a provider's availability (absent: always available, nothing reserved). */
export function compileAvailability(availability: Availability | undefined): CompiledAvailability {
  const offset = availability?.utcOffsetMinutes ?? 0;
  if (!Number.isInteger(offset) || Math.abs(offset) > 14 * 60) {
    throw new AvailabilityError(`invalid utcOffsetMinutes ${offset}`);
  }
  const reserved = availability?.reservedGpus ?? 0;
  if (!Number.isInteger(reserved) || reserved < 0) {
    throw new AvailabilityError(`invalid reservedGpus ${reserved}`);
  }
  return {
    utcOffsetMinutes: offset,
    windows: (availability?.windows ?? []).map(compileWindow),
    reservedGpus: reserved,
  };
}

/** Whether `now` (epoch ms) falls inside any window; no windows means always. */
export function isWithinWindows(compiled: CompiledAvailability, now: number): boolean {
  if (compiled.windows.length === 0) return true;
  const localMinutes = Math.floor(now / 60_000) + compiled.utcOffsetMinutes;
  const dayNumber = Math.floor(localMinutes / MINUTES_PER_DAY);
  const minute = localMinutes - dayNumber * MINUTES_PER_DAY;
  const today = 1 << mod(dayNumber + EPOCH_WEEKDAY, 7);
  const yesterday = 1 << mod(dayNumber + EPOCH_WEEKDAY - 1, 7);
  for (const w of compiled.windows) {
    if (w.startMinute < w.endMinute) {
      if ((w.dayMask & today) !== 0 && minute >= w.startMinute && minute < w.endMinute) return true;
    } else {
      // Crosses midnight (or is a full 24 h when start == end): the evening part opened today,
      // the morning part opened yesterday.
      if ((w.dayMask & today) !== 0 && minute >= w.startMinute) return true;
      if ((w.dayMask & yesterday) !== 0 && minute < w.endMinute) return true;
    }
  }
  return false;
}

/** Convenience: compile and check in one call (use compileAvailability once for hot paths). */
export function isAvailableAt(availability: Availability | undefined, now: number): boolean {
  return isWithinWindows(compileAvailability(availability), now);
}

/** Idle GPUs left after the owner's reserved count (never negative). */
export function gpusAfterReserve(idleGpus: number, reservedGpus: number): number {
  return Math.max(0, idleGpus - Math.max(0, reservedGpus));
}

/**
 * Take `reservedGpus` out of per-node idle counts. The reserve comes from the nodes with the fewest
 * idle GPUs first (ties by name), so large idle nodes stay whole for gangs. Returns new objects in
 * the input order.
 */
export function subtractReserved<T extends { name: string; idleGpus: number }>(
  nodes: readonly T[],
  reservedGpus: number,
): T[] {
  const result = nodes.map((node) => ({ ...node }));
  let left = Math.max(0, reservedGpus);
  const order = result
    .map((node, index) => ({ node, index }))
    .filter(({ node }) => node.idleGpus > 0)
    .sort((a, b) => a.node.idleGpus - b.node.idleGpus || compareStrings(a.node.name, b.node.name));
  for (const { node } of order) {
    if (left === 0) break;
    const taken = Math.min(left, node.idleGpus);
    node.idleGpus -= taken;
    left -= taken;
  }
  return result;
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}
