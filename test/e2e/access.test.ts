import type { ChildProcess } from 'node:child_process';
import { appendFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuJob } from '../../operator/src/api/types.js';
import { SIM_IMAGE_PULL_ERROR_ANNOTATION } from '../../operator/src/api/constants.js';
import { podName } from '../../operator/src/agent/pods/build.js';
import { startHub, type RunningHub } from '../../operator/src/hub/hub.js';
import { HUB_LEASE, hubIdentity, hubPki, installCrds, providerClient, readyStatus, startAgent, type AgentHandle, type HubPki } from '../../operator/src/testbed/federation.js';
import { accessServingCert, registerAccessApi } from '../../operator/src/testbed/access-api.js';
import { criLogLines } from '../../operator/src/testbed/kwok/access.js';
import { issueUserCert, userKubeconfigYaml } from '../../operator/src/testbed/pki.js';
import { reapStaleRuns } from '../../operator/src/testbed/processes.js';
import { startTestbed, type Testbed } from '../../operator/src/testbed/testbed.js';
import { runCli, streamCli, type CliResult } from '../../operator/src/testbed/cli.js';
import { repoRoot } from '../../operator/src/testbed/tools.js';
import { waitFor } from '../../operator/src/testbed/wait.js';
import { getGpuJob, waitGpuJob } from './support/gpu-jobs.js';

// Issue 13 end to end: consumers reach their job's pods on whichever provider runs them, through
// the hub. Real parts: three kube-apiservers (hub with aggregation, two providers whose kwok serves
// pods/log, exec and port-forward), the hub with its access API registered as an APIService, real
// agents (processes) tunnelling over their gRPC streams, the fedgpu CLI as a process, and users
// authenticated by the hub apiserver with client certificates and authorized by RBAC.

const H100 = 'NVIDIA-H100-80GB-HBM3';
/** The hub's tunnel idle timeout here (10 minutes by default). */
const TUNNEL_IDLE_MS = 4_000;
/** Access sessions one user may hold open to one provider here (16 by default). */
const SESSIONS_PER_USER = 5;

let testbed: Testbed;
let pki: HubPki;
let hub: RunningHub;
let dir: string;
const agents: Record<string, AgentHandle> = {};
const names: Record<string, string> = {};
const kubeconfigs: Record<string, string> = {};
const root = join(repoRoot, '.testbed', 'e2e-access');
const children: ChildProcess[] = [];
let first = 'dc';
let second = 'cloud';

