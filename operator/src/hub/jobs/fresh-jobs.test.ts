import { describe, expect, it } from 'vitest';
import type { GpuJob } from '../../api/types.js';
import { FreshJobs } from './fresh-jobs.js';

const job = (rv: string, phase: string): GpuJob =>
  ({ apiVersion: 'fedgpu.io/v1alpha1', kind: 'GpuJob', metadata: { name: 'j', namespace: 'team', uid: 'u-1', resourceVersion: rv }, spec: {} as GpuJob['spec'], status: { phase } }) as GpuJob;

describe('FreshJobs', () => {
  it('gives the hub\'s own write while the cache still holds the version it replaced', () => {
    const fresh = new FreshJobs();
    fresh.wrote('team/j', '10', job('11', 'Scheduled'));
    expect(fresh.freshest('team/j', job('10', 'Pending')).status?.phase).toBe('Scheduled');
    // Asked again before the watch event: still the write.
    expect(fresh.freshest('team/j', job('10', 'Pending')).metadata.resourceVersion).toBe('11');
  });

  it('gives the cache once it moved past the replaced version, and forgets the write', () => {
    const fresh = new FreshJobs();
    fresh.wrote('team/j', '10', job('11', 'Scheduled'));
    expect(fresh.freshest('team/j', job('11', 'Scheduled')).metadata.resourceVersion).toBe('11');
    expect(fresh.size).toBe(0);
    // Someone else wrote after the hub: the cache is newer than the hub's write.
    fresh.wrote('team/j', '11', job('12', 'Running'));
    expect(fresh.freshest('team/j', job('13', 'Running')).metadata.resourceVersion).toBe('13');
    expect(fresh.freshest('team/j', job('11', 'Scheduled')).metadata.resourceVersion).toBe('11');
  });

  it('follows a chain of the hub\'s own writes (finalizer, then status) until the cache has the last', () => {
    const fresh = new FreshJobs();
    fresh.wrote('team/j', '10', job('11', 'Pending')); // the finalizer
    fresh.wrote('team/j', '11', job('12', 'Scheduled')); // the status, over the finalizer's version
    expect(fresh.freshest('team/j', job('10', 'Pending')).metadata.resourceVersion).toBe('12');
    expect(fresh.freshest('team/j', job('11', 'Pending')).metadata.resourceVersion).toBe('12');
    expect(fresh.freshest('team/j', job('12', 'Scheduled')).metadata.resourceVersion).toBe('12');
    expect(fresh.size).toBe(0);
  });

  it('indexes jobs by uid and forgets deleted ones', () => {
    const fresh = new FreshJobs();
    fresh.seen('team/j', job('1', 'Pending'));
    expect(fresh.keyOf('u-1')).toBe('team/j');
    fresh.wrote('team/j', '1', job('2', 'Scheduled'));
    fresh.gone('team/j', job('2', 'Scheduled'));
    expect(fresh.keyOf('u-1')).toBeUndefined();
    expect(fresh.size).toBe(0);
  });

  it('forgets a write once the informer brings that version or a later one, with no read in between', () => {
    const fresh = new FreshJobs();
    fresh.wrote('team/j', '10', job('11', 'Pending')); // the finalizer
    fresh.wrote('team/j', '11', job('12', 'Running'));
    fresh.seen('team/j', job('11', 'Pending')); // an intermediate version of the chain: still needed
    expect(fresh.size).toBe(1);
    expect(fresh.freshest('team/j', job('11', 'Pending')).metadata.resourceVersion).toBe('12');
    fresh.seen('team/j', job('12', 'Running'));
    expect(fresh.size).toBe(0);
    fresh.wrote('team/j', '12', job('13', 'Running'));
    fresh.seen('team/j', job('14', 'Running')); // someone else wrote past it
    expect(fresh.size).toBe(0);
  });

  it('keeps no managedFields of the objects the apiserver returned', () => {
    const fresh = new FreshJobs();
    const written = job('11', 'Scheduled');
    written.metadata.managedFields = [{ manager: 'fedgpu-gpujob-controller', operation: 'Update' }];
    fresh.wrote('team/j', '10', written);
    expect(fresh.freshest('team/j', job('10', 'Pending')).metadata.managedFields).toBeUndefined();
  });
});
