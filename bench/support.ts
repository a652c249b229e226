// Small helpers the federation benchmarks share: percentiles, process CPU and memory from /proc,
// bounded concurrency, informers that timestamp what they see, and the lines every bench prints.
// Not a bench itself (make bench runs bench/*.bench.ts only).
import { execFileSync } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { cpus, loadavg, setPriority, totalmem } from 'node:os';
import { parse as parseYaml } from 'yaml';
import { CustomObjectsApi, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import { Informer } from '../operator/src/runtime/informer.js';
import { silentLogger } from '../operator/src/runtime/logger.js';
import { GROUP, VERSION } from '../operator/src/api/types.js';
import type { Cluster } from '../operator/src/testbed/cluster.js';
import { hubReady, type HubPki, type HubProcess } from '../operator/src/testbed/federation.js';
import { freePort, onFreshPorts } from '../operator/src/testbed/free-port.js';
import { procStatFields, startProcess } from '../operator/src/testbed/processes.js';
import { repoRoot } from '../operator/src/testbed/tools.js';
import { buildFedgpuBinary } from '../operator/src/testbed/binary.js';
import { probeAnswer } from '../operator/src/agent/stream/probe-answer.js';
import type { BandwidthProbe, BandwidthProbeData } from '../operator/src/gen/proto/fedgpu/v1/market.js';
import { waitFor } from '../operator/src/testbed/wait.js';

export const CORES = cpus().length;

/** One line naming the machine, printed at the top of every bench. */
export function machineLine(): string {
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  return `machine                ${CORES} cores (${cpu}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, ${new Date().toISOString().slice(0, 10)}; ${loadLine()}`;
}

/** The machine is shared: other work running at the same time skews every figure, so say how busy it was. */
export function loadLine(): string {
  return `load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const nowMs = () => performance.now();

export interface Summary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentiles. */
export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const q = (p: number) => (sorted.length ? (sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? NaN) : NaN);
  return {
    n: sorted.length,
    p50: q(0.5),
    p95: q(0.95),
    p99: q(0.99),
    max: sorted.at(-1) ?? NaN,
    mean: sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : NaN,
  };
}

export const ms = (v: number, digits = 0) => (Number.isFinite(v) ? `${v.toFixed(digits)} ms` : 'n/a');
export const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

export interface Target {
  text: string;
  /** undefined: no verdict (no target stated, or nothing measured). */
  met: boolean | undefined;
}

/** For figures the issue states no target for: printed as such rather than left unexplained. */
export const NO_TARGET: Target = { text: 'none stated', met: undefined };

/** `label  value  (target …: met|MISSED)`; the verdict is information, never an assertion. */
export function figure(label: string, value: string, target?: Target): void {
  const verdict = !target ? '' : target.met === undefined ? `  (target: ${target.text})` : `  (target ${target.text}: ${target.met ? 'met' : 'MISSED'})`;
  console.log(`${label.padEnd(44)} ${value}${verdict}`);
}

export function section(title: string): void {
  console.log(`\n-- ${title}`);
}

/** Runs `fn` over `items` with at most `limit` in flight; returns results in order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Retries a call a few times on transient apiserver errors (429/5xx/connection resets). */
export async function retrying<T>(fn: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (i >= attempts || (code !== undefined && code < 500 && code !== 429)) throw err;
      await sleep(100 * i);
    }
  }
}

// --- /proc ---------------------------------------------------------------------------------------

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

export interface ProcSample {
  /** Monotonic ms when read. */
  at: number;
  /** user + system CPU seconds of the process (all its threads). */
  cpuSeconds: number;
  rssBytes: number;
  hwmBytes: number;
}

export function procSample(pid: number): ProcSample | undefined {
  try {
    // utime is field 14, stime 15.
    const fields = procStatFields(pid);
    if (!fields) return undefined;
    const ticks = Number(fields[14 - 3]) + Number(fields[15 - 3]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    return { at: nowMs(), cpuSeconds: ticks / ticksPerSecond(), rssBytes: kib('VmRSS'), hwmBytes: kib('VmHWM') };
  } catch {
    return undefined;
  }
}

/**
 * Sets the nice value of every thread of each process (Linux keeps one per thread, and a thread
 * started later inherits its starter's). Returns how many threads were set. A process that exited
 * meanwhile is skipped.
 */
export function setNice(pids: readonly number[], nice: number): number {
  let threads = 0;
  for (const pid of pids) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        setPriority(Number(tid), nice);
        threads++;
      } catch {
        // the thread ended meanwhile
      }
    }
  }
  return threads;
}

/** CPU% of one core between two samples (100% = one core busy). */
export const cpuPercent = (a: ProcSample, b: ProcSample) => ((b.cpuSeconds - a.cpuSeconds) / ((b.at - a.at) / 1000)) * 100;

/** Samples a process every `intervalMs`; keeps the peak RSS and all samples. */
export class ProcSampler {
  readonly samples: ProcSample[] = [];
  private timer: NodeJS.Timeout;
  constructor(private readonly pid: number, intervalMs = 1000) {
    this.take();
    this.timer = setInterval(() => this.take(), intervalMs);
    this.timer.unref();
  }
  take(): ProcSample | undefined {
    const s = procSample(this.pid);
    if (s) this.samples.push(s);
    return s;
  }
  get peakRss(): number {
    return Math.max(0, ...this.samples.map((s) => s.rssBytes));
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

/**
 * CPU seconds of many processes over one phase: which part of the federation the cores went to.
 * `start()` reads them all; `line()` prints each one's share since then, busiest first.
 */
export class CpuBreakdown {
  private before = new Map<string, ProcSample>();
  constructor(private readonly processes: () => readonly { label: string; pid: number }[]) {}
  start(): void {
    this.before.clear();
    for (const p of this.processes()) {
      const s = procSample(p.pid);
      if (s) this.before.set(p.label, s);
    }
  }
  line(): string {
    const rows: { label: string; seconds: number }[] = [];
    let wall = 0;
    for (const p of this.processes()) {
      const a = this.before.get(p.label);
      const b = procSample(p.pid);
      if (!a || !b) continue;
      rows.push({ label: p.label, seconds: b.cpuSeconds - a.cpuSeconds });
      wall = Math.max(wall, (b.at - a.at) / 1000);
    }
    const total = rows.reduce((n, r) => n + r.seconds, 0);
    rows.sort((x, y) => y.seconds - x.seconds);
    return `${total.toFixed(1)} CPU s in ${wall.toFixed(1)} s (${((total / wall) * 100).toFixed(0)}% of one core): ` +
      rows.filter((r) => r.seconds >= 0.05).map((r) => `${r.label} ${r.seconds.toFixed(1)}`).join(', ');
  }
}

/** GET `path` from a test-bed apiserver as its admin (client certificate), the body as bytes. */
function adminGet(cluster: Cluster, path: string, timeoutMs = 30_000): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const req = httpsRequest(`${cluster.server}${path}`, {
      ca: readFileSync(cluster.pki.caCert), cert: readFileSync(cluster.pki.adminCert), key: readFileSync(cluster.pki.adminKey), timeout: timeoutMs,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks))).on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer in ${timeoutMs} ms`))).on('error', reject).end();
  });
}

