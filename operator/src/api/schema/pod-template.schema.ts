import { arr, bool, int, obj, oneOf, str, stringMap, type Schema } from './builder.js';

// A GpuJob carries a standard PodTemplateSpec so ML teams write what they already know, but only
// the fields of the job pod allowlist (core/isolation/allowlist.ts, docs/isolation.md): anything
// else is an unknown field, refused by `kubectl apply` (strict field validation) and dropped by
// the apiserver otherwise, and the CEL rules below refuse dangerous values with the field's name.
// The agent checks the same rules again when it builds the pods: a hub cannot make a provider
// run what its agent refuses.

const GPU = 'nvidia.com/gpu';
const RESERVED_KEY = '^([a-z0-9.-]*\\\\.)?(kubernetes\\\\.io|k8s\\\\.io|fedgpu\\\\.io)/';
/** Annotation families container runtimes read from the pod to configure the sandbox (core/isolation/allowlist.ts). */
const RUNTIME_ANNOTATION = '^(io\\\\.kubernetes\\\\.cri-o\\\\.|io\\\\.kubernetes\\\\.cri\\\\.|io\\\\.katacontainers\\\\.|dev\\\\.gvisor\\\\.|io\\\\.containerd\\\\.|run\\\\.oci\\\\.|nvidia\\\\.com/|([a-z0-9.-]*\\\\.)?cri-o\\\\.io/)';
/** Largest emptyDir a job may ask for (DEFAULT_MAX_EMPTY_DIR_BYTES in the allowlist). */
export const MAX_EMPTY_DIR = '200Gi';

const intOrString = (description: string, extra: Partial<Schema> = {}): Schema => ({
  description,
  'x-kubernetes-int-or-string': true,
  ...extra,
});
const shortStr = (description: string, maxLength = 253) => str(description, { maxLength });
const strings = (description: string, maxItems = 256) => arr(description, str('An argument.', { maxLength: 4096 }), { maxItems });

const quantityMap = (description: string) =>
  stringMap(description, intOrString('A quantity, e.g. 4, 500m, 16Gi.', { pattern: '^([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([numkMGTPE]|[KMGTPE]i)?$' }), {
    maxProperties: 8,
    'x-kubernetes-validations': [
      {
        rule: `self.all(k, k in ['cpu', 'memory', 'ephemeral-storage', '${GPU}'])`,
        messageExpression: `'only cpu, memory, ephemeral-storage and ${GPU} may be requested, not ' + self.filter(k, !(k in ['cpu', 'memory', 'ephemeral-storage', '${GPU}']))[0]`,
      },
    ],
  });

const port = intOrString('Port number or name.');
const probe = obj(
  'A probe run by the kubelet against this container. Probes of other hosts are not allowed (they would run from the provider\'s node).',
  {
    exec: obj('Run a command in the container.', { command: strings('Command and arguments.', 64) }),
    httpGet: obj('GET an HTTP path of this pod.', {
      path: shortStr('Path to GET.', 2048),
      port,
      scheme: oneOf('HTTP or HTTPS.', ['HTTP', 'HTTPS']),
      httpHeaders: arr('Extra headers.', obj('A header.', { name: shortStr('Header name.', 256), value: shortStr('Header value.', 4096) }, { required: ['name', 'value'] }), { maxItems: 16 }),
    }, { required: ['port'] }),
    tcpSocket: obj('Open a TCP connection to this pod.', { port }, { required: ['port'] }),
    grpc: obj('Call the gRPC health service of this pod.', { port: int('Port.', { minimum: 1, maximum: 65535 }), service: shortStr('Service name.', 256) }, { required: ['port'] }),
    initialDelaySeconds: int('Seconds before the first probe.', { minimum: 0, maximum: 86400 }),
    periodSeconds: int('Seconds between probes.', { minimum: 1, maximum: 86400 }),
    timeoutSeconds: int('Seconds before a probe times out.', { minimum: 1, maximum: 86400 }),
    successThreshold: int('Successes to count as passing.', { minimum: 1, maximum: 100 }),
    failureThreshold: int('Failures to count as failing.', { minimum: 1, maximum: 100 }),
    terminationGracePeriodSeconds: int('Grace period when the probe fails.', { minimum: 1, maximum: 86400 }),
  },
);

