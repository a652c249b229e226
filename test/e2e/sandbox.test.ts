import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuJob, GpuProvider } from '../../operator/src/api/types.js';
import { attachGpuMarket } from '../../operator/src/chain/contracts.js';
import { parseCredits } from '../../operator/src/chain/credits.js';
import { freshProvider } from '../../operator/src/chain/provider.js';
import { CONSUMER_DEPOSIT } from '../../operator/src/sandbox/chain.js';
import { demoJobs } from '../../operator/src/sandbox/demo.js';
import { isSameProcess, processIdentity, type ProcessIdentity } from '../../operator/src/sandbox/down.js';
import type { SandboxStatus } from '../../operator/src/sandbox/state.js';
import { gpuJobClient, gpuProviderClient } from '../../operator/src/runtime/kube.js';
import { isAlive, reapStaleRuns, startProcess, type ManagedProcess } from '../../operator/src/testbed/processes.js';
import { repoRoot } from '../../operator/src/testbed/tools.js';
import { waitFor } from '../../operator/src/testbed/wait.js';

// The main job as a newcomer runs it: `fedgpu sandbox up` brings up the whole federation and runs
// the demo; then the CLI's answers must agree with the API, and `sandbox down` leaves nothing.

const root = join(repoRoot, '.testbed', 'e2e-sandbox');
const dir = join(root, String(process.pid));
const env = { ...process.env, FEDGPU_SANDBOX_DIR: join(dir, 'sandbox') };
const cli = join(repoRoot, 'operator', 'bin', 'fedgpu.js');
let supervisor: ManagedProcess;