/** `apiserver_request_total` of a test-bed apiserver, summed by verb and resource (codes together). */
export async function apiserverRequests(cluster: Cluster): Promise<Map<string, number>> {
  const text = (await adminGet(cluster, '/metrics')).toString('utf8');
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const label = (name: string) => new RegExp(`[{,]${name}="([^"]*)"`).exec(line)?.[1] ?? '';
    const sub = label('subresource');
    const key = `${label('verb')} ${label('resource')}${sub ? `/${sub}` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return counts;
}

/** A Go CPU profile of a test-bed apiserver started with --profiling=true, written to `file`. */
export async function apiserverCpuProfile(cluster: Cluster, seconds: number, file: string): Promise<string> {
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, await adminGet(cluster, `/debug/pprof/profile?seconds=${seconds}`, (seconds + 30) * 1000));
  return file;
}

/** Requests an apiserver served over one phase, by verb and resource, most first. */
export class RequestCounts {
  private before = new Map<string, number>();
  constructor(private readonly cluster: Cluster) {}
  async start(): Promise<void> {
    this.before = await apiserverRequests(this.cluster);
  }
  async line(per = 1, top = 10): Promise<string> {
    const after = await apiserverRequests(this.cluster);
    const rows = [...after].map(([k, v]) => [k, v - (this.before.get(k) ?? 0)] as const).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
    const total = rows.reduce((n, [, v]) => n + v, 0);
    const unit = (n: number) => (per === 1 ? String(n) : (n / per).toFixed(2));
    return `${unit(total)}: ${rows.slice(0, top).map(([k, n]) => `${k} ${unit(n)}`).join(', ')}`;
  }
}

// --- watching -------------------------------------------------------------------------------------

/** What the bench watches with: the operator's own informer (list, watch, relist on 410, restart with backoff). */
export type Watched<T extends KubernetesObject> = Informer<T>;

/**
 * Watches a collection with the operator's runtime Informer; `onChange` gets each object and the
 * monotonic time it arrived. Resolves once the first list is in. get() takes "namespace/name".
 */
export async function watchObjects<T extends KubernetesObject>(
  kubeConfig: KubeConfig,
  path: string,
  list: () => Promise<{ items: T[] }>,
  onChange: (obj: T, at: number, type: 'add' | 'update' | 'delete') => void,
): Promise<Watched<T>> {
  const informer = new Informer<T>({ path, list: list as () => Promise<KubernetesListObject<T>>, description: path }, { kubeConfig, logger: silentLogger });
  informer.on('add', (o) => onChange(o, nowMs(), 'add'));
  informer.on('update', (o) => onChange(o, nowMs(), 'update'));
  informer.on('delete', (o) => onChange(o, nowMs(), 'delete'));
  await informer.start();
  return informer;
}

/** The list function for a fedgpu custom resource, cluster-wide. */
export function listCustom<T>(kubeConfig: KubeConfig, plural: string): () => Promise<{ items: T[] }> {
  const api = kubeConfig.makeApiClient(CustomObjectsApi);
  return async () => (await api.listClusterCustomObject({ group: GROUP, version: VERSION, plural })) as { items: T[] };
}

/** Runs `fn` with a deadline; resolves undefined when the deadline passes first (the work is left to finish on its own). */
export async function within<T>(deadlineMs: number, fn: () => Promise<T>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([fn(), new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), deadlineMs)))]);
  } finally {
    clearTimeout(timer);
  }
}

// --- the hub as a process -------------------------------------------------------------------------

/** Scrapes a Prometheus text endpoint on loopback; returns `name{labels}` → value. */
export async function scrape(port: number): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const text = await res.text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    values.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return values;
}

/** Heap and external memory of a process that serves prom-client's default metrics. */
export async function heapLine(port: number): Promise<string> {
  try {
    const m = await scrape(port);
    const v = (k: string) => m.get(k) ?? NaN;
    return `V8 heap used ${mib(v('nodejs_heap_size_used_bytes'))} of ${mib(v('nodejs_heap_size_total_bytes'))}, external ${mib(v('nodejs_external_memory_bytes'))}`;
  } catch (err) {
    return `(no /metrics: ${err instanceof Error ? err.message : String(err)})`;
  }
}

/**
 * The fedgpu binary the container image runs: the test beds' build of hack/bundle.mjs, in the
 * image's layout under .testbed/bench-dist (dist/fedgpu.mjs beside package.json). Running under
 * tsx adds its loader thread and transform caches to every process (~90 MiB RSS).
 * BENCH_UNBUNDLED=1 builds what the image ran before the bundle instead, for a side-by-side figure:
 * each source file transpiled on its own (esbuild; the image used tsc), dependencies from node_modules.
 */
export function compileOperator(): string {
  if (process.env.BENCH_UNBUNDLED) return transpileOperator();
  return buildFedgpuBinary(join(repoRoot, '.testbed', 'bench-dist'));
}

/**
 * Each source file transpiled on its own into .testbed/bench-dist/operator/src, dependencies left
 * to node_modules; returns cli/main.js. For benches that import single modules (the market server).
 */
export function transpileOperator(): string {
  const src = join(repoRoot, 'operator', 'src');
  const out = join(repoRoot, '.testbed', 'bench-dist', 'operator', 'src');
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (entry.endsWith('.ts') && !entry.endsWith('.test.ts') && !entry.endsWith('.d.ts')) files.push(relative(repoRoot, path));
    }
  };
  walk(src);
  execFileSync(join(repoRoot, 'node_modules', '.bin', 'esbuild'), [...files, `--outdir=${out}`, `--outbase=${relative(repoRoot, src)}`, '--platform=node', '--format=esm', '--target=node20', '--log-level=warning'], { cwd: repoRoot, stdio: 'inherit' });
  return join(out, 'cli', 'main.js');
}

/**
 * The V8 flags the chart's NODE_OPTIONS gives a component (charts/fedgpu/templates/_helpers.tpl,
 * fedgpu.heapCapEnv) for its default memory limit in values.yaml: --max-old-space-size at
 * heapPercentOfLimit % of resources.limits.memory. Empty when the chart sets no limit.
 */
type ChartRuntimeValues = { resources?: { limits?: { memory?: string | number } }; heapPercentOfLimit?: number; extraNodeOptions?: string; glibcTunables?: string };

function chartRuntimeValues(component: 'hub' | 'provider'): ChartRuntimeValues | undefined {
  return (parseYaml(readFileSync(join(repoRoot, 'charts', 'fedgpu', 'values.yaml'), 'utf8')) as Record<string, ChartRuntimeValues>)[component];
}

export function chartNodeFlags(component: 'hub' | 'provider'): string[] {
  const section = chartRuntimeValues(component);
  // BENCH_EXTRA_NODE_OPTIONS, when set (even empty), stands in for the chart's extraNodeOptions.
  const extra = (process.env.BENCH_EXTRA_NODE_OPTIONS ?? section?.extraNodeOptions)?.split(' ').filter(Boolean) ?? [];
  const limit = String(section?.resources?.limits?.memory ?? '');
  const units: [RegExp, number][] = [[/^([\d.]+)Gi$/, 1024], [/^([\d.]+)Mi$/, 1], [/^([\d.]+)Ki$/, 1 / 1024], [/^([\d.]+)G$/, 1e9 / 2 ** 20], [/^([\d.]+)M$/, 1e6 / 2 ** 20], [/^(\d+)$/, 1 / 2 ** 20]];
  for (const [pattern, mibPerUnit] of units) {
    const m = pattern.exec(limit);
    if (m) return [`--max-old-space-size=${Math.floor((Number(m[1]) * mibPerUnit * (section?.heapPercentOfLimit ?? 60)) / 100)}`, ...extra];
  }
  return extra;
}

/** The chart's GLIBC_TUNABLES for a component (values.yaml), or undefined; the environment's wins. */
export function chartGlibcTunables(component: 'hub' | 'provider'): string | undefined {
  return process.env.GLIBC_TUNABLES || chartRuntimeValues(component)?.glibcTunables || undefined;
}

/** The chart's GLIBC_TUNABLES for the hub, and BENCH_HUB_LD_PRELOAD / BENCH_HUB_MALLOC_CONF: another allocator for the hub alone. */
export function hubAllocatorEnv(tunables = chartGlibcTunables('hub')): Record<string, string> {
  const { BENCH_HUB_LD_PRELOAD: preload, BENCH_HUB_MALLOC_CONF: conf } = process.env;
  return { ...(tunables ? { GLIBC_TUNABLES: tunables } : {}), ...(preload ? { LD_PRELOAD: preload } : {}), ...(conf ? { MALLOC_CONF: conf } : {}) };
}

/** startHubProcess, with the compiled CLI instead of tsx. */
export async function startCompiledHubProcess(mainJs: string, hubCluster: Cluster, pki: HubPki, dir: string, extraArgs: string[] = [], nodeFlags: string[] = [], env: Record<string, string> = {}): Promise<HubProcess> {
  writeFileSync(join(pki.dir, 'server.crt'), pki.server.certPem);
  writeFileSync(join(pki.dir, 'server.key'), pki.server.keyPem, { mode: 0o600 });
  return onFreshPorts(async () => {
    const port = await freePort();
    const proc = startProcess({
      name: 'hub',
      command: process.execPath,
      dir,
      env,
      args: [...nodeFlags, mainJs, '--kubeconfig', hubCluster.kubeconfigPath, 'hub', '--tls-ca', pki.caPath, '--tls-cert', join(pki.dir, 'server.crt'), '--tls-key', join(pki.dir, 'server.key'), '--grpc-port', String(port), '--metrics-port', '0', ...extraArgs],
    });
    const ready = await hubReady(proc);
    return { process: proc, grpcAddress: `127.0.0.1:${port}`, metricsPort: ready.metricsPort };
  });
}

/**
 * Profiling aid: asks a process started with `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=dir`
 * for a heap snapshot (V8 collects garbage first, so it holds only live objects) and sums the
 * self size of its objects by constructor. Returns the top rows and the total.
 */
export async function heapSnapshotTop(pid: number, dir: string, top = 15): Promise<{ totalBytes: number; rows: { name: string; count: number; bytes: number }[] } | undefined> {
  const before = new Set(readdirSync(dir).filter((f) => f.endsWith('.heapsnapshot')));
  process.kill(pid, 'SIGUSR2');
  const file = await waitFor('the heap snapshot', () => {
    const fresh = readdirSync(dir).filter((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (!fresh[0]) return undefined;
    // Written when its size stops changing.
    const size = statSync(join(dir, fresh[0])).size;
    return new Promise<string | undefined>((r) => setTimeout(() => r(statSync(join(dir, fresh[0]!)).size === size && size > 0 ? join(dir, fresh[0]!) : undefined), 1_000));
  }, { timeoutMs: 120_000, intervalMs: 1_000 });
  const snapshot = JSON.parse(readFileSync(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snapshot.snapshot.meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const types = snapshot.snapshot.meta.node_types[0];
  const byName = new Map<string, { count: number; bytes: number }>();
  let totalBytes = 0;
  for (let i = 0; i < snapshot.nodes.length; i += width) {
    const type = types[snapshot.nodes[i + typeAt]!] ?? '?';
    const bytes = snapshot.nodes[i + sizeAt]!;
    totalBytes += bytes;
    const name = type === 'object' || type === 'native' ? (snapshot.strings[snapshot.nodes[i + nameAt]!] ?? '?') : `(${type})`;
    const row = byName.get(name) ?? { count: 0, bytes: 0 };
    row.count++;
    row.bytes += bytes;
    byName.set(name, row);
  }
  const rows = [...byName.entries()].map(([name, r]) => ({ name, ...r })).sort((a, b) => b.bytes - a.bytes).slice(0, top);
  return { totalBytes, rows };
}

/** Node flags that let heapSnapshotTop ask the process for a snapshot, written into `dir`. */
export const heapSnapshotFlags = (dir: string) => ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`];

