// Egress profiles (DESIGN §8a): what a pool lets job pods reach, and what a job needs. Ordered
// none < dns < cidrs < internet, except that listed CIDRs must be covered one by one. Pure; the
// scheduler filters on `egressAllows`, the agent writes the NetworkPolicies (agent/attempt/egress.ts).

export const EGRESS_MODES = ['none', 'dns', 'cidrs', 'internet'] as const;
export type EgressMode = (typeof EGRESS_MODES)[number];

/** An address range and the TCP ports allowed there (empty or absent: every port). */
export interface EgressDestination {
  cidr: string;
  ports?: number[];
}

/**
 * - none: nothing outside the gang;
 * - dns: cluster DNS (port 53) only;
 * - cidrs: DNS and the listed destinations;
 * - internet: DNS and every public address (private, link-local and loopback ranges stay closed,
 *   so neither other tenants, the provider's network nor a cloud metadata endpoint are reachable).
 */
export interface EgressProfile {
  mode: EgressMode;
  destinations?: EgressDestination[];
}

/** What a pool offers when its owner declares nothing, and what a job needs when it says nothing. */
export const DEFAULT_EGRESS: EgressProfile = { mode: 'dns' };

/**
 * Never reachable under `internet`: RFC 1918, CGNAT, link-local, loopback, "this network",
 * IETF protocol assignments, benchmarking, multicast and reserved; IPv6 loopback, unspecified,
 * NAT64 (which reaches the provider's private IPv4 network from an IPv6-only cluster), ULA,
 * link-local and multicast.
 */
export const NON_PUBLIC_V4 = [
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.0.0.0/24', '192.168.0.0/16',
  '198.18.0.0/15', '224.0.0.0/4', '240.0.0.0/4',
  // Public, but host-internal on Azure (WireServer): reachable from a pod, it hands out node secrets.
  '168.63.129.16/32',
];
/** Also 6to4 and Teredo, which embed IPv4 addresses, private ones included. */
// Not ::ffff:0:0/96 (IPv4-mapped): the apiserver reads it as IPv4 0.0.0.0/0 and refuses it as an
// except of ::/0; IPv4 destinations are closed by NON_PUBLIC_V4.
export const NON_PUBLIC_V6 = ['::/128', '::1/128', '64:ff9b::/96', '64:ff9b:1::/48', '2001::/32', '2002::/16', 'fc00::/7', 'fe80::/10', 'ff00::/8'];
/**
 * IPv4 written as IPv6: IPv4-mapped (::ffff:a.b.c.d) and the deprecated IPv4-compatible
 * (::a.b.c.d). Go's net package, and so the apiserver and policy engines built on it, read
 * ::ffff:0:0/96 as IPv4 0.0.0.0/0: a job listing it (or ::ffff:a9fe:a9fe/128, 169.254.169.254)
 * would reach all of the provider's IPv4 network past every IPv4 exception. Never public, and
 * refused as a destination: write the IPv4 range.
 */
export const IPV4_IN_V6 = ['::ffff:0:0/96', '::/96'];

const RANK: Record<EgressMode, number> = { none: 0, dns: 1, cidrs: 2, internet: 3 };

/** Whether a pool offering `offer` may run a job needing `need`. */
export function egressAllows(offer: EgressProfile, need: EgressProfile): boolean {
  if (need.mode === 'none') return true;
  if (need.mode === 'dns') return RANK[offer.mode] >= RANK.dns;
  if (need.mode === 'internet') return offer.mode === 'internet';
  // cidrs: each destination must be public (internet) or inside one the pool lists, ports included.
  return (need.destinations ?? []).every((d) =>
    offer.mode === 'internet'
      ? isPublic(d.cidr)
      : offer.mode === 'cidrs' && (offer.destinations ?? []).some((o) => cidrContains(o.cidr, d.cidr) && portsCover(o.ports, d.ports)),
  );
}

/** "internet", "dns", "none" or "cidrs 203.0.113.0/24:443": for messages and `fedgpu market`. */
export function describeEgress(profile: EgressProfile): string {
  if (profile.mode !== 'cidrs') return profile.mode;
  const list = (profile.destinations ?? []).map((d) => (d.ports?.length ? `${d.cidr}:${d.ports.join('+')}` : d.cidr));
  return `cidrs ${list.join(',')}`;
}

