import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { Wallet } from 'ethers';
import type { GpuJob, GpuProvider } from '../../operator/src/api/types.js';
import { AttemptPhase, AttemptStatus, type HubMessage } from '../../operator/src/gen/proto/fedgpu/v1/market.js';
import { GpuJobController } from '../../operator/src/hub/jobs/controller.js';
import { gpuJobClient, gpuProviderClient, loadKubeConfig, makeClients } from '../../operator/src/runtime/kube.js';
import { pino } from 'pino';
import { runKubectl } from '../../operator/src/testbed/kubectl.js';
import { repoRoot } from '../../operator/src/testbed/tools.js';
import { waitFor } from '../../operator/src/testbed/wait.js';
import { HUB_RELEASE, HUB_RELEASE_NAMESPACE, hubIdentity } from '../../operator/src/testbed/federation.js';

// The GpuJob controller's two fences against a real kube-apiserver, apart from each other (the e2e
// zombie test goes through both at once, so either alone could be broken unseen):
// - the report fence: an agent reporting on an attempt that is not the job's live current one gets
//   a Cancel for it at once, and its report changes nothing;
// - the resync path: an agent that (re)connects is given only the attempts it should run.

const kubeconfig = inject('kubeconfig');
const NS = 'job-fencing';
const run = String(process.pid);
const providerA = `fence-a-${run}`; // lost: the zombie's provider
const providerB = `fence-b-${run}`; // runs the job's current attempt

let controller: GpuJobController;
let job: GpuJob;
const sent: { provider: string; message: HubMessage }[] = [];
const t0 = Date.now();
const iso = (ms: number) => new Date(ms).toISOString();

beforeAll(async () => {
  const crds = join(repoRoot, 'crds');
  for (const args of [['apply', '--server-side', '-f', crds], ['wait', '--for=condition=Established', '--timeout=60s', '-f', crds]]) {
    const res = await runKubectl(kubeconfig, args);
    expect(res.code, res.stderr).toBe(0);
  }
  const kc = loadKubeConfig(kubeconfig);
  const clients = makeClients(kc);
  await clients.core.createNamespace({ body: { metadata: { name: NS } } }).catch((err) => {
    if ((err as { code?: number }).code !== 409) throw err;
  });
  const providers = gpuProviderClient(clients.customObjects, 'job-fencing-test');
  for (const [name, ready] of [[providerA, 'False'], [providerB, 'True']] as const) {
    await providers.create({ apiVersion: 'fedgpu.io/v1alpha1', kind: 'GpuProvider', metadata: { name }, spec: { wallet: Wallet.createRandom().address } } as GpuProvider);
    await providers.patchStatus(name, undefined, {
      status: { conditions: [{ type: 'Ready', status: ready, reason: ready === 'True' ? 'HeartbeatReceived' : 'HeartbeatMissed', message: 'set by the test', lastTransitionTime: iso(t0) }] },
    });
  }
  // A job moved from A (lost) to B: attempt 1 ended Lost on A, attempt 2 live on B.
  const jobs = gpuJobClient(clients.customObjects, 'job-fencing-test');
  const body = parse(readFileSync(join(repoRoot, 'examples', 'gpujob-single.yaml'), 'utf8')) as GpuJob;
  const created = await jobs.create({ ...body, metadata: { name: 'moved', namespace: NS } });
  job = await jobs.patchStatus('moved', NS, {
    status: {
      phase: 'Scheduled',
      currentEpoch: 2,
      attempts: [
        { epoch: 1, provider: providerA, nodes: ['n0'], startTime: iso(t0 - 60_000), endTime: iso(t0 - 30_000), outcome: 'Lost', faultOf: 'provider', reason: 'ProviderLost', pricePerGpuHour: '1', gpuSeconds: 0 },
        { epoch: 2, provider: providerB, nodes: ['n1'], startTime: iso(t0 - 20_000), outcome: 'Running', pricePerGpuHour: '1', gpuSeconds: 0 },
      ],
    },
  });
  expect(job.metadata.uid).toBe(created.metadata.uid);
  controller = new GpuJobController({
    kubeConfig: (await hubIdentity({ kubeconfigPath: kubeconfig })).kubeConfig, // the chart's hub identity, not admin
    logger: pino({ level: 'silent' }),
    agents: { send: (provider, message) => (sent.push({ provider, message }), true) },
  });
  await controller.start();
  await waitFor('the controller to see the job', () => (controller.jobs.list().some((j) => j.metadata.uid === job.metadata.uid && j.status?.currentEpoch === 2) ? true : undefined));
});

afterAll(async () => {
  await controller?.stop();
  const clients = makeClients(loadKubeConfig(kubeconfig));
  const providers = gpuProviderClient(clients.customObjects);
  for (const name of [providerA, providerB]) await providers.delete(name).catch(() => {});
  await runKubectl(kubeconfig, ['patch', 'gj', 'moved', '-n', NS, '--type=merge', '-p', '{"metadata":{"finalizers":null}}']);
  await runKubectl(kubeconfig, ['delete', 'namespace', NS, '--wait=false']);
});

