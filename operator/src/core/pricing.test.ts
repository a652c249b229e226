import { describe, expect, it } from 'vitest';
import { formatMoney, parseMoney } from './money.js';
import { breakEvenPrice, DEFAULT_POWER_WATTS, offerPool, powerDrawWatts, PricingError } from './pricing.js';

describe('powerDrawWatts', () => {
  it.each<[string, Record<string, number> | undefined, number, boolean]>([
    ['NVIDIA-H100-80GB-HBM3', undefined, 700, true],
    ['NVIDIA-A100-SXM4-80GB', undefined, 400, true],
    ['NVIDIA-GeForce-RTX-4090', undefined, 450, true],
    ['NVIDIA-GeForce-RTX-3090', undefined, 350, true],
    ['NVIDIA-L40S', undefined, 350, true],
    ['Tesla-T4', undefined, 70, true],
    ['NVIDIA-T4', undefined, 70, true], // vendor prefix differs
    ['nvidia-geforce-rtx-4090', undefined, 450, true], // case
    ['NVIDIA-GeForce-RTX-4090-SHARED', undefined, 450, true], // time-sliced
    ['NVIDIA-GeForce-RTX-4090', { 'NVIDIA-GeForce-RTX-4090': 380 }, 380, true], // measured override
    ['Weird-GPU-9000', undefined, DEFAULT_POWER_WATTS, false],
    ['Weird-GPU-9000', { 'Weird-GPU-9000': 123 }, 123, true],
  ])('%s (overrides %j) → %i W, known %s', (product, overrides, watts, known) => {
    expect(powerDrawWatts(product, overrides)).toEqual({ watts, known });
  });

  it('uses a configurable default for unknown products', () => {
    expect(powerDrawWatts('Mystery', {}, 250)).toEqual({ watts: 250, known: false });
  });
});

describe('breakEvenPrice', () => {
  it.each<[string, string, number | string, string | undefined, string, boolean]>([
    // product, price/kWh, PUE, wear, expected break-even, unknown product
    ['NVIDIA-H100-80GB-HBM3', '0.30', 1.2, '0.05', '0.302', false], // 0.7 kW × 0.30 × 1.2 = 0.252 + 0.05
    ['NVIDIA-GeForce-RTX-4090', '0.40', 1, undefined, '0.18', false], // 0.45 × 0.40
    ['NVIDIA-GeForce-RTX-3090', '0.25', '1.5', '0.02', '0.15125', false], // 0.35 × 0.25 × 1.5 + 0.02
    ['Tesla-T4', '0.1', 1.4, '0', '0.0098', false],
    ['Mystery-GPU', '0.2', 1, '0', '0.07', true], // 350 W default
    ['Tesla-T4', '0.000000000000000001', 1.1, '0', '0.000000000000000001', false], // rounds up, never to 0
  ])('%s at %s/kWh, PUE %s, wear %s → %s', (gpuProduct, pricePerKWh, pue, wear, want, unknown) => {
    const result = breakEvenPrice({ gpuProduct, pricePerKWh, pue, ...(wear === undefined ? {} : { wearPerGpuHour: wear }) });
    expect(formatMoney(result.pricePerGpuHour)).toBe(want);
    expect(result.unknownProduct).toBe(unknown);
  });

  it('takes measured watts, fractional ones included', () => {
    const result = breakEvenPrice({ gpuProduct: 'NVIDIA-L4', pricePerKWh: '1', pue: 1, powerWatts: { 'NVIDIA-L4': 62.5 } });
    expect(formatMoney(result.pricePerGpuHour)).toBe('0.0625');
    expect(result.powerWatts).toBe(62.5);
  });

  it.each<[string, number | string, string]>([
    ['PUE below 1', 0.9, '0.3'],
    ['PUE not a number', Number.NaN, '0.3'],
    ['negative electricity price', 1.2, '-0.3'],
  ])('rejects %s', (_name, pue, pricePerKWh) => {
    expect(() => breakEvenPrice({ gpuProduct: 'Tesla-T4', pricePerKWh, pue })).toThrow();
  });

  it('throws PricingError for a bad PUE', () => {
    expect(() => breakEvenPrice({ gpuProduct: 'Tesla-T4', pricePerKWh: '0.3', pue: 0.5 })).toThrow(PricingError);
  });
});

describe('offerPool', () => {
  it.each<[string, string, boolean, string | undefined]>([
    ['0.10', '0.31', false, 'PriceBelowBreakEven: listed 0.10 < break-even 0.31'],
    ['0.1', '0.302', false, 'PriceBelowBreakEven: listed 0.10 < break-even 0.31'],
    ['0.31', '0.31', true, undefined], // equal covers the cost
    ['2.4', '0.302', true, undefined],
    ['0.3051', '0.30511', false, 'PriceBelowBreakEven: listed 0.3051 < break-even 0.31'],
    ['abc', '0.1', false, 'InvalidPrice: listed "abc"'],
  ])('listed %s, break-even %s', (listed, floor, offered, reason) => {
    const offer = offerPool(listed, floor);
    expect(offer.offered).toBe(offered);
    expect(offer.reason).toBe(reason);
  });

  it('accepts bigint money', () => {
    expect(offerPool(parseMoney('0.5'), breakEvenPrice({ gpuProduct: 'NVIDIA-H100-80GB-HBM3', pricePerKWh: '0.3', pue: 1.2, wearPerGpuHour: '0.05' }).pricePerGpuHour)).toEqual({ offered: true });
  });
});
