import type { V1Pod, V1PodTemplateSpec, V1Toleration } from '@kubernetes/client-node';
import { CHECKPOINT_DIR_ENV, GPU_TAINT_KEY } from '../../api/constants.js';
import { allowlistTemplate, describeRefusals, type Refusal } from '../../core/isolation/allowlist.js';
import { parseQuantity } from '../../core/idle.js';
import { boundDisk, type DiskBounds } from '../../core/isolation/disk.js';
import { EPHEMERAL_STORAGE_DEFAULT, EPHEMERAL_STORAGE_DEFAULT_REQUEST, EPHEMERAL_STORAGE_MAX } from '../tenancy/namespace.js';
import { boundToShare, type Share } from '../../core/isolation/share.js';

// The pods of one attempt, built from the hub's assignment. Names are deterministic, so repeating
// an assignment (after a reconnect, a resync or an agent restart) never makes a second pod.

export const JOB_UID_LABEL = 'fedgpu.io/job-uid';
export const EPOCH_LABEL = 'fedgpu.io/epoch';
export const REPLICA_LABEL = 'fedgpu.io/replica';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'fedgpu-agent';

export interface Assignment {
  jobUid: string;
  epoch: number;
  /** The consumer: the hub namespace the job comes from (each gets its own namespace here). */
  tenant?: string;
  /** One PodTemplateSpec per replica (the hub sends them as JSON). */
  podTemplates: V1PodTemplateSpec[];
  /** Node of each replica, chosen by the hub's scheduler. */
  nodeNames: string[];
  gpusPerReplica: number;
  checkpointDir?: string;
  gracePeriodSeconds?: number;
  env?: { name: string; value: string }[];
}

/** The template asks for something the allowlist refuses: every refused field, with its reason. */
export class PodSecurityError extends Error {
  override name = 'PodSecurityError';
  constructor(readonly refusals: Refusal[]) {
    super(describeRefusals(refusals));
  }
}

/** A replica asks more CPU or memory than its share of the node the hub chose (core/isolation/share.ts). */
export class ShareExceededError extends Error {
  override name = 'ShareExceededError';
}

/** `fj-<first 13 of the uid>-e<epoch>-r<replica>`: unique per attempt and replica, DNS-1123. */
export function podName(jobUid: string, epoch: number, replica: number): string {
  const short = jobUid.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 13);
  return `fj-${short}-e${epoch}-r${replica}`;
}

export interface BuildOptions {
  /** The owner's RuntimeClass for the pool of a node (gVisor, Kata...), set on every job pod there. */
  runtimeClassFor?: (nodeName: string) => string | undefined;
  /** Largest emptyDir accepted, in bytes. */
  maxEmptyDirBytes?: number;
  /**
   * A replica's share of the CPU and memory of `nodeName` for `gpus` GPUs (core/isolation/share.ts);
   * undefined when the node has not that many GPUs left to jobs. Absent: no CPU or memory bound.
   */
  shareFor?: (nodeName: string, gpus: number) => Share | undefined;
  /** The attempt runs already: limits over a share that moved since are cut to it (see boundToShare). */
  clampToShare?: boolean;
  /** The tenant LimitRange's ephemeral-storage default and max, for the disk share (core/isolation/disk.ts). */
  diskBounds?: DiskBounds;
}

/** The tenant LimitRange's defaults (agent/tenancy/namespace.ts), in bytes. */
export const DEFAULT_DISK_BOUNDS: DiskBounds = {
  defaultBytes: parseQuantity(EPHEMERAL_STORAGE_DEFAULT),
  maxBytes: parseQuantity(EPHEMERAL_STORAGE_MAX),
  defaultRequestBytes: parseQuantity(EPHEMERAL_STORAGE_DEFAULT_REQUEST),
};

const HUB_ENV_REFUSED = /^(NVIDIA_|CUDA_VISIBLE_DEVICES$)/;
/**
 * On every container but the billed one: an image built FROM nvidia/cuda says
 * NVIDIA_VISIBLE_DEVICES=all, which the NVIDIA runtime honours for a container the device plugin
 * gave no GPU, so a GPU-less sidecar would see every GPU of the node, other tenants' too. The pod's
 * env wins over the image's; `void` tells the runtime to add no GPU and no driver.
 */
const NO_GPUS = [{ name: 'NVIDIA_VISIBLE_DEVICES', value: 'void' }];
const gpuToleration: V1Toleration = { key: GPU_TAINT_KEY, operator: 'Exists', effect: 'NoSchedule' };

