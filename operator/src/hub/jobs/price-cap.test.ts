import { describe, expect, it } from 'vitest';
import { DEFAULT_SCHEDULER_CONFIG } from '../../core/scheduling/config.js';
import { schedule } from '../../core/scheduling/scheduler.js';
import { H100, job, pool, provider } from '../../core/testing/fixtures.js';
import { withPriceCap } from './controller.js';

const NOW = Date.parse('2026-12-02T08:00:00Z');

describe('withPriceCap: a placement on an open escrow pays no more than the trial it was opened for', () => {
  it('refuses the provider once it raised its price after the escrow opened (the attack: bait at 1, switch to the consumer cap)', () => {
    const request = job(1, 1, { budget: { maxPricePerGpuHour: '5' } });
    // The trial placed at 1.00; the escrow opened; the provider now asks 5, within the consumer's cap.
    const raised = [provider('a', [pool(H100, [8], '5')])];
    expect(schedule(raised, request, DEFAULT_SCHEDULER_CONFIG, NOW).kind).toBe('decision');
    expect(schedule(raised, withPriceCap(request, '1'), DEFAULT_SCHEDULER_CONFIG, NOW)).toMatchObject({ kind: 'unschedulable', reasons: { PriceAboveBudget: 1 } });
    // At the trial price, or lower, it is placed as before.
    expect(schedule([provider('a', [pool(H100, [8], '1')])], withPriceCap(request, '1'), DEFAULT_SCHEDULER_CONFIG, NOW).kind).toBe('decision');
  });

  it('never raises the consumer cap, and leaves a request without a trial price as it is', () => {
    const request = job(1, 1, { budget: { maxPricePerGpuHour: '2' } });
    expect(withPriceCap(request, '3')).toBe(request);
    expect(withPriceCap(request, undefined)).toBe(request);
    expect(withPriceCap(request, '1.5').budget).toEqual({ maxPricePerGpuHour: '1.5' });
  });
});
