import { describe, expect, it } from 'vitest';
import {
  compareMoney,
  costOfGpuSeconds,
  formatMoney,
  MONEY_SCALE,
  MoneyError,
  moneyRatio,
  mulDiv,
  parseMoney,
  tryParseMoney,
} from './money.js';

describe('parseMoney', () => {
  it.each([
    ['0', 0n],
    ['2.5', 2n * MONEY_SCALE + MONEY_SCALE / 2n],
    ['0.000001', 10n ** 12n],
    ['0.000000000000000001', 1n],
    ['2.50', 2n * MONEY_SCALE + MONEY_SCALE / 2n],
    ['1000000000000', 10n ** 12n * MONEY_SCALE],
    ['123456789.123456789123456789', 123456789123456789123456789n],
  ])('parses %j', (text, units) => {
    expect(parseMoney(text)).toBe(units);
  });

  it.each([
    '',
    '-1',
    '+1',
    '1e3',
    '1E-3',
    '.5',
    '1.',
    '01',
    '00.5',
    ' 1',
    '1 ',
    '1,5',
    'NaN',
    'Infinity',
    '0x10',
    '1.0000000000000000001', // 19 fraction digits would lose precision
  ])('rejects %j', (text) => {
    expect(tryParseMoney(text)).toBeUndefined();
    expect(() => parseMoney(text)).toThrow(MoneyError);
  });

  it('rejects non-strings at run time', () => {
    expect(tryParseMoney(2.5 as unknown as string)).toBeUndefined();
  });
});

describe('compareMoney', () => {
  it.each([
    ['1', '2', -1],
    ['2', '1', 1],
    ['2.5', '2.50', 0],
    ['0.000000000000000001', '0', 1],
  ] as const)('%s vs %s', (a, b, want) => {
    expect(compareMoney(parseMoney(a), parseMoney(b))).toBe(want);
  });
});

describe('costOfGpuSeconds', () => {
  it.each([
    // price per GPU-hour, GPU-seconds, rounding, expected
    ['3.6', 3600, 'floor', '3.6'],
    ['3.6', 1, 'floor', '0.001'],
    ['2.5', 7200, 'floor', '5'],
    ['1', 1, 'floor', '0.000277777777777777'],
    ['1', 1, 'ceil', '0.000277777777777778'],
    ['1', 1, 'half-up', '0.000277777777777778'],
    ['0.000001', 3600n, 'floor', '0.000001'],
    ['2.4', 0, 'floor', '0'],
  ] as const)('%s/h × %s GPU-s (%s) = %s', (price, seconds, rounding, want) => {
    expect(formatMoney(costOfGpuSeconds(parseMoney(price), seconds, rounding))).toBe(want);
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('rejects gpuSeconds %s', (seconds) => {
    expect(() => costOfGpuSeconds(parseMoney('1'), seconds)).toThrow(MoneyError);
  });
});

describe('formatMoney', () => {
  it.each([
    ['2.5', {}, '2.5'],
    ['2.5', { minFractionDigits: 2 }, '2.50'],
    ['2', { minFractionDigits: 2 }, '2.00'],
    ['0.305', { minFractionDigits: 2, maxFractionDigits: 2 }, '0.31'],
    ['0.304', { minFractionDigits: 2, maxFractionDigits: 2, rounding: 'ceil' }, '0.31'],
    ['0.309', { minFractionDigits: 2, maxFractionDigits: 2, rounding: 'floor' }, '0.30'],
    ['0.999', { maxFractionDigits: 2 }, '1'],
    ['0.000000000000000001', {}, '0.000000000000000001'],
    ['1000000', {}, '1000000'],
  ] as const)('%s with %j', (text, options, want) => {
    expect(formatMoney(parseMoney(text), options)).toBe(want);
  });

  it('round-trips every valid string in canonical form', () => {
    for (const text of ['0', '1', '2.5', '0.1', '12.000000000000000001', '99999999999.999999999999999999']) {
      expect(formatMoney(parseMoney(text))).toBe(text);
    }
  });
});

describe('mulDiv and moneyRatio', () => {
  it('multiplies exactly', () => {
    expect(formatMoney(mulDiv(parseMoney('0.1'), 3n, 1n))).toBe('0.3'); // 0.1 × 3 is exact, unlike floats
  });
  it('refuses a zero denominator', () => {
    expect(() => mulDiv(1n, 1n, 0n)).toThrow(MoneyError);
  });
  it('gives float ratios for scoring', () => {
    expect(moneyRatio(parseMoney('1'), parseMoney('4'))).toBe(0.25);
  });
});
