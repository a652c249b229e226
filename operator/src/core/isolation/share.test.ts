import type { V1Container } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { boundToShare, replicaAsk, replicaShare, withoutOverhead, type Share } from './share.js';

const GI = 1024 ** 3;
const MI = 1024 ** 2;
// A kwok-sized node: 64 CPU, 512Gi, 8 GPUs.
const node = { cpuMilli: 64_000, memoryBytes: 512 * GI, gpus: 8 };
const none = { cpuMilli: 0, memoryBytes: 0, gpus: 0 };
const share: Share = { cpuMilli: 8_000, memoryBytes: 64 * GI, gpus: 1, ofGpus: 8 };
const c = (name: string, resources?: V1Container['resources'], restartPolicy?: string): V1Container => ({ name, image: 'x', resources, ...(restartPolicy ? { restartPolicy } : {}) });
const limitsOf = (r: ReturnType<typeof boundToShare>) => {
  if (!r.ok) throw new Error(r.problems.join('; '));
  return [...r.spec.containers, ...(r.spec.initContainers ?? [])].map((x) => ({ limits: x.resources?.limits, requests: x.resources?.requests }));
};

describe('replicaShare', () => {
  it('is what the replica\'s GPUs are of the node\'s GPUs, rounded down', () => {
    expect(replicaShare(node, none, 1)).toEqual(share);
    expect(replicaShare(node, none, 8)).toEqual({ cpuMilli: 64_000, memoryBytes: 512 * GI, gpus: 8, ofGpus: 8 });
    // 3 GPUs of 8 on 10 CPU and 10Gi: 3750m and 3840Mi, never more.
    expect(replicaShare({ cpuMilli: 10_000, memoryBytes: 10 * GI, gpus: 8 }, none, 3)).toEqual({ cpuMilli: 3_750, memoryBytes: 3_840 * MI, gpus: 3, ofGpus: 8 });
  });

  it('divides what the owner\'s own pods leave among the GPUs they leave', () => {
    // The owner's pods hold 2 GPUs, 16 CPU and 128Gi: 6 GPUs share 48 CPU and 384Gi.
    expect(replicaShare(node, { cpuMilli: 16_000, memoryBytes: 128 * GI, gpus: 2 }, 3)).toEqual({ cpuMilli: 24_000, memoryBytes: 192 * GI, gpus: 3, ofGpus: 6 });
  });

  it('shares of one node never add up past it', () => {
    const odd = { cpuMilli: 7_001, memoryBytes: 7 * GI + 12_345, gpus: 7 };
    const parts = [1, 2, 4].map((g) => replicaShare(odd, none, g)!);
    expect(parts.reduce((s, p) => s + p.cpuMilli, 0)).toBeLessThanOrEqual(odd.cpuMilli);
    expect(parts.reduce((s, p) => s + p.memoryBytes, 0)).toBeLessThanOrEqual(odd.memoryBytes);
  });

  it('is undefined when the node has fewer GPUs left than the replica asks', () => {
    expect(replicaShare(node, { ...none, gpus: 7 }, 2)).toBeUndefined();
    expect(replicaShare(node, none, 9)).toBeUndefined();
    expect(replicaShare(node, none, 0)).toBeUndefined();
  });
});