function fedgpu(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { env, timeout: 120_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

const status = (): SandboxStatus | undefined => {
  const path = join(env.FEDGPU_SANDBOX_DIR, 'status.json');
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as SandboxStatus) : undefined;
};

beforeAll(async () => {
  reapStaleRuns(root);
  supervisor = startProcess({ name: 'sandbox', command: process.execPath, args: [cli, 'sandbox', 'up'], dir, env });
  await waitFor('the demo to end', () => {
    if (!supervisor.running()) throw new Error(`sandbox exited; see ${supervisor.logPath}`);
    return status()?.demo?.state === 'done' ? true : undefined;
  }, { timeoutMs: 420_000, intervalMs: 1_000 });
});

afterAll(async () => {
  await supervisor?.stop(30_000);
});

const hubClients = () => {
  const kc = new KubeConfig();
  kc.loadFromFile(join(env.FEDGPU_SANDBOX_DIR, 'hub.kubeconfig'));
  const api = kc.makeApiClient(CustomObjectsApi);
  return { jobs: gpuJobClient(api), providers: gpuProviderClient(api) };
};

describe('sandbox', () => {
  it('ends every demo job as expected', async () => {
    expect(status()?.demo).toMatchObject({ state: 'done', ok: true, problems: [] });
    const jobs = (await hubClients().jobs.list({ namespace: 'default' })).items;
    for (const d of demoJobs) {
      const job = jobs.find((j) => j.metadata.name === d.name) as GpuJob;
      expect(job.status?.phase, d.name).toBe(d.expect.phase);
      expect(job.status?.attempts, d.name).toHaveLength(d.expect.attempts);
    }
    const failover = jobs.find((j) => j.metadata.name === 'failover-demo');
    expect(failover?.status?.attempts?.[0]).toMatchObject({ outcome: 'Lost', faultOf: 'provider' });
  });

  it('runs the real demo job as a real container on the homelab\'s real node', async () => {
    const kubeconfig = join(env.FEDGPU_SANDBOX_DIR, 'homelab.kubeconfig');
    const kubectl = (args: string[]) => new Promise<string>((resolve, reject) =>
      execFile(join(repoRoot, 'bin', 'kubectl'), [`--kubeconfig=${kubeconfig}`, ...args], { timeout: 60_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))));
    const pods = JSON.parse(await kubectl(['get', 'pods', '-A', '-o', 'json'])) as { items: { metadata: { name: string; namespace: string }; spec: { nodeName: string }; status: { containerStatuses?: { containerID?: string }[] } }[] };
    const real = pods.items.find((p) => p.spec.nodeName === 'homelab-4070ti');
    expect(real?.status.containerStatuses?.[0]?.containerID).toMatch(/^containerd:\/\//);
    const log = await kubectl(['logs', '-n', real!.metadata.namespace, real!.metadata.name]);
    expect(log).toMatch(/^training on .* as uid 65532, from step 0$/m);
    expect(log).toContain('checkpoint written at step 20');
    expect(log.trimEnd().endsWith('training done')).toBe(true);
  });

  it('reports what runs where: sandbox status -o json', async () => {
    const res = await fedgpu(['sandbox', 'status', '-o', 'json']);
    expect(res.code, res.stderr).toBe(0);
    const s = JSON.parse(res.stdout) as SandboxStatus;
    expect(s.state).toBe('running');
    expect(s.clusters.map((c) => c.name)).toEqual(['hub', 'datacenter', 'mining-farm', 'gamer', 'homelab']);
    for (const c of s.clusters) expect(existsSync(c.kubeconfig)).toBe(true);
    expect(s.hub?.grpcAddress).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('fedgpu market agrees with the GpuProviders in the API', async () => {
    const res = await fedgpu(['market', '-o', 'json']);
    expect(res.code, res.stderr).toBe(0);
    const rows = JSON.parse(res.stdout) as { provider: string; product: string; idle: number; total: number; pricePerGpuHour: string }[];
    const providers = (await hubClients().providers.list()).items as GpuProvider[];
    const expected = providers.flatMap((p) => (p.status?.pools ?? []).filter((pool) => pool.offered).map((pool) => ({
      provider: p.metadata.name, product: pool.gpuProduct, idle: pool.idle, total: pool.total, pricePerGpuHour: pool.pricePerGpuHour,
    })));
    expect(rows.map(({ provider, product, idle, total, pricePerGpuHour }) => ({ provider, product, idle, total, pricePerGpuHour })).sort((a, b) => `${a.provider}${a.product}`.localeCompare(`${b.provider}${b.product}`)))
      .toEqual(expected.sort((a, b) => `${a.provider}${a.product}`.localeCompare(`${b.provider}${b.product}`)));
    expect(rows.some((r) => r.product === 'NVIDIA-H100-80GB-HBM3')).toBe(true);
  });

  it('fedgpu explain shows the decision and the attempts from the job status', async () => {
    const res = await fedgpu(['explain', 'failover-demo']);
    expect(res.code, res.stderr).toBe(0);
    const job = await hubClients().jobs.get('failover-demo', 'default');
    expect(res.stdout).toContain(`Placement: ${job.status?.placement?.provider}`);
    expect(res.stdout).toMatch(/score \d\.\d{3} = reputation/);
    expect(res.stdout).toMatch(/Attempt 1: gp-[0-9a-f]+, Lost .*ProviderLost, fault: provider/);
    expect(res.stdout).toMatch(/Attempt 2: gp-[0-9a-f]+, Succeeded/);
    const missing = await fedgpu(['explain', 'no-such-job']);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/^error: gpujob default\/no-such-job not found/);
  });

  it('settles every demo job on the chain, and fedgpu balance agrees with the chain', async () => {
    const chain = status()!.chain!;
    const rpc = freshProvider(chain.rpcUrl);
    try {
      const market = attachGpuMarket(chain.contracts.GpuMarket!, rpc);
      const jobs = (await hubClients().jobs.list({ namespace: 'default' })).items;
      let paid = 0n;
      for (const d of demoJobs) {
        const job = jobs.find((j) => j.metadata.name === d.name)!;
        expect(job.status?.conditions?.find((c) => c.type === 'Settled')?.status, d.name).toBe('True');
        const receipt = await rpc.getTransactionReceipt(job.status!.settlement!.txHash!);
        expect(receipt?.status, d.name).toBe(1);
        paid += parseCredits(job.status!.settlement!.paid!);
      }
      // Only the finished attempt of failover-demo is paid; its lost provider was slashed.
      const failover = jobs.find((j) => j.metadata.name === 'failover-demo')!;
      expect(parseCredits(failover.status!.settlement!.slashed!)).toBeGreaterThan(0n);
      const res = await fedgpu(['balance', chain.consumer, '-o', 'json']);
      expect(res.code, res.stderr).toBe(0);
      const balance = JSON.parse(res.stdout) as { free: string; escrowed: string };
      expect(parseCredits(balance.free)).toBe(await market.freeBalanceOf(chain.consumer));
      expect(balance.escrowed).toBe('0');
      // The consumer paid exactly what the jobs' status says, less the slash paid to it.
      const slashed = jobs.reduce((n, j) => n + parseCredits(j.status?.settlement?.slashed ?? '0'), 0n);
      expect(parseCredits(CONSUMER_DEPOSIT) - parseCredits(balance.free)).toBe(paid - slashed);
    } finally {
      rpc.destroy();
    }
  });

  it("the README's access demo: logs of a gang replica and of failover-demo's lost attempt", async () => {
    const gang = await fedgpu(['logs', 'train-gang', '--replica', '2']);
    expect(gang.code, gang.stderr).toBe(0);
    expect(gang.stdout).toContain('epoch 0 step 1 loss');
    // failover-demo's attempt 1 died with its agent; the agent came back and kept the tail of the
    // zombie pod before deleting it. Its lines name the provider cluster it ran on.
    const clusterOf = (log: string) => /^\[([a-z-]+)\]/.exec(log)?.[1];
    const lost = await fedgpu(['logs', 'failover-demo', '--attempt', '1', '--tail', '3']);
    expect(lost.code, lost.stderr).toBe(0);
    expect(lost.stdout.trimEnd().split('\n')).toHaveLength(3);
    const latest = await fedgpu(['logs', 'failover-demo', '--tail', '3']);
    expect(latest.code, latest.stderr).toBe(0);
    expect(clusterOf(lost.stdout)).toBeDefined();
    expect(clusterOf(lost.stdout)).not.toBe(clusterOf(latest.stdout));
  });

  it("the README's access demo: exec and port-forward on a running notebook job", async () => {
    const kubectl = (args: string[]) => new Promise<string>((resolve, reject) =>
      execFile(join(repoRoot, 'bin', 'kubectl'), [`--kubeconfig=${join(env.FEDGPU_SANDBOX_DIR, 'hub.kubeconfig')}`, ...args], { timeout: 60_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))));
    await kubectl(['apply', '-f', join(repoRoot, 'examples', 'gpujob-notebook.yaml')]);
    await waitFor('notebook Running', async () => ((await hubClients().jobs.get('notebook', 'default')).status?.phase === 'Running' ? true : undefined), { timeoutMs: 120_000, intervalMs: 1_000 });
    const exec = await fedgpu(['exec', 'notebook', '--', 'sh', '-c', 'echo hello from the pod; exit 3']);
    expect(exec).toMatchObject({ code: 3, stdout: 'hello from the pod\n' });
    const forward = spawn(process.execPath, [cli, 'port-forward', 'notebook', '0:8080'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      forward.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
      const port = await waitFor('Forwarding from', () => /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out)?.[1], { timeoutMs: 60_000 });
      expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toMatch(/^hello from a job pod on [a-z-]+ \(GET \/\)/);
    } finally {
      forward.kill('SIGTERM');
    }
  });

  it('sandbox down stops everything it started', async () => {
    const s = status()!;
    // Every process with a pid file (anvil's command line does not name the folder), taken before
    // `down`: a stopped process removes its own.
    const recorded = recordedProcesses(env.FEDGPU_SANDBOX_DIR);
    expect(recorded.map((r) => r.file)).toContain(join('chain', 'anvil.pid'));
    const res = await fedgpu(['sandbox', 'down']);
    expect(res.code, res.stderr).toBe(0);
    await waitFor('the supervisor to exit', () => (isAlive(s.supervisorPid) ? undefined : true), { timeoutMs: 30_000 });
    expect(listOurProcesses(env.FEDGPU_SANDBOX_DIR)).toEqual([]);
    // The same process (pid and start time), so a pid reused meanwhile is not mistaken for a leak.
    expect(recorded.filter((r) => isSameProcess(r.identity)).map((r) => `${r.identity.pid} (${r.file}) ${r.identity.argv0}`)).toEqual([]);
  });
});

/** The live processes named by the `*.pid` files under `dir` (the first field of each is the pid). */
function recordedProcesses(dir: string): { file: string; identity: ProcessIdentity }[] {
  const out: { file: string; identity: ProcessIdentity }[] = [];
  for (const file of (readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.pid'))) {
    try {
      const identity = processIdentity(Number(readFileSync(join(dir, file), 'utf8').split(/\s/)[0]));
      if (identity) out.push({ file, identity });
    } catch {
      // removed meanwhile: its process has exited
    }
  }
  return out;
}

/** Processes whose command line mentions the sandbox folder (etcd, apiservers, kwok, hub, agents, kubelet, containerd, shims). */
function listOurProcesses(marker: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(marker) && isAlive(Number(pid))) out.push(`${pid} ${cmd.slice(0, 120)}`);
    } catch {
      // gone
    }
  }
  return out;
}
