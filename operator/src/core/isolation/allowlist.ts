import type {
  V1Container,
  V1EnvVar,
  V1Pod,
  V1PodSecurityContext,
  V1PodSpec,
  V1PodTemplateSpec,
  V1Probe,
  V1SecurityContext,
  V1Volume,
} from '@kubernetes/client-node';
import { GPU_RESOURCE } from '../../api/constants.js';
import { parseQuantity, QUANTITY_PATTERN } from '../idle.js';

// The job pod allowlist (DESIGN §8): a stranger's pod is rebuilt from the fields listed here, one by
// one, never by spreading the consumer's template over our defaults. A field not listed is refused
// with its path and the reason; a listed field with a dangerous value too. What makes a pod safe
// (non-root, no capabilities, RuntimeDefault seccomp, no token, GPUs only on the billed container)
// is set here, whatever the template says. Pure: the agent builds pods with it, the hub checks
// templates with it, and the CRD's CEL rules say the same things at `kubectl apply`.

export interface Refusal {
  /** Field path in the template, e.g. `spec.containers[1].resources.limits["nvidia.com/gpu"]`. */
  path: string;
  reason: string;
}

export interface AllowlistOptions {
  /** GPUs the attempt pays for per replica: the billed container (the first) gets exactly these. */
  gpusPerReplica: number;
  /** Largest emptyDir sizeLimit accepted, in bytes (the namespace's quota bounds the sum). */
  maxEmptyDirBytes?: number;
}

/** What the template may carry, rebuilt into the pieces the agent assembles into a pod. */
export interface SafeTemplate {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  spec: V1PodSpec;
}

export type AllowlistResult = { ok: true; template: SafeTemplate } | { ok: false; refusals: Refusal[] };

export const DEFAULT_MAX_EMPTY_DIR_BYTES = 200 * 2 ** 30;
/** The user a container runs as when the template names none: non-root, like distroless' nonroot. */
export const DEFAULT_RUN_AS_USER = 65532;
export const GPU_ENV_PATTERN = /^(NVIDIA_|CUDA_VISIBLE_DEVICES$|FEDGPU_)/;
/** Resources a container may ask for; nvidia.com/gpu only on the billed container. */
export const ALLOWED_RESOURCES = ['cpu', 'memory', 'ephemeral-storage', GPU_RESOURCE] as const;
/** Label and annotation key prefixes reserved for Kubernetes and fedgpu itself. */
const RESERVED_KEY = /^([a-z0-9.-]*\.)?(kubernetes\.io|k8s\.io|fedgpu\.io)\//;
/**
 * Annotations container runtimes read from the pod to configure its sandbox: CRI-O's (devices,
 * user namespaces, shm, seccomp profiles), Kata's (hypervisor, kernel parameters), gVisor's
 * (mounts), containerd's, crun's (run.oci.*) and NVIDIA's. On a provider whose owner chose a stronger RuntimeClass they would undo it.
 */
