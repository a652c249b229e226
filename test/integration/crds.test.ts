import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { runKubectl } from '../../operator/src/testbed/kubectl.js';
import { repoRoot } from '../../operator/src/testbed/tools.js';
import { waitFor } from '../../operator/src/testbed/wait.js';

// The CRDs are what the apiserver enforces: these tests install them into a real kube-apiserver
// and check that bad objects are refused at admission with a message that names the field.

const kubeconfig = inject('kubeconfig');
const kubectl = (args: string[], stdin?: string) => runKubectl(kubeconfig, args, stdin);
const NS = 'crd-tests';

type Obj = Record<string, any>;
const load = (file: string): Obj => parse(readFileSync(join(repoRoot, 'examples', file), 'utf8'));
const clone = <T>(o: T): T => structuredClone(o);

function job(mutate: (j: Obj) => void): Obj {
  const j = clone(load('gpujob-gang-training.yaml'));
  j.metadata = { name: 'bad-job', namespace: NS };
  mutate(j);
  return j;
}
function provider(mutate: (p: Obj) => void): Obj {
  const p = clone(load('gpuprovider.yaml'));
  p.metadata = { name: 'bad-provider' };
  mutate(p);
  return p;
}

// [case, object, text the error must contain: the field path, and for some the reason]
const invalid: [string, Obj, string[]][] = [
  // A second network NetworkPolicy does not govern (Multus, common beside NVIDIA's Network Operator),
  // or an address of the job's choosing (Calico): out of the tenant's default deny.
  ['a Multus network annotation', job((j) => (j.spec.template.metadata.annotations = { 'k8s.v1.cni.cncf.io/networks': 'gpu-operator/rdma-net' })), ['spec.template.metadata.annotations', 'annotations with a prefix are read by the provider cluster', 'k8s.v1.cni.cncf.io/networks']],
  ['a Calico address annotation', job((j) => (j.spec.template.metadata.annotations = { 'cni.projectcalico.org/ipAddrs': '["10.0.0.5"]' })), ['spec.template.metadata.annotations', 'cni.projectcalico.org/ipAddrs']],
  ['zero replicas', job((j) => (j.spec.replicas = 0)), ['spec.replicas', 'greater than or equal to 1']],
  ['negative replicas', job((j) => (j.spec.replicas = -3)), ['spec.replicas']],
  ['zero GPUs per replica', job((j) => (j.spec.gpusPerReplica = 0)), ['spec.gpusPerReplica']],
  ['too many GPUs per replica', job((j) => (j.spec.gpusPerReplica = 17)), ['spec.gpusPerReplica', 'less than or equal to 16']],
  ['reputation above 1', job((j) => (j.spec.placement.minReputation = 1.5)), ['spec.placement.minReputation']],
  ['negative reputation', job((j) => (j.spec.placement.minReputation = -0.1)), ['spec.placement.minReputation']],
  ['negative price', job((j) => (j.spec.budget.maxPricePerGpuHour = '-1')), ['spec.budget.maxPricePerGpuHour']],
  ['malformed price', job((j) => (j.spec.budget.maxPricePerGpuHour = 'cheap')), ['spec.budget.maxPricePerGpuHour']],
  ['price in exponent form', job((j) => (j.spec.budget.maxPricePerGpuHour = '1e3')), ['spec.budget.maxPricePerGpuHour']],
  ['price as a float', job((j) => (j.spec.budget.maxPricePerGpuHour = 2.5)), ['spec.budget.maxPricePerGpuHour', 'string']],
  ['malformed total budget', job((j) => (j.spec.budget.maxTotal = '1.2.3')), ['spec.budget.maxTotal']],
  ['missing budget', job((j) => delete j.spec.budget), ['spec.budget', 'Required']],
  ['missing price cap', job((j) => delete j.spec.budget.maxPricePerGpuHour), ['spec.budget.maxPricePerGpuHour', 'Required']],
  ['missing template', job((j) => delete j.spec.template), ['spec.template', 'Required']],
  ['no containers', job((j) => (j.spec.template.spec.containers = [])), ['spec.template.spec.containers']],
  ['container without image', job((j) => delete j.spec.template.spec.containers[0].image), ['spec.template.spec.containers[0].image']],
  ['unknown field', job((j) => (j.spec.gpuCount = 8)), ['unknown field "spec.gpuCount"']],
  ['unknown nested field', job((j) => (j.spec.placement.zone = 'a')), ['unknown field "spec.placement.zone"']],
  ['host network (outside the pod allowlist)', job((j) => (j.spec.template.spec.hostNetwork = true)), ['unknown field "spec.template.spec.hostNetwork"']],
  ['privileged container', job((j) => (j.spec.template.spec.containers[0].securityContext = { privileged: true })),
    ['spec.template.spec.containers[0].securityContext', 'privileged']],
  ['hostPath volume', job((j) => (j.spec.template.spec.volumes = [{ name: 'h', hostPath: { path: '/' } }])),
    ['spec.template.spec.volumes[0]', 'hostPath']],
  ['zero latency limit', job((j) => (j.spec.placement.maxLatencyMs = 0)), ['spec.placement.maxLatencyMs']],
  ['bad GPU product name', job((j) => (j.spec.gpu.products = ['H100 80GB!'])), ['spec.gpu.products[0]']],
  ['sameNode gang larger than a node', job((j) => (j.spec.placement.sameNode = true)), ['spec.placement.sameNode', 'sameNode']],
  ['zero attempts', job((j) => (j.spec.faultTolerance.maxAttempts = 0)), ['spec.faultTolerance.maxAttempts']],
  ['negative checkpoint grace', job((j) => (j.spec.faultTolerance.checkpoint.gracePeriodSeconds = -5)),
    ['spec.faultTolerance.checkpoint.gracePeriodSeconds']],
  ['negative data size', job((j) => (j.spec.data.sizeGiB = -1)), ['spec.data.sizeGiB']],
  ['bad region', job((j) => (j.spec.placement = { regions: ['EU West'] })), ['spec.placement.regions[0]']],
  ['zero deadline', job((j) => (j.spec.activeDeadlineSeconds = 0)), ['spec.activeDeadlineSeconds']],
  ['GPU visibility from a secret (every GPU of the node)', job((j) => (j.spec.secrets = [{ name: 'gpus', env: [{ name: 'NVIDIA_VISIBLE_DEVICES', key: 'v' }] }])),
    ['spec.secrets[0].env[0].name', 'NVIDIA_*, CUDA_VISIBLE_DEVICES and FEDGPU_* are set by fedgpu']],
  ['a price cap of 0', job((j) => (j.spec.budget.maxPricePerGpuHour = '0.00')), ['spec.budget.maxPricePerGpuHour', 'must be more than 0']],
  ['a total budget of 0', job((j) => (j.spec.budget.maxTotal = '0')), ['spec.budget.maxTotal', 'must be more than 0']],
  ['an egress range that is no CIDR', job((j) => (j.spec.network = { egress: { mode: 'cidrs', destinations: [{ cidr: '999.0.0.0/8' }] } })),
    ['spec.network.egress.destinations[0].cidr', 'must be an IPv4 or IPv6 CIDR']],
  ['a rendezvous variable from a secret (a rank of its own)', job((j) => (j.spec.secrets = [{ name: 'rank', env: [{ name: 'RANK', key: 'v' }] }])),
    ['spec.secrets[0].env[0].name', "are set by fedgpu for the gang's rendezvous"]],
  ['short wallet', provider((p) => (p.spec.wallet = '0x1234')), ['spec.wallet']],
  ['wallet without 0x', provider((p) => (p.spec.wallet = '70997970C51812dc3A010C7d01b50e0d17dc79C8')), ['spec.wallet']],
  ['missing wallet', provider((p) => delete p.spec.wallet), ['spec.wallet', 'Required']],
  ['PUE below 1', provider((p) => (p.spec.pricing.electricity.pue = 0.5)), ['spec.pricing.electricity.pue']],
  ['negative electricity price', provider((p) => (p.spec.pricing.electricity.pricePerKWh = '-0.2')),
    ['spec.pricing.electricity.pricePerKWh']],
  ['malformed product price', provider((p) => (p.spec.pricing.pricePerGpuHour['NVIDIA-H100-80GB-HBM3'] = 'cheap')),
    ['spec.pricing.pricePerGpuHour']],
  ['window hour 25', provider((p) => (p.spec.availability.windows[0].start = '25:00')),
    ['spec.availability.windows[0].start']],
  ['unknown weekday', provider((p) => (p.spec.availability.windows[0].days = ['Funday'])),
    ['spec.availability.windows[0].days[0]']],
  ['empty window', provider((p) => (p.spec.availability.windows[0] = { start: '10:00', end: '10:00' })),
    ['spec.availability.windows[0]', 'start and end must differ']],
  ['negative reserved GPUs', provider((p) => (p.spec.availability.reservedGpus = -1)), ['spec.availability.reservedGpus']],
  ['bad audit signature', provider((p) => (p.spec.auditedAttributes = [
    { name: 'tier', value: 'dc', auditor: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8', signature: '0xdead' }])),
    ['spec.auditedAttributes[0].signature']],
  ['uppercase region', provider((p) => (p.spec.region = 'EU')), ['spec.region']],
];

beforeAll(async () => {
  const crds = join(repoRoot, 'crds');
  const applied = await kubectl(['apply', '--server-side', '-f', crds]);
  expect(applied.code, applied.stderr).toBe(0);
  const established = await kubectl(['wait', '--for=condition=Established', '--timeout=60s', '-f', crds]);
  expect(established.code, established.stderr).toBe(0);
  await kubectl(['create', 'namespace', NS]);
});

describe('CRD installation', () => {
  it('installs both CRDs with short names and the fedgpu category', async () => {
    const res = await kubectl(['api-resources', '--api-group=fedgpu.io', '-o', 'wide']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/gpujobs\s+gj\s+fedgpu\.io\/v1alpha1\s+true\s+GpuJob/);
    expect(res.stdout).toMatch(/gpuproviders\s+gp\s+fedgpu\.io\/v1alpha1\s+false\s+GpuProvider/);
    expect(res.stdout).toContain('fedgpu');
  });
});

describe('admission refuses bad objects with a field-specific message', () => {
  it('has at least 25 cases', () => expect(invalid.length).toBeGreaterThanOrEqual(25));

  it.each(invalid)('%s', async (_case, obj, expected) => {
    const res = await kubectl(['create', '-f', '-'], stringify(obj));
    expect(res.code, res.stdout).not.toBe(0);
    for (const text of expected) expect(res.stderr).toContain(text);
    // Nothing was stored.
    const kind = obj.kind === 'GpuJob' ? 'gpujob' : 'gpuprovider';
    const ns = obj.kind === 'GpuJob' ? ['-n', NS] : [];
    const get = await kubectl(['get', kind, obj.metadata.name, ...ns, '--ignore-not-found', '-o', 'name']);
    expect(get.stdout.trim()).toBe('');
  });
});

describe('immutable fields', () => {
  it.each([
    ['spec.replicas', 'gpujob', 'immut-job', NS, '{"spec":{"replicas":2}}'],
    ['spec.gpusPerReplica', 'gpujob', 'immut-job', NS, '{"spec":{"gpusPerReplica":4}}'],
    ['spec.gpu', 'gpujob', 'immut-job', NS, '{"spec":{"gpu":{"minMemoryGiB":40}}}'],
    ['spec.template', 'gpujob', 'immut-job', NS, '{"spec":{"template":{"spec":{"containers":[{"name":"x","image":"other"}]}}}}'],
    ['spec.wallet', 'gpuprovider', 'immut-provider', '', '{"spec":{"wallet":"0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"}}'],
  ])('%s cannot change after creation', async (field, kind, name, ns, patch) => {
    const base = kind === 'gpujob' ? job(() => {}) : provider(() => {});
    base.metadata.name = name;
    await kubectl(['apply', '-f', '-'], stringify(base));
    const nsArgs = ns ? ['-n', ns] : [];
    const res = await kubectl(['patch', kind, name, ...nsArgs, '--type=merge', '-p', patch]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(`${field} is immutable`);
  });

  it('spec.activeDeadlineSeconds may be lowered, never raised or removed (the escrows of running attempts expire by it)', async () => {
    // The attack: a job placed with a 1-hour deadline gets an escrow that expires an hour and a week
    // later; raising or removing the deadline let its pods outlive the escrow, which the consumer
    // then reclaimed while they ran, leaving the provider unpaid.
    const base = job((j) => (j.spec.activeDeadlineSeconds = 3600));
    base.metadata.name = 'deadline-job';
    await kubectl(['apply', '-f', '-'], stringify(base));
    for (const patch of ['{"spec":{"activeDeadlineSeconds":7200}}', '{"spec":{"activeDeadlineSeconds":null}}']) {
      const res = await kubectl(['patch', 'gj', 'deadline-job', '-n', NS, '--type=merge', '-p', patch]);
      expect(res.code, patch).not.toBe(0);
      expect(res.stderr).toContain('spec.activeDeadlineSeconds: Invalid value');
      expect(res.stderr).toContain('activeDeadlineSeconds may be lowered, not raised or removed: the escrows of running attempts expire by it');
    }
    const lowered = await kubectl(['patch', 'gj', 'deadline-job', '-n', NS, '--type=merge', '-p', '{"spec":{"activeDeadlineSeconds":1800}}']);
    expect(lowered.code, lowered.stderr).toBe(0);
    const stored = JSON.parse((await kubectl(['get', 'gj', 'deadline-job', '-n', NS, '-o', 'json'])).stdout);
    expect(stored.spec.activeDeadlineSeconds).toBe(1800);
  });

  it('spec.faultTolerance.checkpoint.gracePeriodSeconds may be lowered, never raised, absent counting as 30 (the budget covers the grace it was placed with)', async () => {
    // The attack: placed with a 30-s grace and a budget covering just that, the grace raised to an
    // hour on the running job reached its agent at the next resync, and the pods ran the hour unpaid.
    const base = job((j) => (j.spec.faultTolerance = { checkpoint: { gracePeriodSeconds: 30 } }));
    base.metadata.name = 'grace-job';
    await kubectl(['apply', '-f', '-'], stringify(base));
    const raise = '{"spec":{"faultTolerance":{"checkpoint":{"gracePeriodSeconds":3600}}}}';
    for (const patch of [raise, '{"spec":{"faultTolerance":{"checkpoint":{"gracePeriodSeconds":31}}}}']) {
      const res = await kubectl(['patch', 'gj', 'grace-job', '-n', NS, '--type=merge', '-p', patch]);
      expect(res.code, patch).not.toBe(0);
      expect(res.stderr).toContain('spec.faultTolerance.checkpoint.gracePeriodSeconds: Invalid value');
      expect(res.stderr).toContain('gracePeriodSeconds may be lowered, not raised (absent is 30)');
    }
    // A job created without a checkpoint section has the default, 30 s: adding one cannot raise it.
    const bare = job(() => {});
    bare.metadata.name = 'grace-default-job';
    delete (bare.spec as { faultTolerance?: unknown }).faultTolerance;
    await kubectl(['apply', '-f', '-'], stringify(bare));
    const added = await kubectl(['patch', 'gj', 'grace-default-job', '-n', NS, '--type=merge', '-p', raise]);
    expect(added.code).not.toBe(0);
    expect(added.stderr).toContain('gracePeriodSeconds may be lowered, not raised (absent is 30)');
    const same = await kubectl(['patch', 'gj', 'grace-default-job', '-n', NS, '--type=merge', '-p', '{"spec":{"faultTolerance":{"checkpoint":{"gracePeriodSeconds":30}}}}']);
    expect(same.code, same.stderr).toBe(0);
    const lowered = await kubectl(['patch', 'gj', 'grace-job', '-n', NS, '--type=merge', '-p', '{"spec":{"faultTolerance":{"checkpoint":{"gracePeriodSeconds":5}}}}']);
    expect(lowered.code, lowered.stderr).toBe(0);
    const stored = JSON.parse((await kubectl(['get', 'gj', 'grace-job', '-n', NS, '-o', 'json'])).stdout);
    expect(stored.spec.faultTolerance.checkpoint.gracePeriodSeconds).toBe(5);
  });

  it('mutable fields (budget, placement) can change', async () => {
    await kubectl(['apply', '-f', '-'], stringify({ ...job(() => {}), metadata: { name: 'immut-job', namespace: NS } }));
    const res = await kubectl(['patch', 'gj', 'immut-job', '-n', NS, '--type=merge', '-p', '{"spec":{"budget":{"maxPricePerGpuHour":"4"}}}']);
    expect(res.code, res.stderr).toBe(0);
  });
});

describe('examples', () => {
  const files = readdirSync(join(repoRoot, 'examples')).filter((f) => f.endsWith('.yaml'));

  it.each(files)('%s is accepted', async (file) => {
    const res = await kubectl(['apply', '-n', 'default', '-f', join(repoRoot, 'examples', file)]);
    expect(res.code, res.stderr).toBe(0);
  });

  it('defaults are filled in by the apiserver', async () => {
    const res = await kubectl(['get', 'gj', 'chat-inference', '-n', 'default', '-o', 'json']);
    const obj = JSON.parse(res.stdout);
    expect(obj.spec.faultTolerance).toBeUndefined(); // defaults apply only inside objects that are present
    expect(obj.spec.placement.sameNode).toBe(false);
    const single = JSON.parse((await kubectl(['get', 'gj', 'finetune-small', '-n', 'default', '-o', 'json'])).stdout);
    expect(single.spec.replicas).toBe(1);
  });
});

describe('kubectl', () => {
  it('explain gpujob.spec.placement shows field descriptions', async () => {
    const out = await waitFor('published OpenAPI', async () => {
      const res = await kubectl(['explain', 'gpujob.spec.placement']);
      return res.code === 0 ? res.stdout : undefined;
    }, { timeoutMs: 30_000 });
    expect(out).toContain('maxLatencyMs');
    expect(out).toContain('Largest acceptable round-trip time between hub and provider');
    expect(out).toContain('minReputation');
    expect(out).toContain('sameNode');
  });

  it('get gj shows the printer columns', async () => {
    const res = await kubectl(['get', 'gj', '-n', 'default']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.split('\n')[0]).toMatch(/^NAME\s+PHASE\s+PROVIDER\s+GPUS\s+ATTEMPTS\s+COST\s+AGE$/);
    expect(res.stdout).toContain('llm-pretrain');
  });

  it('get gp shows the printer columns', async () => {
    const res = await kubectl(['get', 'gp']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.split('\n')[0]).toMatch(/^NAME\s+READY\s+IDLE\/TOTAL GPUS\s+REPUTATION\s+RTT\s+STAKE\s+LAST HEARD\s+AGE$/);
  });

  it('get fedgpu lists both kinds through the category', async () => {
    const res = await kubectl(['get', 'fedgpu', '-A']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('gpujob.fedgpu.io/llm-pretrain');
    expect(res.stdout).toContain('gpuprovider.fedgpu.io/acme-dc-1');
  });
});
