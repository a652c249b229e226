import { arr, bool, obj, str, stringMap, type Schema } from './builder.js';

// A GpuJob carries a standard PodTemplateSpec so ML teams write what they already know. We do not
// copy the whole core/v1 schema (the provider's own apiserver validates pods in full); we pin down
// the parts we rely on and refuse early, with a clear message, what PodSecurity `restricted`
// would refuse later on the provider's side.

const container = obj(
  'A container of the job pod (core/v1 Container; all its fields are accepted).',
  {
    name: str('Name of the container, a DNS-1123 label.', {
      pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
      maxLength: 63,
    }),
    image: str('Container image to run.', { minLength: 1, maxLength: 1024 }),
    securityContext: obj(
      'Container security context. Privileged containers are refused: job pods run under PodSecurity restricted.',
      { privileged: bool('Must be false or unset.') },
      {
        'x-kubernetes-preserve-unknown-fields': true,
        'x-kubernetes-validations': [
          {
            rule: '!has(self.privileged) || !self.privileged',
            message: 'privileged containers are not allowed: job pods run under PodSecurity restricted',
          },
        ],
      },
    ),
  },
  { required: ['name', 'image'], 'x-kubernetes-preserve-unknown-fields': true, tsName: 'JobContainer' },
);

const volume = obj(
  'A volume of the job pod (core/v1 Volume). hostPath volumes are refused.',
  {
    name: str('Name of the volume.', { maxLength: 63 }),
    hostPath: obj('Refused: declared only so the rule below can see it.', {}, {
      'x-kubernetes-preserve-unknown-fields': true,
    }),
  },
  {
    required: ['name'],
    'x-kubernetes-preserve-unknown-fields': true,
    'x-kubernetes-validations': [
      {
        rule: "!has(self.hostPath)",
        message: 'hostPath volumes are not allowed: job pods run under PodSecurity restricted',
      },
    ],
    tsName: 'JobVolume',
  },
);

export const podTemplateSchema: Schema = obj(
  'Template of each replica\'s pod: a standard PodTemplateSpec. Its annotations reach the pods, ' +
    'so fedgpu.io/sim-run-for and fedgpu.io/sim-exit-code drive simulated work in the sandbox.',
  {
    metadata: obj(
      'Labels and annotations copied onto every pod of the job.',
      {
        labels: stringMap('Labels for the pods.', str('Label value.', { maxLength: 63 }), { maxProperties: 64 }),
        annotations: stringMap('Annotations for the pods.', str('Annotation value.', { maxLength: 4096 }), {
          maxProperties: 64,
        }),
      },
      { tsName: 'JobTemplateMetadata' },
    ),
    spec: obj(
      'Pod spec (core/v1 PodSpec). nvidia.com/gpu limits, node affinity and tolerations are added by ' +
        'fedgpu; host namespaces, hostPath and privileged containers are refused.',
      {
        containers: arr('Containers of the pod; at least one.', container, { minItems: 1, maxItems: 16 }),
        initContainers: arr('Init containers of the pod.', container, { maxItems: 16 }),
        volumes: arr('Volumes of the pod.', volume, { maxItems: 64 }),
        hostNetwork: bool('Must be false or unset.'),
        hostPID: bool('Must be false or unset.'),
        hostIPC: bool('Must be false or unset.'),
        restartPolicy: str('Pod restart policy; fedgpu runs job pods with Never and retries whole attempts.', {
          enum: ['Never', 'OnFailure'],
        }),
      },
      {
        required: ['containers'],
        'x-kubernetes-preserve-unknown-fields': true,
        'x-kubernetes-validations': [
          {
            rule: '(!has(self.hostNetwork) || !self.hostNetwork) && (!has(self.hostPID) || !self.hostPID) && (!has(self.hostIPC) || !self.hostIPC)',
            message: 'host namespaces (hostNetwork, hostPID, hostIPC) are not allowed: job pods run under PodSecurity restricted',
          },
        ],
        tsName: 'JobPodSpec',
      },
    ),
  },
  { required: ['spec'], tsName: 'JobPodTemplate' },
);
