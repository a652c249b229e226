import type { V1NetworkPolicyEgressRule } from '@kubernetes/client-node';
import { DEFAULT_EGRESS, describeEgress, egressAllows, NON_PUBLIC_V4, NON_PUBLIC_V6, parseCidr, type EgressProfile } from '../../core/egress.js';
import type { EgressProfile as EgressMessage } from '../../gen/proto/fedgpu/v1/market.js';

// Egress of one attempt: the owner declares per pool what job pods may reach (settings `egress`,
// `egressByProduct`), the hub places a job only where its need fits, and the agent grants exactly
// the job's need, no more, in the attempt's NetworkPolicy (rendezvous.ts attemptPolicy). Pure.

/** The owner's declaration for one GPU product (settings.egressByProduct, else settings.egress, else dns). */
export function poolEgress(settings: { egress?: EgressProfile; egressByProduct?: Record<string, EgressProfile> }, gpuProduct: string): EgressProfile {
  return settings.egressByProduct?.[gpuProduct] ?? settings.egress ?? DEFAULT_EGRESS;
}

export function egressToMessage(p: EgressProfile): EgressMessage {
  return { mode: p.mode, destinations: (p.destinations ?? []).map((d) => ({ cidr: d.cidr, ports: d.ports ?? [] })) };
}

export function egressFromMessage(m: EgressMessage | undefined): EgressProfile {
  if (!m || !m.mode) return DEFAULT_EGRESS;
  const profile: EgressProfile = { mode: m.mode as EgressProfile['mode'] };
  if (m.destinations.length) profile.destinations = m.destinations.map((d) => (d.ports.length ? { cidr: d.cidr, ports: d.ports } : { cidr: d.cidr }));
  return profile;
}

/** Why the pool cannot grant the need, or undefined when it can (the agent's own check of the hub). */
export function egressRefusal(offer: EgressProfile, need: EgressProfile): string | undefined {
  return egressAllows(offer, need) ? undefined : `the job needs egress ${describeEgress(need)}; this pool offers ${describeEgress(offer)}`;
}

const DNS: V1NetworkPolicyEgressRule = {
  to: [{ namespaceSelector: {} }],
  ports: [
    { protocol: 'UDP', port: 53 },
    { protocol: 'TCP', port: 53 },
  ],
};

/** The egress rules granting `need` beyond the gang (none: no rules; the attempt's policy denies the rest). */
export function egressRules(need: EgressProfile): V1NetworkPolicyEgressRule[] {
  switch (need.mode) {
    case 'none':
      return [];
    case 'dns':
      return [DNS];
    case 'internet':
      return [
        DNS,
        {
          to: [
            { ipBlock: { cidr: '0.0.0.0/0', except: NON_PUBLIC_V4 } },
            { ipBlock: { cidr: '::/0', except: NON_PUBLIC_V6 } },
          ],
        },
      ];
    case 'cidrs':
      return [
        DNS,
        ...(need.destinations ?? []).map((d) => ({
          to: [{ ipBlock: { cidr: canonical(d.cidr) } }],
          ...(d.ports?.length ? { ports: d.ports.map((port) => ({ protocol: 'TCP', port })) } : {}),
        })),
      ];
  }
}

// NetworkPolicy ipBlock wants the network address (10.0.0.0/8, not 10.1.2.3/8).
function canonical(cidr: string): string {
  const c = parseCidr(cidr);
  if (!c || c.v6) return cidr;
  const mask = c.prefix === 0 ? 0n : ((1n << 32n) - 1n) ^ ((1n << BigInt(32 - c.prefix)) - 1n);
  const n = c.bits & mask;
  return `${[24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.')}/${c.prefix}`;
}
