import { describe, expect, it } from 'vitest';
import { buildJobPods } from '../pods/build.js';
import { prepareAttempt } from './prepare.js';
import { attemptName, attemptPolicy, headlessService, joinRendezvous, rendezvousEnv, RENDEZVOUS_ENV_NAMES } from './rendezvous.js';
import { RENDEZVOUS_VARIABLES } from '../../api/schema/job-environment.schema.js';

const shape = { jobUid: '1b4e28ba-2fa1-11d2-883f-0016d3cca427', epoch: 2, replicas: 4, gpusPerReplica: 8 };
const envOf = (replica: number) => Object.fromEntries(rendezvousEnv(shape, replica, 'fedgpu-jobs').map((e) => [e.name, e.value]));

describe('rendezvous environment', () => {
  it('gives every replica the master (replica 0), its rank and the torchrun shape', () => {
    const name = 'fj-1b4e28ba2fa11-e2';
    expect(attemptName(shape.jobUid, shape.epoch)).toBe(name);
    for (const replica of [0, 3]) {
      expect(envOf(replica)).toEqual({
        MASTER_ADDR: `${name}-r0.${name}.fedgpu-jobs.svc`,
        MASTER_PORT: '29500',
        WORLD_SIZE: '4',
        RANK: String(replica),
        NODE_RANK: String(replica),
        PET_NNODES: '4',
        PET_NPROC_PER_NODE: '8',
        PET_NODE_RANK: String(replica),
        PET_MASTER_ADDR: `${name}-r0.${name}.fedgpu-jobs.svc`,
        PET_MASTER_PORT: '29500',
        FEDGPU_GPUS_PER_REPLICA: '8',
        FEDGPU_WORLD_GPUS: '32',
        FEDGPU_RENDEZVOUS_SERVICE: `${name}.fedgpu-jobs.svc`,
        FEDGPU_PEERS: [0, 1, 2, 3].map((r) => `${name}-r${r}.${name}.fedgpu-jobs.svc`).join(','),
      });
    }
  });

  it('a single replica has no peers: its master is localhost, and it has no Service name', () => {
    const solo = Object.fromEntries(rendezvousEnv({ ...shape, replicas: 1 }, 0, 'ns').map((e) => [e.name, e.value]));
    expect(solo).toMatchObject({ MASTER_ADDR: 'localhost', PET_MASTER_ADDR: 'localhost', WORLD_SIZE: '1', RANK: '0', PET_NNODES: '1', FEDGPU_PEERS: 'localhost', FEDGPU_RENDEZVOUS_SERVICE: '' });
    expect(Object.keys(solo)).toEqual(RENDEZVOUS_ENV_NAMES);
    // The CRD refuses a Secret's env of these names (its FEDGPU_* rule covers the rest): one list.
    expect(RENDEZVOUS_ENV_NAMES.filter((n) => !n.startsWith('FEDGPU_'))).toEqual([...RENDEZVOUS_VARIABLES]);
  });

  it('a new epoch gets new names, so a zombie of the old attempt never answers as master', () => {
    expect(rendezvousEnv({ ...shape, epoch: 3 }, 0, 'ns')[0]!.value).not.toBe(rendezvousEnv(shape, 0, 'ns')[0]!.value);
  });

  it('joins built pods: stable hostname under the Service, and the template cannot override the rendezvous', () => {
    const template = {
      spec: {
        containers: [
          { name: 'main', image: 'train', env: [{ name: 'MASTER_ADDR', value: 'evil.example' }, { name: 'KEEP', value: '1' }] },
          { name: 'side', image: 'sidecar' },
        ],
      },
    };
    const pods = buildJobPods({ jobUid: shape.jobUid, epoch: 2, podTemplates: [template, template], nodeNames: ['a', 'b'], gpusPerReplica: 8 }, 'ns');
    const joined = pods.map((p, r) => joinRendezvous(p, { ...shape, replicas: 2 }, r, 'ns'));
    expect(joined[1]!.spec!.hostname).toBe(joined[1]!.metadata!.name);
    expect(joined[1]!.spec!.subdomain).toBe(headlessService(shape.jobUid, 2, 'ns').metadata!.name);
    for (const c of joined[0]!.spec!.containers) {
      const env = c.env ?? [];
      expect(env.filter((e) => e.name === 'MASTER_ADDR')).toEqual([{ name: 'MASTER_ADDR', value: 'fj-1b4e28ba2fa11-e2-r0.fj-1b4e28ba2fa11-e2.ns.svc' }]);
      for (const name of RENDEZVOUS_ENV_NAMES) expect(env.some((e) => e.name === name)).toBe(true);
    }
    expect(joined[0]!.spec!.containers[0]!.env).toContainEqual({ name: 'KEEP', value: '1' });
  });

  it('init containers learn the rendezvous and where they stand too (one that waits for the master needs its address)', () => {
    const template = { spec: { initContainers: [{ name: 'wait-master', image: 'busybox', env: [{ name: 'RANK', value: '7' }] }], containers: [{ name: 'main', image: 'train' }] } };
    const pods = buildJobPods({ jobUid: shape.jobUid, epoch: 2, podTemplates: [template, template], nodeNames: ['a', 'b'], gpusPerReplica: 8 }, 'ns');
    const init = joinRendezvous(pods[1]!, { ...shape, replicas: 2 }, 1, 'ns').spec!.initContainers![0]!;
    expect(init.env?.filter((e) => e.name === 'RANK')).toEqual([{ name: 'RANK', value: '1' }]);
    expect(init.env).toContainEqual({ name: 'MASTER_ADDR', value: 'fj-1b4e28ba2fa11-e2-r0.fj-1b4e28ba2fa11-e2.ns.svc' });
    expect(init.env).toContainEqual({ name: 'FEDGPU_REPLICA', value: '1' });
    expect(init.env).toContainEqual({ name: 'NVIDIA_VISIBLE_DEVICES', value: 'void' });
  });
});