/** The pods of an assignment, in replica order, ready to create in `namespace`. */
export function buildJobPods(assignment: Assignment, namespace: string, options: BuildOptions = {}): V1Pod[] {
  if (assignment.podTemplates.length !== assignment.nodeNames.length) {
    throw new Error(`assignment has ${assignment.podTemplates.length} templates for ${assignment.nodeNames.length} nodes`);
  }
  return assignment.podTemplates.map((template, replica) => {
    // Built from the allowlist (core/isolation): only known-safe fields of the consumer's template
    // survive, and the security settings are ours whatever the template says.
    const safe = allowlistTemplate(template, { gpusPerReplica: assignment.gpusPerReplica, maxEmptyDirBytes: options.maxEmptyDirBytes });
    if (!safe.ok) throw new PodSecurityError(safe.refusals);
    let spec = safe.template.spec;
    const node = assignment.nodeNames[replica]!;
    if (options.shareFor) {
      // No pod is ever built without its bound, a running attempt's included.
      const share = options.shareFor(node, assignment.gpusPerReplica);
      if (!share) throw new ShareExceededError(`replica ${replica}: node ${node} has fewer than ${assignment.gpusPerReplica} GPU(s) left to jobs`);
      const bound = boundToShare(spec, share, options.clampToShare);
      if (!bound.ok) throw new ShareExceededError(`replica ${replica} on node ${node}: ${bound.problems.join('; ')}`);
      spec = { ...spec, ...bound.spec };
      if (share.diskBytes !== undefined) {
        const disk = boundDisk(spec, share.diskBytes, options.diskBounds ?? DEFAULT_DISK_BOUNDS, options.clampToShare);
        if (!disk.ok) throw new ShareExceededError(`replica ${replica} on node ${node}: ${disk.problems.join('; ')}`);
        spec = { ...spec, ...disk.spec };
      }
    }
    const env = [
      ...(assignment.checkpointDir ? [{ name: CHECKPOINT_DIR_ENV, value: assignment.checkpointDir }] : []),
      { name: 'FEDGPU_JOB_UID', value: assignment.jobUid },
      { name: 'FEDGPU_EPOCH', value: String(assignment.epoch) },
      { name: 'FEDGPU_REPLICA', value: String(replica) },
      { name: 'FEDGPU_REPLICAS', value: String(assignment.podTemplates.length) },
      // Even the hub cannot widen GPU visibility: its env goes through the same name check.
      ...(assignment.env ?? []).filter((e) => !HUB_ENV_REFUSED.test(e.name)),
    ];
    // Every container learns where it stands; the allowlist already refused GPU and FEDGPU_ names,
    // and the first container alone holds the GPUs the attempt pays for.
    spec.containers = spec.containers.map((c, i) => ({
      ...c,
      env: [...(c.env ?? []).filter((e) => !env.some((x) => x.name === e.name)), ...env, ...(i === 0 ? [] : NO_GPUS)],
    }));
    // Init containers (a data download, a wait for the gang's master) learn it too, and get no GPU.
    if (spec.initContainers?.length) {
      spec.initContainers = spec.initContainers.map((c) => ({ ...c, env: [...(c.env ?? []).filter((e) => !env.some((x) => x.name === e.name)), ...env, ...NO_GPUS] }));
    }
    spec.tolerations = [gpuToleration];
    spec.terminationGracePeriodSeconds = assignment.gracePeriodSeconds ?? spec.terminationGracePeriodSeconds ?? 30;
    // The provider's own kube-scheduler binds the pod, so the owner's policies still hold; we only
    // require the node the hub chose.
    const runtimeClass = options.runtimeClassFor?.(node);
    if (runtimeClass) spec.runtimeClassName = runtimeClass;
    spec.affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [node] }] }],
        },
      },
    };
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: podName(assignment.jobUid, assignment.epoch, replica),
        namespace,
        labels: {
          ...safe.template.labels,
          [JOB_UID_LABEL]: assignment.jobUid,
          [EPOCH_LABEL]: String(assignment.epoch),
          [REPLICA_LABEL]: String(replica),
          [MANAGED_BY_LABEL]: MANAGED_BY,
        },
        annotations: { ...safe.template.annotations },
      },
      spec,
    };
  });
}

/** The node a job pod's affinity requires (buildJobPods sets exactly one). */
export function requiredNode(pod: V1Pod): string | undefined {
  return pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms?.[0]?.matchFields?.find((f) => f.key === 'metadata.name')?.values?.[0];
}
