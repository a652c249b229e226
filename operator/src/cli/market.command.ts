import { existsSync } from 'node:fs';
import { describeEgress } from '../core/egress.js';
import { egressOf } from '../hub/jobs/market-view.js';
import { describeAccess } from '../agent/access/policy.js';
import { join } from 'node:path';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { Command } from 'commander';
import type { GpuJob, GpuProvider } from '../api/types.js';
import { gpuJobClient, gpuProviderClient, isNotFound } from '../runtime/kube.js';
import { sandboxDir } from '../sandbox/state.js';
import { CliError, ExitCode } from './errors.js';
import { loadKubeConfig } from './kubeconfig.js';
import { render, type OutputFormat } from './output.js';

// Read-only views of the hub: what is on the market, which providers exist, which jobs run where
// and why a job waits.

export type Globals = { kubeconfig?: string; context?: string; output: OutputFormat };

/** --kubeconfig, else $KUBECONFIG, else the local sandbox's hub, else ~/.kube/config. */
export function hubClients(g: Globals) {
  const sandboxHub = join(sandboxDir, 'hub.kubeconfig');
  const kubeconfig = g.kubeconfig ?? (!process.env.KUBECONFIG && existsSync(sandboxHub) ? sandboxHub : undefined);
  const kc = loadKubeConfig({ kubeconfig, context: g.context });
  const api = kc.makeApiClient(CustomObjectsApi);
  return { api, jobs: gpuJobClient(api), providers: gpuProviderClient(api), server: kc.getCurrentCluster()?.server };
}

export async function call<T>(what: string, server: string | undefined, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isNotFound(err)) throw new CliError(`${what} not found`, ExitCode.NotFound);
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'number') throw new CliError(`the hub refused to list ${what} (HTTP ${code}): check your kubeconfig's permissions`);
    throw new CliError(`cannot reach the hub at ${server ?? '?'}: ${(err as Error).message}; is it running? (make sandbox)`, ExitCode.Unreachable);
  }
}

const ready = (p: GpuProvider) => p.status?.conditions?.find((c) => c.type === 'Ready')?.status ?? 'Unknown';
const fixed = (n: number | undefined, digits: number) => (n === undefined ? '-' : n.toFixed(digits));

export interface MarketRow {
  product: string;
  provider: string;
  displayName: string;
  region: string;
  idle: number;
  total: number;
  pricePerGpuHour: string;
  /** What job pods may reach there: none, dns, internet or cidrs …. */
  egress: string;
  /** RuntimeClass the pool's job pods run under; empty: the provider cluster's default. */
  runtimeClass: string;
  /** What consumers may do with the pool's job pods through the hub: logs, exec, port-forward. */
  access: string;
  /** CPU and memory each GPU brings on the pool's smallest node ("8cpu/64Gi"); empty when the agent does not say. */
  perGpu: string;
  reputation: number | undefined;
  rttMs: number | undefined;
  ready: string;
}

export function marketRows(providers: GpuProvider[]): MarketRow[] {
  const rows = providers.flatMap((p) =>
    (p.status?.pools ?? [])
      .filter((pool) => pool.offered)
      .map((pool) => ({
        product: pool.gpuProduct ?? '',
        provider: p.metadata.name ?? '',
        displayName: p.spec.displayName ?? '',
        region: p.spec.region ?? '',
        idle: pool.idle ?? 0,
        total: pool.total ?? 0,
        pricePerGpuHour: pool.pricePerGpuHour ?? '',
        egress: describeEgress(egressOf(pool.egress ?? {})),
        runtimeClass: pool.runtimeClassName ?? '',
        access: describeAccess(pool.access),
        perGpu: pool.cpuMilliPerGpu && pool.memoryMiBPerGpu ? `${pool.cpuMilliPerGpu / 1000}cpu/${pool.memoryMiBPerGpu % 1024 === 0 ? `${pool.memoryMiBPerGpu / 1024}Gi` : `${pool.memoryMiBPerGpu}Mi`}` : '',
        reputation: p.status?.reputation?.score,
        rttMs: p.status?.latency?.rttMs,
        ready: ready(p),
      })),
  );
  return rows.sort((a, b) => a.product.localeCompare(b.product) || Number(a.pricePerGpuHour) - Number(b.pricePerGpuHour));
}

/** The placement and its score parts, as `explain` and `estimate` print them. */
export function placementLines(p: NonNullable<NonNullable<GpuJob['status']>['placement']>): string[] {
  const score = p.score ?? {};
  return [
    `Placement: ${p.provider}, ${p.gpuProduct} at ${p.pricePerGpuHour} credits/GPU-hour, nodes ${(p.nodes ?? []).join(', ')}`,
    `  score ${fixed(score.total, 3)} = reputation ${fixed(score.reputation, 3)}, latency ${fixed(score.latency, 3)}, price ${fixed(score.price, 3)}, time-to-start ${fixed(score.timeToStart, 3)}, fit ${fixed(score.fragmentation, 3)}`,
  ];
}

