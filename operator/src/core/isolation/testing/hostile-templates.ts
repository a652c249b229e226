import type { V1PodTemplateSpec } from '@kubernetes/client-node';

// Templates a hostile consumer might send, each with the field that must be named when it is
// refused. One table for every layer: the pure allowlist (unit), the hub's admission and the
// agent against a real apiserver (integration). Paths are relative to the template; the hub
// reports them under `spec.template.`.

/** GPUs the jobs built from this table pay for per replica. */
export const HOSTILE_GPUS_PER_REPLICA = 1;

export interface HostileTemplate {
  name: string;
  template: V1PodTemplateSpec;
  /** The field the refusal names, relative to the template (`spec.hostNetwork`). */
  path: string;
  /** Where the hub's admission names it, when a CEL rule on a list or map cannot say the item. */
  hubPath?: string;
}

type Any = Record<string, any>;
const base = (): Any => ({
  metadata: { annotations: { 'fedgpu.io/sim-run-for': '30s' } },
  spec: { containers: [{ name: 'main', image: 'example/train:v1' }] },
});
const main = (patch: Any) => (t: Any) => Object.assign(t.spec.containers[0], patch);
const sc = (patch: Any) => main({ securityContext: patch });
const spec = (patch: Any) => (t: Any) => Object.assign(t.spec, patch);
const volume = (v: Any) =>
  spec({ volumes: [{ name: 'v', ...v }] });
const build = (mutate: (t: Any) => void): V1PodTemplateSpec => {
  const t = base();
  mutate(t);
  return t as V1PodTemplateSpec;
};
const h = (name: string, path: string, mutate: (t: Any) => void, hubPath?: string): HostileTemplate => ({
  name,
  path,
  template: build(mutate),
  ...(hubPath ? { hubPath } : {}),
});

const gpu = 'nvidia.com/gpu';
const side = (patch: Any) => (t: Any) => t.spec.containers.push({ name: 'side', image: 'example/side:v1', ...patch });