const containerSecurity = obj(
  'Container security context. fedgpu forces runAsNonRoot, drops all capabilities, RuntimeDefault seccomp and ' +
    'no privilege escalation whatever is written here; a read-only root filesystem unless readOnlyRootFilesystem is false.',
  {
    runAsUser: int('A non-root user id.', { minimum: 1, maximum: 2147483647 }),
    runAsGroup: int('A group id.', { minimum: 0, maximum: 2147483647 }),
    runAsNonRoot: bool('Must be true or unset.'),
    readOnlyRootFilesystem: bool('Set false when the job writes to its root filesystem (counted as ephemeral storage).'),
    allowPrivilegeEscalation: bool('Must be false or unset.'),
    privileged: bool('Must be false or unset.'),
    capabilities: obj('Capabilities: all are dropped; none may be added.', {
      drop: arr('Dropped capabilities (ALL is forced).', shortStr('A capability.', 64), { maxItems: 64 }),
    }),
    seccompProfile: obj('Seccomp profile: RuntimeDefault only.', {
      type: oneOf('RuntimeDefault.', ['RuntimeDefault']),
    }, { required: ['type'] }),
  },
  {
    'x-kubernetes-validations': [
      { rule: '!has(self.privileged) || !self.privileged', message: 'privileged containers are not allowed', fieldPath: '.privileged' },
      { rule: '!has(self.allowPrivilegeEscalation) || !self.allowPrivilegeEscalation', message: 'privilege escalation is not allowed', fieldPath: '.allowPrivilegeEscalation' },
      { rule: '!has(self.runAsNonRoot) || self.runAsNonRoot', message: 'job pods run as non-root', fieldPath: '.runAsNonRoot' },
    ],
    tsName: 'JobContainerSecurityContext',
  },
);

const envVar = obj(
  'An environment variable. NVIDIA_*, CUDA_VISIBLE_DEVICES and FEDGPU_* are set by fedgpu; values can come from the ' +
    'pod\'s own fields, never from the provider\'s Secrets or ConfigMaps.',
  {
    name: str('Variable name.', { minLength: 1, maxLength: 256 }),
    value: str('Value.', { maxLength: 32768 }),
    valueFrom: obj('The pod\'s own fields or resources.', {
      fieldRef: obj('A field of the pod.', {
        fieldPath: str('metadata.name, metadata.namespace, metadata.uid, metadata.labels[...], metadata.annotations[...], status.podIP(s), status.hostIP or spec.nodeName.', {
          maxLength: 256,
          pattern: "^(metadata\\.(name|namespace|uid)|metadata\\.(labels|annotations)(\\['[^']+'\\])?|status\\.podIPs?|status\\.hostIP|spec\\.nodeName)$",
        }),
        apiVersion: shortStr('v1.', 16),
      }, { required: ['fieldPath'] }),
      resourceFieldRef: obj('A resource of a container of the pod.', {
        containerName: shortStr('Container.', 63),
        resource: shortStr('limits.cpu, requests.memory...', 64),
        divisor: intOrString('Divisor.'),
      }, { required: ['resource'] }),
    }),
  },
  {
    required: ['name'],
    'x-kubernetes-validations': [
      {
        rule: "!self.name.startsWith('NVIDIA_') && self.name != 'CUDA_VISIBLE_DEVICES' && !self.name.startsWith('FEDGPU_')",
        message: 'NVIDIA_*, CUDA_VISIBLE_DEVICES and FEDGPU_* are set by fedgpu: a job sees only the GPUs it pays for',
        fieldPath: '.name',
      },
    ],
  },
);

const container = obj(
  'A container of the job pod: the core/v1 Container fields of the fedgpu allowlist.',
  {
    name: str('Name of the container, a DNS-1123 label.', { pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 }),
    image: str('Container image to run.', { minLength: 1, maxLength: 1024 }),
    command: strings('Entrypoint.'),
    args: strings('Arguments.'),
    workingDir: shortStr('Working directory.', 1024),
    env: arr('Environment variables.', envVar, { maxItems: 128 }),
    ports: arr(
      'Ports the container listens on (no host ports).',
      obj('A port.', {
        name: shortStr('Port name.', 15),
        containerPort: int('Port number.', { minimum: 1, maximum: 65535 }),
        protocol: oneOf('Protocol.', ['TCP', 'UDP', 'SCTP']),
      }, { required: ['containerPort'] }),
      { maxItems: 32 },
    ),
    resources: obj(`CPU, memory, ephemeral storage; ${GPU} only on the first container and equal to gpusPerReplica (fedgpu sets it). The containers' CPU and memory limits add up to at most the replica's share of its node (its GPUs' part of what the node has for jobs); the provider sets the unset ones from it, and requests to the limits.`, {
      limits: quantityMap('Limits.'),
      requests: quantityMap('Requests.'),
    }),
    volumeMounts: arr(
      'Mounts of the pod\'s emptyDir volumes.',
      obj('A mount.', {
        name: shortStr('Volume name.', 63),
        mountPath: shortStr('Where to mount it.', 1024),
        readOnly: bool('Mount read-only.'),
        subPath: shortStr('Sub-path of the volume.', 1024),
        subPathExpr: shortStr('Sub-path with $(VAR) expansion.', 1024),
      }, { required: ['name', 'mountPath'] }),
      { maxItems: 32 },
    ),
    livenessProbe: probe,
    readinessProbe: probe,
    startupProbe: probe,
    terminationMessagePath: shortStr('Where the container writes its termination message.', 1024),
    terminationMessagePolicy: oneOf('File, or FallbackToLogsOnError.', ['File', 'FallbackToLogsOnError']),
    imagePullPolicy: oneOf('When to pull the image.', ['Always', 'IfNotPresent', 'Never']),
    securityContext: containerSecurity,
    stdin: bool('Keep stdin open.'),
    stdinOnce: bool('Close stdin after the first attach.'),
    tty: bool('Allocate a TTY.'),
    restartPolicy: oneOf('Init containers only: Always makes a sidecar.', ['Always']),
  },
  { required: ['name', 'image'], tsName: 'JobContainer' },
);