/** Why a profile is malformed (field path and cause), or undefined when it is sound. */
export function invalidEgress(profile: EgressProfile, path: string): string | undefined {
  if (!EGRESS_MODES.includes(profile.mode)) return `${path}.mode ${JSON.stringify(profile.mode)} is not one of ${EGRESS_MODES.join(', ')}`;
  const destinations = profile.destinations ?? [];
  if (profile.mode === 'cidrs' && destinations.length === 0) return `${path}.destinations: mode cidrs needs at least one destination`;
  if (profile.mode !== 'cidrs' && destinations.length > 0) return `${path}.destinations: only mode cidrs lists destinations`;
  if (destinations.length > 64) return `${path}.destinations: at most 64`;
  for (const [i, d] of destinations.entries()) {
    if (parseCidr(d.cidr) === undefined) return `${path}.destinations[${i}].cidr ${JSON.stringify(d.cidr)} is not a CIDR like 203.0.113.0/24`;
    if (IPV4_IN_V6.some((x) => cidrContains(x, d.cidr))) {
      return `${path}.destinations[${i}].cidr ${JSON.stringify(d.cidr)} is an IPv4 range written as IPv6 (${IPV4_IN_V6.join(', ')}): write it as IPv4`;
    }
    for (const p of d.ports ?? []) {
      if (!Number.isInteger(p) || p < 1 || p > 65535) return `${path}.destinations[${i}].ports: ${p} is not a port (1-65535)`;
    }
  }
  return undefined;
}

function portsCover(offered: number[] | undefined, needed: number[] | undefined): boolean {
  if (!offered?.length) return true;
  if (!needed?.length) return false;
  return needed.every((p) => offered.includes(p));
}

interface Cidr {
  v6: boolean;
  bits: bigint;
  prefix: number;
}

/**
 * Parses IPv4 or IPv6 CIDR notation; undefined when malformed. Leading zeros (`010.0.0.0/8`,
 * `10.0.0.0/08`) are refused: the apiserver's isCIDR refuses them in an octet, and a range accepted
 * here and refused there would fail every status write of the provider that offers it.
 */
export function parseCidr(text: string): Cidr | undefined {
  const [addr, len, extra] = text.split('/');
  if (addr === undefined || len === undefined || extra !== undefined || !NO_LEADING_ZERO.test(len)) return undefined;
  const prefix = Number(len);
  const v6 = addr.includes(':');
  const bits = v6 ? parseV6(addr) : parseV4(addr);
  if (bits === undefined || prefix > (v6 ? 128 : 32)) return undefined;
  return { v6, bits, prefix };
}

/** A decimal of 1 to 3 digits without a leading zero. */
const NO_LEADING_ZERO = /^(0|[1-9]\d{0,2})$/;

function parseV4(addr: string): bigint | undefined {
  const parts = addr.split('.');
  if (parts.length !== 4 || parts.some((p) => !NO_LEADING_ZERO.test(p) || Number(p) > 255)) return undefined;
  return parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n);
}

function parseV6(addr: string): bigint | undefined {
  const halves = addr.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string | undefined) => (s ? s.split(':') : []);
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || missing < 0) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  if (all.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  return all.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** Whether range `outer` contains range `inner` (same family). */
export function cidrContains(outer: string, inner: string): boolean {
  const o = parseCidr(outer);
  const i = parseCidr(inner);
  if (!o || !i || o.v6 !== i.v6 || i.prefix < o.prefix) return false;
  const width = BigInt(o.v6 ? 128 : 32);
  const shift = width - BigInt(o.prefix);
  return o.bits >> shift === i.bits >> shift;
}

function isPublic(cidr: string): boolean {
  const c = parseCidr(cidr);
  if (!c) return false;
  const closed = c.v6 ? [...NON_PUBLIC_V6, ...IPV4_IN_V6] : NON_PUBLIC_V4;
  // Overlap either way: inside a closed range, or a range that contains one.
  return !closed.some((x) => cidrContains(x, cidr) || cidrContains(cidr, x));
}
