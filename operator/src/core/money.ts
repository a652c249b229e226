// Money as bigint with 18 decimals: one credit = 10^18 units, the same scale as the ComputeCredit
// ERC-20 on chain, so an amount goes to ethers without conversion and the API's 18-digit decimal
// strings round-trip exactly. Floats never touch money; only score ratios become numbers.

/** An amount of credits in 10^-18 units. */
export type Money = bigint;

export const MONEY_DECIMALS = 18;
export const MONEY_SCALE: Money = 10n ** 18n;

/** Rounding for divisions and for formatting with fewer digits. */
export type Rounding = 'floor' | 'ceil' | 'half-up';

// Same shape as the CRD's MONEY_PATTERN, minus its 12-digit cap on the integer part (sums exceed it).
const DECIMAL = /^(0|[1-9][0-9]*)(?:\.([0-9]{1,18}))?$/;

export class MoneyError extends Error {
  override name = 'MoneyError';
}

/** Parse a non-negative decimal string ("2.5", "0.000001"); throws MoneyError on anything else. */
export function parseMoney(text: string): Money {
  const parsed = tryParseMoney(text);
  if (parsed === undefined) {
    throw new MoneyError(
      `invalid money ${JSON.stringify(text)}: want a non-negative decimal with at most 18 fraction digits`,
    );
  }
  return parsed;
}

/** Parse like parseMoney, or undefined when the text is not valid money. */
export function tryParseMoney(text: string): Money | undefined {
  if (typeof text !== 'string') return undefined;
  const match = DECIMAL.exec(text);
  if (!match) return undefined;
  const whole = BigInt(match[1] ?? '0');
  const fraction = (match[2] ?? '').padEnd(MONEY_DECIMALS, '0');
  return whole * MONEY_SCALE + BigInt(fraction);
}

/** -1, 0 or 1 as a is less than, equal to or greater than b. */
export function compareMoney(a: Money, b: Money): -1 | 0 | 1 {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** a × numerator / denominator with explicit rounding (denominator > 0). */
export function mulDiv(a: Money, numerator: bigint, denominator: bigint, rounding: Rounding = 'floor'): Money {
  if (denominator <= 0n) throw new MoneyError('mulDiv: denominator must be positive');
  const product = a * numerator;
  return divide(product, denominator, rounding);
}

/**
 * Cost of `gpuSeconds` at a price per GPU-hour: price × gpuSeconds / 3600. Rounds down by default so
 * a consumer is never billed more than the exact amount; estimates pass 'ceil'.
 */
export function costOfGpuSeconds(
  pricePerGpuHour: Money,
  gpuSeconds: number | bigint,
  rounding: Rounding = 'floor',
): Money {
  return mulDiv(pricePerGpuHour, toWholeCount(gpuSeconds, 'gpuSeconds'), 3600n, rounding);
}

/** a / b as a float, for scoring only (b > 0). */
export function moneyRatio(a: Money, b: Money): number {
  if (b <= 0n) throw new MoneyError('moneyRatio: divisor must be positive');
  // Keep 12 significant fraction digits before leaving bigint land.
  return Number((a * 1_000_000_000_000n) / b) / 1e12;
}

/** An approximate float of a money amount, for display and scoring only. */
export function moneyToNumber(a: Money): number {
  return Number(a) / 1e18;
}

export interface FormatOptions {
  /** Pad with zeros to at least this many fraction digits (default 0). */
  minFractionDigits?: number;
  /** Round to at most this many fraction digits (default 18: exact). */
  maxFractionDigits?: number;
  rounding?: Rounding;
}

/** Format back to a decimal string: "2.5", or with { minFractionDigits: 2 } "2.50". */
export function formatMoney(amount: Money, options: FormatOptions = {}): string {
  const minDigits = options.minFractionDigits ?? 0;
  const maxDigits = Math.max(minDigits, options.maxFractionDigits ?? MONEY_DECIMALS);
  if (amount < 0n) return `-${formatMoney(-amount, options)}`;
  let scaled = amount;
  let digits = MONEY_DECIMALS;
  if (maxDigits < MONEY_DECIMALS) {
    scaled = divide(amount, 10n ** BigInt(MONEY_DECIMALS - maxDigits), options.rounding ?? 'half-up');
    digits = maxDigits;
  }
  const unit = 10n ** BigInt(digits);
  const whole = scaled / unit;
  let fraction = (scaled % unit).toString().padStart(digits, '0').replace(/0+$/, '');
  if (fraction.length < minDigits) fraction = fraction.padEnd(minDigits, '0');
  return fraction.length > 0 ? `${whole}.${fraction}` : whole.toString();
}

function divide(numerator: bigint, denominator: bigint, rounding: Rounding): bigint {
  const quotient = numerator / denominator; // truncates toward zero; inputs here are non-negative
  const remainder = numerator % denominator;
  if (remainder === 0n) return quotient;
  switch (rounding) {
    case 'floor':
      return quotient;
    case 'ceil':
      return quotient + 1n;
    case 'half-up':
      return remainder * 2n >= denominator ? quotient + 1n : quotient;
  }
}

function toWholeCount(value: number | bigint, what: string): bigint {
  if (typeof value === 'bigint') {
    if (value < 0n) throw new MoneyError(`${what} must not be negative`);
    return value;
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new MoneyError(`${what} must be a non-negative whole number, got ${value}`);
  }
  return BigInt(value);
}
