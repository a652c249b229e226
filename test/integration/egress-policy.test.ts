import { stringify } from 'yaml';
import { describe, expect, inject, it } from 'vitest';
import { egressRules } from '../../operator/src/agent/attempt/egress.js';
import type { EgressProfile } from '../../operator/src/core/egress.js';
import { runKubectl } from '../../operator/src/testbed/kubectl.js';

// The egress rules the agent writes, as a real apiserver validates them (server dry run, nothing
// stored). A closed range the apiserver refuses (an IPv4-mapped IPv6 prefix is read as IPv4 and is
// then no subset of ::/0) fails the whole attempt policy, and the job runs without its egress.

const kubeconfig = inject('kubeconfig');

const policyFor = (need: EgressProfile) => stringify({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: 'egress-check', namespace: 'default' },
  spec: { podSelector: {}, policyTypes: ['Egress'], egress: egressRules(need) },
});

describe("the agent's egress rules", () => {
  it.each<[string, EgressProfile]>([
    ['internet', { mode: 'internet' }],
    ['dns', { mode: 'dns' }],
    ['cidrs', { mode: 'cidrs', destinations: [{ cidr: '203.0.113.0/24', ports: [443] }, { cidr: '2001:db8::/32' }] }],
  ])('are accepted by the apiserver for %s', async (_mode, need) => {
    const res = await runKubectl(kubeconfig, ['create', '--dry-run=server', '-f', '-'], policyFor(need));
    expect(res.code, res.stderr).toBe(0);
  });
});
