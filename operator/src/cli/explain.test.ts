import { describe, expect, it } from 'vitest';
import type { GpuJob } from '../api/types.js';
import { explainJob } from './market.command.js';

describe('explainJob', () => {
  it('shows the budget used and left while the job runs, and what the attempt may still use', () => {
    const job: GpuJob = {
      apiVersion: 'fedgpu.io/v1alpha1',
      kind: 'GpuJob',
      metadata: { name: 'train', namespace: 'ml' },
      spec: { template: { spec: { containers: [{ name: 'c', image: 'x' }] } }, budget: { maxPricePerGpuHour: '5', maxTotal: '1' } },
      status: {
        phase: 'Running',
        gpus: 8,
        attempts: [{ epoch: 1, provider: 'gp-a', gpuSeconds: 200, coveredGpuSeconds: 1000 }],
        budget: { limit: '1', used: '0.2', left: '0.8', attemptLeftGpuSeconds: 800 },
      },
    };
    const text = explainJob(job);
    expect(text).toContain('Attempt 1: gp-a, running, 200 GPU-s of 1000 covered');
    expect(text).toContain('Budget: 0.2 credits used of 1, 0.8 left; the running attempt may use 800 more GPU-seconds');
  });
});
