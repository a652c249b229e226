import { describe, expect, it } from 'vitest';
import { kubeVersion, mutatingAdmissionPolicyFlags } from './kube-version.js';

describe('mutatingAdmissionPolicyFlags', () => {
  it('turns the gate and the API version on while the feature is alpha or beta, nothing once GA or before it existed', () => {
    expect(mutatingAdmissionPolicyFlags('v1.31.9')).toEqual([]);
    expect(mutatingAdmissionPolicyFlags('v1.32.0')).toEqual(['--feature-gates=MutatingAdmissionPolicy=true', '--runtime-config=admissionregistration.k8s.io/v1alpha1=true']);
    expect(mutatingAdmissionPolicyFlags('v1.34.4')).toEqual(['--feature-gates=MutatingAdmissionPolicy=true', '--runtime-config=admissionregistration.k8s.io/v1beta1=true']);
    expect(mutatingAdmissionPolicyFlags('1.35.1')).toEqual(['--feature-gates=MutatingAdmissionPolicy=true', '--runtime-config=admissionregistration.k8s.io/v1beta1=true']);
    expect(mutatingAdmissionPolicyFlags('v1.36.0')).toEqual([]);
    expect(() => mutatingAdmissionPolicyFlags('latest')).toThrow(/not a Kubernetes version/);
  });

  it('reads the pinned version of the test bed', () => {
    expect(kubeVersion()).toMatch(/^v1\.\d+\.\d+$/);
  });
});
