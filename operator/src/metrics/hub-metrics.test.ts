import { afterEach, describe, expect, it } from 'vitest';
import type { GpuJob, GpuProvider } from '../api/types.js';
import { HubMetrics } from './hub-metrics.js';
import {
  enableSettlementPending,
  installHubMetrics,
  observeChainHead,
  observeChainRpcError,
  observeSettlementConfirmed,
  observeSettlementFailure,
  observeSlash,
  setMinStakeCredits,
  settlementControllerMetrics,
} from './settlement-metrics.js';
import { metricNames, parseExposition, series, valueOf } from './testing/exposition.js';
import { job, provider, ready } from './testing/fixtures.js';

const NOW = Date.parse('2026-01-01T00:10:00Z');
const H100 = 'NVIDIA-H100-80GB-HBM3';

function hub(providers: GpuProvider[] = [], jobs: GpuJob[] = [], leader = true) {
  const metrics = new HubMetrics({ now: () => NOW, processMetrics: false, version: '9.9.9' });
  metrics.observeMarket({ providers: () => providers, jobs: () => jobs });
  metrics.setLeader(leader);
  return metrics;
}
const scrape = async (m: HubMetrics) => parseExposition(await m.text());

afterEach(() => installHubMetrics(undefined));

describe('HubMetrics', () => {
  it('exports one series per provider, computed from the GpuProvider cache at scrape time', async () => {
    const providers = [
      provider('gp-a', {
        conditions: [ready('True')],
        lastHeartbeatTime: '2026-01-01T00:09:58Z',
        reputation: { score: 0.82 },
        stake: { amount: '1500.5' },
        latency: { rttMs: 12.5 },
        pools: [
          { gpuProduct: H100, total: 8, idle: 3 },
          { gpuProduct: H100, total: 8, idle: 8 },
          { gpuProduct: 'NVIDIA-GeForce-RTX-4090', total: 4, idle: 1 },
        ],
        runningJobs: 2,
      }),
      provider('gp-b', { conditions: [ready('False')] }),
    ];
    const s = await scrape(hub(providers));
    expect(valueOf(s, 'fedgpu_provider_ready', { provider: 'gp-a' })).toBe(1);
    expect(valueOf(s, 'fedgpu_provider_ready', { provider: 'gp-b' })).toBe(0);
    expect(valueOf(s, 'fedgpu_provider_heartbeat_age_seconds', { provider: 'gp-a' })).toBe(2);
    expect(valueOf(s, 'fedgpu_provider_reputation_score', { provider: 'gp-a' })).toBe(0.82);
    expect(valueOf(s, 'fedgpu_provider_stake_credits', { provider: 'gp-a' })).toBe(1500.5);
    expect(valueOf(s, 'fedgpu_provider_rtt_seconds', { provider: 'gp-a' })).toBe(0.0125);
    expect(valueOf(s, 'fedgpu_provider_gpus', { provider: 'gp-a', product: H100 })).toBe(16);
    expect(valueOf(s, 'fedgpu_provider_gpus_idle', { provider: 'gp-a', product: H100 })).toBe(11);
    expect(valueOf(s, 'fedgpu_provider_gpus_idle', { provider: 'gp-a', product: 'NVIDIA-GeForce-RTX-4090' })).toBe(1);
    expect(valueOf(s, 'fedgpu_provider_running_jobs', { provider: 'gp-a' })).toBe(2);
    // Unknown values are absent, never 0: a 0 reputation or stake would page for every new provider.
    for (const name of ['fedgpu_provider_heartbeat_age_seconds', 'fedgpu_provider_reputation_score', 'fedgpu_provider_stake_credits', 'fedgpu_provider_rtt_seconds']) {
      expect(series(s, name, { provider: 'gp-b' }), name).toEqual([]);
    }
    // Counters per provider start at 0 for every fault, so increase() sees the first attempt.
    expect(series(s, 'fedgpu_provider_attempts_total', { provider: 'gp-b' }).map((x) => [x.labels.fault, x.value])).toEqual([
      ['none', 0],
      ['user', 0],
      ['provider', 0],
      ['owner-reclaim', 0],
      ['unattributed', 0],
    ]);
    expect(valueOf(s, 'fedgpu_provider_slashed_credits_total', { provider: 'gp-a' })).toBe(0);
  });

  it('drops a provider that left the cache at the next scrape', async () => {
    const providers = [provider('gp-a', { conditions: [ready('True')] }), provider('gp-b', { conditions: [ready('True')] })];
    const m = hub(providers);
    expect(series(await scrape(m), 'fedgpu_provider_ready')).toHaveLength(2);
    providers.pop();
    expect(series(await scrape(m), 'fedgpu_provider_ready').map((x) => x.labels.provider)).toEqual(['gp-a']);
  });

  it('counts running jobs from the GpuJob cache when status.runningJobs is not kept', async () => {
    const running = job('j1', { phase: 'Running', currentEpoch: 2, attempts: [{ epoch: 1, provider: 'gp-b', endTime: 'x' }, { epoch: 2, provider: 'gp-a' }] });
    const s = await scrape(hub([provider('gp-a'), provider('gp-b')], [running]));
    expect(valueOf(s, 'fedgpu_provider_running_jobs', { provider: 'gp-a' })).toBe(1);
    expect(valueOf(s, 'fedgpu_provider_running_jobs', { provider: 'gp-b' })).toBe(0);
  });

  it('exports jobs by phase (all five always present) and the age of the oldest Pending job', async () => {
    const jobs = [
      job('new', undefined, '2026-01-01T00:09:00Z'),
      job('waiting', { phase: 'Pending' }, '2026-01-01T00:05:00Z'),
      job('run', { phase: 'Running' }, '2026-01-01T00:00:00Z'),
      job('done', { phase: 'Succeeded' }),
    ];
    const s = await scrape(hub([], jobs));
    expect(Object.fromEntries(series(s, 'fedgpu_jobs').map((x) => [x.labels.phase, x.value]))).toEqual({
      Pending: 2,
      Scheduled: 0,
      Running: 1,
      Succeeded: 1,
      Failed: 0,
    });
    expect(valueOf(s, 'fedgpu_jobs_pending_oldest_seconds')).toBe(300);
    expect(valueOf(await scrape(hub([], [jobs[2]!])), 'fedgpu_jobs_pending_oldest_seconds')).toBe(0);
  });

  it('counts scheduler decisions, rejections by bounded reason, and times schedule()', async () => {
    const m = hub();
    let s = await scrape(m);
    expect(series(s, 'fedgpu_scheduler_decisions_total').map((x) => [x.labels.reason, x.value])).toEqual([
      ['scheduled', 0],
      ['unschedulable', 0],
    ]);
    expect(series(s, 'fedgpu_scheduler_rejections_total')).toHaveLength(16); // every reason label, runtime_class, cpu_memory, egress and access included
    m.observeSchedule({ kind: 'unschedulable', reasons: { InsufficientIdle: 2, PriceAboveBudget: 1, TotalAboveBudget: 1, RttTooHigh: 1, Excluded: 1 }, message: '' }, 0.002);
    m.observeSchedule({ kind: 'decision' } as never, 0.0004);
    s = await scrape(m);
    expect(valueOf(s, 'fedgpu_scheduler_decisions_total', { reason: 'scheduled' })).toBe(1);
    expect(valueOf(s, 'fedgpu_scheduler_decisions_total', { reason: 'unschedulable' })).toBe(1);
    expect(valueOf(s, 'fedgpu_scheduler_rejections_total', { reason: 'idle' })).toBe(2);
    expect(valueOf(s, 'fedgpu_scheduler_rejections_total', { reason: 'price' })).toBe(2);
    expect(valueOf(s, 'fedgpu_scheduler_rejections_total', { reason: 'latency' })).toBe(1);
    expect(series(s, 'fedgpu_scheduler_rejections_total').every((x) => x.labels.reason !== 'Excluded')).toBe(true);
    expect(valueOf(s, 'fedgpu_scheduler_decision_duration_seconds_count')).toBe(2);
    expect(valueOf(s, 'fedgpu_scheduler_decision_duration_seconds_bucket', { le: '0.0005' })).toBe(1);
  });

  it('counts ended attempts by fault, never on a guess', async () => {
    const m = hub([provider('gp-a')]);
    m.observeAttemptEnded('gp-a', 'provider');
    m.observeAttemptEnded('gp-a', 'none');
    m.observeAttemptEnded('gp-a', 'owner-reclaim');
    m.observeAttemptEnded('gp-a', 'unattributed');
    m.observeAttemptEnded('gp-a', undefined);
    const s = await scrape(m);
    expect(Object.fromEntries(series(s, 'fedgpu_provider_attempts_total', { provider: 'gp-a' }).map((x) => [x.labels.fault, x.value]))).toEqual({
      none: 1,
      user: 0,
      provider: 1,
      'owner-reclaim': 1,
      unattributed: 1,
    });
  });

  it('maps edge refusals and fenced reports to the five rejection reasons, every one present from the start', async () => {
    const m = hub();
    expect(series(await scrape(m), 'fedgpu_marketplace_rejected_messages_total').map((x) => x.labels.reason)).toEqual([
      'invalid',
      'unauthenticated',
      'rate_limited',
      'stale_epoch',
      'unknown_job',
    ]);
    m.observeRejection('bad_format');
    m.observeRejection('too_long');
    m.observeRejection('bad_signature');
    m.observeRejection('backlog_full');
    m.observeRejection('server_shutdown'); // life cycle, not a refusal
    m.observeRejection('not_leader');
    m.observeFencedReport('stale_epoch');
    m.observeFencedReport('unknown_job');
    const s = await scrape(m);
    const by = Object.fromEntries(series(s, 'fedgpu_marketplace_rejected_messages_total').map((x) => [x.labels.reason, x.value]));
    expect(by).toEqual({ invalid: 2, unauthenticated: 1, rate_limited: 1, stale_epoch: 1, unknown_job: 1 });
  });

  it('counts the GpuJob finalizers the hub wrote itself, from 0, on every replica', async () => {
    const m = hub([], [], false);
    expect(valueOf(await scrape(m), 'fedgpu_gpujob_finalizers_added_total', {})).toBe(0);
    m.observeFinalizerAdded();
    m.observeFinalizerAdded();
    expect(valueOf(await scrape(m), 'fedgpu_gpujob_finalizers_added_total', {})).toBe(2);
  });

  it('counts the idle collections by outcome, from 0, with their pauses and the bytes they handed back', async () => {
    const m = hub([], [], false);
    const fresh = await scrape(m);
    expect(valueOf(fresh, 'fedgpu_hub_idle_collections_total', { outcome: 'compacted' })).toBe(0);
    expect(valueOf(fresh, 'fedgpu_hub_idle_collections_total', { outcome: 'failed' })).toBe(0);
    m.observeIdleCollection({ outcome: 'compacted', pauseMs: 300, freedBytes: 64 * 2 ** 20 });
    m.observeIdleCollection({ outcome: 'compacted', pauseMs: 200, freedBytes: 8 * 2 ** 20 });
    m.observeIdleCollection({ outcome: 'failed', pauseMs: 10_000, freedBytes: 0 });
    const s = await scrape(m);
    expect(valueOf(s, 'fedgpu_hub_idle_collections_total', { outcome: 'compacted' })).toBe(2);
    expect(valueOf(s, 'fedgpu_hub_idle_collections_total', { outcome: 'failed' })).toBe(1);
    expect(valueOf(s, 'fedgpu_hub_idle_collection_pause_seconds_total', {})).toBeCloseTo(10.5);
    expect(valueOf(s, 'fedgpu_hub_idle_collection_freed_bytes_total', {})).toBe(72 * 2 ** 20);
  });

  it('counts reconciles per controller through the runtime hooks', async () => {
    const m = hub();
    m.controllerMetrics.reconciled?.({ controller: 'gpujob', key: 'ml/a', outcome: 'success', durationMs: 3 });
    m.controllerMetrics.reconciled?.({ controller: 'gpujob', key: 'ml/a', outcome: 'error', durationMs: 40 });
    m.controllerMetrics.reconciled?.({ controller: 'not-in-the-contract', key: 'x', outcome: 'success', durationMs: 1 });
    const s = await scrape(m);
    expect(valueOf(s, 'fedgpu_reconcile_total', { controller: 'gpujob' })).toBe(2);
    expect(valueOf(s, 'fedgpu_reconcile_errors_total', { controller: 'gpujob' })).toBe(1);
    expect(valueOf(s, 'fedgpu_reconcile_total', { controller: 'settlement' })).toBe(0);
    expect(valueOf(s, 'fedgpu_reconcile_duration_seconds_count', { controller: 'gpujob' })).toBe(2);
    expect(series(s, 'fedgpu_reconcile_total').map((x) => x.labels.controller)).toEqual(['gpujob', 'gpuprovider', 'settlement']);
  });

  it('exports market state only while leading, and drops it the moment leadership ends', async () => {
    const m = hub([provider('gp-a', { conditions: [ready('True')] })], [job('j')], false);
    m.observeStreams(() => 0);
    let s = await scrape(m);
    expect(valueOf(s, 'fedgpu_hub_leader')).toBe(0);
    expect(valueOf(s, 'fedgpu_build_info', { version: '9.9.9' })).toBe(1);
    expect(valueOf(s, 'fedgpu_marketplace_streams')).toBe(0);
    const leaderOnly = /^fedgpu_(provider|jobs|scheduler|settlement|gpu_seconds|paid|chain)/;
    expect(s.filter((x) => leaderOnly.test(x.name))).toEqual([]);

    m.setLeader(true);
    m.observeSchedule({ kind: 'decision' } as never, 0.001);
    s = await scrape(m);
    expect(valueOf(s, 'fedgpu_hub_leader')).toBe(1);
    expect(valueOf(s, 'fedgpu_provider_ready', { provider: 'gp-a' })).toBe(1);
    expect(valueOf(s, 'fedgpu_scheduler_decisions_total', { reason: 'scheduled' })).toBe(1);

    m.setLeader(false);
    s = await scrape(m);
    expect(valueOf(s, 'fedgpu_hub_leader')).toBe(0);
    expect(s.filter((x) => leaderOnly.test(x.name))).toEqual([]);
    // Leading again starts from zero, not from a predecessor term's counts.
    m.setLeader(true);
    expect(valueOf(await scrape(m), 'fedgpu_scheduler_decisions_total', { reason: 'scheduled' })).toBe(0);
  });

  it('takes settlement and chain observations through the exported functions', async () => {
    const m = hub([provider('gp-a')], [job('done', { phase: 'Succeeded' }), job('settled', { phase: 'Failed', conditions: [{ ...ready('True'), type: 'Settled' }] })]);
    // Nothing installed: the functions are no-ops (settlement code runs in tests without a hub).
    observeSettlementFailure('rpc');
    installHubMetrics(m);
    let s = await scrape(m);
    expect(valueOf(s, 'fedgpu_settlement_pending')).toBe(0); // off until the hub settles on chain
    expect(series(s, 'fedgpu_settlement_failures_total').map((x) => x.value)).toEqual([0, 0, 0, 0, 0, 0]);
    enableSettlementPending();
    observeSettlementConfirmed({ provider: 'gp-a', gpuProduct: H100, gpuSeconds: 3600, paidCredits: 2.4, durationSeconds: 42 });
    observeSettlementFailure('reverted');
    observeSlash('gp-a', 10);
    observeChainHead(1234);
    observeChainRpcError('timeout');
    setMinStakeCredits(1000);
    settlementControllerMetrics().reconciled?.({ controller: 'settlement', key: 'ml/done', outcome: 'success', durationMs: 5 });
    s = await scrape(m);
    expect(valueOf(s, 'fedgpu_settlement_pending')).toBe(1);
    expect(valueOf(s, 'fedgpu_settlements_total')).toBe(1);
    expect(valueOf(s, 'fedgpu_paid_credits_total', { provider: 'gp-a' })).toBe(2.4);
    expect(valueOf(s, 'fedgpu_gpu_seconds_total', { provider: 'gp-a', product: H100 })).toBe(3600);
    expect(valueOf(s, 'fedgpu_settlement_duration_seconds_count')).toBe(1);
    expect(valueOf(s, 'fedgpu_settlement_failures_total', { reason: 'reverted' })).toBe(1);
    expect(valueOf(s, 'fedgpu_settlement_failures_total', { reason: 'rpc' })).toBe(0);
    expect(valueOf(s, 'fedgpu_provider_slashed_credits_total', { provider: 'gp-a' })).toBe(10);
    expect(valueOf(s, 'fedgpu_chain_head_block')).toBe(1234);
    expect(valueOf(s, 'fedgpu_chain_rpc_errors_total', { reason: 'timeout' })).toBe(1);
    expect(valueOf(s, 'fedgpu_provider_min_stake_credits')).toBe(1000);
    expect(valueOf(s, 'fedgpu_reconcile_total', { controller: 'settlement' })).toBe(1);
  });

  it('includes the default process metrics of prom-client', async () => {
    const m = new HubMetrics();
    const names = metricNames(await m.text());
    expect(names.has('process_cpu_seconds_total')).toBe(true);
    expect(names.has('nodejs_eventloop_lag_seconds')).toBe(true);
  });
});
