import { describe, expect, it } from 'vitest';
import { AssumedAllocations } from './assumed.js';
import { schedule, scheduleQueue } from './scheduler.js';
import { schedulerConfig } from './config.js';
import { buildSnapshot } from './snapshot.js';
import { A100, H100, job, pool, provider, RTX4090 } from '../testing/fixtures.js';
import { type Decision, isDecision, type JobRequest, type ProviderSnapshot, type ScheduleResult } from '../types.js';

const NOW = Date.UTC(2024, 0, 1, 12); // Monday noon UTC
const config = schedulerConfig();

function decide(providers: ProviderSnapshot[], request: JobRequest, cfg = config): Decision {
  const result = schedule(providers, request, cfg, NOW);
  if (!isDecision(result)) throw new Error(`expected a decision, got: ${result.message}`);
  return result;
}

function refuse(providers: ProviderSnapshot[], request: JobRequest, cfg = config): string {
  const result = schedule(providers, request, cfg, NOW);
  if (isDecision(result)) throw new Error(`expected a refusal, got ${result.provider}`);
  return result.message;
}

const nodesOf = (d: Decision): string[] => d.assignments.map((a) => a.node);

describe('schedule: filters and exact refusal messages', () => {
  it('builds the message in the documented style', () => {
    const fleet = [
      provider('a', [pool(H100, [2])]),
      provider('b', [pool(H100, [4, 3])]),
      provider('c', [pool(H100, [8])], { rttMs: 180 }),
      provider('d', [pool(H100, [8])], { reputation: { score: 0.41, successes: 10, failures: 5 } }),
      provider('e', [pool(H100, [8])], { staked: false }),
    ];
    const request = job(1, 8, { placement: { maxLatencyMs: 50, minReputation: 0.6 } });
    const result = schedule(fleet, request, config, NOW);
    expect(result).toEqual({
      kind: 'unschedulable',
      reasons: { InsufficientIdle: 2, RttTooHigh: 1, ReputationTooLow: 1, NotStaked: 1 },
      message:
        '0/5 providers fit: 2 insufficient idle NVIDIA-H100-80GB-HBM3, 1 rtt 180ms > 50ms, 1 reputation 0.41 < 0.60, 1 not staked',
    });
  });

  it.each<[string, ProviderSnapshot[], JobRequest, string]>([
    [
      'price above budget, values collapse to a range',
      [provider('a', [pool(H100, [8], '3')]), provider('b', [pool(H100, [8], '4.5')])],
      job(1, 1, { budget: { maxPricePerGpuHour: '2.5' } }),
      '0/2 providers fit: 2 price 3.00-4.50 > 2.50',
    ],
    [
      'estimated total above maxTotal (price × GPUs × deadline)',
      [provider('a', [pool(H100, [8], '2')])],
      job(2, 4, { budget: { maxPricePerGpuHour: '10', maxTotal: '30' }, activeDeadlineSeconds: 7200 }), // 8 GPUs × 2 h × 2.00
      '0/1 providers fit: 1 estimated total 32.00 > 30.00',
    ],
    [
      'latency: several rtts',
      [provider('a', [pool(H100, [8])], { rttMs: 120 }), provider('b', [pool(H100, [8])], { rttMs: 180.4 })],
      job(1, 1, { placement: { maxLatencyMs: 50 } }),
      '0/2 providers fit: 2 rtt 120-180ms > 50ms',
    ],
    [
      'no pool of the product',
      [provider('a', [pool(RTX4090, [8])]), provider('b', [])],
      job(1, 1, {}, [H100, A100]),
      '0/2 providers fit: 2 no NVIDIA-H100-80GB-HBM3/NVIDIA-A100-SXM4-80GB pool',
    ],
    [
      'memory below minimum',
      [provider('a', [pool(RTX4090, [8])])],
      job(1, 1, { gpu: { products: [], minMemoryGiB: 40 } }),
      '0/1 providers fit: 1 NVIDIA-GeForce-RTX-4090 memory 23GiB < 40GiB',
    ],
    [
      'driver too old',
      [provider('a', [pool(H100, [8], '2', { cudaDriverMajor: 470 })])],
      job(1, 1, { gpu: { products: [H100], minCudaDriverMajor: 535 } }),
      '0/1 providers fit: 1 NVIDIA-H100-80GB-HBM3 cuda driver 470 < 535',
    ],
    [
      'region',
      [provider('a', [pool(H100, [8])], { region: 'eu-west' }), provider('b', [pool(H100, [8])], { region: 'ap-south' })],
      job(1, 1, { placement: { regions: ['us-east', 'us-west'] } }),
      '0/2 providers fit: 2 region ap-south/eu-west not in us-east,us-west',
    ],
    [
      'audited attributes: name and name=value',
      [
        provider('a', [pool(H100, [8])], { auditedAttributes: { tier: '2' } }),
        provider('b', [pool(H100, [8])], { auditedAttributes: { tier: '3' } }),
      ],
      job(1, 1, { placement: { requireAudited: ['tier=3', 'soc2'] } }),
      '0/2 providers fit: 2 not audited soc2/tier=3',
    ],
    [
      'not ready, stale heartbeat, outside window, excluded',
      [
        provider('a', [pool(H100, [8])], { ready: false }),
        provider('b', [pool(H100, [8])], { heartbeatAgeMs: 120_000 }),
        provider('c', [pool(H100, [8])], { availability: { windows: [{ start: '18:00', end: '08:00' }] } }),
        provider('d', [pool(H100, [8])]),
      ],
      job(1, 1, { excludeProviders: ['d'] }),
      '0/4 providers fit: 2 not ready, 1 outside availability window, 1 failed this job before',
    ],
    [
      'sameNode',
      [provider('a', [pool(H100, [4, 4])])],
      job(2, 4, { placement: { sameNode: true } }),
      '0/1 providers fit: 1 insufficient idle NVIDIA-H100-80GB-HBM3 on one node',
    ],
    [
      'invalid listed price',
      [provider('a', [pool(H100, [8], 'cheap')])],
      job(1, 1),
      '0/1 providers fit: 1 invalid price',
    ],
    ['empty market', [], job(1, 1), '0/0 providers fit: no providers in the market'],
  ])('%s', (_name, fleet, request, message) => {
    expect(refuse(fleet, request)).toBe(message);
  });

  it('reports the best pool’s first failing check', () => {
    // Pool H100 fails on idle (furthest), pool A100 is not requested: the message names the H100 pool.
    const fleet = [provider('a', [pool(A100, [8]), pool(H100, [1])], { rttMs: 500 })];
    expect(refuse(fleet, job(1, 4, { placement: { maxLatencyMs: 50 } }))).toBe(
      '0/1 providers fit: 1 insufficient idle NVIDIA-H100-80GB-HBM3',
    );
  });

  it('memory tolerance: 80 GiB matches an H100 80GB (81559 MiB); strict config does not', () => {
    const fleet = [provider('a', [pool(H100, [8])])];
    const request = job(1, 1, { gpu: { products: [H100], minMemoryGiB: 80 } });
    expect(decide(fleet, request).provider).toBe('a');
    expect(refuse(fleet, request, schedulerConfig({ memoryTolerance: 0 }))).toBe(
      '0/1 providers fit: 1 NVIDIA-H100-80GB-HBM3 memory 79GiB < 80GiB',
    );
  });

  it('minimum stake', () => {
    const fleet = [provider('a', [pool(H100, [8])], { stakeAmount: '50' })];
    expect(refuse(fleet, job(1, 1), schedulerConfig({ minStake: '100' }))).toBe('0/1 providers fit: 1 not staked');
    expect(decide(fleet, job(1, 1), schedulerConfig({ minStake: '50' })).provider).toBe('a');
  });

  it.each<[string, JobRequest, string]>([
    ['zero replicas', { ...job(1, 1), replicas: 0 }, 'invalid job: replicas must be a positive integer, got 0'],
    ['fractional GPUs', { ...job(1, 1), gpusPerReplica: 1.5 }, 'invalid job: gpusPerReplica must be a positive integer, got 1.5'],
    ['bad money', job(1, 1, { budget: { maxPricePerGpuHour: '1e3' } }), 'invalid job: budget.maxPricePerGpuHour "1e3" is not a decimal amount'],
  ])('rejects a malformed job: %s', (_name, request, message) => {
    const result = schedule([provider('a', [pool(H100, [8])])], request, config, NOW);
    expect(result).toEqual({ kind: 'unschedulable', reasons: { InvalidRequest: 1 }, message });
  });
});

