// The holder publishes annotations on the Lease (e.g. where it serves); a stand-by reads them.
import type { V1Lease } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { type LeaseApi, LeaderElector } from './leader-election.js';
import { silentLogger } from './logger.js';

class OneLease implements LeaseApi {
  lease: V1Lease | undefined;
  private rv = 0;
  async readNamespacedLease(): Promise<V1Lease> {
    if (!this.lease) throw Object.assign(new Error('not found'), { code: 404 });
    return structuredClone(this.lease);
  }
  async createNamespacedLease({ body }: { body: V1Lease }): Promise<V1Lease> {
    if (this.lease) throw Object.assign(new Error('exists'), { code: 409 });
    return this.store(body);
  }
  async replaceNamespacedLease({ body }: { body: V1Lease }): Promise<V1Lease> {
    if (body.metadata?.resourceVersion !== this.lease?.metadata?.resourceVersion) throw Object.assign(new Error('conflict'), { code: 409 });
    return this.store(body);
  }
  private store(body: V1Lease): V1Lease {
    this.lease = { ...structuredClone(body), metadata: { ...body.metadata, resourceVersion: String(++this.rv) } };
    return structuredClone(this.lease);
  }
}

const electors: LeaderElector[] = [];
afterEach(async () => {
  await Promise.all(electors.splice(0).map((e) => e.stop({ release: false })));
});

function elector(api: LeaseApi, identity: string, address: string) {
  const e = new LeaderElector({
    coordination: api,
    namespace: 'ns',
    name: 'hub',
    identity,
    leaseDurationMs: 1_000,
    renewDeadlineMs: 700,
    retryPeriodMs: 100,
    annotations: { 'fedgpu.io/grpc-address': address },
    logger: silentLogger,
    onStartedLeading: () => {},
  });
  electors.push(e);
  return e;
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
  expect(check()).toBe(true);
}

describe('LeaderElector annotations', () => {
  it('are written by the holder, kept beside others, and read by a stand-by', async () => {
    const api = new OneLease();
    api.lease = { metadata: { name: 'hub', namespace: 'ns', resourceVersion: '0', annotations: { 'other.io/keep': 'yes' } }, spec: {} };
    const a = elector(api, 'a', '10.0.0.1:8443');
    a.start();
    await until(() => a.isLeader());
    expect(api.lease?.metadata?.annotations).toEqual({ 'other.io/keep': 'yes', 'fedgpu.io/grpc-address': '10.0.0.1:8443' });

    const b = elector(api, 'b', '10.0.0.2:8443');
    b.start();
    await until(() => b.leader() === 'a');
    expect(b.isHeldByOther()).toBe(true);
    expect(b.leaderAnnotations()['fedgpu.io/grpc-address']).toBe('10.0.0.1:8443');

    // The successor overwrites the address with its own.
    await a.stop();
    await until(() => b.isLeader());
    expect(api.lease?.metadata?.annotations?.['fedgpu.io/grpc-address']).toBe('10.0.0.2:8443');
    expect(b.isHeldByOther()).toBe(false);
  });
});