const report = (epoch: number, phase: AttemptPhase) => AttemptStatus.fromPartial({ jobUid: job.metadata.uid!, epoch, phase, gpuSeconds: 5 });
const cancelsTo = (provider: string) => sent.filter((s) => s.provider === provider && s.message.body?.$case === 'cancel').map((s) => s.message.body!.value);
const current = () => controller.jobs.list().find((j) => j.metadata.uid === job.metadata.uid)!;

describe('GpuJob controller fencing', () => {
  it('answers a report from an older epoch with a Cancel for that epoch, and the report changes nothing', async () => {
    const before = current();
    controller.onAttemptStatus(providerA, report(1, AttemptPhase.ATTEMPT_PHASE_SUCCEEDED));
    expect(cancelsTo(providerA)).toEqual([expect.objectContaining({ jobUid: job.metadata.uid, epoch: 1, reason: 'Fenced' })]);
    // A zombie "success" must not finish the job: the accepted report below is what moves it.
    controller.onAttemptStatus(providerB, report(2, AttemptPhase.ATTEMPT_PHASE_RUNNING));
    const running = await waitFor('the live attempt\'s report to count', () => (current().status?.phase === 'Running' ? current() : undefined));
    expect(running.status?.attempts?.map((a) => [a.epoch, a.outcome])).toEqual([[1, 'Lost'], [2, 'Running']]);
    expect(running.status?.currentEpoch).toBe(before.status?.currentEpoch);
    expect(running.status?.attempts?.[0]?.gpuSeconds).toBe(0); // not credited with the zombie's time
    expect(cancelsTo(providerB)).toEqual([]); // the live attempt is never cancelled
  });

  it('fences a report for the current epoch sent by another provider', () => {
    controller.onAttemptStatus(providerA, report(2, AttemptPhase.ATTEMPT_PHASE_SUCCEEDED));
    expect(cancelsTo(providerA).at(-1)).toEqual(expect.objectContaining({ epoch: 2, reason: 'Fenced' }));
    expect(current().status?.phase).toBe('Running');
  });

  it('fences a report for a job the hub does not know', () => {
    controller.onAttemptStatus(providerB, { ...report(1, AttemptPhase.ATTEMPT_PHASE_RUNNING), jobUid: 'no-such-uid' });
    expect(cancelsTo(providerB)).toEqual([expect.objectContaining({ jobUid: 'no-such-uid', epoch: 1, reason: 'Fenced' })]);
  });

  it('resyncs the lost provider with nothing to run and its successor with the live attempt only', () => {
    controller.resync(providerA);
    controller.resync(providerB);
    const resyncOf = (provider: string) => {
      const body = sent.filter((s) => s.provider === provider).at(-1)?.message.body;
      return body?.$case === 'resync' ? body.value.desired.map((d) => [d.jobUid, d.epoch]) : undefined;
    };
    expect(resyncOf(providerA)).toEqual([]);
    expect(resyncOf(providerB)).toEqual([[job.metadata.uid, 2]]);
  });

  it('re-sends no Secret the attempt was not assigned with: one named in the spec since is withheld', async () => {
    // exec and port-forward into the attempt are checked against the Secrets it was assigned with
    // (status.attempts[].secretNames): one added to the spec later and then removed again would
    // otherwise reach the pods unchecked.
    // The hub may read it: without this guard the resync would carry its value.
    const granted = await runKubectl(kubeconfig, ['apply', '-f', '-'], `apiVersion: v1
kind: Secret
metadata: {name: added-later, namespace: ${NS}}
stringData: {token: later}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: fedgpu-hub-job-secrets, namespace: ${NS}}
rules: [{apiGroups: [""], resources: [secrets], resourceNames: [added-later], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: fedgpu-hub-job-secrets, namespace: ${NS}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: fedgpu-hub-job-secrets}
subjects: [{kind: ServiceAccount, name: ${HUB_RELEASE}, namespace: ${HUB_RELEASE_NAMESPACE}}]
`);
    expect(granted.code, granted.stderr).toBe(0);
    const patched = await runKubectl(kubeconfig, ['patch', 'gj', 'moved', '-n', NS, '--type=merge', '-p', '{"spec":{"secrets":[{"name":"added-later","mountPath":"/s"}]}}']);
    expect(patched.code, patched.stderr).toBe(0);
    await waitFor('the controller to see the edit', () => (current().spec.secrets?.length ? true : undefined));
    controller.resync(providerB);
    const assign = await waitFor('the resync', () => {
      const body = sent.filter((s) => s.provider === providerB).at(-1)?.message.body;
      return body?.$case === 'resync' && body.value.desired[0]?.secretsWithheld ? body.value.desired[0] : undefined;
    });
    expect(assign.secrets).toEqual([]);
  });
});
