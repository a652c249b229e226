// Issue 15: what one GpuJob write costs a bare kube-apiserver, beside a pod write, with nothing else
// running (no hub, no agents, no watchers): the CPU the apiserver spends per request, read from
// /proc, for 500 of each kind of write, 8 in flight. Says whether the GpuJob CRD (a 115 KB
// structural schema embedding a restricted pod template, 27 CEL rules) is what makes the hub's
// apiserver the busy part of a burst, and what the hub chart's finalizer-at-create policy adds to a
// create (the last section). Prints numbers; asserts nothing.
// Run: tsx bench/apiserver-writes.bench.ts [writes] [full|nocel]   (nocel: the same CRD without its CEL rules)
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { SIM_RUN_FOR_ANNOTATION } from '../operator/src/api/constants.js';
import { GPUJOB_PLURAL, GROUP, VERSION } from '../operator/src/api/types.js';
import { startCluster } from '../operator/src/testbed/cluster.js';
import { hubIdentity } from '../operator/src/testbed/federation.js';
import { reapStaleRuns } from '../operator/src/testbed/processes.js';
import { repoRoot } from '../operator/src/testbed/tools.js';
import { figure, loadLine, machineLine, mapLimit, nowMs, procSample, section } from './support.js';

const WRITES = Math.max(1, Number(process.argv[2] ?? 0) || 500);
const VARIANT = process.argv[3] === 'nocel' ? 'nocel' : 'full';
const root = join(repoRoot, '.testbed', 'bench-apiserver-writes');

console.log('== apiserver writes bench (issue 15)');
console.log(machineLine());
console.log(`workload               ${WRITES} writes of each kind, 8 in flight, one apiserver (shared nothing), GpuJob CRD ${VARIANT === 'full' ? 'as generated' : 'without its CEL rules'}`);

function withoutCel(node: unknown): void {
  if (!node || typeof node !== 'object') return;
  delete (node as Record<string, unknown>)['x-kubernetes-validations'];
  for (const v of Object.values(node)) withoutCel(v);
}

reapStaleRuns(root);
const dir = join(root, String(process.pid));
const cluster = await startCluster('writes', { dir, scheduler: false, controllerManager: false });
try {
  const apiserver = cluster.processes.find((p) => p.name === 'kube-apiserver')!;
  const crdDir = join(dir, 'crds');
  mkdirSync(crdDir, { recursive: true });
  for (const file of ['fedgpu.io_gpujobs.yaml', 'fedgpu.io_gpuproviders.yaml']) {
    const crd = parse(readFileSync(join(repoRoot, 'crds', file), 'utf8')) as Record<string, unknown>;
    if (VARIANT === 'nocel') withoutCel(crd);
    writeFileSync(join(crdDir, file), stringify(crd));
  }
  for (const args of [
    ['apply', '--server-side', '-f', crdDir],
    ['wait', '--for=condition=Established', '--timeout=60s', '-f', crdDir],
    ['create', 'namespace', 'ml'],
    ['create', 'namespace', 'baseline'],
    ['create', 'serviceaccount', 'default', '-n', 'baseline'], // no controller-manager to make it
  ]) {
    const res = await cluster.kubectl(args);
    if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${res.stderr}`);
  }
  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  const custom = cluster.kubeConfig.makeApiClient(CustomObjectsApi);
  const job = (i: number) => ({
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'GpuJob',
    metadata: { name: `j${i}`, namespace: 'ml' },
    spec: {
      template: { metadata: { annotations: { [SIM_RUN_FOR_ANNOTATION]: '30m' } }, spec: { containers: [{ name: 'main', image: 'example/train' }] } },
      gpusPerReplica: 1,
      gpu: { products: ['NVIDIA-H100-80GB-HBM3'] },
      budget: { maxPricePerGpuHour: '3' },
    },
  });
  const pod = (i: number) => ({
    metadata: { name: `p${i}`, annotations: { [SIM_RUN_FOR_ANNOTATION]: '30m' } },
    spec: { containers: [{ name: 'main', image: 'example/train', resources: { limits: { 'nvidia.com/gpu': '1' } } }] },
  });
  const measure = async (label: string, write: (i: number) => Promise<unknown>) => {
    const a = procSample(apiserver.pid)!;
    const t0 = nowMs();
    await mapLimit(Array.from({ length: WRITES }, (_, i) => i), 8, (_, i) => write(i));
    const wall = nowMs() - t0;
    const b = procSample(apiserver.pid)!;
    const cpuMs = ((b.cpuSeconds - a.cpuSeconds) * 1000) / WRITES;
    figure(label, `${cpuMs.toFixed(2)} ms of apiserver CPU each; ${((WRITES / wall) * 1000).toFixed(0)}/s (${(wall / 1000).toFixed(2)} s)`);
  };
  section('the same apiserver, one kind of write after another');
  await measure('pods: create', (i) => core.createNamespacedPod({ namespace: 'baseline', body: pod(i) }));
  await measure('pods: status patch', (i) => core.patchNamespacedPodStatus({ name: `p${i}`, namespace: 'baseline', body: [{ op: 'add', path: '/status/phase', value: 'Pending' }] }));
  await measure('GpuJobs: create', (i) => custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: GPUJOB_PLURAL, namespace: 'ml', body: job(i) }));
  await measure('GpuJobs: finalizer patch', (i) => custom.patchNamespacedCustomObject({ group: GROUP, version: VERSION, plural: GPUJOB_PLURAL, namespace: 'ml', name: `j${i}`, body: [{ op: 'add', path: '/metadata/finalizers', value: ['fedgpu.io/cleanup'] }] }));
  await measure('GpuJobs: status patch', (i) => custom.patchNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, plural: GPUJOB_PLURAL, namespace: 'ml', name: `j${i}`, body: [{ op: 'add', path: '/status', value: { phase: 'Scheduled', currentEpoch: 1 } }] }));
  // The hub chart's identity with its admission policies (the finalizer put on at create, and the
  // guard on updates that would take it off), as the e2e test beds and the benches run it.
  await hubIdentity(cluster);
  const policies = await cluster.kubectl(['get', 'mutatingadmissionpolicies,validatingadmissionpolicies', '-o', 'name']);
  section(`with the hub chart's admission policies (${policies.stdout.trim().split('\n').join(', ')})`);
  const created = await cluster.kubectl(['create', 'namespace', 'ml-policy']);
  if (created.code !== 0) throw new Error(created.stderr);
  const inPolicy = (i: number) => ({ ...job(i), metadata: { name: `j${i}`, namespace: 'ml-policy' } });
  await measure('GpuJobs: create (finalizer put on)', (i) => custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: GPUJOB_PLURAL, namespace: 'ml-policy', body: inPolicy(i) }));
  await measure('GpuJobs: status patch', (i) => custom.patchNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, plural: GPUJOB_PLURAL, namespace: 'ml-policy', name: `j${i}`, body: [{ op: 'add', path: '/status', value: { phase: 'Scheduled', currentEpoch: 1 } }] }));
  console.log(`\n(${loadLine()})`);
} finally {
  await cluster.stop();
}
process.exit(0);
