import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sandboxProviders } from './topology.js';
import { repoRoot } from '../testbed/tools.js';
import { formatMoney } from '../core/money.js';
import { breakEvenPrice, GPU_POWER_WATTS } from '../core/pricing.js';

// Facts read off a real NVIDIA H100 (nvidia-smi on the lent GPU machine, 2026-11-25; the output is
// kept in test/fixtures): the sandbox's simulated H100 nodes and the pricing table must match it.

const csv = readFileSync(join(repoRoot, 'test', 'fixtures', 'nvidia-smi-h100-query.csv'), 'utf8').trim().split('\n');
const header = csv[0]!.split(',').map((h) => h.trim());
const row = Object.fromEntries(csv[1]!.split(',').map((v, i) => [header[i], v.trim()]));
const watts = (field: string) => Number.parseFloat(row[field]!);
/** GPU Feature Discovery names a product by nvidia-smi's name with spaces turned into dashes. */
const gfdProduct = (smiName: string) => smiName.trim().replace(/\s+/g, '-');

describe('the real H100', () => {
  const product = gfdProduct(row.name!);
  const sandboxH100 = sandboxProviders.flatMap((p) => p.gpuNodes).find((g) => g.product === product);

  it('is the product and memory the sandbox simulates', () => {
    expect(product).toBe('NVIDIA-H100-80GB-HBM3');
    expect(sandboxH100).toBeDefined();
    expect(`${sandboxH100!.memoryMiB} MiB`).toBe(row['memory.total [MiB]']);
    // GFD's nvidia.com/cuda.driver.major is the driver's major version, 580 on this card.
    expect(sandboxH100!.cudaDriverMajor).toBe(Number.parseInt(row.driver_version!, 10));
  });

  it('draws at most what the pricing table assumes', () => {
    expect(GPU_POWER_WATTS[product]).toBe(watts('power.limit [W]'));
    expect(watts('power.draw [W]')).toBeLessThanOrEqual(GPU_POWER_WATTS[product]!);
  });

  it('breaks even, at the sandbox electricity price, where the table says', () => {
    // 700 W × 0.25 credits/kWh × PUE 1.3 + 0.02 wear = 0.2475 credits per GPU-hour.
    const even = breakEvenPrice({ gpuProduct: product, pricePerKWh: '0.25', pue: 1.3, wearPerGpuHour: '0.02' });
    expect(formatMoney(even.pricePerGpuHour)).toBe('0.2475');
    expect(even.unknownProduct).toBe(false);
  });
});
