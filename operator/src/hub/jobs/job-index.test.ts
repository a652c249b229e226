import { describe, expect, it } from 'vitest';
import { JobIndex } from './job-index.js';

describe('JobIndex', () => {
  it('follows a job from waiting to running on a provider, to another provider, to finished', () => {
    const index = new JobIndex();
    index.set('ml/a', { finished: false, needsPlacement: true });
    expect(index.waiting()).toEqual(['ml/a']);
    expect(index.liveOn('gp-1')).toEqual([]);
    index.set('ml/a', { finished: false, needsPlacement: false, liveOn: 'gp-1' });
    expect(index.waiting()).toEqual([]);
    expect(index.liveOn('gp-1')).toEqual(['ml/a']);
    // Rescheduled after a loss: its new attempt runs elsewhere.
    index.set('ml/a', { finished: false, needsPlacement: false, liveOn: 'gp-2' });
    expect(index.liveOn('gp-1')).toEqual([]);
    expect(index.liveOn('gp-2')).toEqual(['ml/a']);
    index.set('ml/a', { finished: true, needsPlacement: false, liveOn: 'gp-2' });
    expect(index.liveOn('gp-2')).toEqual([]);
    expect(index.waiting()).toEqual([]);
  });

  it('forgets a deleted job, and keeps jobs of other providers apart', () => {
    const index = new JobIndex();
    index.set('ml/a', { finished: false, needsPlacement: false, liveOn: 'gp-1' });
    index.set('ml/b', { finished: false, needsPlacement: false, liveOn: 'gp-1' });
    index.set('ml/c', { finished: false, needsPlacement: true });
    index.delete('ml/a');
    index.delete('ml/c');
    expect(index.liveOn('gp-1')).toEqual(['ml/b']);
    expect(index.waiting()).toEqual([]);
    index.delete('ml/unknown');
    expect(index.liveOn('gp-1')).toEqual(['ml/b']);
  });
});