describe('boundToShare', () => {
  const of = "this replica's share of its node (1 of the 8 GPU(s) it has for jobs)";
  const problems = (r: ReturnType<typeof boundToShare>) => (r.ok ? [] : r.problems);

  it('gives a container without limits the whole share, requests equal to it', () => {
    expect(limitsOf(boundToShare({ containers: [c('main')] }, share))).toEqual([
      { limits: { cpu: '8000m', memory: '65536Mi' }, requests: { cpu: '8000m', memory: '65536Mi' } },
    ]);
  });

  it('keeps limits that fit and splits the rest among containers without one', () => {
    const r = boundToShare({ containers: [c('main', { limits: { cpu: '6', memory: '60Gi' }, requests: { cpu: '2' } }), c('a'), c('b')] }, share);
    expect(limitsOf(r)).toEqual([
      { limits: { cpu: '6', memory: '60Gi' }, requests: { cpu: '2', memory: '60Gi' } },
      { limits: { cpu: '1000m', memory: '2048Mi' }, requests: { cpu: '1000m', memory: '2048Mi' } },
      { limits: { cpu: '1000m', memory: '2048Mi' }, requests: { cpu: '1000m', memory: '2048Mi' } },
    ]);
  });

  it('refuses limits that add up past the share, naming each container, the sum and the share', () => {
    const r = boundToShare({ containers: [c('main', { limits: { memory: '60Gi' } }), c('side', { limits: { memory: '8Gi' } })] }, share);
    expect(problems(r)).toEqual([`memory limits of the containers add up to 69632Mi (main 61440Mi + side 8192Mi): more than ${of}, 65536Mi`]);
    // One byte over is shown in bytes, not rounded away.
    expect(problems(boundToShare({ containers: [c('main', { limits: { memory: String(64 * GI + 1) } })] }, share))).toEqual([
      `memory limits of the containers add up to ${64 * GI + 1} bytes (main ${64 * GI + 1} bytes): more than ${of}, 65536Mi`,
    ]);
  });

  it('refuses a zero or near-zero limit, which Kubernetes would read as no limit at all', () => {
    expect(problems(boundToShare({ containers: [c('main', { limits: { cpu: '0', memory: '0Mi' } })] }, share))).toEqual([
      'template.spec.containers[0].resources.limits.cpu: "0" is below 0.01 CPU, the least a container runs with (a zero limit would be no limit)',
      'template.spec.containers[0].resources.limits.memory: "0Mi" is below 16Mi, the least a container runs with (a zero limit would be no limit)',
    ]);
    for (const cpu of ['0m', '.0', '0.0001', 0]) {
      expect(boundToShare({ containers: [c('main', { limits: { cpu } as Record<string, string> }), c('b')] }, share).ok, String(cpu)).toBe(false);
    }
    // Nor can a clamp at a resync produce one.
    expect(problems(boundToShare({ containers: [c('main', { limits: { cpu: '1000000' } }), c('side', { limits: { cpu: '10m' } })] }, share, true))).toEqual([
      `cpu limits of the containers add up to 1000000.01 CPU (main 1000000 CPU + side 0.01 CPU) and cannot be cut to ${of}, 8 CPU`,
    ]);
  });

  it('counts sidecars with the containers, and bounds an init container by what the sidecars before it leave', () => {
    const spec = {
      containers: [c('main', { limits: { cpu: '4' } })],
      initContainers: [c('proxy', { limits: { cpu: '2' } }, 'Always'), c('fetch')],
    };
    const [main, proxy, fetch] = limitsOf(boundToShare(spec, share));
    // The sidecar sets no memory limit and an init container comes after it: it gets the least
    // (16Mi), so the init container keeps its part; the container takes the rest.
    expect(main!.limits).toMatchObject({ cpu: '4', memory: '65520Mi' });
    expect(proxy!.limits).toMatchObject({ cpu: '2', memory: '16Mi' });
    // 8 CPU less the 2 of the sidecar beside it; 64Gi less its 16Mi.
    expect(fetch!.limits).toMatchObject({ cpu: '6000m', memory: '65520Mi' });
    const tooBig = boundToShare({ ...spec, initContainers: [spec.initContainers[0]!, c('fetch', { limits: { cpu: '7' } })] }, share);
    expect(problems(tooBig)).toEqual([`template.spec.initContainers[1].resources.limits.cpu: 7 CPU, more than the 6 CPU of ${of} left beside the sidecars before it`]);
    // A sidecar's limit counts against the containers' share too.
    expect(boundToShare({ containers: [c('main', { limits: { cpu: '7' } })], initContainers: [c('proxy', { limits: { cpu: '2' } }, 'Always')] }, share).ok).toBe(false);
  });

  it('refuses limits, or requests of containers without one, that leave too little for the others', () => {
    expect(problems(boundToShare({ containers: [c('main', { limits: { cpu: '8' } }), c('side', { requests: { cpu: '1' } })] }, share))).toEqual([
      `cpu limits of the containers add up to 8 CPU (main 8 CPU), and 1 container(s) without one need 0.01 CPU each: more than ${of}, 8 CPU`,
    ]);
    expect(problems(boundToShare({ containers: [c('main', { limits: { cpu: '6' } }), c('side', { requests: { cpu: '3' } })] }, share))).toEqual([
      `cpu: the limits set leave 2 CPU of ${of} (8 CPU), and the 1 container(s) without one need 3 CPU`,
    ]);
    expect(problems(boundToShare({ containers: [c('main', { requests: { memory: '100Gi' } })] }, share))).toEqual([
      `memory: the limits set leave 65536Mi of ${of} (65536Mi), and the 1 container(s) without one need 102400Mi`,
    ]);
  });

  it('reads millicores exactly, not a float\'s last bit over', () => {
    // 2.007 × 1000 is 2007.0000000000002 in floating point: that is not 2008m.
    const r = boundToShare({ containers: [c('main', { limits: { cpu: '2007m' } }), c('side', { limits: { cpu: '5993m' } })] }, share);
    expect(r.ok ? [] : r.problems).toEqual([]);
    for (let i = 1; i <= 8_000; i++) {
      expect(replicaAsk({ containers: [c('main', { limits: { cpu: `${i}m` } })] }).cpuMilli).toBe(Math.max(10, i));
    }
  });

  it('refuses what is not a finite quantity rather than reading it as nothing', () => {
    expect(problems(boundToShare({ containers: [c('main', { limits: { memory: '1e12' } })] }, share))).toEqual([
      'template.spec.containers[0].resources.limits.memory: "1e12" is not a quantity',
    ]);
    expect(boundToShare({ containers: [c('main', { limits: { cpu: `1${'0'.repeat(400)}` } })] }, share).ok).toBe(false);
  });

  it('gives a container without a limit at least its request, then its part of the rest', () => {
    const r = boundToShare({ containers: [c('a', { requests: { cpu: '5' } }), c('b')] }, share);
    expect(limitsOf(r).map((x) => [x.limits!.cpu, x.requests!.cpu])).toEqual([['6495m', '5'], ['1505m', '1505m']]);
  });

  it('cuts an init container to what is left for an attempt already running, instead of refusing it', () => {
    const spec = { containers: [c('main', { limits: { cpu: '8' } })], initContainers: [c('fetch', { limits: { cpu: '8' }, requests: { cpu: '8' } })] };
    const smaller = { ...share, cpuMilli: 6_000 };
    expect(boundToShare(spec, smaller).ok).toBe(false);
    const [main, fetch] = limitsOf(boundToShare(spec, smaller, true));
    expect(main!.limits!.cpu).toBe('6000m');
    expect([fetch!.limits!.cpu, fetch!.requests!.cpu]).toEqual(['6000m', '6000m']);
  });

  it('scales limits down to the share for an attempt already running, none below the minimum, the sum within it', () => {
    const r = boundToShare({ containers: [c('main', { limits: { memory: '96Gi' }, requests: { memory: '96Gi' } }), c('side', { limits: { memory: '32Gi' } })] }, share, true);
    const [main, side] = limitsOf(r);
    expect(main!.limits!.memory).toBe('49152Mi');
    expect(side!.limits!.memory).toBe('16384Mi');
    expect(main!.requests!.memory).toBe('49152Mi');
    // Ten containers without a limit keep the least each; the rest is cut to fit beside them.
    const crowded = limitsOf(boundToShare({ containers: [c('main', { limits: { memory: '128Gi' } }), ...Array.from({ length: 10 }, (_, i) => c(`u${i}`))] }, share, true));
    expect(crowded.map((x) => x.limits!.memory)).toEqual(['65376Mi', ...Array(10).fill('16Mi')]);
  });

  it('leaves the GPU and ephemeral storage as they were', () => {
    const [main] = limitsOf(boundToShare({ containers: [c('main', { limits: { 'nvidia.com/gpu': '1', 'ephemeral-storage': '5Gi' } })] }, share));
    expect(main!.limits).toMatchObject({ 'nvidia.com/gpu': '1', 'ephemeral-storage': '5Gi' });
  });
});

