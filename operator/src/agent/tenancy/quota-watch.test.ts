import { describe, expect, it } from 'vitest';
import { hardInForce, raisesBound } from './quota-watch.js';

describe('hardInForce', () => {
  const quota = (hard?: Record<string, string>) => ({ status: hard ? { hard } : undefined });
  const bound = { pods: '3', 'requests.nvidia.com/gpu': '8' };

  it('holds when status.hard admits at least the bound written, in any spelling', () => {
    expect(hardInForce(quota(bound), bound)).toBe(true);
    expect(hardInForce(quota({ pods: '4', 'requests.nvidia.com/gpu': '8' }), bound)).toBe(true);
    expect(hardInForce(quota({ pods: '1k', 'requests.nvidia.com/gpu': '2k' }), { pods: '1000', 'requests.nvidia.com/gpu': '2000' })).toBe(true);
  });

  it('does not hold while the quota controller has not copied the raised bound', () => {
    expect(hardInForce(quota({ pods: '2', 'requests.nvidia.com/gpu': '4' }), bound)).toBe(false);
    expect(hardInForce(quota({ pods: '3' }), bound)).toBe(false);
  });

  it('does not hold for a quota with no status yet, or one the watch has not shown', () => {
    expect(hardInForce(quota(), bound)).toBe(false);
    expect(hardInForce(undefined, bound)).toBe(false);
  });
});

describe('raisesBound', () => {
  const after = { pods: '3', 'requests.nvidia.com/gpu': '8' };

  it('is true when any resource rises above the status the write returned, or is new there', () => {
    expect(raisesBound({ pods: '2', 'requests.nvidia.com/gpu': '8' }, after)).toBe(true);
    expect(raisesBound({ pods: '3' }, after)).toBe(true);
    expect(raisesBound({ pods: '3', 'requests.nvidia.com/gpu': 'odd' }, after)).toBe(true);
  });

  it('is false for a bound that only fell or stayed, read in any spelling', () => {
    expect(raisesBound({ pods: '5', 'requests.nvidia.com/gpu': '8' }, after)).toBe(false);
    expect(raisesBound({ pods: '1k', 'requests.nvidia.com/gpu': '1k' }, { pods: '1000', 'requests.nvidia.com/gpu': '999' })).toBe(false);
  });

  it('is false while the quota has no status: it limits nothing yet', () => {
    expect(raisesBound(undefined, after)).toBe(false);
    expect(raisesBound({}, after)).toBe(false);
  });
});
