import { describe, expect, it } from 'vitest';
import { endpointAddressProblem, leaderSlice, leaderSliceName, MANAGED_BY, MANAGED_BY_LABEL, namesReplica, SERVICE_NAME_LABEL, sliceMatches } from './leader-endpoint.js';

const endpoint = { service: 'fedgpu-access', namespace: 'fedgpu-system', address: '10.1.2.3', port: 8444, podName: 'fedgpu-hub-7d9f-abcde' };

describe('the leader access endpoint', () => {
  it("names the leader's pod as the Service's one ready endpoint, on the Service's port name", () => {
    const slice = leaderSlice(endpoint);
    expect(slice.metadata?.name).toBe(leaderSliceName('fedgpu-access'));
    expect(slice.metadata?.name).toBe('fedgpu-access-leader');
    expect(slice.metadata?.labels).toEqual({ [SERVICE_NAME_LABEL]: 'fedgpu-access', [MANAGED_BY_LABEL]: MANAGED_BY });
    expect(MANAGED_BY).not.toBe('endpointslice-controller.k8s.io'); // the controller would take it over
    expect(slice.addressType).toBe('IPv4');
    expect(slice.endpoints).toEqual([
      { addresses: ['10.1.2.3'], conditions: { ready: true, serving: true, terminating: false }, targetRef: { kind: 'Pod', namespace: 'fedgpu-system', name: 'fedgpu-hub-7d9f-abcde' } },
    ]);
    expect(slice.ports).toEqual([{ name: 'access', port: 8444, protocol: 'TCP' }]);
  });

  it('uses the IPv6 address type for an IPv6 pod IP, and leaves targetRef out without a pod name', () => {
    const slice = leaderSlice({ service: 's', namespace: 'n', address: 'fd00::12', port: 1 });
    expect(slice.addressType).toBe('IPv6');
    expect(slice.endpoints?.[0]?.targetRef).toBeUndefined();
  });

  it('refuses addresses the apiserver refuses in an EndpointSlice, saying why', () => {
    expect(endpointAddressProblem('10.1.2.3')).toBeUndefined();
    expect(endpointAddressProblem('fd00::12')).toBeUndefined();
    expect(endpointAddressProblem('127.0.0.1')).toMatch(/127\.0\.0\.1 is a loopback address: an EndpointSlice cannot name it/);
    expect(endpointAddressProblem('::1')).toMatch(/loopback/);
    expect(endpointAddressProblem('0.0.0.0')).toMatch(/unspecified/);
    expect(endpointAddressProblem('::')).toMatch(/unspecified/);
    expect(endpointAddressProblem('169.254.1.1')).toMatch(/link-local/);
    expect(endpointAddressProblem('fe80::1')).toMatch(/link-local/);
    expect(endpointAddressProblem('224.0.0.1')).toMatch(/multicast/);
    expect(endpointAddressProblem('::ffff:127.0.0.1')).toMatch(/loopback/);
    expect(endpointAddressProblem('::ffff:7f00:1')).toMatch(/loopback/); // the same, in hex
    expect(endpointAddressProblem('0:0:0:0:0:0:0:1')).toMatch(/loopback/);
    expect(endpointAddressProblem('0::0')).toMatch(/unspecified/);
    expect(endpointAddressProblem('FE80::abcd')).toMatch(/link-local/);
    expect(endpointAddressProblem('febf::1')).toMatch(/link-local/);
    expect(endpointAddressProblem('fec0::1')).toBeUndefined();
    expect(endpointAddressProblem('ff02::1')).toMatch(/multicast/);
    expect(endpointAddressProblem('::ffff:10.1.2.3')).toBeUndefined();
    expect(endpointAddressProblem('2001:db8::1')).toBeUndefined();
    expect(endpointAddressProblem('hub.example')).toMatch(/hub\.example is not an IP address/);
    expect(endpointAddressProblem('')).toMatch(/not an IP address/);
  });

  it('matches a slice that says the same, whatever else its metadata holds', () => {
    const want = leaderSlice(endpoint);
    const stored = { ...want, metadata: { ...want.metadata, resourceVersion: '7', labels: { ...want.metadata?.labels, 'helm.sh/chart': 'fedgpu-0.1.0' } } };
    expect(sliceMatches(stored, want)).toBe(true);
  });

  it('does not match a slice that names another replica, no one, another port, or has lost a label', () => {
    const want = leaderSlice(endpoint);
    const ours = want.endpoints![0]!;
    expect(sliceMatches(leaderSlice({ ...endpoint, address: '10.1.2.4' }), want)).toBe(false);
    expect(sliceMatches({ ...want, endpoints: [] }, want)).toBe(false);
    expect(sliceMatches({ ...want, ports: [{ name: 'access', port: 9999, protocol: 'TCP' }] }, want)).toBe(false);
    expect(sliceMatches({ ...want, endpoints: [{ ...ours, conditions: { ready: false } }] }, want)).toBe(false);
    expect(sliceMatches({ ...want, metadata: { ...want.metadata, labels: { [SERVICE_NAME_LABEL]: 'fedgpu-access' } } }, want)).toBe(false);
    expect(sliceMatches({ ...want, endpoints: [ours, { addresses: ['10.9.9.9'] }] }, want)).toBe(false);
  });

  it("knows a slice as this replica's to withdraw only while it names this replica's address", () => {
    expect(namesReplica(leaderSlice(endpoint), '10.1.2.3')).toBe(true);
    expect(namesReplica(leaderSlice({ ...endpoint, address: '10.1.2.4' }), '10.1.2.3')).toBe(false);
    expect(namesReplica({ addressType: 'IPv4', endpoints: [] }, '10.1.2.3')).toBe(false);
    // The same address for another pod (a host-network replica on the same node): not this one's.
    expect(namesReplica(leaderSlice(endpoint), '10.1.2.3', 'fedgpu-hub-7d9f-other')).toBe(false);
    expect(namesReplica(leaderSlice(endpoint), '10.1.2.3', endpoint.podName)).toBe(true);
    expect(namesReplica(leaderSlice({ ...endpoint, podName: undefined }), '10.1.2.3', endpoint.podName)).toBe(true);
  });
});