export const HOSTILE_TEMPLATES: HostileTemplate[] = [
  h('host network', 'spec.hostNetwork', spec({ hostNetwork: true })),
  h('host PID', 'spec.hostPID', spec({ hostPID: true })),
  h('host IPC', 'spec.hostIPC', spec({ hostIPC: true })),
  h('hostPath volume', 'spec.volumes[0].hostPath', volume({ hostPath: { path: '/' } })),
  h('privileged container', 'spec.containers[0].securityContext.privileged', sc({ privileged: true })),
  h('root user', 'spec.containers[0].securityContext.runAsUser', sc({ runAsUser: 0 })),
  h('runAsNonRoot false', 'spec.containers[0].securityContext.runAsNonRoot', sc({ runAsNonRoot: false })),
  h('added capability', 'spec.containers[0].securityContext.capabilities.add', sc({ capabilities: { add: ['SYS_ADMIN'] } })),
  h('unconfined seccomp', 'spec.containers[0].securityContext.seccompProfile.type', sc({ seccompProfile: { type: 'Unconfined' } })),
  h('privilege escalation', 'spec.containers[0].securityContext.allowPrivilegeEscalation', sc({ allowPrivilegeEscalation: true })),
  h('SELinux options', 'spec.containers[0].securityContext.seLinuxOptions', sc({ seLinuxOptions: { type: 'spc_t' } })),
  h('unmasked proc', 'spec.containers[0].securityContext.procMount', sc({ procMount: 'Unmasked' })),
  h('pod runs as root', 'spec.securityContext.runAsUser', spec({ securityContext: { runAsUser: 0 } })),
  h('pod sysctls', 'spec.securityContext.sysctls', spec({ securityContext: { sysctls: [{ name: 'kernel.msgmax', value: '1' }] } })),
  h('privileged init container', 'spec.initContainers[0].securityContext.privileged',
    spec({ initContainers: [{ name: 'init', image: 'example/init:v1', securityContext: { privileged: true } }] })),
  h('GPUs on an init container', `spec.initContainers[0].resources.limits["${gpu}"]`,
    spec({ initContainers: [{ name: 'init', image: 'example/init:v1', resources: { limits: { [gpu]: '8' } } }] }), 'spec.initContainers: Invalid value: "object": init containers may not ask for nvidia.com/gpu'),
  h('GPUs on a second container', `spec.containers[1].resources.limits["${gpu}"]`, side({ resources: { limits: { [gpu]: '7' } } }),
    'spec.containers: Invalid value: "object": only the first container (the billed one) gets nvidia.com/gpu; the others may not'),
  h('more GPUs than paid for', `spec.containers[0].resources.limits["${gpu}"]`, main({ resources: { limits: { [gpu]: '8' } } }),
    'spec.containers: Invalid value: "object": the first container\'s nvidia.com/gpu must equal gpusPerReplica'),
  h('MIG slices', 'spec.containers[0].resources.limits["nvidia.com/mig-1g.10gb"]', main({ resources: { limits: { 'nvidia.com/mig-1g.10gb': '2' } } }),
    'spec.containers[0].resources.limits: Invalid value: "object": only cpu, memory, ephemeral-storage and nvidia.com/gpu may be requested, not nvidia.com/mig-1g.10gb'),
  h('NVIDIA_VISIBLE_DEVICES', 'spec.containers[0].env[0].name', main({ env: [{ name: 'NVIDIA_VISIBLE_DEVICES', value: 'all' }] })),
  h('CUDA_VISIBLE_DEVICES on a sidecar', 'spec.containers[1].env[0].name', side({ env: [{ name: 'CUDA_VISIBLE_DEVICES', value: '0,1,2,3' }] })),
  h('env from a provider Secret', 'spec.containers[0].env[0].valueFrom.secretKeyRef',
    main({ env: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'fedgpu-wallet', key: 'private-key' } } }] })),
  h('envFrom a provider ConfigMap', 'spec.containers[0].envFrom', main({ envFrom: [{ configMapRef: { name: 'fedgpu-settings' } }] })),
  h('host port', 'spec.containers[0].ports[0].hostPort', main({ ports: [{ containerPort: 22, hostPort: 22 }] })),
  h('service account', 'spec.serviceAccountName', spec({ serviceAccountName: 'fedgpu' })),
  h('service account token', 'spec.automountServiceAccountToken', spec({ automountServiceAccountToken: true })),
  h('priority class', 'spec.priorityClassName', spec({ priorityClassName: 'system-node-critical' })),
  h('runtime class', 'spec.runtimeClassName', spec({ runtimeClassName: 'runc-unsandboxed' })),
  h('node name', 'spec.nodeName', spec({ nodeName: 'owner-node' })),
  h('tolerate every taint', 'spec.tolerations', spec({ tolerations: [{ operator: 'Exists' }] })),
  h('image pull secrets', 'spec.imagePullSecrets', spec({ imagePullSecrets: [{ name: 'owner-registry' }] })),
  h('secret volume', 'spec.volumes[0].secret', volume({ secret: { secretName: 'fedgpu-wallet' } })),
  h('configMap volume', 'spec.volumes[0].configMap', volume({ configMap: { name: 'kube-root-ca.crt' } })),
  h('projected token', 'spec.volumes[0].projected',
    volume({ projected: { sources: [{ serviceAccountToken: { path: 'token', audience: 'owner' } }] } })),
  h('owner PVC', 'spec.volumes[0].persistentVolumeClaim', volume({ persistentVolumeClaim: { claimName: 'owner-data' } })),
  h('generic ephemeral volume', 'spec.volumes[0].ephemeral',
    volume({ ephemeral: { volumeClaimTemplate: { spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '10Ti' } } } } } })),
  h('NFS volume', 'spec.volumes[0].nfs', volume({ nfs: { server: '10.0.0.5', path: '/exports' } })),
  h('CSI volume', 'spec.volumes[0].csi', volume({ csi: { driver: 'secrets-store.csi.k8s.io' } })),
  h('unbounded emptyDir', 'spec.volumes[0].emptyDir.sizeLimit', volume({ emptyDir: {} })),
  h('huge emptyDir', 'spec.volumes[0].emptyDir.sizeLimit', volume({ emptyDir: { sizeLimit: '10Ti' } })),
  h('mount propagation', 'spec.containers[0].volumeMounts[0].mountPropagation', (t) => {
    t.spec.volumes = [{ name: 'v', emptyDir: { sizeLimit: '1Gi' } }];
    t.spec.containers[0].volumeMounts = [{ name: 'v', mountPath: '/v', mountPropagation: 'Bidirectional' }];
  }),
  h('probe to another host', 'spec.containers[0].livenessProbe.httpGet.host',
    main({ livenessProbe: { httpGet: { host: '169.254.169.254', path: '/latest/meta-data', port: 80 } } })),
  h('reserved label', 'metadata.labels["node-role.kubernetes.io/control-plane"]',
    (t) => (t.metadata.labels = { 'node-role.kubernetes.io/control-plane': '' }), 'metadata.labels: Invalid value: "object": keys under kubernetes.io, k8s.io and fedgpu.io are reserved: node-role.kubernetes.io/control-plane'),
  h('AppArmor annotation', 'metadata.annotations["container.apparmor.security.beta.kubernetes.io/main"]',
    (t) => (t.metadata.annotations['container.apparmor.security.beta.kubernetes.io/main'] = 'unconfined'),
    'metadata.annotations: Invalid value: "object": keys under kubernetes.io, k8s.io and fedgpu.io are reserved: container.apparmor.security.beta.kubernetes.io/main'),
  h('Kata hypervisor annotation', 'metadata.annotations["io.katacontainers.config.hypervisor.kernel_params"]',
    (t) => (t.metadata.annotations['io.katacontainers.config.hypervisor.kernel_params'] = 'init=/bin/sh'),
    'metadata.annotations: Invalid value: "object": container runtime annotations (io.kubernetes.cri-o., io.kubernetes.cri., io.katacontainers., dev.gvisor., io.containerd., run.oci., nvidia.com/, *cri-o.io/) are not allowed: io.katacontainers.config.hypervisor.kernel_params'),
  h('CRI-O devices annotation', 'metadata.annotations["io.kubernetes.cri-o.Devices"]',
    (t) => (t.metadata.annotations['io.kubernetes.cri-o.Devices'] = '/dev/sda:/dev/sda:rwm'),
    'metadata.annotations: Invalid value: "object": container runtime annotations (io.kubernetes.cri-o., io.kubernetes.cri., io.katacontainers., dev.gvisor., io.containerd., run.oci., nvidia.com/, *cri-o.io/) are not allowed: io.kubernetes.cri-o.Devices'),
  h('CRI-O seccomp profile annotation', 'metadata.annotations["seccomp-profile.kubernetes.cri-o.io/main"]',
    (t) => (t.metadata.annotations['seccomp-profile.kubernetes.cri-o.io/main'] = 'unconfined'),
    'metadata.annotations: Invalid value: "object": container runtime annotations (io.kubernetes.cri-o., io.kubernetes.cri., io.katacontainers., dev.gvisor., io.containerd., run.oci., nvidia.com/, *cri-o.io/) are not allowed: seccomp-profile.kubernetes.cri-o.io/main'),
  h('crun annotation', 'metadata.annotations["run.oci.keep_original_groups"]',
    (t) => (t.metadata.annotations['run.oci.keep_original_groups'] = '1'),
    'metadata.annotations: Invalid value: "object": container runtime annotations (io.kubernetes.cri-o., io.kubernetes.cri., io.katacontainers., dev.gvisor., io.containerd., run.oci., nvidia.com/, *cri-o.io/) are not allowed: run.oci.keep_original_groups'),
  h('custom DNS', 'spec.dnsConfig', spec({ dnsPolicy: 'None', dnsConfig: { nameservers: ['10.0.0.53'] } })),
  h('host aliases', 'spec.hostAliases', spec({ hostAliases: [{ ip: '10.0.0.1', hostnames: ['hub'] }] })),
  h('another scheduler', 'spec.schedulerName', spec({ schedulerName: 'owner-scheduler' })),
];

