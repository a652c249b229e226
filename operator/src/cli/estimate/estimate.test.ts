import { describe, expect, it } from 'vitest';
import type { GpuJob, GpuProvider } from '../../api/types.js';
import { CliError } from '../errors.js';
import { parseJobDocument, withFileName } from './command.js';
import { estimateJob, formatEstimate, parseForDuration } from './estimate.js';

const H100 = 'NVIDIA-H100-80GB-HBM3';
const now = Date.parse('2026-11-30T02:00:00Z');
const recent = new Date(now - 90_000).toISOString(); // older than the hub's 60 s, within one write period more

function provider(name: string, price: string, idle: number[], extra: { exec?: boolean; ready?: boolean; displayName?: string } = {}): GpuProvider {
  return {
    apiVersion: 'fedgpu.io/v1alpha1', kind: 'GpuProvider', metadata: { name },
    spec: { wallet: `0x${name.padStart(40, '0').slice(-40).replace(/[^0-9a-f]/g, '0')}`, region: 'eu', ...(extra.displayName ? { displayName: extra.displayName } : {}) },
    status: {
      lastHeartbeatTime: recent,
      conditions: [{ type: 'Ready', status: extra.ready === false ? 'False' : 'True', reason: 'Heartbeat', message: '', lastTransitionTime: recent }],
      reputation: { score: 0.9, successes: 10, failures: 0 },
      pools: [{
        gpuProduct: H100, memoryMiB: 81559, cudaDriverMajor: 580, nodes: idle.length, total: idle.length * 8, allocatable: idle.length * 8,
        idle: idle.reduce((a, b) => a + b, 0), pricePerGpuHour: price, offered: true,
        idleByNode: idle.map((n, i) => ({ name: `${name}-n${i}`, idle: n })),
        ...(extra.exec === false ? { access: { exec: false, portForward: true } } : {}),
      }],
    },
  } as GpuProvider;
}

function job(spec: Partial<GpuJob['spec']> = {}): GpuJob {
  return {
    apiVersion: 'fedgpu.io/v1alpha1', kind: 'GpuJob', metadata: { name: 'trainer', namespace: 'ml' },
    spec: { template: { spec: { containers: [{ name: 'main', image: 'x' }] } }, replicas: 2, gpusPerReplica: 4, gpu: { products: [H100] }, budget: { maxPricePerGpuHour: '3' }, ...spec },
  } as GpuJob;
}

