import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './tools.js';

// The Kubernetes version the test bed's binaries are built at (hack/versions.env), and the
// apiserver flags that version needs to serve an API that is not on by default in it.

/** KUBE_VERSION from hack/versions.env, e.g. "v1.34.4". */
export function kubeVersion(): string {
  const line = readFileSync(join(repoRoot, 'hack', 'versions.env'), 'utf8').split('\n').find((l) => l.startsWith('KUBE_VERSION='));
  if (!line) throw new Error('hack/versions.env names no KUBE_VERSION');
  return line.slice('KUBE_VERSION='.length).trim();
}

/**
 * kube-apiserver flags that serve MutatingAdmissionPolicy at `version`: alpha in 1.32 and 1.33,
 * beta (off by default) in 1.34 and 1.35, GA and on from 1.36, absent before 1.32. A GA feature's
 * gate is removed a few releases later, when naming it would stop the apiserver from starting.
 */
export function mutatingAdmissionPolicyFlags(version: string): string[] {
  const match = /^v?(\d+)\.(\d+)/.exec(version);
  if (!match) throw new Error(`not a Kubernetes version: ${version}`);
  const minor = Number(match[1]) === 1 ? Number(match[2]) : Infinity;
  if (minor < 32 || minor >= 36) return [];
  const api = minor < 34 ? 'v1alpha1' : 'v1beta1';
  return ['--feature-gates=MutatingAdmissionPolicy=true', `--runtime-config=admissionregistration.k8s.io/${api}=true`];
}
