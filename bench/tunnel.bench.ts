// Issue 13: what the hub's tunnel costs a consumer, beside the direct path to the provider's
// apiserver, as ratios from one run. Prints numbers; asserts nothing.
//   set-up: hub apiserver (aggregation) + hub in this process with its access API registered as an
//   APIService; one provider cluster whose kwok serves pods/log from a file and port-forward to a
//   local HTTP server; the real agent as a process; one running GpuJob.
//   1. log throughput: the same N MiB log read (a) directly from the provider apiserver's pods/log
//      and (b) through hub apiserver -> hub -> agent stream -> provider apiserver; MB/s each, ratio.
//   2. port-forward latency: sequential HTTP requests, one connection each, through
//      (a) `kubectl port-forward` to the provider apiserver and (b) `fedgpu port-forward` via the
//      hub; median and p95 each, and the added latency.
// Run: tsx bench/tunnel.bench.ts [logMiB] [requests]
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { request } from 'node:https';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { startHub } from '../operator/src/hub/hub.js';
import { accessServingCert, registerAccessApi } from '../operator/src/testbed/access-api.js';
import { hubPki, installCrds, providerClient, readyStatus, startAgent } from '../operator/src/testbed/federation.js';
import { criLogLines } from '../operator/src/testbed/kwok/access.js';
import { reapStaleRuns } from '../operator/src/testbed/processes.js';
import { startTestbed } from '../operator/src/testbed/testbed.js';
import { repoRoot, toolPath } from '../operator/src/testbed/tools.js';
import { waitFor } from '../operator/src/testbed/wait.js';
import { figure, loadLine, machineLine, ms, nowMs, section, summarize } from './support.js';

const logMiB = Number(process.argv[2] ?? 32);
const requests = Number(process.argv[3] ?? 40);
const H100 = 'NVIDIA-H100-80GB-HBM3';
const root = join(repoRoot, '.testbed', 'bench-tunnel');
const cli = join(repoRoot, 'operator', 'src', 'cli', 'main.ts');

