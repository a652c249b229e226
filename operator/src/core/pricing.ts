// Break-even pricing (DESIGN §7): an agent lists a pool only when its price covers the power the GPU
// draws, the site's overhead (PUE) and a wear allowance. All money math is exact bigint (money.ts);
// watts and PUE are turned into exact decimals from their shortest decimal text.

import { formatMoney, type Money, MONEY_SCALE, parseMoney, tryParseMoney } from './money.js';

/**
 * Board power (TDP, watts) of common NVIDIA products from NVIDIA's published specifications, keyed by
 * the GPU Feature Discovery product name (nvidia.com/gpu.product). Lookups also match without the
 * NVIDIA-/Tesla-/GeForce- prefix and the -SHARED (time-slicing) suffix, case-insensitively.
 */
export const GPU_POWER_WATTS: Readonly<Record<string, number>> = {
  'NVIDIA-B200': 1000,
  'NVIDIA-H200': 700,
  'NVIDIA-H200-NVL': 600,
  'NVIDIA-H100-80GB-HBM3': 700, // SXM5
  'NVIDIA-H100-PCIe': 350,
  'NVIDIA-H100-NVL': 400,
  'NVIDIA-GH200-480GB': 1000, // whole superchip module (CPU + GPU)
  'NVIDIA-A100-SXM4-80GB': 400,
  'NVIDIA-A100-SXM4-40GB': 400,
  'NVIDIA-A100-80GB-PCIe': 300,
  'NVIDIA-A100-PCIE-40GB': 250,
  'NVIDIA-A40': 300,
  'NVIDIA-A30': 165,
  'NVIDIA-A10': 150,
  'NVIDIA-A10G': 150,
  'NVIDIA-A16': 250,
  'NVIDIA-A2': 60,
  'NVIDIA-L40S': 350,
  'NVIDIA-L40': 300,
  'NVIDIA-L4': 72,
  'Tesla-T4': 70,
  'Tesla-V100-SXM2-16GB': 300,
  'Tesla-V100-SXM2-32GB': 300,
  'Tesla-V100-PCIE-16GB': 250,
  'Tesla-V100-PCIE-32GB': 250,
  'NVIDIA-RTX-6000-Ada-Generation': 300,
  'NVIDIA-RTX-A6000': 300,
  'NVIDIA-RTX-A5000': 230,
  'NVIDIA-RTX-A4000': 140,
  'NVIDIA-GeForce-RTX-5090': 575,
  'NVIDIA-GeForce-RTX-4090': 450,
  'NVIDIA-GeForce-RTX-4080': 320,
  'NVIDIA-GeForce-RTX-4070-Ti': 285,
  'NVIDIA-GeForce-RTX-3090-Ti': 450,
  'NVIDIA-GeForce-RTX-3090': 350,
  'NVIDIA-GeForce-RTX-3080-Ti': 350,
  'NVIDIA-GeForce-RTX-3080': 320,
  'NVIDIA-GeForce-RTX-3070': 220,
};

/** Used for products missing from the table and the overrides. */
export const DEFAULT_POWER_WATTS = 350;

export interface PowerDraw {
  watts: number;
  /** False when the product was not found and the default was used: surface it as a warning. */
  known: boolean;
}

/** Power draw of a product: overrides (exact or normalized name) first, then the table, then the default. */
export function powerDrawWatts(
  gpuProduct: string,
  overrides: Readonly<Record<string, number>> = {},
  defaultWatts: number = DEFAULT_POWER_WATTS,
): PowerDraw {
  const exact = overrides[gpuProduct] ?? GPU_POWER_WATTS[gpuProduct];
  if (exact !== undefined) return { watts: exact, known: true };
  const wanted = normalizeProduct(gpuProduct);
  for (const table of [overrides, GPU_POWER_WATTS]) {
    for (const [name, watts] of Object.entries(table)) {
      if (normalizeProduct(name) === wanted) return { watts, known: true };
    }
  }
  return { watts: defaultWatts, known: false };
}

