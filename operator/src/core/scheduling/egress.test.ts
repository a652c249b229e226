import { describe, expect, it } from 'vitest';
import { schedule } from './scheduler.js';
import { schedulerConfig } from './config.js';
import { H100, job, pool, provider } from '../testing/fixtures.js';
import { isDecision } from '../types.js';

const NOW = Date.UTC(2024, 0, 1, 12);
const config = schedulerConfig();
const internet = { mode: 'internet' as const };

describe('schedule: egress profiles', () => {
  it('waits with the reason where no pool offers the egress a job needs', () => {
    const fleet = [provider('a', [pool(H100, [8])]), provider('b', [pool(H100, [8], '1', { egress: { mode: 'dns' } })])];
    const result = schedule(fleet, job(1, 4, { network: { egress: internet } }), config, 0 + NOW);
    expect(result).toEqual({ kind: 'unschedulable', reasons: { EgressNotOffered: 2 }, message: '0/2 providers fit: 2 egress internet not offered' });
  });

  it('places it where a pool does, even at a higher price', () => {
    const fleet = [provider('cheap', [pool(H100, [8], '1')]), provider('open', [pool(H100, [8], '3', { egress: internet })])];
    const result = schedule(fleet, job(1, 4, { network: { egress: internet } }), config, NOW);
    expect(isDecision(result) && result.provider).toBe('open');
  });

  it('checks the pool that fits, not another pool of the same provider', () => {
    const fleet = [provider('p', [pool(H100, [8], '1'), pool('NVIDIA-A100-SXM4-80GB', [8], '1', { egress: internet })])];
    const result = schedule(fleet, job(1, 4, { network: { egress: internet } }, [H100]), config, NOW);
    expect(result.kind === 'unschedulable' && result.message).toBe('0/1 providers fit: 1 egress internet not offered');
  });

  it('lists the CIDRs a job asked for, and refuses a malformed need by field', () => {
    const s3 = { mode: 'cidrs' as const, destinations: [{ cidr: '52.216.0.0/15', ports: [443] }] };
    const fleet = [provider('p', [pool(H100, [8], '1', { egress: { mode: 'cidrs', destinations: [{ cidr: '52.216.0.0/15', ports: [443] }] } })])];
    expect(isDecision(schedule(fleet, job(1, 1, { network: { egress: s3 } }), config, NOW))).toBe(true);
    const wider = { mode: 'cidrs' as const, destinations: [{ cidr: '52.0.0.0/8', ports: [443] }] };
    expect(schedule(fleet, job(1, 1, { network: { egress: wider } }), config, NOW)).toMatchObject({ message: '0/1 providers fit: 1 egress cidrs 52.0.0.0/8:443 not offered' });
    expect(schedule(fleet, job(1, 1, { network: { egress: { mode: 'cidrs' } } }), config, NOW)).toMatchObject({
      message: 'invalid job: network.egress.destinations: mode cidrs needs at least one destination',
    });
  });

  it('a job needing none or dns is placed on default pools', () => {
    const fleet = [provider('a', [pool(H100, [8])])];
    expect(isDecision(schedule(fleet, job(1, 1, { network: { egress: { mode: 'dns' } } }), config, NOW))).toBe(true);
    expect(isDecision(schedule([provider('a', [pool(H100, [8], '1', { egress: { mode: 'none' } })])], job(1, 1, { network: { egress: { mode: 'dns' } } }), config, NOW))).toBe(false);
  });
});
