import type { V1Container } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { boundDisk, type DiskBounds } from './disk.js';

const GI = 1024 ** 3;
const bounds: DiskBounds = { defaultBytes: 20 * GI, maxBytes: 200 * GI, defaultRequestBytes: GI };
const c = (name: string, limit?: string, extra: Partial<V1Container> = {}): V1Container => ({ name, image: 'x', ...(limit ? { resources: { limits: { 'ephemeral-storage': limit } } } : {}), ...extra });
const limits = (r: ReturnType<typeof boundDisk>) => {
  if (!r.ok) throw new Error(r.problems.join('; '));
  return [...r.spec.containers, ...(r.spec.initContainers ?? [])].map((x) => [x.resources?.limits?.['ephemeral-storage'], x.resources?.requests?.['ephemeral-storage']]);
};

describe('boundDisk: a replica within its share of the node disk', () => {
  it('gives a container without a limit the default where its share is larger, and its part where smaller', () => {
    expect(limits(boundDisk({ containers: [c('main')] }, 256 * GI, bounds))).toEqual([['20480Mi', '1024Mi']]);
    // A 100Gi node with 8 GPUs: 12.5Gi per GPU, split between two containers without limits.
    expect(limits(boundDisk({ containers: [c('main'), c('side')] }, 12.5 * GI, bounds))).toEqual([['6400Mi', '1024Mi'], ['6400Mi', '1024Mi']]);
    // A share under the default request: the request is the limit.
    expect(limits(boundDisk({ containers: [c('main')] }, 512 * 1024 ** 2, bounds))).toEqual([['512Mi', '512Mi']]);
  });

  it('refuses limits that add up past the share, naming them (the attack: ten 200Gi containers on a 500Gi node)', () => {
    const greedy = { containers: Array.from({ length: 10 }, (_, i) => c(`c${i}`, '200Gi')) };
    const r = boundDisk(greedy, 62.5 * GI, bounds);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems[0]).toMatch(/^ephemeral-storage limits of the containers add up to 2000Gi \(c0 200Gi \+ .*: more than this replica's share of its node's ephemeral storage, 64000Mi$/);
    // Within the share: kept as set; the container without one gets what is left.
    expect(limits(boundDisk({ containers: [c('main', '50Gi'), c('side')] }, 62.5 * GI, bounds))).toEqual([['50Gi', '1024Mi'], ['12800Mi', '1024Mi']]);
  });

  it('cuts a running attempt down in proportion instead (its share moved)', () => {
    expect(limits(boundDisk({ containers: [c('a', '40Gi'), c('b', '20Gi')] }, 30 * GI, bounds, true))).toEqual([['20480Mi', '1024Mi'], ['10240Mi', '1024Mi']]);
  });

  it('bounds an init container to what the sidecars before it leave', () => {
    const spec = { containers: [c('main', '10Gi')], initContainers: [c('proxy', '8Gi', { restartPolicy: 'Always' }), c('fetch'), c('big', '15Gi')] };
    const r = boundDisk(spec, 20 * GI, bounds);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems).toEqual(["template.spec.initContainers[2].resources.limits.ephemeral-storage: 15Gi, more than the 12Gi of this replica's share of its node's ephemeral storage, 20Gi left beside the sidecars before it"]);
    const fits = boundDisk({ ...spec, initContainers: spec.initContainers.slice(0, 2) }, 20 * GI, bounds);
    expect(limits(fits)).toEqual([['10Gi', '1024Mi'], ['8Gi', '1024Mi'], ['12288Mi', '1024Mi']]);
  });

  it('leaves a limit over the max, or not a quantity, for the LimitRange to refuse as the consumer’s error', () => {
    const spec = { containers: [c('main', '1Ti'), c('side')] };
    expect(boundDisk(spec, 10 * GI, bounds)).toEqual({ ok: true, spec });
    expect(boundDisk({ containers: [c('main', 'lots')] }, 10 * GI, bounds).ok).toBe(true);
  });

  it('refuses a request above the limit it is bound to, and keeps a request the consumer set within it', () => {
    const withRequest = (limit: string, request: string) => c('main', limit, { resources: { limits: { 'ephemeral-storage': limit }, requests: { 'ephemeral-storage': request } } });
    expect(limits(boundDisk({ containers: [withRequest('5Gi', '2Gi')] }, 10 * GI, bounds))).toEqual([['5Gi', '2Gi']]);
    const r = boundDisk({ containers: [withRequest('5Gi', '6Gi')] }, 10 * GI, bounds);
    expect(r.ok).toBe(false);
  });
});
