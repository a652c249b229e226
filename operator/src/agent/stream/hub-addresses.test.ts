import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { HubAddresses } from './hub-addresses.js';

describe('HubAddresses', () => {
  it('parses a comma-separated list, trimmed and without repeats', () => {
    expect(new HubAddresses(' a:1, b:2 ,a:1,,').configured).toEqual(['a:1', 'b:2']);
    expect(() => new HubAddresses(' , ')).toThrow(/at least one/);
  });

  it('rotates to the next replica when one is unreachable or never lets the agent register', () => {
    const hubs = new HubAddresses('a:1,b:2,c:3');
    expect(hubs.current).toBe('a:1');
    expect(hubs.afterEnd({ address: 'a:1', code: status.UNAVAILABLE, registered: false })).toBe('next');
    expect(hubs.current).toBe('b:2');
    expect(hubs.afterEnd({ address: 'b:2', code: status.DEADLINE_EXCEEDED, registered: false })).toBe('next');
    expect(hubs.current).toBe('c:3');
    // The leader died; every address has now been tried once: a round, time to back off.
    expect(hubs.afterEnd({ address: 'c:3', code: status.UNAVAILABLE, registered: true })).toBe('round');
    expect(hubs.current).toBe('a:1');
    // One address (a Service, or a single hub): every failure is a round.
    expect(new HubAddresses('svc:1').afterEnd({ address: 'svc:1', code: status.UNAVAILABLE, registered: false })).toBe('round');
  });

  it('stays with a hub whose registered stream ended for another reason', () => {
    const hubs = new HubAddresses('a:1,b:2');
    expect(hubs.afterEnd({ address: 'a:1', code: status.ABORTED, registered: true })).toBe('same');
    expect(hubs.current).toBe('a:1');
  });

  it("follows a stand-by's redirect, and falls back to the list when the named leader fails", () => {
    const hubs = new HubAddresses('a:1,b:2');
    expect(hubs.afterEnd({ address: 'a:1', code: status.UNAVAILABLE, registered: false, leaderAddress: '10.0.0.7:8443' })).toBe('redirect');
    expect(hubs.current).toBe('10.0.0.7:8443');
    // The leader stays current while it serves.
    hubs.afterEnd({ address: '10.0.0.7:8443', code: status.ABORTED, registered: true });
    expect(hubs.current).toBe('10.0.0.7:8443');
    // Unreachable (a pod IP from outside the cluster, or it just died): back to the configured list.
    expect(hubs.afterEnd({ address: '10.0.0.7:8443', code: status.UNAVAILABLE, registered: false })).toBe('next');
    expect(hubs.current).toBe('a:1');
    // A redirect to the address it came from is no redirect.
    expect(hubs.afterEnd({ address: 'a:1', code: status.UNAVAILABLE, registered: false, leaderAddress: 'a:1' })).toBe('next');
    expect(hubs.current).toBe('b:2');
  });
});
