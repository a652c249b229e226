import { describe, expect, it } from 'vitest';
import { formatCredits, parseCredits } from './credits.js';

describe('parseCredits', () => {
  it.each([
    ['0', 0n],
    ['1', 10n ** 18n],
    ['12.5', 12_500_000_000_000_000_000n],
    ['0.000000000000000001', 1n],
    ['2.750', 2_750_000_000_000_000_000n],
    ['007.10', 7_100_000_000_000_000_000n],
    ['123456789012345678901234567890', 123456789012345678901234567890n * 10n ** 18n],
  ])('%s credits are %s token units', (decimal, units) => {
    expect(parseCredits(decimal)).toBe(units);
  });

  it.each(['', ' 1', '1 ', '-1', '+1', '1e18', '1.', '.5', '1,5', '0x10', 'NaN', '1.2.3'])(
    'rejects %j',
    (bad) => {
      expect(() => parseCredits(bad)).toThrow(RangeError);
    },
  );

  it('refuses more than 18 decimals instead of rounding them away', () => {
    expect(() => parseCredits('0.0000000000000000001')).toThrow(/more than 18 decimals/);
  });

  it('is exact where a float is not', () => {
    // 0.1 + 0.2 in floating point is 0.30000000000000004.
    expect(parseCredits('0.1') + parseCredits('0.2')).toBe(parseCredits('0.3'));
  });
});

describe('formatCredits', () => {
  it.each([
    [0n, '0'],
    [1n, '0.000000000000000001'],
    [10n ** 18n, '1'],
    [12_500_000_000_000_000_000n, '12.5'],
    [-1_500_000_000_000_000_000n, '-1.5'],
  ])('%s token units are %s credits', (units, decimal) => {
    expect(formatCredits(units)).toBe(decimal);
  });

  it('round-trips through parseCredits', () => {
    for (const decimal of ['0', '1', '0.5', '3.14159', '1000000.000000000000000001']) {
      expect(formatCredits(parseCredits(decimal))).toBe(decimal);
    }
  });
});
