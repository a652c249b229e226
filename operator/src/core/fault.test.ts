import { describe, expect, it } from 'vitest';
import { type AttemptEnd, attributeFault, classifyEviction, type EvictionCause, hurtsProvider, START_BLOCKED_REASONS, startBlockerOf } from './fault.js';
import type { FaultOf } from './types.js';

// The fault table of docs/settlement.md, row by row.
describe('attributeFault', () => {
  it.each<[string, AttemptEnd, FaultOf, string, boolean]>([
    ['success', { kind: 'succeeded' }, 'none', 'Succeeded', false],
    ['exit 0', { kind: 'container-exit', exitCode: 0 }, 'none', 'Succeeded', false],
    ['exit 1', { kind: 'container-exit', exitCode: 1 }, 'user', 'ContainerFailed', false],
    ['exit 137 OOMKilled', { kind: 'container-exit', exitCode: 137, reason: 'OOMKilled' }, 'user', 'OOMKilled', false],
    ['deadline', { kind: 'deadline-exceeded' }, 'user', 'DeadlineExceeded', false],
    ['budget used up', { kind: 'budget-exhausted' }, 'user', 'BudgetExhausted', false],
    ['cancelled', { kind: 'cancelled' }, 'user', 'Cancelled', false],
    ['eviction for exceeding own limits', { kind: 'evicted', cause: 'own-limit' }, 'user', 'EvictedOverLimit', false],
    ['node lost', { kind: 'node-lost' }, 'provider', 'NodeLost', true],
    ['agent lost', { kind: 'agent-lost' }, 'provider', 'ProviderLost', true],
    ['pods deleted by someone else', { kind: 'pods-deleted' }, 'provider', 'PodsDeleted', true],
    ['not started in time', { kind: 'start-timeout' }, 'provider', 'StartTimeout', true],
    ['not started in time: the image cannot be pulled', { kind: 'start-timeout', stuckOn: 'image' }, 'unattributed', 'ImagePullFailed', true],
    ['not started in time: init containers not done', { kind: 'start-timeout', stuckOn: 'init' }, 'unattributed', 'InitContainersNotDone', true],
    ['not started in time: a container the runtime refused', { kind: 'start-timeout', stuckOn: 'container-config' }, 'unattributed', 'ContainerConfigError', true],
    ['not started in a short timeout: the kubelet still creating them', { kind: 'start-timeout', stuckOn: 'kubelet', waitedSeconds: 60 }, 'unattributed', 'ContainersNotStarted', true],
    ['not started in 5 minutes: the kubelet still creating them', { kind: 'start-timeout', stuckOn: 'kubelet', waitedSeconds: 300 }, 'provider', 'StartTimeout', true],
    ['not started in time: the kubelet still creating them, wait unknown', { kind: 'start-timeout', stuckOn: 'kubelet' }, 'provider', 'StartTimeout', true],
    ['not started in a short timeout: pods never bound', { kind: 'start-timeout', waitedSeconds: 5 }, 'unattributed', 'StartTimeout', true],
    ['not started in 5 minutes: pods never bound', { kind: 'start-timeout', waitedSeconds: 300 }, 'provider', 'StartTimeout', true],
    ['not started in a timeout the hub holds providers to', { kind: 'start-timeout', waitedSeconds: 5, blameAfterSeconds: 5 }, 'provider', 'StartTimeout', true],
    ['reclaim without notice', { kind: 'reclaim-without-notice' }, 'provider', 'ReclaimWithoutNotice', true],
    ['eviction through the API', { kind: 'evicted', cause: 'api' }, 'provider', 'EvictedByProvider', true],
    ['preempted by provider', { kind: 'provider-preempted' }, 'provider', 'ProviderPreempted', true],
    ['refused by the provider\'s admission (LimitRange, quota, webhook)', { kind: 'admission-refused' }, 'unattributed', 'AdmissionRefused', true],
    ['placement refused by the agent (node cordoned or not offered since)', { kind: 'placement-refused' }, 'unattributed', 'PlacementRefused', true],
    ['not started in time: no node has the cpu or memory asked for', { kind: 'start-timeout', stuckOn: 'resources' }, 'unattributed', 'InsufficientResources', true],
    ['XID 79 (fallen off the bus)', { kind: 'gpu-error', xid: 79 }, 'provider', 'GpuError', true],
    ['GPU error without XID', { kind: 'gpu-error' }, 'provider', 'GpuError', true],
    ['XID 13 (application exception)', { kind: 'gpu-error', xid: 13 }, 'user', 'GpuApplicationError', false],
    ['XID 31 (application page fault)', { kind: 'gpu-error', xid: 31 }, 'user', 'GpuApplicationError', false],
    ['node-pressure eviction', { kind: 'evicted', cause: 'node-pressure' }, 'unattributed', 'Evicted', true],
    ['eviction without cause', { kind: 'evicted' }, 'unattributed', 'Evicted', true],
    ['window ended', { kind: 'window-ended' }, 'owner-reclaim', 'AvailabilityWindowEnded', true],
    ['owner cordon', { kind: 'owner-cordon' }, 'owner-reclaim', 'OwnerReclaim', true],
    ['malformed input', { kind: 'bogus' } as unknown as AttemptEnd, 'unattributed', 'Unknown', true],
  ])('%s', (_name, end, faultOf, reason, retryable) => {
    const attribution = attributeFault(end);
    expect(attribution).toEqual({ faultOf, reason, retryable });
    expect(hurtsProvider(attribution)).toBe(faultOf === 'provider');
    expect(attribution.reason).toMatch(/^[A-Z][A-Za-z]+$/);
  });

  it('never retries what the user caused (a retry would fail the same way, and cost again)', () => {
    for (const kind of ['deadline-exceeded', 'budget-exhausted', 'cancelled'] as const) expect(attributeFault({ kind }).retryable).toBe(false);
  });
});

describe('classifyEviction', () => {
  it.each<[string, string | undefined, EvictionCause]>([
    ['emptyDir sizeLimit', 'Usage of EmptyDir volume "scratch" exceeds the limit "1Gi". ', 'own-limit'],
    ['container ephemeral-storage limit', 'Container trainer exceeded its local ephemeral storage limit "10Gi". ', 'own-limit'],
    ['pod ephemeral-storage total', 'Pod ephemeral local storage usage exceeds the total limit of containers 20Gi. ', 'own-limit'],
    ['node low on memory', 'The node was low on resource: memory. Threshold quantity: 100Mi, available: 12Mi. Container trainer was using 30Gi, request is 8Gi, has larger consumption of memory. ', 'node-pressure'],
    ['node condition', 'The node had condition: [DiskPressure]. ', 'node-pressure'],
    ['a message naming both is node pressure (no one is blamed for certain)', 'The node was low on resource: ephemeral-storage. Usage of EmptyDir volume "x" exceeds the limit "1Gi". ', 'node-pressure'],
    ['Eviction API', 'Eviction API: evicting', 'api'],
    ['unknown text', 'something happened', 'node-pressure'],
    ['no message', undefined, 'node-pressure'],
  ])('%s', (_name, message, cause) => {
    expect(classifyEviction(message)).toBe(cause);
  });
});

describe('startBlockerOf', () => {
  it('reads back only the reasons the agent reports for a blocked start; any other reason is no blocker', () => {
    for (const [blocker, reason] of Object.entries(START_BLOCKED_REASONS)) expect(startBlockerOf(reason)).toBe(blocker);
    for (const other of [undefined, '', 'StartTimeout', 'imagepullfailed', 'ContainerFailed', 'toString', 'constructor']) expect(startBlockerOf(other)).toBeUndefined();
  });
});