beforeAll(async () => {
  reapStaleRuns(root);
  dir = join(root, String(process.pid));
  testbed = await startTestbed(join(dir, 'clusters'), [
    { name: 'hub', scheduler: false },
    // One node each, so a reclaimed job can only move to the other provider.
    { name: 'dc', gpuNodes: [{ prefix: 'dc-h100', count: 1, gpusPerNode: 8, product: H100, memoryMiB: 81559 }] },
    { name: 'cloud', gpuNodes: [{ prefix: 'cl-h100', count: 1, gpusPerNode: 8, product: H100, memoryMiB: 81559 }] },
  ]);
  const hubCluster = testbed.cluster('hub');
  await installCrds(hubCluster);
  await hubCluster.kubectl(['create', 'namespace', 'ml']);
  for (const name of ['dc', 'cloud']) {
    writeFileSync(testbed.cluster(name).access.logFile, criLogLines([`${name}: epoch 0 step 1 loss 2.31`, `${name}: epoch 0 step 2 loss 2.02`]));
  }

  // The hub, its access API on a free port, and the APIService that makes the hub apiserver proxy to it.
  pki = await hubPki(join(dir, 'pki'));
  const serving = await accessServingCert(pki);
  hub = await startHub({
    // The chart's hub identity: its SubjectAccessReviews and the front-proxy CA read need the access RBAC.
    kubeConfig: (await hubIdentity(hubCluster)).kubeConfig,
    tls: { caPem: pki.ca.certPem, certPem: pki.server.certPem, keyPem: pki.server.keyPem },
    logger: pino({ level: 'info' }, pino.destination({ dest: join(dir, 'hub.log'), sync: true, mkdir: true })),
    providerLostAfterMs: 8_000,
    heartbeatIntervalMs: 500,
    pingIntervalMs: 500,
    // Every session of this suite outlives a short idle timeout only if the hub keeps it alive.
    tunnelLimits: { idleTimeoutMs: TUNNEL_IDLE_MS },
    access: { port: 0, certPem: serving.certPem, keyPem: serving.keyPem, maxSessionsPerUser: SESSIONS_PER_USER },
  });
  await registerAccessApi(hubCluster, pki.ca.certPem, hub.accessPort!);

  // Users: alice edits jobs in ml (chart ClusterRole fedgpu-job-editor); bob may only read GpuJobs;
  // carol passes the apiserver's check on access.fedgpu.io but not the hub's on fedgpu.io.
  const rbac = `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-editor, namespace: ml}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: fedgpu-job-editor}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: job-reader, namespace: ml}
rules: [{apiGroups: [fedgpu.io], resources: [gpujobs], verbs: [get, list, watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bob-reader, namespace: ml}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: job-reader}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: proxy-only, namespace: ml}
rules: [{apiGroups: [access.fedgpu.io], resources: [gpujobs/log], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: carol-proxy-only, namespace: ml}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: proxy-only}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: carol}]
`;
  const bound = await hubCluster.kubectl(['apply', '-f', '-'], rbac);
  expect(bound.code, bound.stderr).toBe(0);
  for (const user of ['alice', 'bob', 'carol']) {
    const cert = issueUserCert(hubCluster.pki, user);
    kubeconfigs[user] = join(dir, `${user}.kubeconfig`);
    writeFileSync(kubeconfigs[user], userKubeconfigYaml('hub', hubCluster.server, hubCluster.pki, user, cert));
  }

  for (const [name, price] of [['dc', '2.10'], ['cloud', '2.40']] as const) {
    agents[name] = await startAgent(name, testbed.cluster(name), pki, `127.0.0.1:${hub.port}`, { displayName: name, pricePerGpuHour: { [H100]: price } }, undefined, [
      '--log-retention-dir', logTails(name),
    ]);
    const gp = await waitFor(`${name} Ready`, async () => {
      const p = await providerClient(hubCluster).byWallet(agents[name]!.wallet.address);
      return readyStatus(p)?.status === 'True' && p?.status?.pools?.length ? p : undefined;
    }, { timeoutMs: 180_000 });
    names[name] = gp.metadata.name!;
  }
  // The job every test uses, running long enough for all of them; `first` is where it lands.
  const job = stringify({
    apiVersion: 'fedgpu.io/v1alpha1',
    kind: 'GpuJob',
    metadata: { name: 'trainer', namespace: 'ml' },
    spec: {
      template: { metadata: { annotations: { 'fedgpu.io/sim-run-for': '600s' } }, spec: { containers: [{ name: 'main', image: 'example/train' }] } },
      gpusPerReplica: 8,
      gpu: { products: [H100] },
      budget: { maxPricePerGpuHour: '3' },
      faultTolerance: { checkpoint: { gracePeriodSeconds: 2 } },
    },
  });
  const created = await hubCluster.kubectl(['apply', '-f', '-'], job);
  expect(created.code, created.stderr).toBe(0);
  const running = await waitJob((j) => j.status?.phase === 'Running');
  first = running.status?.placement?.provider === names.dc ? 'dc' : 'cloud';
  second = first === 'dc' ? 'cloud' : 'dc';
  await waitFor('trainer pod Running', async () => {
    const r = await testbed.cluster(first).kubectl(['get', 'pods', '-A', '-l', 'fedgpu.io/job-uid', '-o', 'jsonpath={.items[*].status.phase}']);
    return r.stdout === 'Running' ? true : undefined;
  }, { timeoutMs: 60_000 });
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await Promise.all(Object.values(agents).map((a) => a.process.stop()));
  await hub?.stop();
  await testbed?.stop();
});

// --- helpers ---------------------------------------------------------------------------------

const fedgpu = (user: string, args: string[], stdin?: string): Promise<CliResult> =>
  runCli(['--kubeconfig', kubeconfigs[user]!, ...args], { stdin, maxBuffer: 64 * 1024 * 1024 });

/** A long-running CLI command; `output()` is what it printed so far. */
function fedgpuStream(user: string, args: string[]) {
  const stream = streamCli(['--kubeconfig', kubeconfigs[user]!, ...args]);
  children.push(stream.child);
  return stream;
}

/** Where an agent keeps the log tails of ended attempts. */
const logTails = (provider: string) => join(dir, `${provider}-log-tails`);
const getJob = (name = 'trainer') => getGpuJob(testbed.cluster('hub'), name);
const waitJob = (ok: (j: GpuJob) => boolean, timeoutMs = 60_000) => waitGpuJob(testbed.cluster('hub'), 'trainer', 'as expected', ok, { timeoutMs, intervalMs: 200 });