console.log(machineLine());
reapStaleRuns(root);
const dir = join(root, String(process.pid));
const testbed = await startTestbed(join(dir, 'clusters'), [
  { name: 'hub', scheduler: false },
  { name: 'p1', gpuNodes: [{ prefix: 'h100', count: 1, gpusPerNode: 8, product: H100, memoryMiB: 81559 }] },
]);
const children: ChildProcess[] = [];
const pki = await hubPki(join(dir, 'pki'));
const serving = await accessServingCert(pki);
const hubCluster = testbed.cluster('hub');
const provider = testbed.cluster('p1');
await installCrds(hubCluster);
const hub = await startHub({
  kubeConfig: hubCluster.kubeConfig,
  tls: { caPem: pki.ca.certPem, certPem: pki.server.certPem, keyPem: pki.server.keyPem },
  logger: pino({ level: 'warn' }, pino.destination({ dest: join(dir, 'hub.log'), sync: true, mkdir: true })),
  heartbeatIntervalMs: 500,
  pingIntervalMs: 500,
  access: { port: 0, certPem: serving.certPem, keyPem: serving.keyPem },
});
const agent = await startAgent('p1', provider, pki, `127.0.0.1:${hub.port}`, { pricePerGpuHour: { [H100]: '2.0' } });
const podServer = createServer((_req, res) => res.end('ok')).listen(provider.access.forwardPort, '127.0.0.1');
try {
  await registerAccessApi(hubCluster, pki.ca.certPem, hub.accessPort!);
  await waitFor('provider Ready', async () => (readyStatus(await providerClient(hubCluster).byWallet(agent.wallet.address))?.status === 'True' ? true : undefined), { timeoutMs: 180_000 });
  // The log: logMiB of 200-byte lines.
  const lineCount = Math.ceil((logMiB * 2 ** 20) / 200);
  writeFileSync(provider.access.logFile, criLogLines(Array.from({ length: lineCount }, (_, i) => `${String(i).padStart(9, '0')} ${'x'.repeat(189)}`)));
  await hubCluster.kubectl(['apply', '-f', '-'], stringify({
    apiVersion: 'fedgpu.io/v1alpha1', kind: 'GpuJob', metadata: { name: 'bench', namespace: 'default' },
    spec: { template: { metadata: { annotations: { 'fedgpu.io/sim-run-for': '3600s' } }, spec: { containers: [{ name: 'main', image: 'x' }] } }, gpusPerReplica: 1, gpu: { products: [H100] }, budget: { maxPricePerGpuHour: '3' } },
  }));
  const pod = await waitFor('the job pod Running', async () => {
    const r = await provider.kubectl(['get', 'pods', '-n', 'fedgpu-jobs', '-o', 'jsonpath={range .items[?(@.status.phase=="Running")]}{.metadata.name}{end}']);
    return r.stdout || undefined;
  }, { timeoutMs: 120_000 });

  section(`1. log throughput, ${logMiB} MiB (${lineCount} lines)`);
  const direct = await readAll(provider.kubeConfig, `/api/v1/namespaces/fedgpu-jobs/pods/${pod}/log?container=main`);
  const tunnel = await readAll(hubCluster.kubeConfig, '/apis/access.fedgpu.io/v1alpha1/namespaces/default/gpujobs/bench/log');
  const direct2 = await readAll(provider.kubeConfig, `/api/v1/namespaces/fedgpu-jobs/pods/${pod}/log?container=main`);
  const tunnel2 = await readAll(hubCluster.kubeConfig, '/apis/access.fedgpu.io/v1alpha1/namespaces/default/gpujobs/bench/log');
  const mbps = (r: { bytes: number; ms: number }) => r.bytes / 1e6 / (r.ms / 1000);
  const directMBps = Math.max(mbps(direct), mbps(direct2));
  const tunnelMBps = Math.max(mbps(tunnel), mbps(tunnel2));
  figure('direct (provider apiserver pods/log)', `${directMBps.toFixed(1)} MB/s (best of 2; ${direct.bytes} bytes)`);
  figure('through the hub tunnel', `${tunnelMBps.toFixed(1)} MB/s (best of 2; ${tunnel.bytes} bytes)`);
  figure('tunnel / direct', `${(tunnelMBps / directMBps).toFixed(2)}`);

  section(`2. port-forward: ${requests} sequential requests, one connection each`);
  const kubectlPf = spawn(toolPath('kubectl'), ['--kubeconfig', provider.kubeconfigPath, 'port-forward', '-n', 'fedgpu-jobs', pod, ':8080'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const fedgpuPf = spawn(process.execPath, ['--import', 'tsx', cli, '--kubeconfig', hubCluster.kubeconfigPath, 'port-forward', 'bench', '0:8080'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(kubectlPf, fedgpuPf);
  for (const c of [kubectlPf, fedgpuPf]) {
    const holder = c as unknown as { out: string };
    holder.out = '';
    c.stdout?.on('data', (d: Buffer) => (holder.out += d.toString('utf8')));
  }
  const directPort = await listeningPort(kubectlPf);
  const tunnelPort = await listeningPort(fedgpuPf);
  const directLat = summarize(await timeRequests(directPort, requests));
  const tunnelLat = summarize(await timeRequests(tunnelPort, requests));
  figure('direct (kubectl port-forward to the provider)', `median ${ms(directLat.p50, 1)}, p95 ${ms(directLat.p95, 1)}`);
  figure('through the hub tunnel (fedgpu port-forward)', `median ${ms(tunnelLat.p50, 1)}, p95 ${ms(tunnelLat.p95, 1)}`);
  figure('added latency (median)', `${ms(tunnelLat.p50 - directLat.p50, 1)}; ratio ${(tunnelLat.p50 / directLat.p50).toFixed(2)}`);
} finally {
  for (const c of children) c.kill('SIGKILL');
  podServer.close();
  await agent.process.stop();
  await hub.stop();
  await testbed.stop();
}
console.log(`\n(total ${process.uptime().toFixed(0)} s; ${loadLine()})`);

async function readAll(kc: KubeConfig, path: string): Promise<{ bytes: number; ms: number }> {
  const cluster = kc.getCurrentCluster()!;
  const url = new URL(cluster.server);
  const options = { hostname: url.hostname, port: url.port, path, method: 'GET', headers: {} };
  await kc.applyToHTTPSOptions(options);
  const started = nowMs();
  const bytes = await new Promise<number>((resolve, reject) => {
    const req = request(options, (res) => {
      if (res.statusCode !== 200) {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString('utf8')));
        res.on('end', () => reject(new Error(`${path}: HTTP ${res.statusCode}: ${body.slice(0, 500)}`)));
        return;
      }
      let n = 0;
      res.on('data', (c: Buffer) => (n += c.byteLength));
      res.on('end', () => resolve(n));
    });
    req.on('error', reject);
    req.end();
  });
  return { bytes, ms: nowMs() - started };
}

function listeningPort(child: ChildProcess): Promise<number> {
  return waitFor('a port-forward listening', () => {
    const out = (child as unknown as { out?: string }).out;
    return out ? Number(/127\.0\.0\.1:(\d+)/.exec(out)?.[1]) || undefined : undefined;
  }, { timeoutMs: 60_000 });
}

async function timeRequests(port: number, count: number): Promise<number[]> {
  const times: number[] = [];
  // One warm-up, not counted.
  await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: 'close' } }).then((r) => r.text());
  for (let i = 0; i < count; i++) {
    const started = nowMs();
    await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: 'close' } }).then((r) => r.text());
    times.push(nowMs() - started);
  }
  return times;
}
