import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { reapStaleRuns } from '../../operator/src/testbed/processes.js';
import { startTestbed } from '../../operator/src/testbed/testbed.js';
import { repoRoot } from '../../operator/src/testbed/tools.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Kubeconfig of the one real kube-apiserver that integration tests share. */
    kubeconfig: string;
  }
}

// One real control plane (etcd, kube-apiserver, kube-controller-manager) for the whole suite:
// files run one at a time and each works in namespaces or objects of its own. It serves no
// MutatingAdmissionPolicy: the hub chart's finalizer policy would hold every GpuJob a file deletes
// without a hub running, and here the hub's own finalizer write is what the tests drive (the e2e
// test beds and chart-helm's hub cluster serve it).
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = join(repoRoot, '.testbed', 'integration');
  reapStaleRuns(root); // leftovers of a run that was killed too hard to clean up
  const testbed = await startTestbed(join(root, String(process.pid)), [{ name: 'hub', scheduler: false, mutatingAdmissionPolicy: false }]);
  project.provide('kubeconfig', testbed.cluster('hub').kubeconfigPath);
  return () => testbed.stop();
}
