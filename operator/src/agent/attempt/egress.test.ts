import { describe, expect, it } from 'vitest';
import type { Assign } from '../../gen/proto/fedgpu/v1/market.js';
import { buildJobPods } from '../pods/build.js';
import { egressPolicy, egressToMessage, poolEgress } from './egress.js';
import { AttemptRefused, prepareAttempt } from './prepare.js';

const uid = '1b4e28ba-2fa1-11d2-883f-0016d3cca427';
const selector = { 'fedgpu.io/job-uid': uid, 'fedgpu.io/epoch': '1' };

function assign(egress: Assign['egress']): Assign {
  const template = Buffer.from(JSON.stringify({ spec: { containers: [{ name: 'main', image: 'x' }] } }));
  return { jobUid: uid, epoch: 1, namespace: '', podTemplates: [template, template], nodeNames: ['n1', 'n2'], gpusPerReplica: 1, checkpointDir: '', gracePeriodSeconds: 30, env: [], pricePerGpuHour: '1', coveredGpuSeconds: 0, egress, secrets: [] };
}
const pods = () => buildJobPods({ jobUid: uid, epoch: 1, podTemplates: [{ spec: { containers: [{ name: 'main', image: 'x' }] } }, { spec: { containers: [{ name: 'main', image: 'x' }] } }], nodeNames: ['n1', 'n2'], gpusPerReplica: 1 }, 'ns');

describe('egress policies per attempt', () => {
  it('none: no egress policy (the gang policy denies everything else)', () => {
    expect(egressPolicy(uid, 1, 'ns', { mode: 'none' })).toBeUndefined();
  });

  it('dns: port 53 to in-cluster DNS only', () => {
    expect(egressPolicy(uid, 1, 'ns', { mode: 'dns' })?.spec).toEqual({
      podSelector: { matchLabels: selector },
      policyTypes: ['Egress'],
      egress: [{ to: [{ namespaceSelector: {} }], ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] }],
    });
  });

  it('internet: every public address, never private, link-local (metadata) or loopback ranges', () => {
    const rules = egressPolicy(uid, 1, 'ns', { mode: 'internet' })!.spec!.egress!;
    expect(rules[1]!.to).toEqual([
      { ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16'] } },
      { ipBlock: { cidr: '::/0', except: ['::1/128', 'fc00::/7', 'fe80::/10'] } },
    ]);
  });

  it('cidrs: DNS and each destination with its TCP ports, network address canonical', () => {
    const np = egressPolicy(uid, 1, 'ns', { mode: 'cidrs', destinations: [{ cidr: '52.217.4.9/24', ports: [443] }, { cidr: '198.51.100.7/32' }] })!;
    expect(np.metadata?.name).toBe('fj-1b4e28ba2fa11-e1-egress');
    expect(np.spec!.egress!.slice(1)).toEqual([
      { to: [{ ipBlock: { cidr: '52.217.4.0/24' } }], ports: [{ protocol: 'TCP', port: 443 }] },
      { to: [{ ipBlock: { cidr: '198.51.100.7/32' } }] },
    ]);
  });

  it('the agent grants the job what it asked, and refuses an assignment beyond its pool (a hostile hub)', () => {
    const internet = egressToMessage({ mode: 'internet' });
    const prepared = prepareAttempt(assign(egressToMessage({ mode: 'dns' })), pods(), 'ns', () => ({ mode: 'internet' }));
    expect(prepared.objects.policies.map((p) => p.metadata?.name)).toEqual(['fj-1b4e28ba2fa11-e1-gang', 'fj-1b4e28ba2fa11-e1-egress']);
    expect(JSON.stringify(prepared.objects.policies[1])).not.toContain('0.0.0.0/0');
    expect(() => prepareAttempt(assign(internet), pods(), 'ns', (node) => (node === 'n2' ? { mode: 'dns' } : { mode: 'internet' }))).toThrow(
      new AttemptRefused('EgressNotOffered', 'node n2: the job needs egress internet; this pool offers dns'),
    );
    // An assignment from an older hub carries no egress: DNS, as before.
    expect(prepareAttempt(assign(undefined), pods(), 'ns').objects.policies).toHaveLength(2);
  });

  it('reads the owner settings per product, then the default, then dns', () => {
    const settings = { egress: { mode: 'internet' as const }, egressByProduct: { A: { mode: 'none' as const } } };
    expect(poolEgress(settings, 'A')).toEqual({ mode: 'none' });
    expect(poolEgress(settings, 'B')).toEqual({ mode: 'internet' });
    expect(poolEgress({}, 'B')).toEqual({ mode: 'dns' });
  });
});
