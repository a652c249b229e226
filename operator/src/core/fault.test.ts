import { describe, expect, it } from 'vitest';
import { type AttemptEnd, attributeFault, hurtsProvider } from './fault.js';
import type { FaultOf } from './types.js';

describe('attributeFault', () => {
  it.each<[string, AttemptEnd, FaultOf, string, boolean]>([
    ['success', { kind: 'succeeded' }, 'none', 'Succeeded', false],
    ['exit 0', { kind: 'container-exit', exitCode: 0 }, 'none', 'Succeeded', false],
    ['exit 1', { kind: 'container-exit', exitCode: 1 }, 'user', 'ContainerFailed', false],
    ['exit 137 OOMKilled', { kind: 'container-exit', exitCode: 137, reason: 'OOMKilled' }, 'user', 'OOMKilled', false],
    ['deadline', { kind: 'deadline-exceeded' }, 'user', 'DeadlineExceeded', false],
    ['cancelled', { kind: 'cancelled' }, 'user', 'Cancelled', false],
    ['node lost', { kind: 'node-lost' }, 'provider', 'NodeLost', true],
    ['agent lost', { kind: 'agent-lost' }, 'provider', 'ProviderLost', true],
    ['node-pressure eviction', { kind: 'evicted', cause: 'node-pressure' }, 'provider', 'Evicted', true],
    ['eviction without cause', { kind: 'evicted' }, 'provider', 'Evicted', true],
    ['eviction for exceeding own limits', { kind: 'evicted', cause: 'container-limit' }, 'user', 'EvictedOverLimit', false],
    ['XID 79 (fallen off the bus)', { kind: 'gpu-error', xid: 79 }, 'provider', 'GpuError', true],
    ['XID 48 (double-bit ECC)', { kind: 'gpu-error', xid: 48 }, 'provider', 'GpuError', true],
    ['GPU error without XID', { kind: 'gpu-error' }, 'provider', 'GpuError', true],
    ['XID 13 (application exception)', { kind: 'gpu-error', xid: 13 }, 'user', 'GpuApplicationError', false],
    ['XID 31 (application page fault)', { kind: 'gpu-error', xid: 31 }, 'user', 'GpuApplicationError', false],
    ['preempted by provider', { kind: 'provider-preempted' }, 'provider', 'ProviderPreempted', true],
    ['window ended', { kind: 'window-ended' }, 'owner-reclaim', 'AvailabilityWindowEnded', true],
    ['owner cordon', { kind: 'owner-cordon' }, 'owner-reclaim', 'OwnerReclaim', true],
    ['malformed input', { kind: 'bogus' } as unknown as AttemptEnd, 'none', 'Unknown', true],
  ])('%s', (_name, end, faultOf, reason, retryable) => {
    const attribution = attributeFault(end);
    expect(attribution).toEqual({ faultOf, reason, retryable });
    expect(hurtsProvider(attribution)).toBe(faultOf === 'provider');
    expect(attribution.reason).toMatch(/^[A-Z][A-Za-z]+$/);
  });
});
