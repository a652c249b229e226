import { SIM_EXIT_CODE_ANNOTATION, SIM_IMAGE_PULL_ERROR_ANNOTATION, SIM_NODE_DOWN_LABEL, SIM_RUN_FOR_ANNOTATION } from '../../api/constants.js';

// kwok v0.8 ships no default stages, so the test bed brings its own. They simulate a kubelet:
//  - node-initialize / node-heartbeat keep managed nodes Ready (unless labelled down),
//  - node-down turns a node NotReady while it carries the label fedgpu.io/sim-node-down,
//  - pod-ready runs every scheduled pod,
//  - pod-succeed / pod-fail end a running pod after the Go duration in fedgpu.io/sim-run-for,
//    failing with fedgpu.io/sim-exit-code when that annotation is present,
//  - pod-delete removes a deleted pod once its grace period (deletionTimestamp) has passed,
//  - pod-image-pull-error keeps a pod annotated fedgpu.io/sim-image-pull-error Pending in
//    ErrImagePull and records the Warning Event a kubelet would (through kwok's event recorder).

// Small builders for the parts the stages share; each returns YAML lines at the indentation the
// Stage needs, so the templates below read as the documents kwok gets.

type Operator = 'Exists' | 'DoesNotExist' | 'In' | 'NotIn';

/** One selector expression (kwok's jq-like key). */
function expression(key: string, operator: Operator, values?: string): string {
  return `    - key: '${key}'
      operator: '${operator}'${values === undefined ? '' : `\n      values: [${values}]`}`;
}

const annotation = (name: string): string => `.metadata.annotations["${name}"]`;
const nodeReadyStatus = '.status.conditions.[] | select( .type == "Ready" ) | .status';

/** A Stage document: its name, the kind it acts on, its selector, then its delay/next body. */
function stage(name: string, kind: 'Node' | 'Pod', expressions: string[], body: string): string {
  return `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: ${name}
spec:
  resourceRef:
    apiGroup: v1
    kind: ${kind}
  selector:
    matchExpressions:
${expressions.join('\n')}
${body}`;
}

const notDown = expression(`.metadata.labels["${SIM_NODE_DOWN_LABEL}"]`, 'DoesNotExist');
const podNotDeleted = expression('.metadata.deletionTimestamp', 'DoesNotExist');
/** A pod bound to a node that the kubelet has not started yet (no pod IP). */
const podBoundNotStarted = [expression('.spec.nodeName', 'Exists'), expression('.status.podIP', 'DoesNotExist')];

const readyConditions = `      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $lastTransitionTime | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type | Quote }}
      {{ end }}`;

/** Pod conditions, all with the same status, set now. */
function podConditions(status: 'True' | 'False', types: string[]): string {
  const items = types.map(
    (type) => `      - lastTransitionTime: {{ $now | Quote }}
        status: "${status}"
        type: ${type}`,
  );
  return ['      conditions:', ...items].join('\n');
}

/** The status of every container in a list, all in one state (`fields` in the order written). */
function containerStatuses(
  list: 'containers' | 'initContainers',
  flags: { ready: boolean; started?: boolean },
  state: 'running' | 'terminated' | 'waiting',
  fields: Array<[string, string]>,
): string {
  const field = list === 'containers' ? 'containerStatuses' : 'initContainerStatuses';
  return [
    `      ${field}:`,
    `      {{ range .spec.${list} }}`,
    '      - image: {{ .image | Quote }}',
    '        name: {{ .name | Quote }}',
    `        ready: ${flags.ready}`,
    '        restartCount: 0',
    ...(flags.started === undefined ? [] : [`        started: ${flags.started}`]),
    '        state:',
    `          ${state}:`,
    ...fields.map(([key, value]) => `            ${key}: ${value}`),
    '      {{ end }}',
  ].join('\n');
}

/** hostIP and podIP as kwok allocates them for the pod's node. */
const podAddresses = `      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}`;

/** A node's allocatable or capacity: what the node already says, else a large default machine. */
const nodeResources = (field: 'allocatable' | 'capacity'): string => `      ${field}:
      {{ with .status.${field} }}
      {{ YAML . 1 }}
      {{ else }}
        cpu: "64"
        memory: 512Gi
        pods: "110"
      {{ end }}`;

const nodeInitialize = stage(
  'node-initialize',
  'Node',
  [expression(nodeReadyStatus, 'NotIn', "'True'"), notDown],
  `  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $lastTransitionTime := $now }}
${readyConditions}
      addresses:
      {{ with .status.addresses }}
      {{ YAML . 1 }}
      {{ else }}
      {{ with NodeIP }}
      - address: {{ . | Quote }}
        type: InternalIP
      {{ end }}
      {{ with NodeName }}
      - address: {{ . | Quote }}
        type: Hostname
      {{ end }}
      {{ end }}
${nodeResources('allocatable')}
${nodeResources('capacity')}
      {{ with NodePort }}
      daemonEndpoints:
        kubeletEndpoint:
          Port: {{ . }}
      {{ end }}
      nodeInfo:
        architecture: amd64
        operatingSystem: linux
        kubeletVersion: kwok-{{ Version }}
        containerRuntimeVersion: kwok-{{ Version }}
      phase: Running
`,
);

