import { loadavg } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { freshProvider } from '../chain/provider.js';
import { attemptEscrowId } from '../chain/attempt-escrow.js';
import { gpuJobClient } from '../runtime/kube.js';
import { chainEvents, finalJobs, holdings, leftovers, reputations } from './collect.js';
import { inject } from './faults.js';
import type { ChaosHistory, InjectedFault, JobRecord } from './history.js';
import { checkHistory, type CheckResult } from './invariants/index.js';
import { Observer } from './observe.js';
import { generateSchedule, type ChaosSchedule, type FaultKind } from './schedule.js';
import { JOB_NAMESPACE, LEASE, PROVIDER_LOST_AFTER_MS, startChaosTopology, type ChaosTopology } from './topology.js';
import { remove, submit } from './workload.js';

// One chaos run end to end: plan from the seed, bring the federation up, play the schedule (jobs
// and faults on their own clocks), let the system drain, read the end state, hold it to every
// invariant. The history is written to <dir>/history.json so a failure can be checked again.

export interface ChaosOptions {
  seed: number;
  jobs: number;
  minutes: number;
  providers?: number;
  kinds?: readonly FaultKind[];
  faultRate?: number;
  /** Longest wait, after the schedule, for every job to end and settle. */
  drainMs?: number;
  dir: string;
  log?: (line: string) => void;
}

export interface ChaosSummary {
  seed: number;
  jobs: number;
  jobsByKind: Record<string, number>;
  jobsByOutcome: Record<string, number>;
  faultsByKind: Record<string, number>;
  invariants: { name: string; violations: number }[];
  wallSeconds: number;
  drained: boolean;
  load: { before: number[]; after: number[] };
  podSamples: number;
  chainEvents: Record<string, number>;
}

export interface ChaosResult {
  schedule: ChaosSchedule;
  history: ChaosHistory;
  results: CheckResult[];
  summary: ChaosSummary;
}

const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));
const tally = <T>(xs: readonly T[], key: (x: T) => string) => xs.reduce<Record<string, number>>((m, x) => ((m[key(x)] = (m[key(x)] ?? 0) + 1), m), {});

export async function runChaos(opts: ChaosOptions): Promise<ChaosResult> {
  const began = Date.now();
  const loadBefore = loadavg();
  const log = opts.log ?? ((line: string) => console.log(`[chaos ${((Date.now() - began) / 1000).toFixed(0).padStart(4)}s] ${line}`));
  const providerCount = opts.providers ?? 3;
  const schedule = generateSchedule({
    seed: opts.seed,
    jobs: opts.jobs,
    minutes: opts.minutes,
    providers: Array.from({ length: providerCount }, (_, i) => `p${i + 1}`),
    providerLostAfterMs: PROVIDER_LOST_AFTER_MS,
    leaseDurationMs: LEASE.durationS * 1000,
    ...(opts.kinds ? { kinds: opts.kinds } : {}),
    ...(opts.faultRate !== undefined ? { faultRate: opts.faultRate } : {}),
  });
  log(`seed ${opts.seed}: ${schedule.jobs.length} jobs and ${schedule.faults.length} faults over ${opts.minutes} min`);
  mkdirSync(opts.dir, { recursive: true });
  writeFileSync(join(opts.dir, 'schedule.json'), JSON.stringify(schedule, null, 1));
  const topology = await startChaosTopology(opts.dir, providerCount, log);
  try {
    return await play(topology, schedule, opts, log, began, loadBefore);
  } finally {
    log('stopping the federation');
    await topology.stop();
  }
}

