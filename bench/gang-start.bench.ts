// How long the agent takes to make a gang's pods: Assign → the last pod created, on a real
// kube-apiserver with its controller-manager (the tenant quota's controller), the pod runner running
// under the chart's own identity (ServiceAccount, ClusterRole, admission policy) as the agent does.
// Gangs of 8, 32 and 64 one-GPU replicas, with the pods created one after another (1 at a time, how
// the runner made them before: "serial") and at the runner's default, alternating, in one run. The tenant
// namespaces are made once beforehand and held by a one-pod attempt, so each trial pays the quota
// raise and the pod creates, not the namespace. Prints numbers; asserts nothing.
// Run: tsx bench/gang-start.bench.ts [trials=5]
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { pino } from 'pino';
import { PodRunner } from '../operator/src/agent/pods/runner.js';
import { MANAGED_BY, MANAGED_BY_LABEL, TenantNamespaces } from '../operator/src/agent/tenancy/namespace.js';
import { QuotaWatch } from '../operator/src/agent/tenancy/quota-watch.js';
import type { Assign } from '../operator/src/gen/proto/fedgpu/v1/market.js';
import { chartIdentity } from '../operator/src/testbed/chart-identity.js';
import { startCluster } from '../operator/src/testbed/cluster.js';
import { reapStaleRuns } from '../operator/src/testbed/processes.js';
import { repoRoot } from '../operator/src/testbed/tools.js';
import { waitFor } from '../operator/src/testbed/wait.js';
import { figure, loadLine, machineLine, nowMs, section, summarize } from './support.js';

const TRIALS = Math.max(1, Number(process.argv[2] ?? 0) || 5);
const GANGS = [8, 32, 64];
const DEFAULT = 'default';
const root = join(repoRoot, '.testbed', 'bench-gang-start');
const PREFIX = 'gang';
const TENANT = 'team-gang';

console.log('== gang start bench (the agent\'s pod creates)');
console.log(machineLine());
console.log(`workload               gangs of ${GANGS.join(', ')} one-GPU replicas, ${TRIALS} trials each way, the runner under the chart's identity`);

reapStaleRuns(root);
const dir = join(root, String(process.pid));
const cluster = await startCluster('gangs', { dir, scheduler: false });
const silent = pino({ level: process.env.BENCH_DEBUG ? 'info' : 'silent' });
let identity: Awaited<ReturnType<typeof chartIdentity>> | undefined;
let quotas: QuotaWatch | undefined;
try {
  identity = await chartIdentity(cluster.kubeconfigPath, 'gang-agent', `${PREFIX}sys`, [
    '--set', 'mode=provider', '--set', 'hub.address=hub.example.com:8443', '--set', 'provider.wallet=0x70997970C51812dc3A010C7d01b50e0d17dc79C8',
    '--set-string', 'provider.settings.pricePerGpuHour.NVIDIA-H100-80GB-HBM3=2.40', '--set', `provider.jobNamespace=${PREFIX}`,
  ]);
  quotas = new QuotaWatch(identity.kubeConfig, silent, { labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY}` });
  await quotas.start();
  // Namespaces of a prefix each (within the chart's gang-*): a runner deletes the tenant namespaces
  // of its prefix that none of its own attempts uses.
  const tenancies = { serial: new TenantNamespaces(identity.kubeConfig, { prefix: `${PREFIX}-s`, quotas }, silent), [DEFAULT]: new TenantNamespaces(identity.kubeConfig, { prefix: `${PREFIX}-d`, quotas }, silent) };
  const runners = {
    serial: new PodRunner(identity.kubeConfig, tenancies.serial, silent, {}, undefined, undefined, undefined, { podCreatesAtOnce: 1 }),
    [DEFAULT]: new PodRunner(identity.kubeConfig, tenancies[DEFAULT], silent),
  };
  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  let seq = 0;
  const assign = (mode: string, replicas: number): Assign => ({
    jobUid: `${String(++seq).padStart(8, '0')}-0000-4000-8000-${String(process.pid).padStart(12, '0')}`,
    epoch: 1,
    namespace: TENANT,
    podTemplates: Array.from({ length: replicas }, () => Buffer.from(JSON.stringify({ spec: { containers: [{ name: 'main', image: 'example/train:v1' }] } }))),
    nodeNames: Array.from({ length: replicas }, (_, i) => `gpu-node-${i}`),
    gpusPerReplica: 1,
    checkpointDir: '',
    gracePeriodSeconds: 0,
    env: [],
    pricePerGpuHour: '1',
    coveredGpuSeconds: 0,
    secrets: [],
    secretsWithheld: false,
  });
  // The namespace, made and held by a one-pod attempt of each runner (a runner deletes a tenant
  // namespace once none of its own attempts is left in it).
  for (const [mode, runner] of Object.entries(runners)) await runner.apply(assign(mode, 1));
  const results = new Map<string, number[]>();
  for (const gang of GANGS) {
    for (let trial = 0; trial < TRIALS; trial++) {
      for (const [mode, runner] of Object.entries(runners)) {
        const a = assign(mode, gang);
        const namespace = tenancies[mode as keyof typeof tenancies].nameOf(TENANT);
        const t0 = nowMs();
        await runner.apply(a);
        const took = nowMs() - t0;
        const made = (await core.listNamespacedPod({ namespace, labelSelector: `fedgpu.io/job-uid=${a.jobUid}` })).items.length;
        if (made !== gang || runner.refused.has(`${a.jobUid}/1`)) throw new Error(`${mode}: gang of ${gang} made ${made} pods (${runner.refused.get(`${a.jobUid}/1`) ?? 'not refused'})`);
        results.set(`${gang}/${mode}`, [...(results.get(`${gang}/${mode}`) ?? []), took]);
        await runner.cancel(a.jobUid, a.epoch, 0);
        await waitFor('the gang\'s pods gone', async () =>
          (await core.listNamespacedPod({ namespace, labelSelector: `fedgpu.io/job-uid=${a.jobUid}` })).items.length === 0 ? true : undefined, { timeoutMs: 30_000, intervalMs: 20 });
      }
    }
  }
  section('Assign → the last pod of the gang created (the runner\'s apply), p50 (min–max)');
  for (const gang of GANGS) {
    const line = Object.keys(runners).map((mode) => {
      const s = summarize(results.get(`${gang}/${mode}`) ?? []);
      const all = results.get(`${gang}/${mode}`) ?? [];
      return `${mode} ${s.p50.toFixed(0)} ms (${Math.min(...all).toFixed(0)}–${s.max.toFixed(0)})`;
    });
    const ratio = summarize(results.get(`${gang}/serial`) ?? []).p50 / summarize(results.get(`${gang}/${DEFAULT}`) ?? []).p50;
    figure(`gang of ${gang}`, `${line.join('; ')}; ${ratio.toFixed(1)}× faster at the default`);
  }
  console.log(`(${loadLine()})`);
} finally {
  await quotas?.stop();
  await identity?.remove().catch(() => undefined);
  await cluster.stop();
}
