import { describe, expect, it } from 'vitest';
import { accessEndpointOf, booleanFlag } from './operability.js';
import { ExitCode } from './errors.js';

describe('--access-service', () => {
  const pod = { POD_NAMESPACE: 'fedgpu-system', POD_IP: '10.1.2.3', POD_NAME: 'fedgpu-7d9f-abcde' };

  it("publishes the pod the chart describes: its namespace, IP and name from the downward API", () => {
    expect(accessEndpointOf({ accessService: 'fedgpu-access' }, pod)).toEqual({ service: 'fedgpu-access', namespace: 'fedgpu-system', address: '10.1.2.3', podName: 'fedgpu-7d9f-abcde' });
    expect(accessEndpointOf({ accessService: 'a', accessAdvertiseAddress: 'fd00::7', leaseNamespace: 'hubs' }, {})).toEqual({ service: 'a', namespace: 'hubs', address: 'fd00::7' });
  });

  it('refuses to start without a namespace or an address, or with one no EndpointSlice can hold, naming the flag', () => {
    const usage = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        expect((err as { exitCode?: number }).exitCode).toBe(ExitCode.Usage);
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    expect(usage(() => accessEndpointOf({ accessService: 'a' }, { POD_IP: '10.1.2.3' }))).toMatch(/--access-service needs the Service's namespace: set \$POD_NAMESPACE/);
    expect(usage(() => accessEndpointOf({ accessService: 'a' }, { POD_NAMESPACE: 'n' }))).toMatch(/--access-service needs this replica's pod IP: set \$POD_IP/);
    expect(usage(() => accessEndpointOf({ accessService: 'a', accessAdvertiseAddress: '127.0.0.1' }, pod))).toMatch(/--access-service: 127\.0\.0\.1 is a loopback address/);
    expect(usage(() => accessEndpointOf({ accessService: 'a', accessAdvertiseAddress: 'hub.local' }, pod))).toMatch(/hub\.local is not an IP address/);
  });
});

describe('boolean flags (--idle-compaction)', () => {
  it('takes true and false, and refuses anything else naming the flag', () => {
    expect(booleanFlag('--idle-compaction', 'true')).toBe(true);
    expect(booleanFlag('--idle-compaction', 'false')).toBe(false);
    for (const bad of ['yes', '1', '', 'False']) {
      expect(() => booleanFlag('--idle-compaction', bad)).toThrow(new RegExp(`^--idle-compaction ${bad} is neither true nor false$`));
    }
  });
});
