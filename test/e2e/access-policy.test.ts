import { execFile, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuJob } from '../../operator/src/api/types.js';
import { TunnelKind } from '../../operator/src/gen/proto/fedgpu/v1/market.js';
import { startHub, type RunningHub } from '../../operator/src/hub/hub.js';
import { TunnelClosedError } from '../../operator/src/protocol/tunnel/mux.js';
import { hubIdentity, hubPki, installCrds, providerClient, readyStatus, startAgent, type AgentHandle, type HubPki } from '../../operator/src/testbed/federation.js';
import { accessServingCert, registerAccessApi } from '../../operator/src/testbed/access-api.js';
import { criLogLines } from '../../operator/src/testbed/kwok/access.js';
import { issueUserCert, userKubeconfigYaml } from '../../operator/src/testbed/pki.js';
import { reapStaleRuns } from '../../operator/src/testbed/processes.js';
import { startTestbed, type Testbed } from '../../operator/src/testbed/testbed.js';
import { runCli, streamCli, type CliResult } from '../../operator/src/testbed/cli.js';
import { repoRoot, toolPath } from '../../operator/src/testbed/tools.js';
import { waitFor } from '../../operator/src/testbed/wait.js';
import { applyYaml, getGpuJob, gpuJobYaml, waitGpuJob } from './support/gpu-jobs.js';

// Issue 13, items 4 and 7, on the access e2e's test bed (hub apiserver with aggregation, providers
// whose kwok serves exec and port-forward, the hub's access API as an APIService, agents as
// processes, the fedgpu CLI as a process, a user authenticated by the hub apiserver):
// - the owner decides per pool: "closed" switched exec and port-forward off for its H100 pool only
//   (chart values provider.settings.accessByProduct); its L40S pool and the "open" provider allow both;
// - jobs that require exec (spec.access) are placed only where allowed, or wait with the reason;
// - the agent refuses what its owner forbids, for the consumer and for a hub that asks anyway;
// - `fedgpu estimate` prices a job on the live market, creating nothing.

const H100 = 'NVIDIA-H100-80GB-HBM3';
const L40S = 'NVIDIA-L40S';

let testbed: Testbed;
let pki: HubPki;
let hub: RunningHub;
let dir: string;
let kubeconfig: string;
let bobKubeconfig: string;
const agents: Record<string, AgentHandle> = {};
const names: Record<string, string> = {};
const root = join(repoRoot, '.testbed', 'e2e-access-policy');
const children: ChildProcess[] = [];

