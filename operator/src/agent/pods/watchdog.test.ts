import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { budgetStoppedUsage, budgetStopThreshold, capToCovered, PodDeletionWatch, shouldStopForBudget } from './watchdog.js';

const pod = (name: string, phase: string, deleting = false): V1Pod => ({
  metadata: { name, ...(deleting ? { deletionTimestamp: new Date() } : {}) },
  status: { phase },
});

describe('budget stop (agent side)', () => {
  it('starts stopping early enough that the checkpoint grace is inside what the escrow covers', () => {
    // 8 GPUs, 30 s grace: the last 240 GPU-seconds of 800 are the grace.
    expect(budgetStopThreshold(800, 8, 30)).toBe(560);
    expect(shouldStopForBudget(559, 800, 8, 30)).toBe(false);
    expect(shouldStopForBudget(560, 800, 8, 30)).toBe(true);
    // A budget smaller than the grace stops at once; no limit never stops.
    expect(shouldStopForBudget(0.001, 100, 8, 30)).toBe(true);
    expect(shouldStopForBudget(1e9, 0, 8, 30)).toBe(false);
  });

  it('bills what ran until the pods were gone, never more than covered', () => {
    expect(budgetStoppedUsage({ gpuSeconds: 560, atMs: 0 }, 8, 20_000, 800)).toBe(720);
    expect(budgetStoppedUsage({ gpuSeconds: 560, atMs: 0 }, 8, 45_000, 800)).toBe(800);
    expect(capToCovered(5000, 800)).toBe(800);
    expect(capToCovered(5000, 0)).toBe(5000);
  });
});

describe('PodDeletionWatch', () => {
  it('reports a running pod that vanished or is being deleted while the agent did not stop the attempt', () => {
    const watch = new PodDeletionWatch();
    expect(watch.removedByOthers('a/1', [pod('p0', 'Running'), pod('p1', 'Running')], false)).toEqual([]);
    expect(watch.removedByOthers('a/1', [pod('p1', 'Running', true)], false)).toEqual(['p0', 'p1']);
  });

  it('ignores pods the agent deletes itself, pods that finished before they went, and other attempts', () => {
    const watch = new PodDeletionWatch();
    watch.removedByOthers('a/1', [pod('p0', 'Running')], false);
    expect(watch.removedByOthers('a/1', [], true)).toEqual([]);
    watch.removedByOthers('b/1', [pod('q0', 'Succeeded')], false);
    expect(watch.removedByOthers('b/1', [], false)).toEqual([]);
    expect(watch.removedByOthers('c/1', [], false)).toEqual([]);
    watch.forget('a/1');
    expect(watch.removedByOthers('a/1', [], false)).toEqual([]);
  });
});