describe('fedgpu estimate', () => {
  const market = [provider('cheap', '2.10', [8, 8], { exec: false, displayName: 'Cheap DC' }), provider('open', '2.50', [8]), provider('down', '1.00', [8], { ready: false })];

  it('places the job as the hub would and prices a duration: GPUs × hours × price', () => {
    const e = estimateJob(job(), market, now, 2 * 3600 + 30 * 60);
    expect(e).toMatchObject({ fits: true, gpus: 8, placement: { provider: 'cheap', gpuProduct: H100, pricePerGpuHour: '2.10' }, costPerHour: '16.80', forSeconds: 9000, cost: '42.00' });
    expect(formatEstimate(e)).toBe(
      [
        'GpuJob ml/trainer (estimate; nothing was created): would be placed (8 GPUs: 2 × 4)',
        `Placement: cheap, ${H100} at 2.10 credits/GPU-hour, nodes ${e.placement!.nodes.join(', ')}`,
        `  score ${e.placement!.score.total.toFixed(3)} = reputation ${e.placement!.score.reputation.toFixed(3)}, latency ${e.placement!.score.latency.toFixed(3)}, price ${e.placement!.score.price.toFixed(3)}, time-to-start ${e.placement!.score.timeToStart.toFixed(3)}, fit ${e.placement!.score.fragmentation.toFixed(3)}`,
        'Price: 2.10 credits per GPU-hour; 16.80 credits per hour for 8 GPUs',
        'Cost for 2h30m: 42.00 credits (8 GPUs × 2.5 h × 2.10)',
        'Providers:',
        `  cheap (Cheap DC): fits, ${H100} at 2.10 credits/GPU-hour, score ${e.providers[0]!.detail.split('score ')[1]}`,
        `  open: fits, ${H100} at 2.50 credits/GPU-hour, score ${e.providers[1]!.detail.split('score ')[1]}`,
        '  down: not ready',
        '',
      ].join('\n'),
    );
  });

  it('rounds a cost up to the smallest unit, never down', () => {
    const e = estimateJob(job({ replicas: 1, gpusPerReplica: 1 }), [provider('p', '0.000000000000000001', [1])], now, 1);
    expect(e.cost).toBe('0.000000000000000001'); // 1e-18 × 1 s / 3600, rounded up to the smallest unit, exact
    expect(estimateJob(job({ replicas: 1, gpusPerReplica: 3 }), [provider('p', '1.00', [8])], now, 1200).cost).toBe('1.00');
  });

  it('a job requiring exec skips the pool whose owner forbids it', () => {
    const e = estimateJob(job({ access: { exec: true } }), market, now, 3600);
    expect(e.placement?.provider).toBe('open');
    expect(e.cost).toBe('20.00');
    expect(e.providers.find((p) => p.provider === 'cheap')).toEqual({ provider: 'cheap', displayName: 'Cheap DC', fits: false, detail: 'exec not allowed by the owner' });
  });

  it('says why nothing fits today, overall and per provider', () => {
    const e = estimateJob(job({ budget: { maxPricePerGpuHour: '2' } }), market, now, 3600);
    expect(e).toMatchObject({ fits: false, reasons: { PriceAboveBudget: 2, NotReady: 1 }, message: '0/3 providers fit: 2 price 2.10-2.50 > 2.00, 1 not ready' });
    expect(e.cost).toBeUndefined();
    expect(formatEstimate(e)).toBe(
      [
        'GpuJob ml/trainer (estimate; nothing was created): does not fit today (8 GPUs: 2 × 4)',
        '  0/3 providers fit: 2 price 2.10-2.50 > 2.00, 1 not ready',
        'Providers:',
        '  cheap (Cheap DC): price 2.10 > 2.00',
        '  down: not ready',
        '  open: price 2.50 > 2.00',
        '',
      ].join('\n'),
    );
    expect(estimateJob(job(), [], now).message).toBe('0/0 providers fit: no providers in the market');
  });

  it('parses --for durations and refuses others', () => {
    expect(parseForDuration('2h')).toBe(7200);
    expect(parseForDuration('1h30m')).toBe(5400);
    expect(parseForDuration('1.5h')).toBe(5400);
    expect(parseForDuration('3d')).toBe(259200);
    expect(parseForDuration('45s')).toBe(45);
    expect(() => parseForDuration('2 hours')).toThrow('--for "2 hours" is not a duration: use e.g. 2h, 90m, 1h30m or 3d');
    expect(() => parseForDuration('0h')).toThrow('--for 0h must be between 1s and 365d');
    expect(() => parseForDuration('400d')).toThrow('--for 400d must be between 1s and 365d');
  });

  it('reads one GpuJob from the file and settles its namespace', () => {
    const text = 'apiVersion: fedgpu.io/v1alpha1\nkind: GpuJob\nmetadata: {name: t}\nspec: {budget: {}}\n';
    expect(parseJobDocument(text, 'job.yaml', undefined).metadata.namespace).toBe('default');
    expect(parseJobDocument(text, 'job.yaml', 'ml').metadata.namespace).toBe('ml');
    const usage = (t: string, ns?: string) => {
      try {
        parseJobDocument(t, 'job.yaml', ns);
      } catch (err) {
        expect(err).toBeInstanceOf(CliError);
        return (err as CliError).message;
      }
      return 'accepted';
    };
    expect(usage(`${text}---\n${text}`)).toBe('job.yaml: expected one GpuJob, found 2 documents');
    expect(usage(text.replace('GpuJob', 'Pod'))).toBe('job.yaml: kind must be GpuJob, got "Pod"');
    expect(usage(text.replace('fedgpu.io/v1alpha1', 'v1'))).toBe('job.yaml: apiVersion must be fedgpu.io/v1alpha1, got "v1"');
    expect(usage(text.replace('{name: t}', '{name: t, namespace: a}'), 'b')).toBe('job.yaml: the namespace in the file (a) does not match --namespace b');
    expect(usage('- 1\n- 2\n')).toBe('job.yaml: not a GpuJob object');
    expect(usage('a: [\n')).toMatch(/^job\.yaml: not YAML: /);
  });

  it('names the object in the apiserver\'s refusal as the file does, not by its generated name', () => {
    expect(withFileName('GpuJob.fedgpu.io "bad-h6px5" is invalid: spec.replicas: Invalid value: 0', 'bad')).toBe('GpuJob.fedgpu.io "bad" is invalid: spec.replicas: Invalid value: 0');
    expect(withFileName('GpuJob.fedgpu.io "a.b-h6px5" is invalid', 'a.b')).toBe('GpuJob.fedgpu.io "a.b" is invalid');
    expect(withFileName('GpuJob.fedgpu.io "axb-h6px5" is invalid', 'a.b')).toBe('GpuJob.fedgpu.io "axb-h6px5" is invalid');
  });
});