export interface BreakEvenInputs {
  gpuProduct: string;
  /** Electricity price per kWh in decimal credits (spec.pricing.electricity.pricePerKWh). */
  pricePerKWh: string;
  /** Power usage effectiveness, ≥ 1 (spec.pricing.electricity.pue). */
  pue: number | string;
  /** Hardware wear allowance per GPU-hour in decimal credits; default "0". */
  wearPerGpuHour?: string;
  /** Measured or owner-declared watts per product, overriding the table. */
  powerWatts?: Readonly<Record<string, number>>;
  /** Watts for products found nowhere (default DEFAULT_POWER_WATTS). */
  defaultPowerWatts?: number;
}

export interface BreakEven {
  /** Exact break-even price per GPU-hour, rounded up to the smallest unit. */
  pricePerGpuHour: Money;
  powerWatts: number;
  /** The product's power draw was a guess (default watts). */
  unknownProduct: boolean;
}

export class PricingError extends Error {
  override name = 'PricingError';
}

/** Break-even price per GPU-hour = W / 1000 × pricePerKWh × PUE + wear allowance. */
export function breakEvenPrice(inputs: BreakEvenInputs): BreakEven {
  const draw = powerDrawWatts(inputs.gpuProduct, inputs.powerWatts, inputs.defaultPowerWatts);
  const watts = exactDecimal(draw.watts, 'watts');
  const pue = exactDecimal(inputs.pue, 'pue');
  if (pue < MONEY_SCALE) throw new PricingError(`pue must be ≥ 1, got ${inputs.pue}`);
  const kwhPrice = parseMoney(inputs.pricePerKWh);
  const wear = parseMoney(inputs.wearPerGpuHour ?? '0');
  // Three 18-decimal factors and /1000 for kW: divide by 1000 × 10^36, rounding up (the provider's
  // cost must be covered, never undershot by rounding).
  const numerator = watts * kwhPrice * pue;
  const denominator = 1000n * MONEY_SCALE * MONEY_SCALE;
  const power = (numerator + denominator - 1n) / denominator;
  return { pricePerGpuHour: power + wear, powerWatts: draw.watts, unknownProduct: !draw.known };
}

export interface PoolOffer {
  offered: boolean;
  /** Set when not offered, e.g. "PriceBelowBreakEven: listed 0.10 < break-even 0.31". */
  reason?: string;
}

/** Whether a pool priced at `listedPrice` goes on the market, given its break-even price. */
export function offerPool(listedPrice: Money | string, breakEven: Money | string): PoolOffer {
  const listed = typeof listedPrice === 'string' ? tryParseMoney(listedPrice) : listedPrice;
  if (listed === undefined) return { offered: false, reason: `InvalidPrice: listed ${JSON.stringify(listedPrice)}` };
  const floor = typeof breakEven === 'string' ? parseMoney(breakEven) : breakEven;
  if (listed >= floor) return { offered: true };
  // Two decimals like a price tag; the break-even rounds up and the listed price down so the
  // message never shows "0.31 < 0.31".
  const shownListed = formatMoney(listed, { minFractionDigits: 2, maxFractionDigits: 6, rounding: 'floor' });
  const shownFloor = formatMoney(floor, { minFractionDigits: 2, maxFractionDigits: 2, rounding: 'ceil' });
  return { offered: false, reason: `PriceBelowBreakEven: listed ${shownListed} < break-even ${shownFloor}` };
}

/** Upper-case name without vendor prefixes or the time-slicing suffix, for forgiving lookups. */
export function normalizeProduct(gpuProduct: string): string {
  return gpuProduct
    .toUpperCase()
    .replace(/^(NVIDIA-)?(TESLA-)?(GEFORCE-)?/, '')
    .replace(/-SHARED$/, '');
}

function exactDecimal(value: number | string, what: string): bigint {
  const text = typeof value === 'number' ? (Number.isFinite(value) ? String(value) : '') : value;
  const parsed = tryParseMoney(text);
  if (parsed === undefined) throw new PricingError(`invalid ${what} ${JSON.stringify(value)}`);
  return parsed;
}