async function play(t: ChaosTopology, schedule: ChaosSchedule, opts: ChaosOptions, log: (l: string) => void, began: number, loadBefore: number[]): Promise<ChaosResult> {
  const jobs = gpuJobClient(t.testbed.cluster('hub').kubeConfig.makeApiClient(CustomObjectsApi), 'fedgpu-chaos');
  const rpc = freshProvider(t.chain.rpcUrl);
  const before = await holdings(t, rpc, []);
  const records = new Map<string, JobRecord>(schedule.jobs.map((plan) => [plan.name, { plan }]));
  const observer = new Observer(t, jobs, records);
  observer.start();
  const startedAt = Date.now();
  const faults: InjectedFault[] = [];

  const jobTasks = schedule.jobs.map(async (plan) => {
    const record = records.get(plan.name)!;
    await sleepUntil(startedAt + plan.atMs);
    await submit(jobs, record, startedAt + schedule.durationMs + 120_000);
    if (plan.deleteAfterMs !== undefined) {
      await sleepUntil(startedAt + plan.atMs + plan.deleteAfterMs);
      await remove(jobs, record).catch((err: unknown) => log(`could not delete ${plan.name}: ${(err as Error).message}`));
    }
  });
  const faultTasks = schedule.faults.map(async (plan) => {
    await sleepUntil(startedAt + plan.atMs);
    const fault: InjectedFault = { ...plan, startedAt: Date.now() };
    faults.push(fault);
    try {
      const injection = await inject(plan, t);
      fault.detail = injection.detail;
      log(`fault ${plan.kind} on ${plan.target} for ${(plan.durationMs / 1000).toFixed(1)} s: ${injection.detail}`);
      await sleepUntil(fault.startedAt + plan.durationMs);
      await injection.end();
      fault.detail = injection.detail;
    } catch (err) {
      fault.detail = `${fault.detail ?? ''} injection failed: ${(err as Error).message}`.trim();
      log(`fault ${plan.kind} on ${plan.target}: ${fault.detail}`);
    } finally {
      fault.endedAt = Date.now();
    }
  });
  await Promise.all([...jobTasks, ...faultTasks]);
  log(`schedule played (${faults.length} faults); draining`);

  const drained = await drain(jobs, [...records.values()], opts.drainMs ?? 10 * 60_000, log);
  await observer.sweep();
  await observer.stop();
  const endedAt = Date.now();
  await finalJobs(jobs, [...records.values()]);
  const escrowIds = [...records.values()].flatMap((r) => (r.uid ? (r.lastSeen?.status?.attempts ?? []).map((a) => attemptEscrowId(r.uid!, a.epoch)) : []));
  const events = await chainEvents(rpc, t.chain.marketAddress);
  const allEscrows = [...escrowIds, ...events.map((e) => e.escrowId)];
  const history: ChaosHistory = {
    seed: schedule.seed,
    startedAt,
    endedAt,
    graceMs: PROVIDER_LOST_AFTER_MS + 10_000,
    providers: Object.fromEntries(t.providers.map((p) => [p.name, { cluster: p.cluster, wallet: p.wallet }])),
    faults,
    jobs: [...records.values()],
    pods: observer.pods,
    chain: { events, before, after: await holdings(t, rpc, allEscrows), consumer: t.chain.consumer.toLowerCase() },
    leftovers: await leftovers(t, rpc, allEscrows),
    reputation: await reputations(t),
  };
  rpc.destroy();
  writeFileSync(join(opts.dir, 'history.json'), JSON.stringify(history, null, 1));
  const results = checkHistory(history);
  const summary: ChaosSummary = {
    seed: schedule.seed,
    jobs: schedule.jobs.length,
    jobsByKind: tally(schedule.jobs, (j) => j.kind),
    jobsByOutcome: tally(history.jobs, (r) => (r.deletedAt !== undefined ? (r.final ? 'deleted-but-present' : 'deleted') : (r.final?.status?.phase ?? 'missing'))),
    faultsByKind: tally(faults, (f) => f.kind + (/failed|not reverted/.test(f.detail ?? '') ? ' (not applied)' : '')),
    invariants: results.map((r) => ({ name: r.name, violations: r.violations.length })),
    wallSeconds: Math.round((Date.now() - began) / 1000),
    drained,
    load: { before: loadBefore.map((x) => Math.round(x * 100) / 100), after: loadavg().map((x) => Math.round(x * 100) / 100) },
    podSamples: observer.pods.length,
    chainEvents: tally(events, (e) => e.name),
  };
  writeFileSync(join(opts.dir, 'summary.json'), JSON.stringify(summary, null, 1));
  return { schedule, history, results, summary };
}

/** Waits until every job is finished and settled and every deleted job is gone, or the time is up. */
async function drain(jobs: ReturnType<typeof gpuJobClient>, records: JobRecord[], limitMs: number, log: (l: string) => void): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const list = await jobs.list({ namespace: JOB_NAMESPACE });
      const byName = new Map(list.items.map((j) => [j.metadata.name, j]));
      const waiting = records.filter((r) => {
        const j = byName.get(r.plan.name);
        if (r.deletedAt !== undefined) return j !== undefined;
        if (!j) return false; // lost: the checker says so
        const finished = j.status?.phase === 'Succeeded' || j.status?.phase === 'Failed';
        const settled = j.status?.conditions?.some((c) => c.type === 'Settled' && c.status === 'True');
        return !finished || !settled;
      });
      const line = `${waiting.length} job(s) not yet finished and settled${waiting.length ? `: ${waiting.slice(0, 5).map((r) => r.plan.name).join(', ')}` : ''}`;
      if (line !== last) log(line);
      last = line;
      if (!waiting.length) return true;
    } catch {
      // hub apiserver busy
    }
    await new Promise((r) => setTimeout(r, 3_000));
  }
  return false;
}