export async function printHeapTop(label: string, pid: number, dir: string): Promise<void> {
  const top = await heapSnapshotTop(pid, dir);
  if (!top) return;
  console.log(`${label} heap snapshot (after GC): ${mib(top.totalBytes)} live; largest by constructor:`);
  for (const r of top.rows) console.log(`    ${r.name.slice(0, 60).padEnd(60)} ${String(r.count).padStart(9)} objects ${mib(r.bytes).padStart(11)}`);
}

// --- live heap of another node process, through its inspector (loopback only) ---------------------

/** Node flag for a process whose live heap the bench reads with liveHeap(). */
export const INSPECT_FLAG = '--inspect=127.0.0.1:0';

/**
 * Collects garbage in a node process started with INSPECT_FLAG and returns its V8 heap after that:
 * the live heap, as opposed to RSS, which also holds garbage V8 has not collected yet (it collects
 * lazily while far from its heap limit), code, and memory it has not handed back.
 */
export async function liveHeap(logPath: string): Promise<{ usedBytes: number; totalBytes: number } | undefined> {
  const session = await InspectorSession.open(logPath);
  if (!session) return undefined;
  try {
    await session.call('HeapProfiler.collectGarbage');
    const usage = (await session.call('Runtime.getHeapUsage')) as { usedSize: number; totalSize: number };
    return { usedBytes: usage.usedSize, totalBytes: usage.totalSize };
  } finally {
    session.close();
  }
}

