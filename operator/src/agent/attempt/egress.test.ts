import { describe, expect, it } from 'vitest';
import type { Assign } from '../../gen/proto/fedgpu/v1/market.js';
import { buildJobPods } from '../pods/build.js';
import { egressRules, egressToMessage, poolEgress } from './egress.js';
import { AttemptRefused, needsAttemptPolicy, prepareAttempt } from './prepare.js';

const uid = '1b4e28ba-2fa1-11d2-883f-0016d3cca427';
const selector = { 'fedgpu.io/job-uid': uid, 'fedgpu.io/epoch': '1' };

function assign(egress: Assign['egress']): Assign {
  const template = Buffer.from(JSON.stringify({ spec: { containers: [{ name: 'main', image: 'x' }] } }));
  return { jobUid: uid, epoch: 1, namespace: '', podTemplates: [template, template], nodeNames: ['n1', 'n2'], gpusPerReplica: 1, checkpointDir: '', gracePeriodSeconds: 30, env: [], pricePerGpuHour: '1', coveredGpuSeconds: 0, egress, secrets: [], secretsWithheld: false };
}
const pods = () => buildJobPods({ jobUid: uid, epoch: 1, podTemplates: [{ spec: { containers: [{ name: 'main', image: 'x' }] } }, { spec: { containers: [{ name: 'main', image: 'x' }] } }], nodeNames: ['n1', 'n2'], gpusPerReplica: 1 }, 'ns');

const gang = { to: [{ podSelector: { matchLabels: selector } }] };
const policyOf = (need: Parameters<typeof egressToMessage>[0]) => prepareAttempt(assign(egressToMessage(need)), pods(), 'ns', () => ({ mode: 'internet' })).objects.policies;