/** Why a job is where it is: its placement and score parts, its attempts, or the scheduler's refusal. */
export function explainJob(job: GpuJob): string {
  const s = job.status ?? {};
  const lines = [`GpuJob ${job.metadata.namespace}/${job.metadata.name}: ${s.phase ?? 'Pending'} (${s.gpus ?? '?'} GPUs)`];
  if (s.message) lines.push(`  ${s.message}`);
  if (s.placement?.provider) lines.push(...placementLines(s.placement));
  for (const a of s.attempts ?? []) {
    const end = a.endTime ? `${a.outcome} at ${a.endTime}` : 'running';
    const fault = a.faultOf && a.faultOf !== 'none' ? `, fault: ${a.faultOf}` : '';
    const covered = a.coveredGpuSeconds ? ` of ${a.coveredGpuSeconds} covered` : '';
    lines.push(`Attempt ${a.epoch}: ${a.provider}, ${end}${a.reason ? ` (${a.reason}${fault})` : ''}, ${a.gpuSeconds ?? 0} GPU-s${covered}`);
  }
  const b = s.budget;
  if (b) {
    const limit = b.limit ? ` of ${b.limit}, ${b.left} left` : '';
    const attemptLeft = b.attemptLeftGpuSeconds !== undefined ? `; the running attempt may use ${b.attemptLeftGpuSeconds} more GPU-seconds` : '';
    lines.push(`Budget: ${b.used} credits used${limit}${attemptLeft}`);
  }
  if (s.cost) lines.push(`Cost: ${s.cost.amount} credits for ${s.cost.gpuSeconds} GPU-seconds`);
  if (s.settlement?.txHash) lines.push(`Settlement: paid ${s.settlement.paid}, refunded ${s.settlement.refunded}, slashed ${s.settlement.slashed ?? '0'}, tx ${s.settlement.txHash}`);
  return `${lines.join('\n')}\n`;
}

export function marketCommands(globals: () => Globals): Command[] {
  const market = new Command('market').description('idle GPU pools on the market, by product, cheapest first').action(async () => {
    const g = globals();
    const { providers, server } = hubClients(g);
    const rows = marketRows((await call('gpuproviders', server, () => providers.list())).items);
    process.stdout.write(render(g.output, rows, () => [
      ['PRODUCT', 'PROVIDER', 'REGION', 'IDLE/TOTAL', 'PRICE/GPU-H', 'EGRESS', 'RUNTIME', 'ACCESS', 'PER GPU', 'REPUTATION', 'RTT(MS)', 'READY'],
      ...rows.map((r) => [r.product, r.provider, r.region, `${r.idle}/${r.total}`, r.pricePerGpuHour, r.egress, r.runtimeClass || 'default', r.access, r.perGpu || '-', fixed(r.reputation, 2), fixed(r.rttMs, 1), r.ready]),
    ]));
  });

  const providersCmd = new Command('providers').description('GpuProviders with readiness, GPUs, reputation and stake').action(async () => {
    const g = globals();
    const { providers, server } = hubClients(g);
    const items = (await call('gpuproviders', server, () => providers.list())).items;
    process.stdout.write(render(g.output, items, () => [
      ['NAME', 'DISPLAY NAME', 'REGION', 'READY', 'IDLE/TOTAL', 'REPUTATION', 'RTT(MS)', 'STAKE', 'WALLET'],
      ...items.map((p) => [p.metadata.name ?? '', p.spec.displayName ?? '', p.spec.region ?? '', ready(p), p.status?.gpus ?? '-', fixed(p.status?.reputation?.score, 2), fixed(p.status?.latency?.rttMs, 1), p.status?.stake?.amount ?? '-', p.spec.wallet]),
    ]));
  });

  const jobs = new Command('jobs')
    .description('GpuJobs with their phase, provider, attempts, cost and settlement')
    .option('-n, --namespace <ns>', 'namespace', 'default')
    .option('-A, --all-namespaces', 'every namespace')
    .action(async (o: { namespace: string; allNamespaces?: boolean }) => {
      const g = globals();
      const { jobs: client, server } = hubClients(g);
      const items = (await call('gpujobs', server, () => client.list(o.allNamespaces ? {} : { namespace: o.namespace }))).items;
      process.stdout.write(render(g.output, items, () => [
        ['NAMESPACE', 'NAME', 'PHASE', 'PROVIDER', 'GPUS', 'ATTEMPTS', 'COST', 'SETTLED'],
        ...items.map((j) => [j.metadata.namespace ?? '', j.metadata.name ?? '', j.status?.phase ?? 'Pending', j.status?.placement?.provider ?? '-', String(j.status?.gpus ?? '-'), String(j.status?.attemptCount ?? 0), j.status?.cost?.amount ?? '0', j.status?.conditions?.find((c) => c.type === 'Settled')?.status ?? '-']),
      ]));
    });

  const explain = new Command('explain')
    .description('why a job runs where it runs, or why it waits')
    .argument('<job>', 'GpuJob name')
    .option('-n, --namespace <ns>', 'namespace', 'default')
    .action(async (name: string, o: { namespace: string }) => {
      const g = globals();
      const { jobs: client, server } = hubClients(g);
      const job = await call(`gpujob ${o.namespace}/${name}`, server, () => client.get(name, o.namespace));
      process.stdout.write(g.output === 'table' ? explainJob(job) : render(g.output, { name, namespace: o.namespace, status: job.status }, () => []));
    });

  return [market, providersCmd, jobs, explain];
}