const volume = obj(
  `A volume of the job pod: emptyDir only, with a sizeLimit up to ${MAX_EMPTY_DIR} (the provider's disk is bounded).`,
  {
    name: str('Name of the volume.', { maxLength: 63 }),
    emptyDir: obj('Scratch space that lives as long as the pod.', {
      medium: oneOf('"" (node disk) or Memory (counts against the memory limit).', ['', 'Memory']),
      sizeLimit: intOrString(`Size, at most ${MAX_EMPTY_DIR}.`, { maxLength: 32 } as Partial<Schema>),
    }, {
      required: ['sizeLimit'],
      'x-kubernetes-validations': [
        {
          rule: `isQuantity(string(self.sizeLimit)) && quantity(string(self.sizeLimit)).isGreaterThan(quantity('0')) && !quantity(string(self.sizeLimit)).isGreaterThan(quantity('${MAX_EMPTY_DIR}'))`,
          message: `sizeLimit must be a quantity between 1 byte and ${MAX_EMPTY_DIR}`,
          fieldPath: '.sizeLimit',
        },
      ],
    }),
  },
  { required: ['name', 'emptyDir'], tsName: 'JobVolume' },
);

const asksGpu = (c: string) =>
  `(has(${c}.resources) && ((has(${c}.resources.limits) && '${GPU}' in ${c}.resources.limits) || (has(${c}.resources.requests) && '${GPU}' in ${c}.resources.requests)))`;

const podSecurity = obj(
  'Pod security context: non-root, RuntimeDefault seccomp (forced).',
  {
    runAsUser: int('A non-root user id (fedgpu uses 65532 when unset).', { minimum: 1, maximum: 2147483647 }),
    runAsGroup: int('A group id.', { minimum: 0, maximum: 2147483647 }),
    runAsNonRoot: bool('Must be true or unset.'),
    fsGroup: int('Group owning the volumes.', { minimum: 0, maximum: 2147483647 }),
    fsGroupChangePolicy: oneOf('OnRootMismatch or Always.', ['OnRootMismatch', 'Always']),
    supplementalGroups: arr('Extra groups.', int('A group id.', { minimum: 0, maximum: 2147483647 }), { maxItems: 32 }),
    seccompProfile: obj('Seccomp profile: RuntimeDefault only.', { type: oneOf('RuntimeDefault.', ['RuntimeDefault']) }, { required: ['type'] }),
  },
  {
    'x-kubernetes-validations': [
      { rule: '!has(self.runAsNonRoot) || self.runAsNonRoot', message: 'job pods run as non-root', fieldPath: '.runAsNonRoot' },
    ],
    tsName: 'JobPodSecurityContext',
  },
);