// --- tests ---------------------------------------------------------------------------------------

describe('consumer access through the tunnel', () => {
  it('prints and follows a running job\'s log', async () => {
    const once = await fedgpu('alice', ['logs', 'trainer', '-n', 'ml']);
    expect(once.code, once.stderr).toBe(0);
    expect(once.stdout).toBe(`${first}: epoch 0 step 1 loss 2.31\n${first}: epoch 0 step 2 loss 2.02\n`);
    const tail = await fedgpu('alice', ['logs', 'trainer', '-n', 'ml', '--tail', '1']);
    expect(tail.stdout).toBe(`${first}: epoch 0 step 2 loss 2.02\n`);

    const follow = fedgpuStream('alice', ['logs', 'trainer', '-n', 'ml', '-f']);
    await waitFor('the existing lines', () => (follow.output().includes('step 2') ? true : undefined), { timeoutMs: 60_000 });
    appendFileSync(testbed.cluster(first).access.logFile, criLogLines([`${first}: epoch 0 step 3 loss 1.87`]));
    await waitFor('the new line, followed', () => (follow.output().includes('step 3 loss 1.87') ? true : undefined), { timeoutMs: 30_000 });
    follow.child.kill('SIGTERM');
  });

  it('keeps a followed log open while the job prints nothing, past the tunnel idle timeout, and shows the next line', async () => {
    const follow = fedgpuStream('alice', ['logs', 'trainer', '-n', 'ml', '-f', '--tail', '1']);
    await waitFor('the stream open', () => (follow.output().length > 0 ? true : undefined), { timeoutMs: 60_000 });
    const quietSince = performance.now();
    // What is tested is a stretch of time with no data, so the wait is for time to pass: three idle
    // timeouts, failing at once if the stream ends meanwhile.
    await waitFor('three idle timeouts of silence', () => {
      if (follow.child.exitCode !== null) throw new Error(`fedgpu logs -f ended after ${Math.round(performance.now() - quietSince)} ms of silence: ${follow.output().slice(-200)}`);
      return performance.now() - quietSince > 3 * TUNNEL_IDLE_MS ? true : undefined;
    }, { timeoutMs: 4 * TUNNEL_IDLE_MS + 10_000, intervalMs: 100 });
    appendFileSync(testbed.cluster(first).access.logFile, criLogLines([`${first}: after the quiet, step 9`]));
    await waitFor('the line after the quiet', () => (follow.output().includes('after the quiet, step 9') ? true : undefined), { timeoutMs: 30_000 });
    expect(follow.output()).not.toContain('log ended');
    follow.child.kill('SIGTERM');
  });

  it("holds one user to their share of a provider's sessions, and gives a place back when a session ends", async () => {
    const follows = Array.from({ length: SESSIONS_PER_USER }, () => fedgpuStream('alice', ['logs', 'trainer', '-n', 'ml', '-f', '--tail', '1']));
    try {
      await waitFor('every follow open', () => (follows.every((f) => f.output().length > 0) ? true : undefined), { timeoutMs: 90_000 });
      const refused = await fedgpu('alice', ['logs', 'trainer', '-n', 'ml', '--tail', '1']);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain(`alice already has ${SESSIONS_PER_USER} access sessions open to provider ${names[first]}`);
      follows[0]!.child.kill('SIGTERM');
      // The hub gives the place back once it sees that connection close.
      const again = await waitFor('a place again', async () => {
        const res = await fedgpu('alice', ['logs', 'trainer', '-n', 'ml', '--tail', '1']);
        return res.code === 0 ? res : undefined;
      }, { timeoutMs: 30_000, intervalMs: 250 });
      expect(again.stdout).toContain(first);
    } finally {
      for (const f of follows) f.child.kill('SIGTERM');
    }
  });

  it('runs a command in the pod and returns its output and exit code', async () => {
    const res = await fedgpu('alice', ['exec', 'trainer', '-n', 'ml', '--', 'sh', '-c', 'echo to-stdout; echo to-stderr >&2; exit 7']);
    expect(res.stdout).toBe('to-stdout\n');
    expect(res.stderr).toContain('to-stderr');
    expect(res.code).toBe(7);
    const ok = await fedgpu('alice', ['exec', 'trainer', '-n', 'ml', '--', 'sh', '-c', 'echo fine']);
    expect(ok).toMatchObject({ code: 0, stdout: 'fine\n' });
  });

  it('passes stdin to exec -i', async () => {
    // kwok v0.8 copies stdin into the command's pipe but never closes it at end of input
    // (pkg/utils/exec), so a `cat` here would wait forever: the command reads what it needs.
    const res = await fedgpu('alice', ['exec', 'trainer', '-n', 'ml', '-i', '--', 'sh', '-c', 'read a; read b; echo "got $a / $b"; exit 4'], 'hello from stdin\nsecond line\n');
    expect(res.stderr).toBe('');
    expect(res).toMatchObject({ code: 4, stdout: 'got hello from stdin / second line\n' });
  });

  it('filters the log by age with --since and prefixes timestamps with --timestamps', async () => {
    const log = testbed.cluster(first).access.logFile;
    appendFileSync(log, criLogLines([`${first}: from two hours ago`], new Date(Date.now() - 2 * 3600_000)));
    appendFileSync(log, criLogLines([`${first}: fresh line`]));
    const all = await fedgpu('alice', ['logs', 'trainer', '-n', 'ml']);
    expect(all.stdout).toContain('from two hours ago');
    const recent = await fedgpu('alice', ['logs', 'trainer', '-n', 'ml', '--since', '1h']);
    expect(recent.code, recent.stderr).toBe(0);
    expect(recent.stdout).not.toContain('from two hours ago');
    expect(recent.stdout).toContain(`${first}: epoch 0 step 1 loss 2.31\n`);
    expect(recent.stdout).toMatch(/fresh line\n$/);
    const stamped = await fedgpu('alice', ['logs', 'trainer', '-n', 'ml', '--tail', '1', '--timestamps']);
    expect(stamped.code, stamped.stderr).toBe(0);
    expect(stamped.stdout).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?Z ${first}: fresh line\\n$`));
  });

  it('forwards local ports to the pod, several connections at once', async () => {
    let served = 0;
    const podServer: Server = createServer((req, res) => {
      served++;
      res.end(`pod answers ${req.url}`);
    }).listen(testbed.cluster(first).access.forwardPort, '127.0.0.1');
    try {
      const pf = fedgpuStream('alice', ['port-forward', 'trainer', '-n', 'ml', '0:8888']);
      const port = await waitFor('Forwarding from', () => /Forwarding from 127\.0\.0\.1:(\d+)/.exec(pf.output())?.[1], { timeoutMs: 60_000 });
      const answers = await Promise.all(['/a', '/b', '/c'].map(async (p) => (await fetch(`http://127.0.0.1:${port}${p}`, { headers: { connection: 'close' } })).text()));
      expect(answers).toEqual(['pod answers /a', 'pod answers /b', 'pod answers /c']);
      expect(served).toBe(3);
      pf.child.kill('SIGTERM');
    } finally {
      podServer.close();
    }
  });

  it('refuses users without the verb, naming it', async () => {
    // bob may get the GpuJob but not its log: the hub apiserver's RBAC refuses before the hub.
    const viewer = await testbed.cluster('hub').kubectl(['--kubeconfig', kubeconfigs.bob!, 'get', 'gj', 'trainer', '-n', 'ml']);
    expect(viewer.code, viewer.stderr).toBe(0);
    const bob = await fedgpu('bob', ['logs', 'trainer', '-n', 'ml']);
    expect(bob.code).not.toBe(0);
    expect(bob.stderr).toMatch(/forbidden|cannot get/i);
    expect(bob.stderr).toContain('gpujobs/log');
    const bobExec = await fedgpu('bob', ['exec', 'trainer', '-n', 'ml', '--', 'true']);
    expect(bobExec.stderr).toContain('cannot create resource "gpujobs/exec"');
    // carol gets through the apiserver (access.fedgpu.io) but the hub's SubjectAccessReview on
    // fedgpu.io gpujobs/log says no.
    const carol = await fedgpu('carol', ['logs', 'trainer', '-n', 'ml']);
    expect(carol.code).not.toBe(0);
    expect(carol.stderr).toContain('User "carol" cannot get resource "gpujobs/log" in API group "fedgpu.io"');
  });

  it("refuses exec and port-forward into a job whose Secrets the user may not read, and allows them once the user may", async () => {
    // The attack: alice may exec into any job of her namespace, but may not read its Secrets. A
    // teammate's job holds one (env, files): exec would read it from the job's processes.
    const hubCluster = testbed.cluster('hub');
    const patch = (p: string) => hubCluster.kubectl(['patch', 'gj', 'trainer', '-n', 'ml', '--type=json', '-p', p]);
    expect((await patch('[{"op":"add","path":"/spec/secrets","value":[{"name":"teammate-token","mountPath":"/var/run/secrets/t"}]}]')).code).toBe(0);
    try {
      await waitFor('the hub to see the job name the Secret', async () => {
        const refused = await fedgpu('alice', ['exec', 'trainer', '-n', 'ml', '--', 'true']);
        return refused.code !== 0 && refused.stderr.includes('teammate-token') ? refused : undefined;
      }, { timeoutMs: 10_000, intervalMs: 200 }).then((refused) => {
        expect(refused.stderr).toContain('User "alice" cannot get resource "secrets" in API group "" in the namespace "ml": exec reaches the job\'s processes, which hold Secret "teammate-token"');
      });
      // Port-forward opens its session per connection: the connection is refused, and the CLI says why.
      const pf = fedgpuStream('alice', ['port-forward', 'trainer', '-n', 'ml', '0:8888']);
      try {
        const port = await waitFor('Forwarding from', () => /Forwarding from 127\.0\.0\.1:(\d+)/.exec(pf.output())?.[1], { timeoutMs: 60_000 });
        await expect(fetch(`http://127.0.0.1:${port}/`, { headers: { connection: 'close' } })).rejects.toThrow();
        await waitFor('the refusal printed', () => (pf.errors().includes('which hold Secret "teammate-token"') ? true : undefined), { timeoutMs: 10_000 });
      } finally {
        pf.child.kill('SIGTERM');
      }
      // Logs are what the job chose to print: still allowed.
      expect((await fedgpu('alice', ['logs', 'trainer', '-n', 'ml'])).code).toBe(0);
      // Allowed to read that Secret, alice may exec again.
      const grant = await hubCluster.kubectl(['apply', '-f', '-'], `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: teammate-token-reader, namespace: ml}
rules: [{apiGroups: [""], resources: [secrets], resourceNames: [teammate-token], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-teammate-token, namespace: ml}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: teammate-token-reader}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}]
`);
      expect(grant.code, grant.stderr).toBe(0);
      await waitFor('exec allowed once alice may read the Secret', async () => {
        const ok = await fedgpu('alice', ['exec', 'trainer', '-n', 'ml', '--', 'sh', '-c', 'echo fine']);
        return ok.code === 0 && ok.stdout === 'fine\n' ? true : undefined;
      }, { timeoutMs: 10_000, intervalMs: 200 });
    } finally {
      // The later tests move this job: it must not then wait for a Secret the hub may not read.
      expect((await patch('[{"op":"remove","path":"/spec/secrets"}]')).code).toBe(0);
    }
    // Emptying spec.secrets does not open the way: the running attempt was sent its Secrets, and
    // its status names them (here written by the test, as the hub writes it at assignment).
    const job = await getJob();
    const index = job.status!.attempts!.findIndex((a) => !a.endTime);
    const statusPatch = (p: string) => hubCluster.kubectl(['patch', 'gj', 'trainer', '-n', 'ml', '--subresource=status', '--type=json', '-p', p]);
    expect((await statusPatch(`[{"op":"add","path":"/status/attempts/${index}/secretNames","value":["another-token"]}]`)).code).toBe(0);
    try {
      const refused = await waitFor('exec refused for the Secret the attempt holds', async () => {
        const r = await fedgpu('alice', ['exec', 'trainer', '-n', 'ml', '--', 'true']);
        return r.code !== 0 && r.stderr.includes('another-token') ? r : undefined;
      }, { timeoutMs: 10_000, intervalMs: 200 });
      expect(refused.stderr).toContain('which hold Secret "another-token"');
    } finally {
      expect((await statusPatch(`[{"op":"remove","path":"/status/attempts/${index}/secretNames"}]`)).code).toBe(0);
    }
  });

  it('keeps heartbeats on time while a large log streams', async () => {
    // 16 MiB of log lines; the reader reads it all while the dc stream also carries heartbeats.
    const line = `${'x'.repeat(200)}`;
    appendFileSync(testbed.cluster(first).access.logFile, criLogLines(Array.from({ length: 80_000 }, (_, i) => `${i} ${line}`)));
    const sample = async (until: () => boolean) => {
      const rtts: number[] = [];
      while (!until()) {
        const rtt = hub.server.providerLatency(names[first]!)?.rttMs;
        if (rtt !== undefined) rtts.push(rtt);
        await new Promise((r) => setTimeout(r, 100));
      }
      return rtts;
    };
    // Baseline: the same stream, idle, for a few seconds.
    const idleUntil = Date.now() + 5_000;
    const idle = await sample(() => Date.now() > idleUntil);
    let streaming = true;
    const sampler = sample(() => !streaming);
    const big = await fedgpu('alice', ['logs', 'trainer', '-n', 'ml']);
    streaming = false;
    const during = await sampler;
    expect(big.code, big.stderr).toBe(0);
    expect(big.stdout.split('\n').filter((l) => l.endsWith(line))).toHaveLength(80_000);
    const provider = await providerClient(testbed.cluster('hub')).byWallet(agents[first]!.wallet.address);
    expect(readyStatus(provider)?.status).toBe('True');
    const max = (v: number[]) => Math.max(...v).toFixed(0);
    console.log(
      `ping RTT (EWMA) on the ${first} stream: idle max ${max(idle)} ms; while ${(big.stdout.length / 1048576).toFixed(1)} MiB of log streamed ` +
        `max ${max(during)} ms over ${during.length} samples (load: ${(await import('node:os')).loadavg()[0]!.toFixed(1)})`,
    );
    // Pings queue behind at most the tunnel's high-water mark, never behind the whole log: the
    // provider stays Ready and no ping waits anywhere near providerLostAfter (8 s). (On an idle
    // machine the RTT stays in milliseconds; a loaded 2-core one adds seconds of CPU wait to both.)
    // (Samples exist: the max of none would pass any bound.)
    expect(during.length).toBeGreaterThan(0);
    expect(Math.max(...during)).toBeLessThan(6_000);
  });

  it("reads the log of an ended attempt after the job moved to another provider", async () => {
    const before = await getJob();
    const node = (await testbed.cluster(first).kubectl(['get', 'pods', '-A', '-l', 'fedgpu.io/job-uid', '-o', 'jsonpath={.items[0].spec.nodeName}'])).stdout;
    // The owner takes the node back: attempt 1 is reclaimed and the job resumes on the other provider.
    await testbed.cluster(first).kubectl(['cordon', node]);
    const moved = await waitJob((j) => j.status?.phase === 'Running' && (j.status.currentEpoch ?? 0) >= 2, 90_000);
    expect(moved.status?.placement?.provider).toBe(names[second]);
    expect(before.status?.currentEpoch).toBe(1);
    await waitFor('pods of attempt 1 gone', async () => {
      const r = await testbed.cluster(first).kubectl(['get', 'pods', '-A', '-l', 'fedgpu.io/job-uid', '-o', 'name']);
      return r.stdout.trim() === '' ? true : undefined;
    }, { timeoutMs: 60_000 });

    const latest = await waitFor('the log of attempt 2', async () => {
      const r = await fedgpu('alice', ['logs', 'trainer', '-n', 'ml']);
      return r.code === 0 && r.stdout.includes(`${second}:`) ? r : undefined;
    }, { timeoutMs: 60_000, intervalMs: 1_000 });
    expect(latest.stdout).toBe(`${second}: epoch 0 step 1 loss 2.31\n${second}: epoch 0 step 2 loss 2.02\n`);
    const old = await fedgpu('alice', ['logs', 'trainer', '-n', 'ml', '--attempt', '1', '--tail', '2']);
    expect(old.code, old.stderr).toBe(0);
    expect(old.stdout.split('\n').filter(Boolean)).toHaveLength(2);
    expect(old.stdout).not.toContain(`${second}:`);
    expect(old.stdout).toMatch(/79999 x+\n$/);
    // The kept tail answers --timestamps and --since as the live log does: its lines were written
    // before the reclaim above, over a second ago.
    const stamped = await fedgpu('alice', ['logs', 'trainer', '-n', 'ml', '--attempt', '1', '--tail', '1', '--timestamps']);
    expect(stamped.stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z 79999 x+\n$/);
    const recent = await fedgpu('alice', ['logs', 'trainer', '-n', 'ml', '--attempt', '1', '--since', '1s']);
    expect(recent.code, recent.stderr).toBe(0);
    expect(recent.stdout).toBe('');
    const hour = await fedgpu('alice', ['logs', 'trainer', '-n', 'ml', '--attempt', '1', '--since', '1h', '--tail', '1']);
    expect(hour.stdout).toMatch(/^79999 x+\n$/);
    // Only the main container's tail is kept: another container is refused, not answered with it.
    const sidecar = await fedgpu('alice', ['logs', 'trainer', '-n', 'ml', '--attempt', '1', '-c', 'sidecar']);
    expect(sidecar.code).not.toBe(0);
    expect(sidecar.stderr).toContain('attempt 1 has ended; only its main container\'s log (main) is kept, not "sidecar"\'s');
    // exec goes to the running attempt, on the new provider.
    const execOld = await fedgpu('alice', ['exec', 'trainer', '-n', 'ml', '--', 'true']);
    expect(execOld.code).toBe(0);
    await testbed.cluster(first).kubectl(['uncordon', node]);
  });
});