/** A DevTools protocol session with a node process started with INSPECT_FLAG (its URL is in its log). */
export class InspectorSession {
  private id = 0;
  private readonly pending = new Map<number, (result: unknown) => void>();
  private constructor(private readonly ws: InstanceType<typeof import('undici').WebSocket>) {
    ws.addEventListener('message', (event) => {
      const msg = JSON.parse(String(event.data)) as { id?: number; result?: unknown };
      if (msg.id !== undefined) this.pending.get(msg.id)?.(msg.result);
    });
  }

  static async open(logPath: string): Promise<InspectorSession | undefined> {
    const url = /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/.exec(readFileSync(logPath, 'utf8'))?.[1];
    if (!url) return undefined;
    const { WebSocket } = await import('undici');
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve());
      ws.addEventListener('error', () => reject(new Error('inspector connection failed')));
    });
    return new InspectorSession(ws);
  }

  call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    return new Promise<unknown>((resolve) => {
      this.pending.set(++this.id, resolve);
      this.ws.send(JSON.stringify({ id: this.id, method, params }));
    });
  }

  close(): void {
    this.ws.close();
  }
}

/** Starts the V8 sampling profiler in a process started with INSPECT_FLAG; stop() writes the profile into `dir`. */
export async function startCpuProfile(logPath: string, dir: string): Promise<{ stop(): Promise<void> } | undefined> {
  const session = await InspectorSession.open(logPath);
  if (!session) return undefined;
  await session.call('Profiler.enable');
  await session.call('Profiler.setSamplingInterval', { interval: 1000 });
  await session.call('Profiler.start');
  return {
    async stop() {
      const { profile } = (await session.call('Profiler.stop')) as { profile: unknown };
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `hub-${Date.now()}.cpuprofile`), JSON.stringify(profile));
      session.close();
    },
  };
}

