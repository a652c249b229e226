import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { GpuJob } from '../../operator/src/api/types.js';
import { readJobSecrets } from '../../operator/src/hub/jobs/secrets.js';
import { loadKubeConfig } from '../../operator/src/runtime/kube.js';
import { waitFor } from '../../operator/src/testbed/wait.js';
import { HUB_RELEASE, HUB_RELEASE_NAMESPACE, hubIdentity } from '../../operator/src/testbed/federation.js';

// The grant docs/secrets.md documents, checked against a real apiserver with RBAC: the hub's
// identity (the chart's, rendered by helm in hub mode) reads nothing until the consumer's
// RoleBinding names the Secret, then exactly that.
const ns = `secrets-grant-${process.pid}`;
let admin: KubeConfig;
let asHub: CoreV1Api;

const job = (secrets: GpuJob['spec']['secrets']): GpuJob =>
  ({ apiVersion: 'fedgpu.io/v1alpha1', kind: 'GpuJob', metadata: { name: 'j', namespace: ns }, spec: { template: {}, budget: { maxPricePerGpuHour: '1' }, secrets } }) as unknown as GpuJob;

beforeAll(async () => {
  admin = loadKubeConfig(inject('kubeconfig'));
  const core = admin.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: ns } } });
  for (const [name, value] of [['hf-token', 'hf_secret_value'], ['unrelated', 'not for the hub']] as const) {
    await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name }, stringData: { token: value } } });
  }
  // A token of the hub's ServiceAccount, bound to the chart's roles: the hub gets only RBAC's answer.
  const hub = await hubIdentity({ kubeconfigPath: inject('kubeconfig') });
  expect(hub.username).toBe(`system:serviceaccount:${HUB_RELEASE_NAMESPACE}:${HUB_RELEASE}`);
  asHub = hub.kubeConfig.makeApiClient(CoreV1Api);
});

afterAll(async () => {
  await admin?.makeApiClient(CoreV1Api).deleteNamespace({ name: ns }).catch(() => undefined);
});

describe('the hub reads job secrets only where the consumer grants it', () => {
  it('waits, naming the RoleBinding, until the consumer creates the documented Role and RoleBinding; then reads exactly what it names', async () => {
    const wanted = job([{ name: 'hf-token', env: [{ name: 'HF_TOKEN', key: 'token' }] }]);
    expect(await readJobSecrets(asHub, wanted)).toEqual({
      waiting: `waiting for a RoleBinding in namespace ${ns} that lets the hub get Secret ${ns}/hf-token (see docs/secrets.md)`,
    });

    const rbac = [
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'fedgpu-hub-job-secrets', namespace: ns }, rules: [{ apiGroups: [''], resources: ['secrets'], resourceNames: ['hf-token'], verbs: ['get'] }] },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'fedgpu-hub-job-secrets', namespace: ns },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'fedgpu-hub-job-secrets' },
        subjects: [{ kind: 'ServiceAccount', name: HUB_RELEASE, namespace: HUB_RELEASE_NAMESPACE }],
      },
    ];
    const { RbacAuthorizationV1Api } = await import('@kubernetes/client-node');
    const rbacApi = admin.makeApiClient(RbacAuthorizationV1Api);
    await rbacApi.createNamespacedRole({ namespace: ns, body: rbac[0] as never });
    await rbacApi.createNamespacedRoleBinding({ namespace: ns, body: rbac[1] as never });

    // The authorizer sees new RBAC objects through its informers: poll, bounded, until it does.
    const read = await waitFor('the grant to take effect', async () => {
      const r = await readJobSecrets(asHub, wanted);
      return 'secrets' in r ? r : undefined;
    }, { timeoutMs: 10_000, intervalMs: 100 });
    expect(read.secrets.map((s) => [s.name, Buffer.from(s.data.token!).toString()])).toEqual([['hf-token', 'hf_secret_value']]);
    // A Secret the Role does not name stays closed, and a missing key waits with its name.
    expect(await readJobSecrets(asHub, job([{ name: 'unrelated', mountPath: '/s' }]))).toEqual({
      waiting: `waiting for a RoleBinding in namespace ${ns} that lets the hub get Secret ${ns}/unrelated (see docs/secrets.md)`,
    });
    expect(await readJobSecrets(asHub, job([{ name: 'hf-token', env: [{ name: 'X', key: 'nope' }] }]))).toEqual({ waiting: `waiting for key nope in Secret ${ns}/hf-token (spec.secrets env X)` });
    // The grant is namespaced: the hub still cannot list Secrets anywhere.
    await expect(asHub.listSecretForAllNamespaces()).rejects.toMatchObject({ code: 403 });
  });
});