describe('egress of an attempt', () => {
  it('none: the gang only (the attempt policy denies everything else), where the namespace grants DNS', () => {
    expect(egressRules({ mode: 'none' })).toEqual([]);
    const none = assign(egressToMessage({ mode: 'none' }));
    expect(prepareAttempt(none, pods(), 'ns', () => ({ mode: 'internet' }), true).objects.policies.map((p) => p.spec?.egress)).toEqual([[gang]]);
  });

  it('a gang asking none still gets cluster DNS where the namespace has none: its replicas find each other by name', () => {
    const none = assign(egressToMessage({ mode: 'none' }));
    const policies = prepareAttempt(none, pods(), 'ns', () => ({ mode: 'dns' }), false).objects.policies;
    expect(policies.map((p) => p.spec?.egress)).toEqual([[gang, { to: [{ namespaceSelector: {} }], ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] }]]);
    // A pool offering no egress at all, in a namespace without DNS, refuses the gang rather than
    // run replicas that can never meet; the hub reads it as any egress refusal (nobody's fault).
    const noneHere = (node: string) => (node === 'n2' ? { mode: 'none' as const } : { mode: 'dns' as const });
    expect(() => prepareAttempt(none, pods(), 'ns', noneHere, false)).toThrow(/^node n2: a gang needs cluster DNS to find its replicas/);
    expect(() => prepareAttempt(none, pods(), 'ns', noneHere, false)).toThrow(expect.objectContaining({ reason: 'EgressNotOffered' }));
    // An attempt already running is left as it was granted.
    expect(prepareAttempt(none, pods(), 'ns', noneHere, false, true).objects.policies.map((p) => p.spec?.egress)).toEqual([[gang]]);
  });

  it('dns: port 53 to in-cluster DNS only, in the attempt policy beside the gang', () => {
    const [policy, ...more] = policyOf({ mode: 'dns' });
    expect(more).toEqual([]);
    expect(policy!.spec).toEqual({
      podSelector: { matchLabels: selector },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ _from: [{ podSelector: { matchLabels: selector } }] }],
      egress: [gang, { to: [{ namespaceSelector: {} }], ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] }],
    });
  });

  it('internet: every public address, never private, link-local (metadata) or loopback ranges', () => {
    const rules = egressRules({ mode: 'internet' });
    expect(rules[1]!.to).toEqual([
      {
        ipBlock: {
          cidr: '0.0.0.0/0',
          except: ['0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.0.0.0/24', '192.168.0.0/16', '198.18.0.0/15', '224.0.0.0/4', '240.0.0.0/4', '168.63.129.16/32'],
        },
      },
      // NAT64 (64:ff9b::/96, /48) would reach the provider's private IPv4 network from an IPv6-only cluster.
      { ipBlock: { cidr: '::/0', except: ['::/128', '::1/128', '64:ff9b::/96', '64:ff9b:1::/48', '2001::/32', '2002::/16', 'fc00::/7', 'fe80::/10', 'ff00::/8'] } },
    ]);
  });

  it('cidrs: DNS and each destination with its TCP ports, network address canonical', () => {
    const np = policyOf({ mode: 'cidrs', destinations: [{ cidr: '52.217.4.9/24', ports: [443] }, { cidr: '198.51.100.7/32' }] })[0]!;
    expect(np.metadata?.name).toBe('fj-1b4e28ba2fa11-e1');
    expect(np.spec!.egress!.slice(2)).toEqual([
      { to: [{ ipBlock: { cidr: '52.217.4.0/24' } }], ports: [{ protocol: 'TCP', port: 443 }] },
      { to: [{ ipBlock: { cidr: '198.51.100.7/32' } }] },
    ]);
  });

  it('the agent grants the job what it asked, and refuses an assignment beyond its pool (a hostile hub)', () => {
    const internet = egressToMessage({ mode: 'internet' });
    const prepared = prepareAttempt(assign(egressToMessage({ mode: 'dns' })), pods(), 'ns', () => ({ mode: 'internet' }));
    expect(prepared.objects.policies.map((p) => p.metadata?.name)).toEqual(['fj-1b4e28ba2fa11-e1']);
    expect(JSON.stringify(prepared.objects.policies[0])).not.toContain('0.0.0.0/0');
    expect(() => prepareAttempt(assign(internet), pods(), 'ns', (node) => (node === 'n2' ? { mode: 'dns' } : { mode: 'internet' }))).toThrow(
      new AttemptRefused('EgressNotOffered', 'node n2: the job needs egress internet; this pool offers dns'),
    );
    // An assignment from an older hub carries no egress: DNS, as before.
    expect(prepareAttempt(assign(undefined), pods(), 'ns').objects.policies[0]!.spec!.egress!.flatMap((r) => r.ports ?? []).map((p) => p.port)).toEqual([53, 53]);
  });

  it('an attempt already running is neither widened nor ended by a re-sent Assign beyond its pool', () => {
    // The consumer edits spec.network to internet on a running job (or a hostile hub says so): the
    // resync re-sends the attempt with it. Granting it would open the internet on a pool that never
    // offered it; refusing it would end a running attempt and blame its provider.
    const internet = assign(egressToMessage({ mode: 'internet' }));
    const dnsOnly = () => ({ mode: 'dns' as const });
    const prepared = prepareAttempt(internet, pods(), 'ns', dnsOnly, false, true);
    expect(prepared.objects.policies).toEqual([]); // the policy in place stays as it was
    expect(prepared.pods).toHaveLength(2);
    expect(() => prepareAttempt(internet, pods(), 'ns', dnsOnly, false, false)).toThrow(AttemptRefused);
  });

  it('a lone pod gets no policy of its own only when the namespace already grants all it asks', () => {
    // The tenant namespace's rules: default deny for every pod, and DNS for every pod unless the
    // agent runs with tenant DNS off. A policy adds to them; a lone pod has no gang to admit.
    expect(needsAttemptPolicy(1, { mode: 'none' }, true)).toBe(false);
    expect(needsAttemptPolicy(1, { mode: 'dns' }, true)).toBe(false);
    expect(needsAttemptPolicy(1, { mode: 'dns' }, false)).toBe(true);
    expect(needsAttemptPolicy(1, { mode: 'internet' }, true)).toBe(true);
    expect(needsAttemptPolicy(1, { mode: 'cidrs', destinations: [{ cidr: '198.51.100.7/32' }] }, true)).toBe(true);
    // A gang always has one: its pods must reach each other past the default deny.
    expect(needsAttemptPolicy(2, { mode: 'none' }, true)).toBe(true);
    const template = Buffer.from(JSON.stringify({ spec: { containers: [{ name: 'main', image: 'x' }] } }));
    const solo = { ...assign(egressToMessage({ mode: 'dns' })), podTemplates: [template], nodeNames: ['n1'] };
    const soloPods = buildJobPods({ jobUid: uid, epoch: 1, podTemplates: [{ spec: { containers: [{ name: 'main', image: 'x' }] } }], nodeNames: ['n1'], gpusPerReplica: 1 }, 'ns');
    expect(prepareAttempt(solo, soloPods, 'ns', undefined, true).objects.policies).toEqual([]);
    // Where the namespace has no DNS rule, the lone pod's DNS comes from its own policy.
    expect(prepareAttempt(solo, soloPods, 'ns', undefined, false).objects.policies.flatMap((p) => p.spec!.egress!).flatMap((r) => r.ports ?? []).map((p) => p.port)).toEqual([53, 53]);
    const internet = { ...solo, egress: egressToMessage({ mode: 'internet' }) };
    expect(prepareAttempt(internet, soloPods, 'ns', () => ({ mode: 'internet' }), true).objects.policies).toHaveLength(1);
  });

  it('reads the owner settings per product, then the default, then dns', () => {
    const settings = { egress: { mode: 'internet' as const }, egressByProduct: { A: { mode: 'none' as const } } };
    expect(poolEgress(settings, 'A')).toEqual({ mode: 'none' });
    expect(poolEgress(settings, 'B')).toEqual({ mode: 'internet' });
    expect(poolEgress({}, 'B')).toEqual({ mode: 'dns' });
  });
});