/** A template that uses what the allowlist offers, to show a safe job is not refused. */
export function generousTemplate(): V1PodTemplateSpec {
  return {
    metadata: { labels: { team: 'vision' }, annotations: { 'fedgpu.io/sim-run-for': '30s', note: 'ok' } },
    spec: {
      restartPolicy: 'Never',
      securityContext: { runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      volumes: [{ name: 'scratch', emptyDir: { sizeLimit: '20Gi' } }, { name: 'shm', emptyDir: { medium: 'Memory', sizeLimit: '8Gi' } }],
      initContainers: [{ name: 'fetch', image: 'example/fetch:v1', args: ['s3://data'], volumeMounts: [{ name: 'scratch', mountPath: '/data' }] }],
      containers: [
        {
          name: 'main',
          image: 'example/train:v1',
          command: ['torchrun'],
          args: ['train.py'],
          workingDir: '/workspace',
          env: [{ name: 'EPOCHS', value: '3' }, { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
          ports: [{ name: 'metrics', containerPort: 9090 }],
          resources: { limits: { cpu: '8', memory: '64Gi', 'ephemeral-storage': '50Gi', [gpu]: '1' }, requests: { cpu: '4', memory: '32Gi' } },
          volumeMounts: [{ name: 'scratch', mountPath: '/data', readOnly: true }, { name: 'shm', mountPath: '/dev/shm' }],
          readinessProbe: { httpGet: { path: '/healthz', port: 9090 }, periodSeconds: 10 },
          livenessProbe: { exec: { command: ['true'] } },
          terminationMessagePolicy: 'FallbackToLogsOnError',
          imagePullPolicy: 'IfNotPresent',
          securityContext: { readOnlyRootFilesystem: false, capabilities: { drop: ['ALL'] }, allowPrivilegeEscalation: false },
        },
        { name: 'logger', image: 'example/logger:v1', resources: { limits: { cpu: '100m', memory: '64Mi' } } },
      ],
    },
  };
}