/** The list function for a namespaced fedgpu custom resource in one namespace. */
export function listNamespacedCustom<T>(kubeConfig: KubeConfig, plural: string, namespace: string): () => Promise<{ items: T[] }> {
  const api = kubeConfig.makeApiClient(CustomObjectsApi);
  return async () => (await api.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural, namespace })) as { items: T[] };
}

/** Paces calls at `perSecond` (fixed schedule, so one slow call does not delay the ones after it). */
export async function paced<T>(count: number, perSecond: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const start = nowMs();
  const calls: Promise<T>[] = [];
  for (let i = 0; i < count; i++) {
    const due = start + (i * 1000) / perSecond;
    const wait = due - nowMs();
    if (wait > 0) await sleep(wait);
    calls.push(fn(i));
  }
  return Promise.all(calls);
}

/** The GpuJob controller's reconcile counters from the hub's /metrics. */
export async function reconcileStats(port: number): Promise<{ count: number; seconds: number }> {
  try {
    const m = await scrape(port);
    return {
      count: m.get('fedgpu_reconcile_duration_seconds_count{controller="gpujob"}') ?? NaN,
      seconds: m.get('fedgpu_reconcile_duration_seconds_sum{controller="gpujob"}') ?? NaN,
    };
  } catch {
    return { count: NaN, seconds: NaN };
  }
}

