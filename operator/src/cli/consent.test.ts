import { describe, expect, it } from 'vitest';
import { expiryArg } from './consent.command.js';
import { CliError } from './errors.js';

describe('expiryArg', () => {
  const now = Date.parse('2026-11-29T00:00:00Z');

  it('reads durations from now and dates, in seconds', () => {
    expect(expiryArg('30d', now)).toBe(BigInt(now / 1000 + 30 * 86_400));
    expect(expiryArg('12h', now)).toBe(BigInt(now / 1000 + 12 * 3_600));
    expect(expiryArg('90m', now)).toBe(BigInt(now / 1000 + 90 * 60));
    expect(expiryArg('2027-01-31', now)).toBe(BigInt(Date.parse('2027-01-31') / 1000));
  });

  it('refuses what is not a date or a duration, and the past', () => {
    expect(() => expiryArg('soon', now)).toThrow(CliError);
    expect(() => expiryArg('30x', now)).toThrow(/neither a date/);
    expect(() => expiryArg('2020-01-01', now)).toThrow(/in the past/);
    expect(() => expiryArg('0d', now)).toThrow(/in the past/);
  });
});