describe('provider pod Events on the GpuJob', () => {
  it("shows why an attempt is stuck: the provider's Warning becomes a GpuJob Event and status.message, and nothing else is relayed", async () => {
    // The failover left `first` free (one node, 8 GPUs): a job whose image cannot be pulled lands there.
    const broken = stringify({
      apiVersion: 'fedgpu.io/v1alpha1',
      kind: 'GpuJob',
      metadata: { name: 'broken', namespace: 'ml' },
      spec: {
        template: { metadata: { annotations: { [SIM_IMAGE_PULL_ERROR_ANNOTATION]: 'true' } }, spec: { containers: [{ name: 'main', image: 'example/no-such-image' }] } },
        gpusPerReplica: 8,
        gpu: { products: [H100] },
        budget: { maxPricePerGpuHour: '3' },
      },
    });
    const created = await testbed.cluster('hub').kubectl(['apply', '-f', '-'], broken);
    expect(created.code, created.stderr).toBe(0);
    const provider = names[first]!;
    // kwok, in the kubelet's place, records `Warning Failed: Failed to pull image ...` on the pod.
    const stuck = await waitFor('status.message from the provider Event', async () => {
      const j = await getJob('broken');
      return j.status?.message?.startsWith(`Failed: replica 0 on provider ${provider}: Failed to pull image`) ? j : undefined;
    }, { timeoutMs: 90_000, intervalMs: 500 });
    expect(stuck.status?.phase).toBe('Scheduled');
    expect(stuck.status?.placement?.provider).toBe(provider);
    const jobEvents = async () =>
      (await testbed.cluster('hub').kubeConfig.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: 'ml', fieldSelector: 'involvedObject.name=broken' })).items;
    // The Event and the status write are separate writes, in no fixed order.
    const relayed = await waitFor('the relayed Failed Event', async () =>
      (await jobEvents()).find((e) => e.reportingComponent === 'fedgpu.io/provider-pod-events' && e.reason === 'Failed'), { timeoutMs: 30_000 });
    expect(relayed).toMatchObject({ type: 'Warning', involvedObject: { kind: 'GpuJob', uid: stuck.metadata.uid } });
    expect(relayed?.message).toMatch(new RegExp(`^replica 0 on provider ${provider}: Failed to pull image: .*ErrImagePull`));
    const described = await testbed.cluster('hub').kubectl(['describe', 'gj', 'broken', '-n', 'ml']);
    expect(described.stdout).toContain(`replica 0 on provider ${provider}: Failed to pull image`);

    // Events the agent must not relay: another namespace, and another pod in the tenant namespace.
    // A legitimate one written after them (as the kubelet would) shows when the agent has seen them.
    const providerCore = testbed.cluster(first).kubeConfig.makeApiClient(CoreV1Api);
    const pod = podName(stuck.metadata.uid!, stuck.status!.currentEpoch!, 0);
    const tenant = (await testbed.cluster(first).kubectl(['get', 'pods', '-A', '-l', `fedgpu.io/job-uid=${stuck.metadata.uid}`, '-o', 'jsonpath={.items[0].metadata.namespace}'])).stdout;
    expect(tenant).not.toBe('');
    const event = (namespace: string, name: string, reason: string, message: string) =>
      providerCore.createNamespacedEvent({
        namespace,
        body: {
          metadata: { generateName: `${name}.`, namespace },
          involvedObject: { kind: 'Pod', apiVersion: 'v1', namespace, name },
          type: 'Warning',
          reason,
          message,
          count: 1,
          firstTimestamp: new Date(),
          lastTimestamp: new Date(),
          source: { component: 'kubelet', host: 'dc-h100-0' },
        },
      });
    await event('default', pod, 'Intruder', 'same pod name, other namespace');
    await event(tenant, 'not-the-attempts-pod', 'Intruder', 'other pod, tenant namespace');
    await event(tenant, pod, 'FailedMount', 'MountVolume.SetUp failed for volume "scratch"\u001b[2J\nsecond line');
    const mount = await waitFor('the FailedMount Event on the GpuJob', async () => (await jobEvents()).find((e) => e.reason === 'FailedMount'), { timeoutMs: 60_000, intervalMs: 500 });
    // Control characters and the newline are gone: one printable line.
    expect(mount.message).toBe(`replica 0 on provider ${provider}: MountVolume.SetUp failed for volume "scratch" [2J second line`);
    expect((await jobEvents()).filter((e) => e.reason === 'Intruder')).toEqual([]);
    // The hub records the Event and writes status.message in its next reconcile, one after the
    // other, not together: the message may land a moment after the Event.
    const remounted = await waitFor('status.message from the FailedMount Event', async () => {
      const message = (await getJob('broken')).status?.message;
      return message?.startsWith('FailedMount: ') ? message : undefined;
    }, { timeoutMs: 30_000, intervalMs: 200 });
    expect(remounted).toBe(`FailedMount: ${mount.message}`);

    const deleted = await testbed.cluster('hub').kubectl(['delete', 'gj', 'broken', '-n', 'ml', '--wait=true', '--timeout=60s']);
    expect(deleted.code, deleted.stderr).toBe(0);
  });
});

