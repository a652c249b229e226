import { describe, expect, it } from 'vitest';
import { podName } from '../pods/build.js';
import { attemptPodOf, PodEventRelay } from './relay.js';

const pod = { jobUid: 'job-a', epoch: 1, replica: 0 };
const pull = { type: 'Warning', reason: 'Failed', message: 'Failed to pull image "nope": not found', count: 1 };

function relayAt(start = 1_000_000) {
  let now = start;
  const relay = new PodEventRelay({ burst: 3, refillMs: 10_000, maxKeysPerAttempt: 4, repeatAfterMs: 60_000 }, () => now);
  return { relay, advance: (ms: number) => (now += ms) };
}

describe('PodEventRelay', () => {
  it('relays Warnings and the Normal reasons that explain a wait, nothing else', () => {
    const { relay } = relayAt();
    expect(relay.offer(pod, pull)).toMatchObject({ jobUid: 'job-a', epoch: 1, replica: 0, type: 'Warning', reason: 'Failed', count: 1 });
    expect(relay.offer(pod, { type: 'Normal', reason: 'Pulling', message: 'Pulling image "big"', count: 1 })).toBeDefined();
    expect(relay.offer(pod, { type: 'Normal', reason: 'Scheduled', message: 'assigned to node-1', count: 1 })).toBeUndefined();
    expect(relay.offer(pod, { type: 'Normal', reason: 'Started', message: 'Started container main', count: 1 })).toBeUndefined();
  });

  it('does not relay the same Event twice, nor a repeat within the window; a later repeat goes again', () => {
    const { relay, advance } = relayAt();
    expect(relay.offer(pod, pull)).toBeDefined();
    // Re-listed after a dropped watch: same count.
    expect(relay.offer(pod, pull)).toBeUndefined();
    // The kubelet saw it again 10 s later: coalesced.
    advance(10_000);
    expect(relay.offer(pod, { ...pull, count: 2 })).toBeUndefined();
    advance(60_000);
    expect(relay.offer(pod, { ...pull, count: 5 })).toMatchObject({ count: 5 });
    // Another replica's identical message is its own event.
    expect(relay.offer({ ...pod, replica: 1 }, pull)).toMatchObject({ replica: 1 });
  });

  it('rate limits each attempt with a bucket, and other attempts are not affected', () => {
    const { relay, advance } = relayAt();
    const sent = Array.from({ length: 10 }, (_, i) => relay.offer(pod, { ...pull, message: `crash ${i}` })).filter(Boolean);
    expect(sent).toHaveLength(3);
    expect(relay.dropped('job-a', 1)).toBe(7);
    expect(relay.offer({ jobUid: 'job-b', epoch: 1, replica: 0 }, pull)).toBeDefined();
    advance(10_000);
    expect(relay.offer(pod, { ...pull, message: 'crash 11' })).toBeDefined();
    expect(relay.offer(pod, { ...pull, message: 'crash 12' })).toBeUndefined();
    relay.forget('job-a/1');
    expect(relay.size).toBe(1);
  });

  it('sends one printable, bounded line and a PascalCase reason', () => {
    const { relay } = relayAt();
    const hostile = relay.offer(pod, { type: 'Warning', reason: 'bad reason\n', message: `line1\nline2\u001b[31m\u202eevil${'x'.repeat(5000)}`, count: 1 })!;
    expect(hostile.reason).toBe('ProviderEvent');
    expect(hostile.message).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202e]/);
    expect(hostile.message.startsWith('line1 line2 [31m evil')).toBe(true);
    expect(hostile.message.length).toBeLessThanOrEqual(512);
  });
});

describe('attemptPodOf', () => {
  const attempts = [{ jobUid: 'job-a', epoch: 2, namespace: 'fedgpu-jobs-ml-abc', replicas: 2 }];
  const about = (namespace: string, name: string, kind = 'Pod', objectNamespace?: string) => ({ namespace, involvedObject: { kind, name, namespace: objectNamespace ?? namespace } });

  it("resolves the attempt's own pods to their replica", () => {
    expect(attemptPodOf(attempts, about('fedgpu-jobs-ml-abc', podName('job-a', 2, 1)), podName)).toEqual({ jobUid: 'job-a', epoch: 2, replica: 1 });
  });

  it('never matches another namespace, another pod, another epoch or another kind', () => {
    expect(attemptPodOf(attempts, about('kube-system', podName('job-a', 2, 0)), podName)).toBeUndefined();
    expect(attemptPodOf(attempts, about('fedgpu-jobs-other-def', podName('job-a', 2, 0)), podName)).toBeUndefined();
    expect(attemptPodOf(attempts, about('fedgpu-jobs-ml-abc', 'someone-elses-pod'), podName)).toBeUndefined();
    expect(attemptPodOf(attempts, about('fedgpu-jobs-ml-abc', podName('job-a', 1, 0)), podName)).toBeUndefined();
    expect(attemptPodOf(attempts, about('fedgpu-jobs-ml-abc', podName('job-a', 2, 2)), podName)).toBeUndefined();
    expect(attemptPodOf(attempts, about('fedgpu-jobs-ml-abc', podName('job-a', 2, 0), 'Node'), podName)).toBeUndefined();
    // An Event stored in the tenant namespace that claims to be about a pod elsewhere.
    expect(attemptPodOf(attempts, about('fedgpu-jobs-ml-abc', podName('job-a', 2, 0), 'Pod', 'kube-system'), podName)).toBeUndefined();
  });
});
