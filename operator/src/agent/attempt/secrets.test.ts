import { describe, expect, it } from 'vitest';
import type { AttemptSecret } from '../../gen/proto/fedgpu/v1/market.js';
import { buildJobPods } from '../pods/build.js';
import { AttemptRefused } from './refused.js';
import { attemptSecret, checkSecrets, mountSecrets } from './secrets.js';

const uid = '1b4e28ba-2fa1-11d2-883f-0016d3cca427';
const hf: AttemptSecret = { name: 'hf', data: { token: Buffer.from('hf_abc') }, env: [{ name: 'HF_TOKEN', key: 'token' }], mountPath: '' };
const s3: AttemptSecret = { name: 's3', data: { 'config': Buffer.from('[default]'), 'credentials': Buffer.from('k=v') }, env: [], mountPath: '/var/run/s3' };
const pod = () =>
  buildJobPods({ jobUid: uid, epoch: 3, podTemplates: [{ spec: { containers: [{ name: 'main', image: 'x', env: [{ name: 'HF_TOKEN', value: 'literal' }] }, { name: 'side', image: 'y' }] } }], nodeNames: ['n'], gpusPerReplica: 1 }, 'ns')[0]!;

describe('per-attempt secrets', () => {
  it('one immutable Secret per attempt, keys kept apart per consumer secret', () => {
    const secret = attemptSecret(uid, 3, 'ns', [hf, s3])!;
    expect(secret.metadata).toMatchObject({ name: 'fj-1b4e28ba2fa11-e3-secrets', namespace: 'ns', labels: { 'fedgpu.io/job-uid': uid, 'fedgpu.io/epoch': '3' } });
    expect(secret.immutable).toBe(true);
    expect(Object.fromEntries(Object.entries(secret.data!).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]))).toEqual({
      's0.token': 'hf_abc',
      's1.config': '[default]',
      's1.credentials': 'k=v',
    });
    expect(attemptSecret(uid, 3, 'ns', [])).toBeUndefined();
  });

  it('env by secretKeyRef and files by a read-only volume, on every container; the value never enters the pod spec', () => {
    const mounted = mountSecrets(pod(), uid, 3, [hf, s3]);
    for (const c of mounted.spec!.containers) {
      expect(c.env?.filter((e) => e.name === 'HF_TOKEN')).toEqual([{ name: 'HF_TOKEN', valueFrom: { secretKeyRef: { name: 'fj-1b4e28ba2fa11-e3-secrets', key: 's0.token' } } }]);
      expect(c.volumeMounts).toContainEqual({ name: 'fedgpu-secret-1', mountPath: '/var/run/s3', readOnly: true });
    }
    expect(mounted.spec!.volumes).toEqual([
      { name: 'fedgpu-secret-1', secret: { secretName: 'fj-1b4e28ba2fa11-e3-secrets', items: [{ key: 's1.config', path: 'config' }, { key: 's1.credentials', path: 'credentials' }] } },
    ]);
    expect(JSON.stringify(mounted)).not.toMatch(/hf_abc|k=v|\[default\]/);
  });

  it('init containers get them too: a data download needs the credentials before the job starts', () => {
    const withInit = buildJobPods({ jobUid: uid, epoch: 3, podTemplates: [{ spec: { initContainers: [{ name: 'fetch', image: 'aws-cli' }], containers: [{ name: 'main', image: 'x' }] } }], nodeNames: ['n'], gpusPerReplica: 1 }, 'ns')[0]!;
    const init = mountSecrets(withInit, uid, 3, [hf, s3]).spec!.initContainers![0]!;
    expect(init.env?.filter((e) => e.name === 'HF_TOKEN')).toEqual([{ name: 'HF_TOKEN', valueFrom: { secretKeyRef: { name: 'fj-1b4e28ba2fa11-e3-secrets', key: 's0.token' } } }]);
    expect(init.volumeMounts).toContainEqual({ name: 'fedgpu-secret-1', mountPath: '/var/run/s3', readOnly: true });
    const taken = buildJobPods({ jobUid: uid, epoch: 3, podTemplates: [{ spec: { volumes: [{ name: 'v', emptyDir: { sizeLimit: '1Gi' } }], initContainers: [{ name: 'fetch', image: 'aws-cli', volumeMounts: [{ name: 'v', mountPath: '/var/run/s3' }] }], containers: [{ name: 'main', image: 'x' }] } }], nodeNames: ['n'], gpusPerReplica: 1 }, 'ns')[0]!;
    expect(() => mountSecrets(taken, uid, 3, [s3])).toThrow('container fetch already mounts /var/run/s3');
  });

  it('refuses, by field and without echoing values, what cannot be stored or mounted', () => {
    const refusal = (secrets: AttemptSecret[]) => {
      try {
        checkSecrets(secrets);
        return undefined;
      } catch (err) {
        expect(err).toBeInstanceOf(AttemptRefused);
        return (err as AttemptRefused).message;
      }
    };
    expect(refusal([hf, s3])).toBeUndefined();
    expect(refusal([{ ...hf, env: [{ name: 'HF_TOKEN', key: 'missing' }] }])).toBe('secrets[0] (hf): env HF_TOKEN names a key the secret lacks');
    expect(refusal([{ ...hf, env: [{ name: 'BAD NAME', key: 'token' }] }])).toMatch(/is not a variable name/);
    // A secret is no way around the template's reserved names: a value of "all" would show every GPU of the node.
    for (const name of ['NVIDIA_VISIBLE_DEVICES', 'NVIDIA_DRIVER_CAPABILITIES', 'CUDA_VISIBLE_DEVICES', 'FEDGPU_REPLICA']) {
      expect(refusal([{ ...hf, env: [{ name, key: 'token' }] }])).toBe(`secrets[0] (hf): env ${name} is reserved: GPU visibility and FEDGPU_* are set by fedgpu`);
    }
    expect(refusal([{ ...hf, env: [{ name: 'CUDA_VISIBLE_DEVICES_X', key: 'token' }] }])).toBeUndefined();
    // Nor the rendezvous variables (the docs say fedgpu's win; a Secret's RANK would split the gang).
    for (const name of ['MASTER_ADDR', 'RANK', 'WORLD_SIZE', 'PET_NODE_RANK']) {
      expect(refusal([{ ...hf, env: [{ name, key: 'token' }] }])).toBe(`secrets[0] (hf): env ${name} is reserved: the rendezvous variables are set by fedgpu`);
    }
    // An attempt already running with such a name (admitted before the rule) is not ended for it.
    expect(() => checkSecrets([{ ...hf, env: [{ name: 'RANK', key: 'token' }] }], { started: true })).not.toThrow();
    expect(refusal([{ ...s3, mountPath: '/var/../etc' }])).toBe('secrets[0] (s3): mountPath must be an absolute path without ..');
    expect(refusal([s3, { ...s3, name: 'again' }])).toBe('secrets[1] (again): mountPath /var/run/s3 is used twice');
    expect(refusal([{ ...hf, data: { token: Buffer.alloc(2 * 1024 * 1024) } }])).toMatch(/at most/);
    expect(refusal([{ ...hf, data: { 'bad/key': Buffer.from('hf_abc') }, env: [] }])).not.toContain('hf_abc');
    expect(() => mountSecrets({ ...pod(), spec: { ...pod().spec!, containers: [{ name: 'main', image: 'x', volumeMounts: [{ name: 'v', mountPath: '/var/run/s3' }] }] } }, uid, 3, [s3])).toThrow(
      'container main already mounts /var/run/s3',
    );
  });
});