describe('schedule: choosing among fits', () => {
  it('heterogeneous fleet: only pools of a wanted product, the better one wins', () => {
    const fleet = [
      provider('h', [pool(H100, [8], '3')]),
      provider('a', [pool(A100, [8], '1.5')]),
      provider('r', [pool(RTX4090, [8], '0.4')]),
    ];
    expect(decide(fleet, job(1, 1, {}, [A100])).provider).toBe('a');
    expect(decide(fleet, job(1, 1, {}, [H100])).provider).toBe('h');
    // Both acceptable: the cheaper A100 wins on price, all else equal.
    expect(decide(fleet, job(1, 1, {}, [H100, A100])).provider).toBe('a');
    // Any product: the cheapest.
    expect(decide(fleet, job(1, 1, {}, [])).provider).toBe('r');
  });

  it('mixed pools in one provider: picks the matching pool and records it', () => {
    const d = decide([provider('x', [pool(RTX4090, [2]), pool(H100, [8], '2.4')])], job(2, 2));
    expect(d).toMatchObject({
      provider: 'x',
      gpuProduct: H100,
      memoryMiB: 81559,
      cudaDriverMajor: 535,
      pricePerGpuHour: '2.4',
      gpusPerReplica: 2,
      assignments: [
        { replica: 0, node: 'n0' },
        { replica: 1, node: 'n0' },
      ],
    });
  });

  it('ties go to the lowest provider name, whatever the input order', () => {
    const fleet = [provider('zeta', [pool(H100, [8])]), provider('alpha', [pool(H100, [8])]), provider('mid', [pool(H100, [8])])];
    for (const order of [fleet, [...fleet].reverse(), [fleet[1], fleet[2], fleet[0]] as ProviderSnapshot[]]) {
      expect(decide(order, job(1, 1)).provider).toBe('alpha');
    }
  });

  it('ties within a provider go to the lower pool key', () => {
    const fleet = [provider('p', [pool(H100, [8], '2', { cudaDriverMajor: 550 }), pool(H100, [8], '2', { cudaDriverMajor: 535 })])];
    expect(decide(fleet, job(1, 1)).cudaDriverMajor).toBe(535);
  });

  it('gang fits only whole: a pool short by one GPU is skipped for one that holds it all', () => {
    const fleet = [provider('a', [pool(H100, [4, 3], '1')]), provider('b', [pool(H100, [4, 4], '5')])];
    const d = decide(fleet, job(2, 4));
    expect(d.provider).toBe('b');
    expect(nodesOf(d)).toEqual(['n0', 'n1']);
  });

  it('gangs stay in one provider cluster even when two together would fit', () => {
    const fleet = [provider('a', [pool(H100, [4])]), provider('b', [pool(H100, [4])])];
    expect(refuse(fleet, job(2, 4))).toBe('0/2 providers fit: 2 insufficient idle NVIDIA-H100-80GB-HBM3');
  });

  it('sameNode puts every replica on one node', () => {
    const fleet = [provider('a', [pool(H100, [4, 4, 8])])];
    expect(nodesOf(decide(fleet, job(4, 2, { placement: { sameNode: true } })))).toEqual(['n2', 'n2', 'n2', 'n2']);
  });

  it('fragmentation: prefers the pool the gang fills exactly and keeps big nodes whole', () => {
    const fleet = [provider('big', [pool(H100, [8])]), provider('snug', [pool(H100, [2])])];
    const d = decide(fleet, job(1, 2));
    expect(d.provider).toBe('snug');
    expect(d.score.parts.fragmentation).toBe(1);
  });

  it('latency: closer wins; reputation: more trusted wins', () => {
    expect(decide([provider('far', [pool(H100, [8])], { rttMs: 150 }), provider('near', [pool(H100, [8])], { rttMs: 10 })], job(1, 1)).provider).toBe('near');
    const trusted = { score: 0.95, successes: 500, failures: 3 };
    const shaky = { score: 0.6, successes: 40, failures: 15 };
    expect(decide([provider('a', [pool(H100, [8])], { reputation: shaky }), provider('b', [pool(H100, [8])], { reputation: trusted })], job(1, 1)).provider).toBe('b');
  });

  it('exploration: a newcomer beats a veteran with a similar track record', () => {
    const newcomer = provider('newcomer', [pool(H100, [8])], { reputation: { score: 0.05, successes: 0, failures: 0 } });
    const veteran = provider('veteran', [pool(H100, [8])], { reputation: { score: 0.15, successes: 80, failures: 120 } });
    const d = decide([veteran, newcomer], job(1, 1));
    expect(d.provider).toBe('newcomer');
    expect(d.score.parts.reputation).toBeCloseTo(0.2, 12); // 0.05 + 0.15 × 5 / (5 + 0)
    // …but not a well-proven one, and not with exploration off.
    const proven = provider('proven', [pool(H100, [8])], { reputation: { score: 0.9, successes: 300, failures: 5 } });
    expect(decide([proven, newcomer], job(1, 1)).provider).toBe('proven');
    expect(decide([veteran, newcomer], job(1, 1), schedulerConfig({ exploration: { share: 0 } })).provider).toBe('veteran');
  });

  it('time to start: data already in the region, or a faster link, wins', () => {
    const data = { data: { sizeGiB: 500, sourceRegion: 'eu-west' } };
    const local = provider('local', [pool(H100, [8])], { region: 'eu-west', bandwidthMbps: 100 });
    const remote = provider('remote', [pool(H100, [8])], { region: 'us-east', bandwidthMbps: 1000 });
    const d = decide([remote, local], job(1, 1, data));
    expect(d.provider).toBe('local');
    expect(d.estimatedTimeToStartSeconds).toBe(0);
    const slow = provider('slow', [pool(H100, [8])], { bandwidthMbps: 100 });
    const fast = provider('fast', [pool(H100, [8])], { bandwidthMbps: 10_000 });
    const d2 = decide([slow, fast], job(1, 1, { data: { sizeGiB: 10 } }));
    expect(d2.provider).toBe('fast');
    expect(d2.estimatedTimeToStartSeconds).toBeCloseTo(8.192, 9); // 10 × 8192 Mbit / 10000 Mbps
  });

  it('records the score parts, the weighted total and the estimated maximum cost', () => {
    const d = decide([provider('a', [pool(H100, [8], '2.5')], { rttMs: 50, reputation: { score: 0.8, successes: 95, failures: 0 } })], job(2, 2, { budget: { maxPricePerGpuHour: '5', maxTotal: '1000' }, activeDeadlineSeconds: 3600 }));
    expect(d.score.parts).toEqual({ reputation: 0.8 + (0.15 * 5) / 100, latency: 0.8, price: 0.5, timeToStart: 1, fragmentation: 0.5 });
    const w = config.weights;
    const p = d.score.parts;
    expect(d.score.total).toBeCloseTo(
      w.reputation * p.reputation + w.latency * p.latency + w.price * p.price + w.timeToStart * p.timeToStart + w.fragmentation * p.fragmentation,
      12,
    );
    expect(d.estimatedMaxTotal).toBe('10'); // 2.5 × 4 GPUs × 1 h
  });

  it('weights are configuration: all weight on price picks the cheapest despite latency', () => {
    const fleet = [provider('cheap-far', [pool(H100, [8], '1')], { rttMs: 200 }), provider('dear-near', [pool(H100, [8], '3')], { rttMs: 1 })];
    const priceOnly = schedulerConfig({ weights: { reputation: 0, latency: 0, price: 1, timeToStart: 0, fragmentation: 0 } });
    const latencyOnly = schedulerConfig({ weights: { reputation: 0, latency: 1, price: 0, timeToStart: 0, fragmentation: 0 } });
    expect(decide(fleet, job(1, 1), priceOnly).provider).toBe('cheap-far');
    expect(decide(fleet, job(1, 1), latencyOnly).provider).toBe('dear-near');
  });

  it('is deterministic and does not mutate its input', () => {
    const fleet = [provider('a', [pool(H100, [8, 2])]), provider('b', [pool(H100, [8])])];
    const copy = structuredClone(fleet);
    const first = schedule(fleet, job(1, 2), config, NOW);
    expect(schedule(copy, job(1, 2), config, NOW)).toEqual(first);
    expect(fleet).toEqual(copy);
  });
});