const RUNTIME_ANNOTATION = /^(io\.kubernetes\.cri-o\.|io\.kubernetes\.cri\.|io\.katacontainers\.|dev\.gvisor\.|io\.containerd\.|run\.oci\.|nvidia\.com\/|([a-z0-9.-]*\.)?cri-o\.io\/)/;
/** fedgpu's own annotations a template may carry (the test bed's simulated work). */
const ALLOWED_FEDGPU_ANNOTATION = /^fedgpu\.io\/sim-[a-z-]+$/;
const DOWNWARD_FIELDS = /^(metadata\.(name|namespace|uid)|metadata\.(labels|annotations)(\['[^']+'\])?|status\.podIPs?|status\.hostIP|spec\.nodeName)$/;

// Fields we know and refuse, with the reason a consumer needs to hear. Anything else not allowed
// gets the generic reason.
const POD_REFUSED: Record<string, string> = {
  hostNetwork: 'host namespaces are not allowed',
  hostPID: 'host namespaces are not allowed',
  hostIPC: 'host namespaces are not allowed',
  hostUsers: 'user namespaces are set by the provider',
  serviceAccountName: 'job pods run with no service account of the provider',
  serviceAccount: 'job pods run with no service account of the provider',
  automountServiceAccountToken: 'job pods never get a service account token',
  priorityClassName: 'a job cannot preempt the owner\'s pods',
  priority: 'a job cannot preempt the owner\'s pods',
  preemptionPolicy: 'a job cannot preempt the owner\'s pods',
  runtimeClassName: 'the runtime class is chosen by the provider for its pool',
  nodeName: 'the hub chooses the node',
  nodeSelector: 'the hub chooses the node',
  affinity: 'the hub chooses the node',
  tolerations: 'tolerations are set by fedgpu',
  topologySpreadConstraints: 'the hub chooses the node',
  schedulerName: 'the provider\'s scheduler binds job pods',
  imagePullSecrets: 'pull secrets would name the provider\'s Secrets',
  hostAliases: 'host aliases are not allowed',
  dnsPolicy: 'DNS is set by the provider',
  dnsConfig: 'DNS is set by the provider',
  hostname: 'set by fedgpu',
  subdomain: 'set by fedgpu',
  setHostnameAsFQDN: 'set by fedgpu',
  overhead: 'set by the runtime class',
  resourceClaims: 'dynamic resources are not offered',
  readinessGates: 'not supported for job pods',
  shareProcessNamespace: 'not supported for job pods',
  os: 'job pods run on Linux',
  enableServiceLinks: 'service links are off for job pods',
  ephemeralContainers: 'ephemeral containers are not allowed',
};

const notAllowed = 'not in the allowlist of fields fedgpu runs';

class Collector {
  readonly refusals: Refusal[] = [];
  refuse(path: string, reason: string): void {
    this.refusals.push({ path, reason });
  }
  /** Refuses every key of `obj` not in `allowed`. */
  only(obj: object | undefined, path: string, allowed: readonly string[], known: Record<string, string> = {}): void {
    if (!obj) return;
    for (const [key, value] of Object.entries(obj)) {
      if (value === undefined || value === null) continue;
      if (!allowed.includes(key)) this.refuse(`${path}.${key}`, known[key] ?? notAllowed);
    }
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
const quoted = (key: string) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `.${key}` : `["${key}"]`);

/** Bytes in a quantity, or undefined when it is not one. */
function quantityBytes(q: unknown): number | undefined {
  if (typeof q === 'number') return q >= 0 ? q : undefined;
  if (typeof q !== 'string' || !QUANTITY_PATTERN.test(q.trim())) return undefined;
  return parseQuantity(q);
}

function checkMetadataMap(c: Collector, map: unknown, path: string, annotations: boolean): Record<string, string> {
  if (map === undefined || map === null) return {};
  if (!isObject(map)) {
    c.refuse(path, 'must be a map of strings');
    return {};
  }
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(map)) {
    if (typeof value !== 'string') c.refuse(`${path}["${key}"]`, 'must be a string');
    else if (RESERVED_KEY.test(key) && !(annotations && ALLOWED_FEDGPU_ANNOTATION.test(key))) {
      c.refuse(`${path}["${key}"]`, 'keys under kubernetes.io, k8s.io and fedgpu.io are reserved');
    } else if (annotations && RUNTIME_ANNOTATION.test(key)) {
      c.refuse(`${path}["${key}"]`, 'container runtime annotations (io.kubernetes.cri-o., io.kubernetes.cri., io.katacontainers., dev.gvisor., io.containerd., run.oci., nvidia.com/, *cri-o.io/) are not allowed');
    } else if (annotations && key.includes('/') && !ALLOWED_FEDGPU_ANNOTATION.test(key)) {
      // For the provider's controllers (Multus attaches networks NetworkPolicy does not govern,
      // Calico picks addresses): never on a job pod. Dropped, not refused: the CRD refuses them at
      // create, and a job placed before that rule must not fail when its agent rebuilds its pods.
      continue;
    } else out[key] = value;
  }
  return out;
}

function safeEnv(c: Collector, env: V1EnvVar[] | undefined, path: string): V1EnvVar[] {
  const out: V1EnvVar[] = [];
  (env ?? []).forEach((e, i) => {
    const p = `${path}[${i}]`;
    c.only(e, p, ['name', 'value', 'valueFrom']);
    if (typeof e.name !== 'string' || !e.name) return c.refuse(`${p}.name`, 'required');
    if (GPU_ENV_PATTERN.test(e.name)) {
      return c.refuse(`${p}.name`, `${e.name} is reserved: GPU visibility and FEDGPU_* are set by fedgpu`);
    }
    if (e.valueFrom) {
      const from = e.valueFrom as Record<string, unknown>;
      c.only(from, `${p}.valueFrom`, ['fieldRef', 'resourceFieldRef'], {
        secretKeyRef: 'would read the provider\'s Secrets',
        configMapKeyRef: 'would read the provider\'s ConfigMaps',
      });
      const fieldPath = e.valueFrom.fieldRef?.fieldPath;
      if (e.valueFrom.fieldRef && (typeof fieldPath !== 'string' || !DOWNWARD_FIELDS.test(fieldPath))) {
        c.refuse(`${p}.valueFrom.fieldRef.fieldPath`, 'only the pod\'s own metadata, IPs and node name');
      }
      const out1: V1EnvVar = { name: e.name, valueFrom: {} };
      if (e.valueFrom.fieldRef) out1.valueFrom!.fieldRef = { fieldPath: String(fieldPath) };
      const rf = e.valueFrom.resourceFieldRef;
      if (rf) out1.valueFrom!.resourceFieldRef = { resource: rf.resource, ...(rf.divisor !== undefined ? { divisor: rf.divisor } : {}) };
      out.push(out1);
      return;
    }
    out.push({ name: e.name, value: e.value === undefined ? '' : String(e.value) });
  });
  return out;
}

function safeProbe(c: Collector, probe: V1Probe | undefined, path: string): V1Probe | undefined {
  if (!probe) return undefined;
  const timing = ['initialDelaySeconds', 'periodSeconds', 'timeoutSeconds', 'successThreshold', 'failureThreshold', 'terminationGracePeriodSeconds'] as const;
  c.only(probe, path, ['exec', 'httpGet', 'tcpSocket', 'grpc', ...timing]);
  const out: V1Probe = {};
  for (const k of timing) if (probe[k] !== undefined) out[k] = probe[k];
  if (probe.exec) {
    c.only(probe.exec, `${path}.exec`, ['command']);
    out.exec = { command: probe.exec.command };
  }
  if (probe.httpGet) {
    c.only(probe.httpGet, `${path}.httpGet`, ['path', 'port', 'scheme', 'httpHeaders'], {
      host: 'the kubelet would probe another host from the provider\'s node',
    });
    const { path: p, port, scheme, httpHeaders } = probe.httpGet;
    out.httpGet = { port, ...(p ? { path: p } : {}), ...(scheme ? { scheme } : {}), ...(httpHeaders ? { httpHeaders } : {}) };
  }
  if (probe.tcpSocket) {
    c.only(probe.tcpSocket, `${path}.tcpSocket`, ['port'], { host: 'the kubelet would probe another host from the provider\'s node' });
    out.tcpSocket = { port: probe.tcpSocket.port };
  }
  if (probe.grpc) {
    c.only(probe.grpc, `${path}.grpc`, ['port', 'service']);
    out.grpc = { port: probe.grpc.port, ...(probe.grpc.service ? { service: probe.grpc.service } : {}) };
  }
  return out;
}

function safeContainerSecurity(c: Collector, sc: V1SecurityContext | undefined, path: string): V1SecurityContext {
  c.only(sc, path, ['runAsUser', 'runAsGroup', 'runAsNonRoot', 'readOnlyRootFilesystem', 'allowPrivilegeEscalation', 'privileged', 'capabilities', 'seccompProfile'], {
    seLinuxOptions: 'SELinux options are set by the provider',
    procMount: 'only the default proc mount',
    appArmorProfile: 'AppArmor is set by the provider',
    windowsOptions: 'job pods run on Linux',
  });
  if (sc?.runAsUser !== undefined && !(Number.isInteger(sc.runAsUser) && sc.runAsUser > 0)) c.refuse(`${path}.runAsUser`, 'must be a non-root user (> 0)');
  if (sc?.runAsGroup !== undefined && !(Number.isInteger(sc.runAsGroup) && sc.runAsGroup >= 0)) c.refuse(`${path}.runAsGroup`, 'must be a group id');
  if (sc?.runAsNonRoot === false) c.refuse(`${path}.runAsNonRoot`, 'job pods run as non-root');
  if (sc?.privileged) c.refuse(`${path}.privileged`, 'privileged containers are not allowed');
  if (sc?.allowPrivilegeEscalation) c.refuse(`${path}.allowPrivilegeEscalation`, 'must be false');
  if (sc?.capabilities) {
    c.only(sc.capabilities, `${path}.capabilities`, ['drop']);
    if (sc.capabilities.add?.length) c.refuse(`${path}.capabilities.add`, 'job pods run with all capabilities dropped');
  }
  if (sc?.seccompProfile && sc.seccompProfile.type !== 'RuntimeDefault') {
    c.refuse(`${path}.seccompProfile.type`, 'only RuntimeDefault');
  }
  // Forced: whatever the template says, these hold.
  return {
    runAsNonRoot: true,
    ...(sc?.runAsUser !== undefined ? { runAsUser: sc.runAsUser } : {}),
    ...(sc?.runAsGroup !== undefined ? { runAsGroup: sc.runAsGroup } : {}),
    allowPrivilegeEscalation: false,
    privileged: false,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
    // Read-only root unless the job says it must write there (its writes count as ephemeral storage).
    readOnlyRootFilesystem: sc?.readOnlyRootFilesystem ?? true,
  };
}

function safeResources(c: Collector, container: V1Container, path: string, gpus: number | undefined): V1Container['resources'] {
  const res = container.resources;
  c.only(res, `${path}.resources`, ['limits', 'requests'], { claims: 'dynamic resources are not offered' });
  const out: { limits: Record<string, string>; requests: Record<string, string> } = { limits: {}, requests: {} };
  for (const kind of ['limits', 'requests'] as const) {
    const map = res?.[kind] as Record<string, unknown> | undefined;
    for (const [name, value] of Object.entries(map ?? {})) {
      const p = `${path}.resources.${kind}${quoted(name)}`;
      if (!(ALLOWED_RESOURCES as readonly string[]).includes(name)) {
        c.refuse(p, `only ${ALLOWED_RESOURCES.join(', ')} may be requested`);
      } else if (name === GPU_RESOURCE) {
        if (gpus === undefined) c.refuse(p, 'only the first container gets GPUs: the ones the attempt pays for');
        else if (quantityBytes(value) !== gpus) c.refuse(p, `the job pays for ${gpus} GPU(s) per replica`);
      } else if (quantityBytes(value) === undefined) c.refuse(p, 'not a quantity');
      else out[kind][name] = String(value);
    }
  }
  if (gpus !== undefined && gpus > 0) {
    out.limits[GPU_RESOURCE] = String(gpus);
    out.requests[GPU_RESOURCE] = String(gpus);
  }
  return out;
}

function safeContainer(
  c: Collector,
  container: V1Container,
  path: string,
  volumes: ReadonlySet<string>,
  gpus: number | undefined,
  init: boolean,
): V1Container {
  c.only(container, path, [
    'name', 'image', 'command', 'args', 'workingDir', 'env', 'ports', 'resources', 'volumeMounts',
    'livenessProbe', 'readinessProbe', 'startupProbe', 'terminationMessagePath', 'terminationMessagePolicy',
    'imagePullPolicy', 'securityContext', 'stdin', 'stdinOnce', 'tty', ...(init ? ['restartPolicy'] : []),
  ], {
    envFrom: 'would read the provider\'s Secrets or ConfigMaps',
    volumeDevices: 'only emptyDir volumes',
    lifecycle: 'lifecycle hooks are not supported for job pods',
  });
  if (typeof container.name !== 'string' || !container.name) c.refuse(`${path}.name`, 'required');
  if (typeof container.image !== 'string' || !container.image) c.refuse(`${path}.image`, 'required');
  if (container.command !== undefined && !isStringArray(container.command)) c.refuse(`${path}.command`, 'must be a list of strings');
  if (container.args !== undefined && !isStringArray(container.args)) c.refuse(`${path}.args`, 'must be a list of strings');
  if (init && container.restartPolicy !== undefined && container.restartPolicy !== 'Always') c.refuse(`${path}.restartPolicy`, 'only Always (a sidecar)');
  const out: V1Container = { name: container.name, image: container.image };
  for (const k of ['command', 'args', 'workingDir', 'terminationMessagePath', 'terminationMessagePolicy', 'imagePullPolicy', 'stdin', 'stdinOnce', 'tty'] as const) {
    if (container[k] !== undefined) (out as unknown as Record<string, unknown>)[k] = container[k];
  }
  if (init && container.restartPolicy === 'Always') out.restartPolicy = 'Always';
  if (container.env) out.env = safeEnv(c, container.env, `${path}.env`);
  if (container.ports) {
    out.ports = container.ports.map((port, i) => {
      c.only(port, `${path}.ports[${i}]`, ['name', 'containerPort', 'protocol'], {
        hostPort: 'host ports are not allowed',
        hostIP: 'host ports are not allowed',
      });
      return { containerPort: port.containerPort, ...(port.name ? { name: port.name } : {}), ...(port.protocol ? { protocol: port.protocol } : {}) };
    });
  }
  out.resources = safeResources(c, container, path, gpus);
  if (container.volumeMounts) {
    out.volumeMounts = container.volumeMounts.map((m, i) => {
      const p = `${path}.volumeMounts[${i}]`;
      c.only(m, p, ['name', 'mountPath', 'readOnly', 'subPath', 'subPathExpr'], {
        mountPropagation: 'mount propagation reaches the node',
        recursiveReadOnly: notAllowed,
      });
      if (!volumes.has(m.name)) c.refuse(`${p}.name`, `no emptyDir volume named ${m.name}`);
      return { name: m.name, mountPath: m.mountPath, ...(m.readOnly ? { readOnly: true } : {}), ...(m.subPath ? { subPath: m.subPath } : {}), ...(m.subPathExpr ? { subPathExpr: m.subPathExpr } : {}) };
    });
  }
  for (const k of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const) {
    const probe = safeProbe(c, container[k], `${path}.${k}`);
    if (probe) out[k] = probe;
  }
  out.securityContext = safeContainerSecurity(c, container.securityContext, `${path}.securityContext`);
  return out;
}

function safeVolume(c: Collector, volume: V1Volume, path: string, maxBytes: number): V1Volume | undefined {
  c.only(volume, path, ['name', 'emptyDir'], {
    hostPath: 'hostPath volumes reach the provider\'s node',
    secret: 'would mount the provider\'s Secrets',
    configMap: 'would mount the provider\'s ConfigMaps',
    projected: 'projected volumes carry tokens or the provider\'s objects',
    persistentVolumeClaim: 'would mount the provider\'s storage',
    ephemeral: 'the provider would pay for the storage',
    csi: 'only emptyDir volumes',
    nfs: 'only emptyDir volumes',
    iscsi: 'only emptyDir volumes',
    downwardAPI: 'only emptyDir volumes',
    image: 'only emptyDir volumes',
  });
  if (!volume.emptyDir) {
    c.refuse(path, 'only emptyDir volumes with a sizeLimit');
    return undefined;
  }
  c.only(volume.emptyDir, `${path}.emptyDir`, ['medium', 'sizeLimit']);
  const medium = volume.emptyDir.medium;
  if (medium !== undefined && medium !== '' && medium !== 'Memory') c.refuse(`${path}.emptyDir.medium`, 'only the default or Memory');
  const bytes = quantityBytes(volume.emptyDir.sizeLimit);
  if (volume.emptyDir.sizeLimit === undefined) c.refuse(`${path}.emptyDir.sizeLimit`, 'required: the provider\'s disk is bounded');
  else if (bytes === undefined) c.refuse(`${path}.emptyDir.sizeLimit`, 'not a quantity');
  else if (bytes <= 0 || bytes > maxBytes) c.refuse(`${path}.emptyDir.sizeLimit`, `must be between 1 byte and ${maxBytes / 2 ** 30}Gi`);
  return { name: volume.name, emptyDir: { ...(medium ? { medium } : {}), sizeLimit: String(volume.emptyDir.sizeLimit) } };
}

function safePodSecurity(c: Collector, sc: V1PodSecurityContext | undefined, path: string): V1PodSecurityContext {
  c.only(sc, path, ['runAsUser', 'runAsGroup', 'runAsNonRoot', 'fsGroup', 'fsGroupChangePolicy', 'supplementalGroups', 'seccompProfile'], {
    sysctls: 'sysctls are set by the provider',
    seLinuxOptions: 'SELinux options are set by the provider',
    appArmorProfile: 'AppArmor is set by the provider',
    windowsOptions: 'job pods run on Linux',
    supplementalGroupsPolicy: notAllowed,
    seLinuxChangePolicy: notAllowed,
  });
  if (sc?.runAsUser !== undefined && !(Number.isInteger(sc.runAsUser) && sc.runAsUser > 0)) c.refuse(`${path}.runAsUser`, 'must be a non-root user (> 0)');
  if (sc?.runAsNonRoot === false) c.refuse(`${path}.runAsNonRoot`, 'job pods run as non-root');
  if (sc?.seccompProfile && sc.seccompProfile.type !== 'RuntimeDefault') c.refuse(`${path}.seccompProfile.type`, 'only RuntimeDefault');
  for (const k of ['runAsGroup', 'fsGroup'] as const) {
    if (sc?.[k] !== undefined && !(Number.isInteger(sc[k]) && (sc[k] as number) >= 0)) c.refuse(`${path}.${k}`, 'must be a group id');
  }
  return {
    runAsNonRoot: true,
    runAsUser: sc?.runAsUser ?? DEFAULT_RUN_AS_USER,
    ...(sc?.runAsGroup !== undefined ? { runAsGroup: sc.runAsGroup } : {}),
    ...(sc?.fsGroup !== undefined ? { fsGroup: sc.fsGroup } : {}),
    ...(sc?.fsGroupChangePolicy ? { fsGroupChangePolicy: sc.fsGroupChangePolicy } : {}),
    ...(sc?.supplementalGroups ? { supplementalGroups: sc.supplementalGroups } : {}),
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/**
 * Rebuilds a consumer's pod template from the allowlist, or says every field that is refused and
 * why. The result carries only allowed fields plus the forced security settings; scheduling
 * (node, tolerations, runtime class, grace period) is the caller's to add.
 */
export function allowlistTemplate(template: V1PodTemplateSpec | undefined, options: AllowlistOptions): AllowlistResult {
  const c = new Collector();
  const maxBytes = options.maxEmptyDirBytes ?? DEFAULT_MAX_EMPTY_DIR_BYTES;
  if (!isObject(template)) return { ok: false, refusals: [{ path: 'template', reason: 'must be a PodTemplateSpec' }] };
  c.only(template, 'template', ['metadata', 'spec']);
  const meta = (template.metadata ?? {}) as Record<string, unknown>;
  c.only(meta, 'template.metadata', ['labels', 'annotations', ...(meta.creationTimestamp === null ? ['creationTimestamp'] : [])]);
  const labels = checkMetadataMap(c, meta.labels, 'template.metadata.labels', false);
  const annotations = checkMetadataMap(c, meta.annotations, 'template.metadata.annotations', true);
  const spec = template.spec as V1PodSpec;
  if (!isObject(template.spec) || !Array.isArray(spec.containers) || spec.containers.length === 0) {
    c.refuse('template.spec.containers', 'at least one container is required');
    return { ok: false, refusals: c.refusals };
  }
  c.only(spec, 'template.spec', ['containers', 'initContainers', 'volumes', 'restartPolicy', 'terminationGracePeriodSeconds', 'activeDeadlineSeconds', 'securityContext'], POD_REFUSED);
  if (spec.restartPolicy !== undefined && spec.restartPolicy !== 'Never' && spec.restartPolicy !== 'OnFailure') {
    c.refuse('template.spec.restartPolicy', 'only Never or OnFailure (fedgpu retries whole attempts)');
  }
  if (!Number.isInteger(options.gpusPerReplica) || options.gpusPerReplica < 0) c.refuse('gpusPerReplica', 'must be a whole number');
  const volumes = (spec.volumes ?? [])
    .map((v, i) => safeVolume(c, v, `template.spec.volumes[${i}]`, maxBytes))
    .filter((v): v is V1Volume => v !== undefined);
  const names = new Set(volumes.map((v) => v.name));
  const out: V1PodSpec = {
    containers: spec.containers.map((ct, i) => safeContainer(c, ct, `template.spec.containers[${i}]`, names, i === 0 ? options.gpusPerReplica : undefined, false)),
    restartPolicy: 'Never',
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    securityContext: safePodSecurity(c, spec.securityContext, 'template.spec.securityContext'),
  };
  if (spec.initContainers?.length) {
    out.initContainers = spec.initContainers.map((ct, i) => safeContainer(c, ct, `template.spec.initContainers[${i}]`, names, undefined, true));
  }
  if (volumes.length) out.volumes = volumes;
  if (spec.activeDeadlineSeconds !== undefined) {
    if (Number.isInteger(spec.activeDeadlineSeconds) && spec.activeDeadlineSeconds > 0) out.activeDeadlineSeconds = spec.activeDeadlineSeconds;
    else c.refuse('template.spec.activeDeadlineSeconds', 'must be a positive whole number');
  }
  if (spec.terminationGracePeriodSeconds !== undefined) out.terminationGracePeriodSeconds = spec.terminationGracePeriodSeconds;
  return c.refusals.length ? { ok: false, refusals: c.refusals } : { ok: true, template: { labels, annotations, spec: out } };
}

/** One line for a status message or an Event: `path: reason; path: reason`. */
export function describeRefusals(refusals: readonly Refusal[], max = 5): string {
  const shown = refusals.slice(0, max).map((r) => `${r.path}: ${r.reason}`);
  return refusals.length > max ? `${shown.join('; ')}; and ${refusals.length - max} more` : shown.join('; ');
}

/** GPUs a built pod asks for, per container: what an audit (or a test) checks against billing. */
export function gpusByContainer(pod: V1Pod): Record<string, number> {
  const out: Record<string, number> = {};
  for (const ct of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
    const q = ct.resources?.limits?.[GPU_RESOURCE] ?? ct.resources?.requests?.[GPU_RESOURCE];
    out[ct.name] = q === undefined ? 0 : parseQuantity(q);
  }
  return out;
}
