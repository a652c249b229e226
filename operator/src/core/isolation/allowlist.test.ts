import { describe, expect, it } from 'vitest';
import { allowlistTemplate, DEFAULT_RUN_AS_USER, describeRefusals } from './allowlist.js';
import { generousTemplate, HOSTILE_GPUS_PER_REPLICA, HOSTILE_TEMPLATES } from './testing/hostile-templates.js';

const options = { gpusPerReplica: HOSTILE_GPUS_PER_REPLICA };

describe('allowlistTemplate refuses hostile templates, naming the field', () => {
  it('has at least 30 hostile templates', () => expect(HOSTILE_TEMPLATES.length).toBeGreaterThanOrEqual(30));

  it.each(HOSTILE_TEMPLATES.map((h) => [h.name, h] as const))('%s', (_name, hostile) => {
    const result = allowlistTemplate(hostile.template, options);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.refusals.map((r) => r.path)).toContain(`template.${hostile.path}`);
    for (const r of result.refusals) expect(r.reason.length).toBeGreaterThan(3);
  });
});

describe('allowlistTemplate keeps what is allowed and forces the rest', () => {
  const result = allowlistTemplate(generousTemplate(), options);
  if (!result.ok) throw new Error(describeRefusals(result.refusals));
  const spec = result.template.spec;

  it('keeps the allowed fields of every container and volume', () => {
    const main = spec.containers[0]!;
    expect(main).toMatchObject({ command: ['torchrun'], args: ['train.py'], workingDir: '/workspace', imagePullPolicy: 'IfNotPresent' });
    expect(main.env).toEqual([{ name: 'EPOCHS', value: '3' }, { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }]);
    expect(main.ports).toEqual([{ name: 'metrics', containerPort: 9090 }]);
    expect(main.volumeMounts).toEqual([{ name: 'scratch', mountPath: '/data', readOnly: true }, { name: 'shm', mountPath: '/dev/shm' }]);
    expect(main.readinessProbe).toEqual({ httpGet: { path: '/healthz', port: 9090 }, periodSeconds: 10 });
    expect(spec.volumes).toEqual([{ name: 'scratch', emptyDir: { sizeLimit: '20Gi' } }, { name: 'shm', emptyDir: { medium: 'Memory', sizeLimit: '8Gi' } }]);
    expect(result.template.labels).toEqual({ team: 'vision' });
    expect(result.template.annotations).toEqual({ 'fedgpu.io/sim-run-for': '30s', note: 'ok' });
  });

  it('drops prefixed annotations for the provider cluster\'s controllers (Multus networks, Calico addresses), so a job placed before the CRD refused them keeps running', () => {
    const template = generousTemplate();
    template.metadata = { ...template.metadata, annotations: { ...template.metadata?.annotations, 'k8s.v1.cni.cncf.io/networks': 'gpu-operator/rdma-net', 'cni.projectcalico.org/ipAddrs': '["10.0.0.5"]', 'prometheus.io/scrape': 'true' } };
    const kept = allowlistTemplate(template, options);
    if (!kept.ok) throw new Error(describeRefusals(kept.refusals));
    expect(kept.template.annotations).toEqual({ 'fedgpu.io/sim-run-for': '30s', note: 'ok' });
  });

  it('gives GPUs to the billed container only, exactly as paid', () => {
    expect(spec.containers[0]!.resources).toEqual({
      limits: { cpu: '8', memory: '64Gi', 'ephemeral-storage': '50Gi', 'nvidia.com/gpu': '1' },
      requests: { cpu: '4', memory: '32Gi', 'nvidia.com/gpu': '1' },
    });
    expect(spec.containers[1]!.resources).toEqual({ limits: { cpu: '100m', memory: '64Mi' }, requests: {} });
    expect(spec.initContainers![0]!.resources).toEqual({ limits: {}, requests: {} });
  });

  it('forces the security settings on every container, init containers included', () => {
    for (const c of [...spec.initContainers!, ...spec.containers]) {
      expect(c.securityContext).toMatchObject({
        runAsNonRoot: true,
        allowPrivilegeEscalation: false,
        privileged: false,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });
    }
    expect(spec.containers[0]!.securityContext!.readOnlyRootFilesystem).toBe(false);
    expect(spec.containers[1]!.securityContext!.readOnlyRootFilesystem).toBe(true);
    expect(spec).toMatchObject({ automountServiceAccountToken: false, enableServiceLinks: false, restartPolicy: 'Never' });
    expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, fsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } });
  });

  it('runs a template that names no user as a non-root one', () => {
    const plain = allowlistTemplate({ spec: { containers: [{ name: 'c', image: 'x' }] } }, { gpusPerReplica: 2 });
    expect(plain.ok && plain.template.spec.securityContext?.runAsUser).toBe(DEFAULT_RUN_AS_USER);
    expect(plain.ok && plain.template.spec.containers[0]!.resources?.limits).toEqual({ 'nvidia.com/gpu': '2' });
  });
});

describe('allowlistTemplate edge cases', () => {
  it.each([
    ['no spec', {}, 'template.spec.containers'],
    ['no containers', { spec: { containers: [] } }, 'template.spec.containers'],
    ['mount of a missing volume', { spec: { containers: [{ name: 'c', image: 'x', volumeMounts: [{ name: 'gone', mountPath: '/x' }] }] } }, 'template.spec.containers[0].volumeMounts[0].name'],
    ['unparseable sizeLimit', { spec: { containers: [{ name: 'c', image: 'x' }], volumes: [{ name: 'v', emptyDir: { sizeLimit: 'lots' } }] } }, 'template.spec.volumes[0].emptyDir.sizeLimit'],
    ['downward API of the node', { spec: { containers: [{ name: 'c', image: 'x', env: [{ name: 'A', valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } } }] }] } }, 'template.spec.containers[0].env[0].valueFrom.fieldRef.fieldPath'],
    ['FEDGPU_ env spoofing the rank', { spec: { containers: [{ name: 'c', image: 'x', env: [{ name: 'FEDGPU_REPLICA', value: '0' }] }] } }, 'template.spec.containers[0].env[0].name'],
    ['metadata name', { metadata: { name: 'x', namespace: 'kube-system' }, spec: { containers: [{ name: 'c', image: 'x' }] } }, 'template.metadata.namespace'],
    ['tcp probe to another host', { spec: { containers: [{ name: 'c', image: 'x', readinessProbe: { tcpSocket: { host: '10.0.0.1', port: 22 } } }] } }, 'template.spec.containers[0].readinessProbe.tcpSocket.host'],
    ['init container that is not a sidecar', { spec: { containers: [{ name: 'c', image: 'x' }], initContainers: [{ name: 'i', image: 'x', restartPolicy: 'OnFailure' }] } }, 'template.spec.initContainers[0].restartPolicy'],
  ])('refuses %s', (_n, template, path) => {
    const result = allowlistTemplate(template as never, { gpusPerReplica: 1 });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.refusals.map((r) => r.path)).toContain(path);
  });

  it('says every refusal on one line, bounded', () => {
    const refusals = Array.from({ length: 7 }, (_, i) => ({ path: `p${i}`, reason: 'r' }));
    expect(describeRefusals(refusals)).toBe('p0: r; p1: r; p2: r; p3: r; p4: r; and 2 more');
  });
});