describe('rendezvous objects', () => {
  it('a headless Service selecting the attempt, publishing replicas before they are ready', () => {
    const svc = headlessService(shape.jobUid, 2, 'ns');
    expect(svc.spec).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true, selector: { 'fedgpu.io/job-uid': shape.jobUid, 'fedgpu.io/epoch': '2' } });
  });

  it('an attempt gets a Service only when it is a gang; a single replica has no subdomain to resolve', () => {
    const template = Buffer.from(JSON.stringify({ spec: { containers: [{ name: 'main', image: 'x' }] } }));
    const prepared = (replicas: number) => {
      const nodeNames = Array.from({ length: replicas }, (_, i) => `n${i}`);
      const assign = { jobUid: shape.jobUid, epoch: 2, namespace: '', podTemplates: nodeNames.map(() => template), nodeNames, gpusPerReplica: 1, checkpointDir: '', gracePeriodSeconds: 30, env: [], pricePerGpuHour: '1', coveredGpuSeconds: 0, egress: undefined, secrets: [], secretsWithheld: false };
      const pods = buildJobPods({ jobUid: shape.jobUid, epoch: 2, podTemplates: nodeNames.map(() => ({ spec: { containers: [{ name: 'main', image: 'x' }] } })), nodeNames, gpusPerReplica: 1 }, 'ns');
      return prepareAttempt(assign, pods, 'ns');
    };
    const solo = prepared(1);
    expect(solo.objects.services).toEqual([]);
    expect(solo.pods[0]!.spec!.subdomain).toBeUndefined();
    expect(solo.objects.policies).toHaveLength(1);
    const pair = prepared(2);
    expect(pair.objects.services.map((s) => s.metadata?.name)).toEqual([attemptName(shape.jobUid, 2)]);
    expect(pair.pods.map((p) => p.spec?.subdomain)).toEqual([attemptName(shape.jobUid, 2), attemptName(shape.jobUid, 2)]);
  });

  it("a template forging another job's labels is refused before any pod exists (so no policy can select it)", () => {
    const forged = { metadata: { labels: { 'fedgpu.io/job-uid': shape.jobUid, 'fedgpu.io/epoch': '2' } }, spec: { containers: [{ name: 'm', image: 'x' }] } };
    expect(() => buildJobPods({ jobUid: 'attacker-uid', epoch: 1, podTemplates: [forged], nodeNames: ['a'], gpusPerReplica: 1 }, 'ns')).toThrow(
      /template\.metadata\.labels\["fedgpu\.io\/job-uid"\]: keys under .* are reserved/,
    );
  });

  it('a NetworkPolicy that selects and admits exactly the attempt on both sides', () => {
    const np = attemptPolicy(shape.jobUid, 2, 'ns', []);
    expect(np.metadata?.name).toBe(attemptName(shape.jobUid, 2));
    const self = { 'fedgpu.io/job-uid': shape.jobUid, 'fedgpu.io/epoch': '2' };
    expect(np.spec!.podSelector?.matchLabels).toEqual(self);
    expect(np.spec!.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(np.spec!.ingress).toEqual([{ _from: [{ podSelector: { matchLabels: self } }] }]);
    expect(np.spec!.egress).toEqual([{ to: [{ podSelector: { matchLabels: self } }] }]);
    // No namespaceSelector anywhere: peers are in this namespace only, and no port limits.
    expect(JSON.stringify(np)).not.toMatch(/namespaceSelector|ports/);
  });
});
