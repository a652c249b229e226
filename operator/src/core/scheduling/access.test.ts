import { describe, expect, it } from 'vitest';
import { schedule } from './scheduler.js';
import { schedulerConfig } from './config.js';
import { H100, job, pool, provider } from '../testing/fixtures.js';
import { isDecision } from '../types.js';
import { buildSnapshot } from './snapshot.js';

const NOW = Date.UTC(2024, 0, 1, 12);
const config = schedulerConfig();
const closed = { access: { exec: false, portForward: false } };
const execOnly = { access: { exec: true, portForward: false } };

describe('schedule: consumer access (spec.access)', () => {
  it('waits with the reason where no pool allows the verbs a job needs', () => {
    const fleet = [provider('a', [pool(H100, [8], '1', closed)]), provider('b', [pool(H100, [8], '1', execOnly)])];
    const result = schedule(fleet, job(1, 4, { access: { exec: true, portForward: true } }), config, NOW);
    expect(result).toEqual({
      kind: 'unschedulable',
      reasons: { AccessNotOffered: 2 },
      message: '0/2 providers fit: 2 exec/port-forward not allowed by the owner',
    });
  });

  it('places it where the pool allows it, even at a higher price', () => {
    const fleet = [provider('cheap', [pool(H100, [8], '1', closed)]), provider('open', [pool(H100, [8], '3', execOnly)])];
    const result = schedule(fleet, job(1, 4, { access: { exec: true } }), config, NOW);
    expect(isDecision(result) && result.provider).toBe('open');
  });

  it('checks the pool that holds the gang, not another pool of the same provider', () => {
    const fleet = [provider('p', [pool(H100, [8], '1', closed), pool('NVIDIA-A100-SXM4-80GB', [8], '1')])];
    const result = schedule(fleet, job(2, 4, { access: { exec: true } }, [H100]), config, NOW);
    expect(result).toMatchObject({ kind: 'unschedulable', message: '0/1 providers fit: 1 exec not allowed by the owner' });
  });

  it('a job that needs nothing (or false) goes anywhere; pools that say nothing allow both', () => {
    const fleet = [provider('a', [pool(H100, [8], '1', closed)])];
    expect(isDecision(schedule(fleet, job(1, 1), config, NOW))).toBe(true);
    expect(isDecision(schedule(fleet, job(1, 1, { access: { exec: false, portForward: false } }), config, NOW))).toBe(true);
    expect(isDecision(schedule([provider('a', [pool(H100, [8])])], job(1, 1, { access: { exec: true, portForward: true } }), config, NOW))).toBe(true);
  });

  it('ranks a closer miss first: access is checked after hardware and price, before provider standing', () => {
    // Too expensive AND closed: the price (earlier check) is what the message names.
    const pricey = [provider('a', [pool(H100, [8], '9', closed)])];
    expect(schedule(pricey, job(1, 1, { access: { exec: true }, budget: { maxPricePerGpuHour: '2' } }), config, NOW)).toMatchObject({ reasons: { PriceAboveBudget: 1 } });
    // Closed AND not ready: the pool check fails first, so access is named.
    const notReady = [provider('a', [pool(H100, [8], '1', closed)], { ready: false })];
    expect(schedule(notReady, job(1, 1, { access: { exec: true } }), config, NOW)).toMatchObject({ reasons: { AccessNotOffered: 1 } });
  });

  it('follows an owner who switches exec off in a live market snapshot (the hub updates it in place)', () => {
    const market = buildSnapshot([provider('a', [pool(H100, [8], '1')])]);
    const needsExec = job(1, 1, { access: { exec: true } });
    expect(isDecision(schedule(market, needsExec, config, NOW))).toBe(true);
    market.updateProvider(provider('a', [pool(H100, [8], '1', { access: { exec: false, portForward: true } })]));
    expect(schedule(market, needsExec, config, NOW)).toMatchObject({ reasons: { AccessNotOffered: 1 } });
    market.updateProvider(provider('a', [pool(H100, [8], '1', { access: { exec: true, portForward: true } })]));
    expect(isDecision(schedule(market, needsExec, config, NOW))).toBe(true);
  });
});