const metadataMap = (description: string, annotations: boolean) =>
  stringMap(description, str('Value.', { maxLength: annotations ? 4096 : 63 }), {
    maxProperties: 64,
    'x-kubernetes-validations': [
      {
        rule: annotations
          ? `self.all(k, !k.matches('${RESERVED_KEY}') || k.startsWith('fedgpu.io/sim-'))`
          : `self.all(k, !k.matches('${RESERVED_KEY}'))`,
        messageExpression: annotations
          ? `'keys under kubernetes.io, k8s.io and fedgpu.io are reserved: ' + self.filter(k, k.matches('${RESERVED_KEY}') && !k.startsWith('fedgpu.io/sim-'))[0]`
          : `'keys under kubernetes.io, k8s.io and fedgpu.io are reserved: ' + self.filter(k, k.matches('${RESERVED_KEY}'))[0]`,
      },
      ...(annotations
        ? [
            {
              // A prefixed key is for someone's controller on the provider's cluster: Multus
              // (k8s.v1.cni.cncf.io/networks attaches a second network NetworkPolicy does not see),
              // Calico (cni.projectcalico.org/ipAddrs), meshes, runtimes. Too many to list.
              rule: `self.all(k, !k.contains('/') || k.startsWith('fedgpu.io/sim-'))`,
              messageExpression: `'annotations with a prefix are read by the provider cluster\\'s controllers (network plugins, runtimes) and are not allowed; use a key without one: ' + self.filter(k, k.contains('/') && !k.startsWith('fedgpu.io/sim-'))[0]`,
            },
            {
              rule: `self.all(k, !k.matches('${RUNTIME_ANNOTATION}'))`,
              messageExpression: `'container runtime annotations (io.kubernetes.cri-o., io.kubernetes.cri., io.katacontainers., dev.gvisor., io.containerd., run.oci., nvidia.com/, *cri-o.io/) are not allowed: ' + self.filter(k, k.matches('${RUNTIME_ANNOTATION}'))[0]`,
            },
          ]
        : []),
    ],
  });

export const podTemplateSchema: Schema = obj(
  'Template of each replica\'s pod: a PodTemplateSpec limited to the fields fedgpu runs on a stranger\'s GPUs ' +
    '(docs/isolation.md). Its annotations reach the pods, so fedgpu.io/sim-run-for and fedgpu.io/sim-exit-code ' +
    'drive simulated work in the sandbox.',
  {
    metadata: obj(
      'Labels and annotations copied onto every pod of the job (keys under kubernetes.io, k8s.io and fedgpu.io are reserved).',
      {
        labels: metadataMap('Labels for the pods.', false),
        annotations: metadataMap('Annotations for the pods.', true),
      },
      { tsName: 'JobTemplateMetadata' },
    ),
    spec: obj(
      'Pod spec: containers, init containers, emptyDir volumes, a non-root security context. fedgpu adds the ' +
        `${GPU} limit to the first container, the node, tolerations, runtime class and grace period, and forces ` +
        'non-root, no capabilities, RuntimeDefault seccomp and no service account token.',
      {
        containers: arr('Containers of the pod; the first holds the GPUs.', container, {
          minItems: 1,
          maxItems: 16,
          'x-kubernetes-list-type': 'map',
          'x-kubernetes-list-map-keys': ['name'],
        }),
        initContainers: arr('Init containers of the pod (no GPUs).', container, {
          maxItems: 16,
          'x-kubernetes-list-type': 'map',
          'x-kubernetes-list-map-keys': ['name'],
        }),
        volumes: arr('emptyDir volumes of the pod.', volume, { maxItems: 32, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] }),
        restartPolicy: str('Pod restart policy; fedgpu runs job pods with Never and retries whole attempts.', {
          enum: ['Never', 'OnFailure'],
        }),
        terminationGracePeriodSeconds: int('Grace period; spec.faultTolerance.checkpoint.gracePeriodSeconds wins.', { minimum: 0, maximum: 3600 }),
        activeDeadlineSeconds: int('Deadline of each pod.', { minimum: 1, maximum: 31536000 }),
        securityContext: podSecurity,
      },
      {
        required: ['containers'],
        'x-kubernetes-validations': [
          {
            rule: `self.containers.all(c, c.name == self.containers[0].name || !${asksGpu('c')})`,
            message: `only the first container (the billed one) gets ${GPU}; the others may not ask for GPUs`,
            fieldPath: '.containers',
          },
          {
            rule: `!has(self.initContainers) || self.initContainers.all(c, !${asksGpu('c')})`,
            message: `init containers may not ask for ${GPU}`,
            fieldPath: '.initContainers',
          },
        ],
        tsName: 'JobPodSpec',
      },
    ),
  },
  { required: ['spec'], tsName: 'JobPodTemplate' },
);

/** GpuJob spec rule: the billed container asks for exactly the GPUs the job pays for, or says nothing. */
export const billedGpuRule = {
  rule:
    `!has(self.template.spec.containers[0].resources) || ` +
    `((!has(self.template.spec.containers[0].resources.limits) || !('${GPU}' in self.template.spec.containers[0].resources.limits) || string(self.template.spec.containers[0].resources.limits['${GPU}']) == string(self.gpusPerReplica)) && ` +
    `(!has(self.template.spec.containers[0].resources.requests) || !('${GPU}' in self.template.spec.containers[0].resources.requests) || string(self.template.spec.containers[0].resources.requests['${GPU}']) == string(self.gpusPerReplica)))`,
  message: `the first container's ${GPU} must equal gpusPerReplica (or be left out: fedgpu sets it)`,
  fieldPath: '.template.spec.containers',
};
