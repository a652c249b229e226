import { describe, expect, it } from 'vitest';
import { hardInForce } from './quota-watch.js';

describe('hardInForce', () => {
  const quota = (hard?: Record<string, string>) => ({ status: hard ? { hard } : undefined });

  it('holds when status.hard is exactly the bound written', () => {
    expect(hardInForce(quota({ pods: '3', 'requests.nvidia.com/gpu': '8' }), { pods: '3', 'requests.nvidia.com/gpu': '8' })).toBe(true);
  });

  it('does not hold while the quota controller has not copied the new bound', () => {
    expect(hardInForce(quota({ pods: '2', 'requests.nvidia.com/gpu': '4' }), { pods: '3', 'requests.nvidia.com/gpu': '8' })).toBe(false);
    expect(hardInForce(quota({ pods: '3' }), { pods: '3', 'requests.nvidia.com/gpu': '8' })).toBe(false);
  });

  it('does not hold for a quota with no status yet, or one the watch has not shown', () => {
    expect(hardInForce(quota(), { pods: '1' })).toBe(false);
    expect(hardInForce(undefined, { pods: '1' })).toBe(false);
  });

  it('does not hold when status.hard names a resource the bound no longer has', () => {
    expect(hardInForce(quota({ pods: '1', 'requests.cpu': '2' }), { pods: '1' })).toBe(false);
  });
});
