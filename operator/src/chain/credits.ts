// Money in the fedgpu API is a decimal string of credits ("12.5"); on chain it is an integer of
// token units with 18 decimals. Conversions are exact bigint arithmetic: never a float, never a
// silent rounding of what a user wrote.

export const CREDIT_DECIMALS = 18;
const UNITS_PER_CREDIT = 10n ** BigInt(CREDIT_DECIMALS);
const DECIMAL = /^(\d+)(?:\.(\d+))?$/;

/** "12.5" → 12_500_000_000_000_000_000n. Rejects signs, exponents, blanks and > 18 decimals. */
export function parseCredits(decimal: string): bigint {
  const match = DECIMAL.exec(decimal);
  if (!match?.[1]) throw new RangeError(`not a non-negative decimal credit amount: ${JSON.stringify(decimal)}`);
  const fraction = match[2] ?? '';
  if (fraction.length > CREDIT_DECIMALS) {
    throw new RangeError(`${decimal} has more than ${CREDIT_DECIMALS} decimals: it cannot be represented exactly`);
  }
  return BigInt(match[1]) * UNITS_PER_CREDIT + BigInt(fraction.padEnd(CREDIT_DECIMALS, '0') || '0');
}

/** 12_500_000_000_000_000_000n → "12.5" (shortest exact form, no exponent). */
export function formatCredits(units: bigint): string {
  if (units < 0n) return `-${formatCredits(-units)}`;
  const whole = units / UNITS_PER_CREDIT;
  const fraction = (units % UNITS_PER_CREDIT).toString().padStart(CREDIT_DECIMALS, '0').replace(/0+$/, '');
  return fraction === '' ? whole.toString() : `${whole}.${fraction}`;
}