describe('replicaAsk', () => {
  it('adds up limits (requests where no limit) of the containers and sidecars, and takes the larger of that and an init container', () => {
    // A container that sets nothing still counts the least it gets (10m, 16Mi).
    expect(replicaAsk({ containers: [c('main', { limits: { cpu: '4', memory: '16Gi' } }), c('side', { requests: { cpu: '500m' } }), c('bare')] })).toEqual({ cpuMilli: 4_510, memoryMiB: 16_416, problems: [] });
    expect(replicaAsk({ containers: [c('main', { limits: { cpu: '1' } })], initContainers: [c('proxy', { limits: { cpu: '1' } }, 'Always'), c('warm', { limits: { cpu: '6', memory: '100Mi' } })] })).toEqual({ cpuMilli: 7_000, memoryMiB: 116, problems: [] });
    expect(replicaAsk({ containers: [c('main')] })).toEqual({ cpuMilli: 10, memoryMiB: 16, problems: [] });
  });

  it('names what every agent would refuse, so the hub refuses the job up front', () => {
    expect(replicaAsk({ containers: [c('main', { limits: { cpu: '0' }, requests: { memory: '2Gi' } }), c('side', { limits: { memory: '1Gi' }, requests: { memory: '2Gi' } })] }).problems).toEqual([
      'template.spec.containers[0].resources.limits.cpu: "0" is below 0.01 CPU, the least a container runs with (a zero limit would be no limit)',
      'template.spec.containers[1].resources.requests.memory: 2048Mi, more than its limit 1024Mi',
    ]);
  });

  it('agrees with the agent: a replica whose ask fits a share is one boundToShare admits, over many random templates', () => {
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const cpu = () => ['100m', '500m', '1', '2', '3.5', '8', '250000u'][Math.floor(rand() * 7)]!;
    const mem = () => ['16Mi', '512Mi', '1Gi', '8Gi', '20G', '100000000'][Math.floor(rand() * 6)]!;
    const resources = () => {
      const r: Record<string, Record<string, string>> = {};
      for (const kind of ['limits', 'requests'] as const) {
        if (rand() < 0.5) (r[kind] ??= {}).cpu = cpu();
        if (rand() < 0.5) (r[kind] ??= {}).memory = mem();
      }
      return r;
    };
    let fits = 0;
    for (let i = 0; i < 2_000; i++) {
      const spec = {
        containers: Array.from({ length: 1 + Math.floor(rand() * 3) }, (_, j) => c(`c${j}`, resources())),
        initContainers: Array.from({ length: Math.floor(rand() * 3) }, (_, j) => c(`i${j}`, resources(), rand() < 0.5 ? 'Always' : undefined)),
      };
      const ask = replicaAsk(spec);
      if (ask.problems.length > 0) {
        expect(boundToShare(spec, share).ok, JSON.stringify(spec)).toBe(false);
        continue;
      }
      if (ask.cpuMilli <= share.cpuMilli && ask.memoryMiB * MI <= share.memoryBytes) {
        fits++;
        const bound = boundToShare(spec, share);
        expect(bound.ok ? [] : bound.problems, JSON.stringify(spec)).toEqual([]);
      }
    }
    expect(fits).toBeGreaterThan(100);
  });
});

describe('withoutOverhead', () => {
  it('leaves the containers the share less the pod overhead, in whole MiB, never below zero', () => {
    expect(withoutOverhead(share, { cpuMilli: 250, memoryBytes: 160 * MI })).toEqual({ ...share, cpuMilli: 7_750, memoryBytes: 64 * GI - 160 * MI });
    expect(withoutOverhead(share, { cpuMilli: 0, memoryBytes: 1 })).toEqual({ ...share, memoryBytes: 64 * GI - MI });
    expect(withoutOverhead(share, { cpuMilli: 9_000, memoryBytes: 65 * GI })).toMatchObject({ cpuMilli: 0, memoryBytes: 0 });
  });
});