beforeAll(async () => {
  reapStaleRuns(root);
  dir = join(root, String(process.pid));
  testbed = await startTestbed(join(dir, 'clusters'), [
    { name: 'hub', scheduler: false },
    {
      name: 'closed',
      gpuNodes: [
        { prefix: 'cl-h100', count: 1, gpusPerNode: 8, product: H100, memoryMiB: 81559 },
        { prefix: 'cl-l40s', count: 1, gpusPerNode: 4, product: L40S, memoryMiB: 46068 },
      ],
    },
    { name: 'open', gpuNodes: [{ prefix: 'op-h100', count: 1, gpusPerNode: 8, product: H100, memoryMiB: 81559 }] },
  ]);
  const hubCluster = testbed.cluster('hub');
  await installCrds(hubCluster);
  await hubCluster.kubectl(['create', 'namespace', 'ml']);
  for (const name of ['closed', 'open']) writeFileSync(testbed.cluster(name).access.logFile, criLogLines([`${name}: step 1 loss 2.31`]));

  pki = await hubPki(join(dir, 'pki'));
  const serving = await accessServingCert(pki);
  hub = await startHub({
    // The chart's hub identity, not cluster admin: a right the access API needs and the chart lacks fails here.
    kubeConfig: (await hubIdentity(hubCluster)).kubeConfig,
    tls: { caPem: pki.ca.certPem, certPem: pki.server.certPem, keyPem: pki.server.keyPem },
    logger: pino({ level: 'info' }, pino.destination({ dest: join(dir, 'hub.log'), sync: true, mkdir: true })),
    providerLostAfterMs: 8_000,
    heartbeatIntervalMs: 500,
    pingIntervalMs: 500,
    access: { port: 0, certPem: serving.certPem, keyPem: serving.keyPem },
  });
  await registerAccessApi(hubCluster, pki.ca.certPem, hub.accessPort!);

  // alice edits jobs in ml with the chart's ClusterRole fedgpu-job-editor (create, log, exec, port-forward).
  const bound = await hubCluster.kubectl(['apply', '-f', '-'], `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-editor, namespace: ml}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: fedgpu-job-editor}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}]
`);
  expect(bound.code, bound.stderr).toBe(0);
  // …and reads the market with the chart's ClusterRole fedgpu-market-viewer (rendered by the real helm).
  const viewer = await hubCluster.kubectl(['apply', '-f', '-'], `${await chartTemplate('templates/hub/market-viewer.yaml')}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: alice-market-viewer}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: fedgpu-market-viewer}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}, {apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bob-viewer, namespace: ml}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: fedgpu-job-viewer}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]
`);
  expect(viewer.code, viewer.stderr).toBe(0);
  // bob reads the market and jobs but may not create GpuJobs.
  kubeconfig = join(dir, 'alice.kubeconfig');
  writeFileSync(kubeconfig, userKubeconfigYaml('hub', hubCluster.server, hubCluster.pki, 'alice', issueUserCert(hubCluster.pki, 'alice')));
  bobKubeconfig = join(dir, 'bob.kubeconfig');
  writeFileSync(bobKubeconfig, userKubeconfigYaml('hub', hubCluster.server, hubCluster.pki, 'bob', issueUserCert(hubCluster.pki, 'bob')));

  // "closed" is the cheaper H100: without the access rule every H100 job would go there.
  const settings = {
    closed: { displayName: 'closed', pricePerGpuHour: { [H100]: '1.00', [L40S]: '1.00' }, accessByProduct: { [H100]: { exec: false, portForward: false } } },
    open: { displayName: 'open', pricePerGpuHour: { [H100]: '2.50' } },
  };
  for (const name of ['closed', 'open'] as const) {
    agents[name] = await startAgent(name, testbed.cluster(name), pki, `127.0.0.1:${hub.port}`, settings[name]);
    const gp = await waitFor(`${name} Ready`, async () => {
      const p = await providerClient(hubCluster).byWallet(agents[name]!.wallet.address);
      return readyStatus(p)?.status === 'True' && (p?.status?.pools?.length ?? 0) === (name === 'closed' ? 2 : 1) ? p : undefined;
    }, { timeoutMs: 180_000 });
    names[name] = gp.metadata.name!;
  }
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await Promise.all(Object.values(agents).map((a) => a.process.stop()));
  await hub?.stop();
  await testbed?.stop();
});

// --- helpers ---------------------------------------------------------------------------------

const fedgpu = (args: string[], stdin?: string, as = kubeconfig): Promise<CliResult> => runCli(['--kubeconfig', as, ...args], { stdin });

function fedgpuStream(args: string[]) {
  const stream = streamCli(['--kubeconfig', kubeconfig, ...args]);
  children.push(stream.child);
  return stream;
}