describe('schedule: bursts never overbook', () => {
  it('50 jobs over a small fleet: assigned GPUs per node never exceed idle', () => {
    const fleet = [
      provider('a', [pool(H100, [8, 8, 4]), pool(A100, [8])]),
      provider('b', [pool(H100, [8, 2])], { rttMs: 80 }),
      provider('c', [pool(A100, [4, 4, 4, 4])], { reputation: { score: 0.5, successes: 3, failures: 1 } }),
      provider('d', [pool(H100, [1, 1, 1, 3])]),
    ];
    const idle = new Map<string, number>();
    for (const p of fleet) for (const pl of p.pools) for (const n of pl.nodes) idle.set(`${p.name}/${pl.gpuProduct}/${n.name}`, n.idleGpus);

    const snapshot = buildSnapshot(fleet);
    const assumed = new AssumedAllocations();
    const shapes: [number, number, string[]][] = [[1, 1, [H100]], [2, 2, [H100, A100]], [1, 4, [A100]], [4, 1, []], [1, 3, [H100]]];
    const jobs = Array.from({ length: 50 }, (_, i) => {
      const [replicas, gpus, products] = shapes[i % shapes.length] as [number, number, string[]];
      return { key: `ns/job-${i}`, job: job(replicas, gpus, {}, products) };
    });
    const results = scheduleQueue(snapshot, jobs, config, NOW, assumed);

    const used = new Map<string, number>();
    let placed = 0;
    for (const { result } of results) {
      if (!isDecision(result)) continue;
      placed += 1;
      for (const a of result.assignments) {
        const key = `${result.provider}/${result.gpuProduct}/${a.node}`;
        used.set(key, (used.get(key) ?? 0) + result.gpusPerReplica);
      }
    }
    for (const [key, gpus] of used) expect(gpus, key).toBeLessThanOrEqual(idle.get(key) ?? 0);
    const totalIdle = [...idle.values()].reduce((a, b) => a + b, 0);
    const totalUsed = [...used.values()].reduce((a, b) => a + b, 0);
    expect(totalUsed).toBeLessThanOrEqual(totalIdle);
    expect(placed).toBeGreaterThan(10); // the fleet holds a good share of the burst…
    expect(placed).toBeLessThan(50); // …but not all of it: the rest is refused, not double-booked
    expect(assumed.size).toBe(placed);
    const refusals = results.map((r) => r.result).filter((r): r is Exclude<ScheduleResult, Decision> => !isDecision(r));
    expect(refusals.every((r) => r.message.startsWith('0/4 providers fit: '))).toBe(true);
  });

  it('without assume() the same GPUs would be handed out twice (the bug assume prevents)', () => {
    const snapshot = buildSnapshot([provider('a', [pool(H100, [8])])]);
    const first = schedule(snapshot, job(1, 8), config, NOW);
    expect(isDecision(first)).toBe(true);
    expect(isDecision(schedule(snapshot, job(1, 8), config, NOW))).toBe(true);
    snapshot.assume(first as Decision);
    expect(isDecision(schedule(snapshot, job(1, 8), config, NOW))).toBe(false);
  });
});

describe('schedule: a job that requires a RuntimeClass', () => {
  const fleet = [
    provider('plain', [pool(H100, [8], '1')]),
    provider('sandboxed', [pool(H100, [8], '3', { runtimeClassName: 'gvisor' })]),
    provider('kata', [pool(H100, [8], '2', { runtimeClassName: 'kata' })]),
  ];

  it('goes only to pools whose owner runs that class', () => {
    expect(decide(fleet, job(1, 1, { placement: { runtimeClassName: 'gvisor' } })).provider).toBe('sandboxed');
  });

  it('says which class each refused pool runs', () => {
    const message = refuse(fleet.slice(0, 1).concat(fleet.slice(2)), job(1, 1, { placement: { runtimeClassName: 'gvisor' } }));
    expect(message).toContain('runtime class');
    expect(message).toContain('default');
    expect(message).toContain('kata');
    expect(message).toContain('!= gvisor');
  });

  it('lets a job that names no class go anywhere, cheapest first', () => {
    expect(decide(fleet, job(1, 1)).provider).toBe('plain');
  });
});