describe('access after the job', () => {
  it("removes the kept log tails of a deleted job's attempts from the provider", async () => {
    const uid = (await getJob()).metadata.uid!;
    const tailsOf = () => readdirSync(logTails(first)).filter((f) => f.startsWith(`${uid}_`));
    // Attempt 1 ended on `first` (the failover above): its tail is kept there.
    expect(tailsOf().length).toBeGreaterThan(0);
    const deleted = await testbed.cluster('hub').kubectl(['delete', 'gj', 'trainer', '-n', 'ml', '--wait=false']);
    expect(deleted.code, deleted.stderr).toBe(0);
    await waitFor('the log tails removed', () => (tailsOf().length === 0 ? true : undefined), { timeoutMs: 60_000, intervalMs: 250 });
  });

  it('an HA stand-by answers 503 naming the leader instead of failing oddly', async () => {
    // The chart's Lease, held by another replica and renewed an hour ahead: this second hub, with
    // the chart's hub identity (its Role reads and updates that Lease by name), stays a stand-by.
    const lease = stringify({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { ...HUB_LEASE },
      spec: { holderIdentity: 'hub-leader-elsewhere', leaseDurationSeconds: 3600, renewTime: new Date().toISOString().replace('Z', '000Z') },
    });
    const held = await testbed.cluster('hub').kubectl(['apply', '-f', '-'], lease);
    expect(held.code, held.stderr).toBe(0);
    const serving = await accessServingCert(pki);
    const standby = await startHub({
      kubeConfig: (await hubIdentity(testbed.cluster('hub'))).kubeConfig,
      tls: { caPem: pki.ca.certPem, certPem: pki.server.certPem, keyPem: pki.server.keyPem },
      logger: pino({ level: 'info' }, pino.destination({ dest: join(dir, 'hub-standby.log'), sync: true, mkdir: true })),
      leaderElection: { ...HUB_LEASE, identity: 'hub-standby-e2e', retryPeriodMs: 500 },
      access: { port: 0, certPem: serving.certPem, keyPem: serving.keyPem },
    });
    try {
      expect(standby.roles.isLeader).toBe(false);
      // The apiserver now routes access.fedgpu.io to the stand-by, as a Service may.
      await registerAccessApi(testbed.cluster('hub'), pki.ca.certPem, standby.accessPort!);
      const refused = await waitFor('the stand-by answers', async () => {
        const r = await fedgpu('alice', ['logs', 'trainer', '-n', 'ml']);
        return r.stderr.includes('the leader is') ? r : undefined;
      }, { timeoutMs: 60_000, intervalMs: 1_000 });
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain('this hub replica (hub-standby-e2e) is a stand-by; the leader is hub-leader-elsewhere');
      const exec = await fedgpu('alice', ['exec', 'trainer', '-n', 'ml', '--', 'true']);
      expect(exec.stderr).toContain('is a stand-by; the leader is hub-leader-elsewhere');
    } finally {
      await standby.stop();
    }
  });
});
