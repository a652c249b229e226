import { describe, expect, it } from 'vitest';
import { jobManifest } from './workload.js';

describe('jobManifest', () => {
  it('turns a plan into a GpuJob with its work, exit, budget and deadline', () => {
    const job = jobManifest({ name: 'chaos-001-user-exit', kind: 'user-exit', atMs: 0, replicas: 2, gpusPerReplica: 2, runForS: 5, exitCode: 3, maxTotal: '0.005', activeDeadlineSeconds: 30 });
    expect(job.metadata).toMatchObject({ name: 'chaos-001-user-exit', namespace: 'default', labels: { 'fedgpu.io/chaos-kind': 'user-exit' } });
    expect(job.spec.template.metadata?.annotations).toEqual({ 'fedgpu.io/sim-run-for': '5s', 'fedgpu.io/sim-exit-code': '3' });
    expect(job.spec).toMatchObject({ replicas: 2, gpusPerReplica: 2, budget: { maxPricePerGpuHour: '3', maxTotal: '0.005' }, activeDeadlineSeconds: 30 });
  });

  it('leaves out what the plan does not ask for', () => {
    const job = jobManifest({ name: 'chaos-000-single', kind: 'single', atMs: 0, replicas: 1, gpusPerReplica: 1, runForS: 4 });
    expect(job.spec.template.metadata?.annotations).toEqual({ 'fedgpu.io/sim-run-for': '4s' });
    expect(job.spec.activeDeadlineSeconds).toBeUndefined();
    expect(job.spec.budget.maxTotal).toBe('1');
  });
});
