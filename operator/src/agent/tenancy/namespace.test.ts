import { describe, expect, it } from 'vitest';
import { refusalReason } from '../pods/runner.js';
import { restrictedProblem, tenantNamespaceName } from './namespace.js';

describe('tenantNamespaceName', () => {
  it('gives each consumer its own DNS-1123 namespace, whatever the hub sends', () => {
    const a = tenantNamespaceName('fedgpu-jobs', 'team-a');
    expect(a).toMatch(/^fedgpu-jobs-team-a-[0-9a-f]{8}$/);
    expect(tenantNamespaceName('fedgpu-jobs', 'team-b')).not.toBe(a);
    expect(tenantNamespaceName('fedgpu-jobs', 'team-a')).toBe(a);
    for (const hostile of ['../kube-system', 'KUBE_SYSTEM', 'x'.repeat(300), '', '---', 'a.b/c']) {
      const name = tenantNamespaceName('fedgpu-jobs', hostile);
      expect(name).toMatch(/^fedgpu-jobs-([a-z0-9]([-a-z0-9]*[a-z0-9])?-)?[0-9a-f]{8}$/);
      expect(name.length).toBeLessThanOrEqual(63);
    }
    // Tenants that read alike still differ by the hash.
    expect(tenantNamespaceName('p', 'a.b')).not.toBe(tenantNamespaceName('p', 'a-b'));
  });
});

describe('restrictedProblem', () => {
  const ns = (labels: Record<string, string>) => ({ metadata: { name: 'n', labels } });
  it('accepts restricted at latest or unversioned', () => {
    expect(restrictedProblem(ns({ 'pod-security.kubernetes.io/enforce': 'restricted' }))).toBeUndefined();
    expect(restrictedProblem(ns({ 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/enforce-version': 'latest' }))).toBeUndefined();
  });
  it.each([
    [{}, /enforce=unset/],
    [{ 'pod-security.kubernetes.io/enforce': 'baseline' }, /enforce=baseline/],
    [{ 'pod-security.kubernetes.io/enforce': 'privileged' }, /enforce=privileged/],
    [{ 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/enforce-version': 'v1.22' }, /only at v1.22/],
  ])('refuses %j', (labels, message) => expect(restrictedProblem(ns(labels))).toMatch(message));
});

describe('refusalReason', () => {
  const err = (code: number, message: string) => ({ code, body: JSON.stringify({ kind: 'Status', message }) });
  it('tells the template\'s fault from the provider\'s, keeping the apiserver\'s words', () => {
    expect(refusalReason(err(422, 'Pod "x" is invalid: spec.containers[0].image: Required value'))).toBe('InvalidTemplate: Pod "x" is invalid: spec.containers[0].image: Required value');
    expect(refusalReason(err(403, 'pods "x" is forbidden: violates PodSecurity "restricted:latest": host namespaces'))).toMatch(/^PodSecurityRefused: .*host namespaces/);
    // Admission refusals the template's own choices can draw: nobody's fault, never the provider's.
    expect(refusalReason(err(403, 'pods "x" is forbidden: exceeded quota: fedgpu-attempts'))).toMatch(/^AdmissionRefused: .*exceeded quota/);
    expect(refusalReason(err(403, 'pods "x" is forbidden: maximum ephemeral-storage usage per Container is 200Gi, but limit is 1Ti'))).toMatch(/^AdmissionRefused: .*per Container is 200Gi/);
    expect(refusalReason(err(403, 'admission webhook "images.example.com" denied the request: registry not allowed'))).toMatch(/^AdmissionRefused: /);
    expect(refusalReason({ code: 403, body: 'not json' , message: 'HTTP-Code: 403' })).toBe('AdmissionRefused: HTTP-Code: 403');
    // The agent's own rights are the provider's to set.
    expect(refusalReason(err(403, 'pods is forbidden: User "system:serviceaccount:fedgpu:agent" cannot create resource "pods" in API group "" in the namespace "x"'))).toMatch(/^ProviderRefused: .*cannot create resource/);
  });
});