/** Self time per function (name and file:line) from the newest .cpuprofile in `dir`. */
export function cpuProfileTop(dir: string, top = 15): { totalMs: number; rows: { fn: string; ms: number; share: number }[] } | undefined {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f));
  const file = files.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  if (!file) return undefined;
  const profile = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
    samples: number[];
    timeDeltas: number[];
  };
  const frameOf = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const f = frameOf.get(id);
    const us = profile.timeDeltas[i] ?? 0;
    if (!f || f.functionName === '(idle)' || f.functionName === '(program)') return;
    const where = f.url ? `${f.url.replace(/^file:\/\//, '').replace(`${repoRoot}/`, '')}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
    self.set(key, (self.get(key) ?? 0) + us);
    total += us;
  });
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([fn, us]) => ({ fn, ms: us / 1000, share: us / total }));
  return { totalMs: total / 1000, rows };
}

export function printCpuTop(label: string, dir: string): void {
  const top = cpuProfileTop(dir);
  if (!top) return console.log(`${label}: no CPU profile found in ${dir}`);
  console.log(`${label} CPU profile: ${(top.totalMs / 1000).toFixed(1)} s of samples (idle excluded); most self time:`);
  for (const r of top.rows) console.log(`    ${(r.share * 100).toFixed(1).padStart(5)}%  ${(r.ms / 1000).toFixed(2).padStart(7)} s  ${r.fn.slice(0, 110)}`);
}

// --- where a process's memory is -----------------------------------------------------------------

export interface MemoryMap {
  rssBytes: number;
  /** Resident bytes of the brk heap (small malloc chunks: OpenSSL, nghttp2, libuv, Node internals). */
  brkHeapBytes: number;
  /** Resident anonymous mappings: V8's heap pages and code, large malloc chunks, thread arenas. */
  anonymousBytes: number;
  /** Resident file-backed mappings: the node binary and shared libraries. */
  fileBytes: number;
  /** V8's own view, read through the inspector: committed heap, by space, and memory outside it. */
  v8?: { physicalBytes: number; usedBytes: number; externalBytes: number; arrayBuffersBytes: number; spaces: Record<string, number> };
}

/**
 * Sorts a process's resident memory by where it lives (/proc/<pid>/smaps), and, for a process
 * started with INSPECT_FLAG, what V8 says it has committed: RSS minus V8's committed heap is
 * native memory (malloc: TLS and http2 sessions, buffers), code and libraries.
 */
export async function memoryMap(pid: number, logPath?: string): Promise<MemoryMap | undefined> {
  let smaps: string;
  try {
    smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return undefined;
  }
  const map: MemoryMap = { rssBytes: 0, brkHeapBytes: 0, anonymousBytes: 0, fileBytes: 0 };
  let kind: 'brk' | 'anon' | 'file' = 'anon';
  for (const line of smaps.split('\n')) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      const path = header[1] ?? '';
      kind = path === '[heap]' ? 'brk' : path.startsWith('/') ? 'file' : 'anon';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (!rss) continue;
    const bytes = Number(rss[1]) * 1024;
    map.rssBytes += bytes;
    if (kind === 'brk') map.brkHeapBytes += bytes;
    else if (kind === 'file') map.fileBytes += bytes;
    else map.anonymousBytes += bytes;
  }
  if (logPath) {
    const session = await InspectorSession.open(logPath).catch(() => undefined);
    if (session) {
      try {
        const expression = `JSON.stringify({ usage: process.memoryUsage(), spaces: process.getBuiltinModule?.('v8').getHeapSpaceStatistics() ?? [], heap: process.getBuiltinModule?.('v8').getHeapStatistics() ?? {} })`;
        const reply = (await session.call('Runtime.evaluate', { expression, returnByValue: true })) as { result?: { value?: string } };
        const v = JSON.parse(reply.result?.value ?? '{}') as {
          usage: NodeJS.MemoryUsage;
          spaces: { space_name: string; physical_space_size: number }[];
          heap: { total_physical_size?: number };
        };
        map.v8 = {
          physicalBytes: v.heap.total_physical_size ?? v.usage.heapTotal,
          usedBytes: v.usage.heapUsed,
          externalBytes: v.usage.external,
          arrayBuffersBytes: v.usage.arrayBuffers,
          spaces: Object.fromEntries(v.spaces.map((s) => [s.space_name, s.physical_space_size])),
        };
      } finally {
        session.close();
      }
    }
  }
  return map;
}

/** One line of memoryMap: RSS = V8 heap committed + the rest, split by mapping kind. */
export function memoryMapLine(m: MemoryMap): string {
  const v8 = m.v8 ? `V8 heap committed ${mib(m.v8.physicalBytes)} (used ${mib(m.v8.usedBytes)}; new space ${mib((m.v8.spaces.new_space ?? 0) + (m.v8.spaces.new_large_object_space ?? 0))}, code ${mib(m.v8.spaces.code_space ?? 0)}), external ${mib(m.v8.externalBytes)} (array buffers ${mib(m.v8.arrayBuffersBytes)}); ` : '';
  const nativeAnon = m.anonymousBytes - (m.v8?.physicalBytes ?? 0);
  return `RSS ${mib(m.rssBytes)} = ${v8}malloc brk heap ${mib(m.brkHeapBytes)}, other anonymous ${mib(nativeAnon)}${m.v8 ? ' (besides the V8 heap)' : ''}, files ${mib(m.fileBytes)}`;
}

const benchProbeEcho = process.env.BENCH_PROBE_ECHO === '1';

/**
 * A simulated agent's answer to one BandwidthProbe piece: its SHA-256, as the real agent answers
 * today's hub, or with BENCH_PROBE_ECHO=1 the whole piece echoed back, as agents did before the
 * digest (the hub accepts both), to measure what the echo costs the hub.
 */
export function benchProbeAnswer(probe: BandwidthProbe): BandwidthProbeData {
  return probeAnswer(probe, !benchProbeEcho);
}

/** How the simulated agents answer the probe, for a bench's setup line. */
export const benchProbeAnswerKind = benchProbeEcho ? 'with a whole echo (BENCH_PROBE_ECHO=1)' : 'with its SHA-256';