const nodeHeartbeat = stage(
  'node-heartbeat',
  'Node',
  [expression('.status.phase', 'In', "'Running'"), expression(nodeReadyStatus, 'In', "'True'"), notDown],
  `  delay:
    durationMilliseconds: 10000
    jitterDurationMilliseconds: 5000
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
${readyConditions}
  immediateNextStage: true
`,
);

const nodeDown = stage(
  'node-down',
  'Node',
  [expression(`.metadata.labels["${SIM_NODE_DOWN_LABEL}"]`, 'Exists'), expression(nodeReadyStatus, 'In', "'True'")],
  `  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $now | Quote }}
        message: "simulated node loss (label ${SIM_NODE_DOWN_LABEL})"
        reason: KubeletNotReady
        status: "False"
        type: Ready
`,
);

const podReady = stage(
  'pod-ready',
  'Pod',
  [podNotDeleted, ...podBoundNotStarted, expression(annotation(SIM_IMAGE_PULL_ERROR_ANNOTATION), 'DoesNotExist')],
  `  next:
    statusTemplate: |
      {{ $now := Now }}
${podConditions('True', ['Initialized', 'Ready', 'ContainersReady'])}
${containerStatuses('containers', { ready: true, started: true }, 'running', [['startedAt', '{{ $now | Quote }}']])}
${containerStatuses('initContainers', { ready: true }, 'terminated', [
  ['exitCode', '0'],
  ['finishedAt', '{{ $now | Quote }}'],
  ['reason', 'Completed'],
  ['startedAt', '{{ $now | Quote }}'],
])}
${podAddresses}
      phase: Running
      startTime: {{ $now | Quote }}
`,
);

function podEnd(name: string, exitCodeExpr: 'Exists' | 'DoesNotExist'): string {
  const failed = exitCodeExpr === 'Exists';
  // Inside `range`, `.` is the container, so the pod's exit code is read once up front.
  const exitCode = failed ? `{{ index $.metadata.annotations "${SIM_EXIT_CODE_ANNOTATION}" }}` : '0';
  return stage(
    name,
    'Pod',
    [
      podNotDeleted,
      expression('.status.phase', 'In', "'Running'"),
      expression(annotation(SIM_RUN_FOR_ANNOTATION), 'Exists'),
      expression(annotation(SIM_EXIT_CODE_ANNOTATION), exitCodeExpr),
    ],
    `  delay:
    durationMilliseconds: 0
    durationFrom:
      expressionFrom: '${annotation(SIM_RUN_FOR_ANNOTATION)}'
  next:
    statusTemplate: |
      {{ $now := Now }}
${podConditions('False', ['Ready', 'ContainersReady'])}
${containerStatuses('containers', { ready: false, started: false }, 'terminated', [
  ['exitCode', exitCode],
  ['finishedAt', '{{ $now | Quote }}'],
  ['reason', failed ? 'Error' : 'Completed'],
  ['startedAt', '{{ or $.status.startTime $now | Quote }}'],
])}
      phase: ${failed ? 'Failed' : 'Succeeded'}
`,
  );
}

const podDelete = stage(
  'pod-delete',
  'Pod',
  [expression('.metadata.deletionTimestamp', 'Exists')],
  `  delay:
    durationMilliseconds: 0
    durationFrom:
      expressionFrom: '.metadata.deletionTimestamp'
  next:
    finalizers:
      empty: true
    delete: true
`,
);

const podImagePullError = stage(
  'pod-image-pull-error',
  'Pod',
  [podNotDeleted, ...podBoundNotStarted, expression(annotation(SIM_IMAGE_PULL_ERROR_ANNOTATION), 'Exists')],
  `  next:
    event:
      type: Warning
      reason: Failed
      message: 'Failed to pull image: rpc error: code = NotFound desc = failed to pull and unpack image: not found (ErrImagePull, simulated by the test bed)'
    statusTemplate: |
${containerStatuses('containers', { ready: false, started: false }, 'waiting', [
  ['reason', 'ErrImagePull'],
  ['message', "'failed to pull and unpack image: not found'"],
])}
${podAddresses}
      phase: Pending
`,
);

/** The kwok configuration file: every stage above, as one multi-document YAML. */
export function kwokStagesYaml(): string {
  return [
    nodeInitialize,
    nodeHeartbeat,
    nodeDown,
    podReady,
    podEnd('pod-succeed', 'DoesNotExist'),
    podEnd('pod-fail', 'Exists'),
    podDelete,
    podImagePullError,
  ].join('---\n');
}
