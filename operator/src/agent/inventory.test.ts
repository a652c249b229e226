import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { gpuNodes } from '../testbed/kwok/gpu-nodes.js';
import { buildInventory, type ProviderSettings } from './inventory.js';

const ready = (n: V1Node): V1Node => ({
  ...n,
  status: { ...n.status, conditions: [{ type: 'Ready', status: 'True' }] },
});
const h100 = gpuNodes({ prefix: 'h100', count: 2, gpusPerNode: 8, product: 'NVIDIA-H100-80GB-HBM3', memoryMiB: 81559 }).map(ready);
const pod = (name: string, node: string, gpus: number, phase = 'Running'): V1Pod => ({
  metadata: { name, namespace: 'jobs' },
  spec: { nodeName: node, containers: [{ name: 'c', image: 'x', resources: { limits: { 'nvidia.com/gpu': String(gpus) } } }] },
  status: { phase },
});
const settings: ProviderSettings = {
  pricePerGpuHour: { 'NVIDIA-H100-80GB-HBM3': '2.40' },
  electricity: { pricePerKWh: '0.30', pue: 1.5 },
};
const noon = Date.UTC(2026, 10, 25, 12, 0);

describe('buildInventory', () => {
  it('counts GPUs held by live pods and ignores finished ones', () => {
    const [pool] = buildInventory(h100, [pod('a', 'h100-0', 3), pod('b', 'h100-0', 5, 'Succeeded')], settings, noon);
    expect(pool).toMatchObject({ gpuProduct: 'NVIDIA-H100-80GB-HBM3', memoryMiB: 81559, total: 16, idle: 13, offered: true });
    expect(pool?.nodes.map((n) => n.idleGpus)).toEqual([5, 8]);
    // 700 W × 0.30 /kWh × 1.5 = 0.315 per GPU-hour
    expect(pool?.breakEvenPricePerGpuHour).toBe('0.315');
  });

  it('offers nothing on a cordoned node', () => {
    const cordoned = [{ ...h100[0]!, spec: { ...h100[0]!.spec, unschedulable: true } }, h100[1]!];
    const [pool] = buildInventory(cordoned, [], settings, noon);
    expect(pool?.nodes[0]).toMatchObject({ idleGpus: 0, cordoned: true });
    expect(pool?.idle).toBe(8);
  });

  it('refuses to offer below break-even, and says why', () => {
    const [pool] = buildInventory(h100, [], { ...settings, pricePerGpuHour: { 'NVIDIA-H100-80GB-HBM3': '0.10' } }, noon);
    expect(pool?.offered).toBe(false);
    expect(pool?.idle).toBe(0);
    expect(pool?.notOfferedReason).toBe('PriceBelowBreakEven: listed 0.10 < break-even 0.32');
  });

  it('offers nothing outside the owner\'s window', () => {
    const night = { ...settings, availability: { windows: [{ start: '22:00', end: '06:00' }] } };
    expect(buildInventory(h100, [], night, noon)[0]).toMatchObject({ offered: false, idle: 0 });
    expect(buildInventory(h100, [], night, Date.UTC(2026, 10, 25, 23, 0))[0]).toMatchObject({ offered: true, idle: 16 });
  });

  it('does not offer a product without a price', () => {
    const [pool] = buildInventory(h100, [], { pricePerGpuHour: {} }, noon);
    expect(pool?.offered).toBe(false);
    expect(pool?.notOfferedReason).toMatch(/^NoPriceSet/);
  });
});

describe('runtimeClassOf', () => {
  it('takes the per-product choice, then the cluster-wide one, else none', async () => {
    const { runtimeClassOf } = await import('./inventory.js');
    const settings = { pricePerGpuHour: {}, runtimeClassName: 'gvisor', runtimeClassByProduct: { 'NVIDIA-H100-80GB-HBM3': 'kata' } };
    expect(runtimeClassOf(settings, 'NVIDIA-H100-80GB-HBM3')).toBe('kata');
    expect(runtimeClassOf(settings, 'NVIDIA-GeForce-RTX-4090')).toBe('gvisor');
    expect(runtimeClassOf({ pricePerGpuHour: {} }, 'NVIDIA-GeForce-RTX-4090')).toBeUndefined();
  });
});