function chartTemplate(template: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(toolPath('helm'), ['template', 'fedgpu', join(repoRoot, 'charts', 'fedgpu'), '--set', 'mode=hub', '--set', 'hub.chain.marketAddress=0x0000000000000000000000000000000000000001', '--set', 'hub.access.enabled=true', '--set-string', 'hub.access.caBundle=eA==', '--show-only', template], (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

const jobYaml = (name: string, spec: Record<string, unknown>) =>
  gpuJobYaml(name, { gpusPerReplica: 8, gpu: { products: [H100] }, ...spec }, { annotations: { 'fedgpu.io/sim-run-for': '600s' } });
const apply = (yaml: string) => applyYaml(testbed.cluster('hub'), yaml);
const getJob = (name: string) => getGpuJob(testbed.cluster('hub'), name);
const waitJob = (name: string, ok: (j: GpuJob) => boolean, timeoutMs = 90_000) => waitGpuJob(testbed.cluster('hub'), name, 'as expected', ok, { timeoutMs });
const running = (name: string) => waitJob(name, (j) => j.status?.phase === 'Running');
const jobNames = async () => (await testbed.cluster('hub').kubectl(['get', 'gj', '-n', 'ml', '-o', 'name'])).stdout.trim().split('\n').filter(Boolean).sort();

function writeJobFile(name: string, yaml: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, yaml);
  return file;
}

// --- tests ---------------------------------------------------------------------------------------

describe('the provider decides exec and port-forward per pool', () => {
  it('shows each pool\'s access in GpuProvider status and fedgpu market', async () => {
    const closed = await providerClient(testbed.cluster('hub')).byWallet(agents.closed!.wallet.address);
    expect(closed?.status?.pools?.map((p) => [p.gpuProduct, p.access]).sort()).toEqual([
      [H100, { exec: false, portForward: false }],
      [L40S, { exec: true, portForward: true }],
    ]);
    const market = await fedgpu(['market']);
    expect(market.code, market.stderr).toBe(0);
    const row = (provider: string, product: string) => market.stdout.split('\n').find((l) => l.startsWith(product) && l.includes(names[provider]!)) ?? '';
    expect(market.stdout.split('\n')[0]).toContain('ACCESS');
    expect(row('closed', H100).split(/\s+/)).toContain('logs');
    expect(row('closed', L40S).split(/\s+/)).toContain('logs,exec,port-forward');
    expect(row('open', H100).split(/\s+/)).toContain('logs,exec,port-forward');
  });

  it('fedgpu estimate prices a job on the live market and creates nothing', async () => {
    const before = await jobNames();
    const plain = await fedgpu(['estimate', '-f', writeJobFile('plain-estimate', jobYaml('plain', {})), '--for', '2h']);
    expect(plain.code, plain.stderr).toBe(0);
    console.log(`fedgpu estimate -f plain.yaml --for 2h:\n${plain.stdout}`);
    expect(plain.stdout).toContain('GpuJob ml/plain (estimate; nothing was created): would be placed (8 GPUs: 1 × 8)');
    expect(plain.stdout).toContain(`Placement: ${names.closed}, ${H100} at 1.00 credits/GPU-hour, nodes cl-h100-0`);
    expect(plain.stdout).toContain('Cost for 2h: 16.00 credits (8 GPUs × 2 h × 1.00)');

    const needsExec = writeJobFile('exec-estimate', jobYaml('exec-needed', { access: { exec: true } }));
    const json = await fedgpu(['-o', 'json', 'estimate', '-f', needsExec, '--for', '90m']);
    expect(json.code, json.stderr).toBe(0);
    const e = JSON.parse(json.stdout) as { fits: boolean; placement: { provider: string; pricePerGpuHour: string }; cost: string; costPerHour: string; providers: { provider: string; fits: boolean; detail: string }[] };
    expect(e).toMatchObject({ fits: true, placement: { provider: names.open, pricePerGpuHour: '2.50' }, costPerHour: '20.00', cost: '30.00' });
    expect(e.providers).toContainEqual({ provider: names.closed, displayName: 'closed', fits: false, detail: 'exec not allowed by the owner' });

    // The file is checked as the CRD checks a create: the field is named, nothing changes.
    const bad = await fedgpu(['estimate', '-f', writeJobFile('bad', jobYaml('bad', { replicas: 0 }))]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('spec.replicas');
    const typo = await fedgpu(['estimate', '-f', writeJobFile('typo', jobYaml('typo', { acces: { exec: true } }))]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('spec.acces');
    // The dry run is a create: a user who may not create GpuJobs is told so, not estimated.
    const bob = await fedgpu(['estimate', '-f', needsExec], undefined, bobKubeconfig);
    expect(bob.code).toBe(1);
    expect(bob.stderr).toContain('needs create on gpujobs in ml');
    console.log(`refusals:\n${bad.stderr}${typo.stderr}${bob.stderr}`);
    expect(await jobNames()).toEqual(before);
  });

  it('places a job requiring exec only where its pool allows it, or keeps it Pending with the reason', async () => {
    await apply(jobYaml('exec-needed', { access: { exec: true } }));
    const placed = await running('exec-needed');
    expect(placed.status?.placement?.provider).toBe(names.open);
    const exec = await fedgpu(['exec', 'exec-needed', '-n', 'ml', '--', 'sh', '-c', 'echo allowed']);
    expect(exec).toMatchObject({ code: 0, stdout: 'allowed\n' });

    // open is full now; closed has idle H100s but forbids exec there: the job waits, saying why.
    await apply(jobYaml('exec-waits', { access: { exec: true, portForward: true } }));
    const waiting = await waitJob('exec-waits', (j) => /exec\/port-forward not allowed by the owner/.test(j.status?.message ?? ''));
    expect(waiting.status?.phase ?? 'Pending').toBe('Pending');
    // Equal counts list in check order: idle before access.
    expect(waiting.status?.message).toBe(`0/2 providers fit: 1 insufficient idle ${H100}, 1 exec/port-forward not allowed by the owner`);
    const explain = await fedgpu(['explain', 'exec-waits', '-n', 'ml']);
    expect(explain.stdout).toContain('exec/port-forward not allowed by the owner');
    const estimate = await fedgpu(['estimate', '-f', writeJobFile('waits-estimate', jobYaml('exec-waits', { access: { exec: true, portForward: true } }))]);
    expect(estimate.stdout).toContain('does not fit today');
    expect(estimate.stdout).toContain(`${names.closed} (closed): exec/port-forward not allowed by the owner`);
    expect(estimate.stdout).toContain(`${names.open} (open): insufficient idle ${H100}`);
    const deleted = await testbed.cluster('hub').kubectl(['delete', 'gj', 'exec-waits', '-n', 'ml', '--wait=true']);
    expect(deleted.code, deleted.stderr).toBe(0);
  });

  it('the agent refuses exec and port-forward in the closed pool with a 403 naming pool and verb; logs still work', async () => {
    await apply(jobYaml('plain', {}));
    const placed = await running('plain');
    expect(placed.status?.placement?.provider).toBe(names.closed);
    await waitFor('plain pod Running', async () => {
      const r = await testbed.cluster('closed').kubectl(['get', 'pods', '-A', '-l', 'fedgpu.io/job-uid', '-o', 'jsonpath={.items[*].status.phase}']);
      return r.stdout === 'Running' ? true : undefined;
    }, { timeoutMs: 60_000 });

    const exec = await fedgpu(['exec', 'plain', '-n', 'ml', '--', 'sh', '-c', 'echo should-not-run']);
    expect(exec.code).not.toBe(0);
    expect(exec.stdout).toBe('');
    expect(exec.stderr).toContain(`the provider's owner does not allow exec into job pods of pool ${H100}`);
    expect(exec.stderr).toContain(`provider ${names.closed} refused`);

    const pf = fedgpuStream(['port-forward', 'plain', '-n', 'ml', '0:8888']);
    const port = await waitFor('Forwarding from', () => /Forwarding from 127\.0\.0\.1:(\d+)/.exec(pf.output())?.[1], { timeoutMs: 60_000 });
    await expect(fetch(`http://127.0.0.1:${port}/`, { headers: { connection: 'close' } })).rejects.toThrow();
    await waitFor('the refusal', () => (pf.errors().includes('does not allow port-forward to job pods of pool') ? true : undefined), { timeoutMs: 30_000 });
    expect(pf.errors()).toContain(`pool ${H100}`);
    pf.child.kill('SIGTERM');

    const logs = await fedgpu(['logs', 'plain', '-n', 'ml']);
    expect(logs).toMatchObject({ code: 0, stdout: 'closed: step 1 loss 2.31\n' });
  });

  it('a hostile hub asking the agent for exec in the closed pool is refused by the agent', async () => {
    const job = await getJob('plain');
    const session = hub.server.openTunnel(names.closed!, {
      kind: TunnelKind.TUNNEL_KIND_EXEC, jobUid: job.metadata.uid!, epoch: job.status!.currentEpoch!, replica: 0, container: '', initialWindow: 65536,
      follow: false, tailLines: -1, sinceSeconds: 0, timestamps: false, command: ['sh', '-c', 'id'], stdin: false, tty: false, port: 0,
    });
    expect(session).toBeDefined();
    const refused = await session!.opened.then(() => undefined, (err: unknown) => err);
    expect(refused).toBeInstanceOf(TunnelClosedError);
    expect((refused as TunnelClosedError).close).toMatchObject({ reason: 'exec_disabled', error: `the provider's owner does not allow exec into job pods of pool ${H100} (refused by the provider agent)` });
    const pf = hub.server.openTunnel(names.closed!, {
      kind: TunnelKind.TUNNEL_KIND_PORT_FORWARD, jobUid: job.metadata.uid!, epoch: job.status!.currentEpoch!, replica: 0, container: '', initialWindow: 65536,
      follow: false, tailLines: -1, sinceSeconds: 0, timestamps: false, command: [], stdin: false, tty: false, port: 8888,
    });
    const pfRefused = await pf!.opened.then(() => undefined, (err: unknown) => err);
    expect((pfRefused as TunnelClosedError).close).toMatchObject({ reason: 'port_forward_disabled' });
  });

  it('the same provider allows exec in its other pool (the choice is per pool)', async () => {
    await apply(jobYaml('l40s-exec', { gpusPerReplica: 4, gpu: { products: [L40S] }, access: { exec: true, portForward: true } }));
    const placed = await running('l40s-exec');
    expect(placed.status?.placement?.provider).toBe(names.closed);
    expect(placed.status?.placement?.gpuProduct).toBe(L40S);
    const exec = await waitFor('exec in the L40S pool', async () => {
      const r = await fedgpu(['exec', 'l40s-exec', '-n', 'ml', '--', 'sh', '-c', 'echo per-pool']);
      return r.code === 0 ? r : undefined;
    }, { timeoutMs: 60_000, intervalMs: 1_000 });
    expect(exec.stdout).toBe('per-pool\n');
  });
});
