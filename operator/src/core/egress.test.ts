import { describe, expect, it } from 'vitest';
import { cidrContains, describeEgress, egressAllows, invalidEgress, type EgressProfile } from './egress.js';

const none: EgressProfile = { mode: 'none' };
const dns: EgressProfile = { mode: 'dns' };
const internet: EgressProfile = { mode: 'internet' };
const s3: EgressProfile = { mode: 'cidrs', destinations: [{ cidr: '52.216.0.0/15', ports: [443] }] };

describe('egress profiles', () => {
  it.each([
    ['none', none, none, true],
    ['none', none, dns, false],
    ['dns', dns, dns, true],
    ['dns', dns, internet, false],
    ['cidrs', s3, dns, true],
    ['cidrs', s3, internet, false],
    ['internet', internet, internet, true],
    ['internet', internet, dns, true],
  ])('pool %s offering %j vs need %j → %s', (_name, offer, need, ok) => {
    expect(egressAllows(offer, need)).toBe(ok);
  });

  it('listed CIDRs are covered one by one, ports included', () => {
    expect(egressAllows(s3, { mode: 'cidrs', destinations: [{ cidr: '52.217.4.0/24', ports: [443] }] })).toBe(true);
    expect(egressAllows(s3, { mode: 'cidrs', destinations: [{ cidr: '52.217.4.0/24', ports: [80] }] })).toBe(false);
    expect(egressAllows(s3, { mode: 'cidrs', destinations: [{ cidr: '52.217.4.0/24' }] })).toBe(false);
    expect(egressAllows(s3, { mode: 'cidrs', destinations: [{ cidr: '52.0.0.0/8', ports: [443] }] })).toBe(false);
    expect(egressAllows({ mode: 'cidrs', destinations: [{ cidr: '52.216.0.0/15' }] }, { mode: 'cidrs', destinations: [{ cidr: '52.216.1.1/32', ports: [22] }] })).toBe(true);
  });

  it('internet covers public CIDRs only: a job cannot ask its way into the provider network or the metadata endpoint', () => {
    expect(egressAllows(internet, { mode: 'cidrs', destinations: [{ cidr: '203.0.113.0/24' }] })).toBe(true);
    for (const cidr of ['10.1.0.0/16', '169.254.169.254/32', '0.0.0.0/0', 'fd00::/8', '64:ff9b::a00:1/128', '198.18.0.1/32', '2002:a00:1::/48']) {
      expect(egressAllows(internet, { mode: 'cidrs', destinations: [{ cidr }] }), cidr).toBe(false);
    }
  });

  it('never counts IPv4 written as IPv6 as public: ::ffff:0:0/96 is IPv4 0.0.0.0/0 to the apiserver and to Go-based policy engines', () => {
    // Each passed the check before: the metadata endpoint, 10/8, all of IPv4, and the IPv4-compatible form.
    for (const cidr of ['::ffff:0:0/96', '::ffff:a9fe:a9fe/128', '::ffff:a00:0/104', '::a00:1/128', '::/0', '::/64']) {
      expect(egressAllows(internet, { mode: 'cidrs', destinations: [{ cidr }] }), cidr).toBe(false);
    }
    expect(egressAllows(internet, { mode: 'cidrs', destinations: [{ cidr: '2606:4700::/32' }] })).toBe(true);
    // Refused outright as a destination, for jobs and pools alike, with the field and the fix.
    expect(invalidEgress({ mode: 'cidrs', destinations: [{ cidr: '1.1.1.1/32' }, { cidr: '::ffff:a9fe:a9fe/128' }] }, 'spec.network.egress')).toBe(
      'spec.network.egress.destinations[1].cidr "::ffff:a9fe:a9fe/128" is an IPv4 range written as IPv6 (::ffff:0:0/96, ::/96): write it as IPv4',
    );
    expect(invalidEgress({ mode: 'cidrs', destinations: [{ cidr: '::ffff:0:0/96' }] }, 'e')).toMatch(/IPv4 range written as IPv6/);
    expect(invalidEgress({ mode: 'cidrs', destinations: [{ cidr: '2606:4700::/32' }] }, 'e')).toBeUndefined();
  });

  it("refuses what the apiserver's isCIDR refuses: leading zeros in an octet or the prefix", () => {
    // Accepted here and refused there, a pool's range would fail every status write of its provider.
    for (const cidr of ['010.0.0.0/8', '10.0.0.00/24', '10.0.0.0/08']) {
      expect(invalidEgress({ mode: 'cidrs', destinations: [{ cidr }] }, 'e'), cidr).toMatch(/^e\.destinations\[0\]\.cidr /);
    }
    for (const cidr of ['10.0.0.0/8', '0.0.0.0/0', '203.0.113.0/24']) expect(invalidEgress({ mode: 'cidrs', destinations: [{ cidr }] }, 'e'), cidr).toBeUndefined();
  });

  it('contains IPv4 and IPv6 ranges', () => {
    expect(cidrContains('10.0.0.0/8', '10.2.3.0/24')).toBe(true);
    expect(cidrContains('10.2.3.0/24', '10.0.0.0/8')).toBe(false);
    expect(cidrContains('2001:db8::/32', '2001:db8:1::/48')).toBe(true);
    expect(cidrContains('2001:db8::/32', '10.0.0.0/8')).toBe(false);
  });

  it('explains malformed profiles by field', () => {
    expect(invalidEgress({ mode: 'cidrs' }, 'egress')).toBe('egress.destinations: mode cidrs needs at least one destination');
    expect(invalidEgress({ mode: 'cidrs', destinations: [{ cidr: '300.1.1.1/8' }] }, 'egress')).toMatch(/destinations\[0\]\.cidr "300.1.1.1\/8" is not a CIDR/);
    expect(invalidEgress({ mode: 'cidrs', destinations: [{ cidr: '1.1.1.1/32', ports: [70000] }] }, 'e')).toMatch(/70000 is not a port/);
    expect(invalidEgress({ mode: 'everything' as 'none' }, 'e')).toMatch(/is not one of none, dns, cidrs, internet/);
    expect(invalidEgress(s3, 'e')).toBeUndefined();
    expect(describeEgress(s3)).toBe('cidrs 52.216.0.0/15:443');
  });
});
