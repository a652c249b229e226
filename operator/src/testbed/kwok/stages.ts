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

const notDown = `    - key: '.metadata.labels["${SIM_NODE_DOWN_LABEL}"]'
      operator: 'DoesNotExist'`;

const readyConditions = `      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $lastTransitionTime | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type | Quote }}
      {{ end }}`;

const nodeInitialize = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-initialize
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values: ['True']
${notDown}
  next:
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
      allocatable:
      {{ with .status.allocatable }}
      {{ YAML . 1 }}
      {{ else }}
        cpu: "64"
        memory: 512Gi
        pods: "110"
      {{ end }}
      capacity:
      {{ with .status.capacity }}
      {{ YAML . 1 }}
      {{ else }}
        cpu: "64"
        memory: 512Gi
        pods: "110"
      {{ end }}
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
`;

const nodeHeartbeat = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-heartbeat
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'In'
      values: ['True']
${notDown}
  delay:
    durationMilliseconds: 10000
    jitterDurationMilliseconds: 5000
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
${readyConditions}
  immediateNextStage: true
`;

const nodeDown = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-down
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.metadata.labels["${SIM_NODE_DOWN_LABEL}"]'
      operator: 'Exists'
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'In'
      values: ['True']
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $now | Quote }}
        message: "simulated node loss (label ${SIM_NODE_DOWN_LABEL})"
        reason: KubeletNotReady
        status: "False"
        type: Ready
`;

const podReady = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.spec.nodeName'
      operator: 'Exists'
    - key: '.status.podIP'
      operator: 'DoesNotExist'
    - key: '.metadata.annotations["${SIM_IMAGE_PULL_ERROR_ANNOTATION}"]'
      operator: 'DoesNotExist'
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: ContainersReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        started: true
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}
      initContainerStatuses:
      {{ range .spec.initContainers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        state:
          terminated:
            exitCode: 0
            finishedAt: {{ $now | Quote }}
            reason: Completed
            startedAt: {{ $now | Quote }}
      {{ end }}
      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
      phase: Running
      startTime: {{ $now | Quote }}
`;

function podEnd(name: string, exitCodeExpr: 'Exists' | 'DoesNotExist'): string {
  const failed = exitCodeExpr === 'Exists';
  // Inside `range`, `.` is the container, so the pod's exit code is read once up front.
  const exitCode = failed ? `{{ index $.metadata.annotations "${SIM_EXIT_CODE_ANNOTATION}" }}` : '0';
  return `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: ${name}
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
    - key: '.metadata.annotations["${SIM_RUN_FOR_ANNOTATION}"]'
      operator: 'Exists'
    - key: '.metadata.annotations["${SIM_EXIT_CODE_ANNOTATION}"]'
      operator: '${exitCodeExpr}'
  delay:
    durationMilliseconds: 0
    durationFrom:
      expressionFrom: '.metadata.annotations["${SIM_RUN_FOR_ANNOTATION}"]'
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: ContainersReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: ${exitCode}
            finishedAt: {{ $now | Quote }}
            reason: ${failed ? 'Error' : 'Completed'}
            startedAt: {{ or $.status.startTime $now | Quote }}
      {{ end }}
      phase: ${failed ? 'Failed' : 'Succeeded'}
`;
}

const podDelete = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'Exists'
  delay:
    durationMilliseconds: 0
    durationFrom:
      expressionFrom: '.metadata.deletionTimestamp'
  next:
    finalizers:
      empty: true
    delete: true
`;

const podImagePullError = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-image-pull-error
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.spec.nodeName'
      operator: 'Exists'
    - key: '.status.podIP'
      operator: 'DoesNotExist'
    - key: '.metadata.annotations["${SIM_IMAGE_PULL_ERROR_ANNOTATION}"]'
      operator: 'Exists'
  next:
    event:
      type: Warning
      reason: Failed
      message: 'Failed to pull image: rpc error: code = NotFound desc = failed to pull and unpack image: not found (ErrImagePull, simulated by the test bed)'
    statusTemplate: |
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          waiting:
            reason: ErrImagePull
            message: 'failed to pull and unpack image: not found'
      {{ end }}
      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
      phase: Pending
`;

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
