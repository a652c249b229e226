import type { V1Pod, V1PodTemplateSpec, V1Toleration } from '@kubernetes/client-node';
import { CHECKPOINT_DIR_ENV, GPU_RESOURCE, GPU_TAINT_KEY } from '../../api/constants.js';

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
  /** One PodTemplateSpec per replica (the hub sends them as JSON). */
  podTemplates: V1PodTemplateSpec[];
  /** Node of each replica, chosen by the hub's scheduler. */
  nodeNames: string[];
  gpusPerReplica: number;
  checkpointDir?: string;
  gracePeriodSeconds?: number;
  env?: { name: string; value: string }[];
}

export class PodSecurityError extends Error {
  override name = 'PodSecurityError';
}

/** `fj-<first 13 of the uid>-e<epoch>-r<replica>`: unique per attempt and replica, DNS-1123. */
export function podName(jobUid: string, epoch: number, replica: number): string {
  const short = jobUid.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 13);
  return `fj-${short}-e${epoch}-r${replica}`;
}

/**
 * Refuses what PodSecurity `restricted` forbids, with the reason, before anything is created: the
 * provider's cluster must never run a privileged pod on the hub's say-so.
 */
export function checkRestricted(template: V1PodTemplateSpec): void {
  const spec = template.spec;
  if (!spec) throw new PodSecurityError('pod template has no spec');
  if (spec.hostNetwork || spec.hostPID || spec.hostIPC) {
    throw new PodSecurityError('host namespaces (hostNetwork, hostPID, hostIPC) are not allowed');
  }
  for (const v of spec.volumes ?? []) {
    if (v.hostPath) throw new PodSecurityError(`volume ${v.name}: hostPath volumes are not allowed`);
  }
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
    const sc = c.securityContext;
    if (sc?.privileged) throw new PodSecurityError(`container ${c.name}: privileged containers are not allowed`);
    if (sc?.allowPrivilegeEscalation) {
      throw new PodSecurityError(`container ${c.name}: allowPrivilegeEscalation must be false`);
    }
    const added = sc?.capabilities?.add ?? [];
    if (added.some((cap) => cap !== 'NET_BIND_SERVICE')) {
      throw new PodSecurityError(`container ${c.name}: adding capabilities ${added.join(', ')} is not allowed`);
    }
    if ((c.ports ?? []).some((p) => p.hostPort)) {
      throw new PodSecurityError(`container ${c.name}: hostPort is not allowed`);
    }
  }
}

const gpuToleration: V1Toleration = { key: GPU_TAINT_KEY, operator: 'Exists', effect: 'NoSchedule' };

/** The pods of an assignment, in replica order, ready to create in `namespace`. */
export function buildJobPods(assignment: Assignment, namespace: string): V1Pod[] {
  if (assignment.podTemplates.length !== assignment.nodeNames.length) {
    throw new Error(`assignment has ${assignment.podTemplates.length} templates for ${assignment.nodeNames.length} nodes`);
  }
  return assignment.podTemplates.map((template, replica) => {
    checkRestricted(template);
    const spec = structuredClone(template.spec!);
    const gpus = String(assignment.gpusPerReplica);
    const env = [
      ...(assignment.checkpointDir ? [{ name: CHECKPOINT_DIR_ENV, value: assignment.checkpointDir }] : []),
      { name: 'FEDGPU_JOB_UID', value: assignment.jobUid },
      { name: 'FEDGPU_EPOCH', value: String(assignment.epoch) },
      { name: 'FEDGPU_REPLICA', value: String(replica) },
      { name: 'FEDGPU_REPLICAS', value: String(assignment.podTemplates.length) },
      ...(assignment.env ?? []),
    ];
    // The first container gets the GPUs; every container learns where it stands.
    spec.containers = spec.containers.map((c, i) => ({
      ...c,
      env: [...(c.env ?? []).filter((e) => !env.some((x) => x.name === e.name)), ...env],
      resources:
        i === 0
          ? {
              ...c.resources,
              limits: { ...c.resources?.limits, [GPU_RESOURCE]: gpus },
              requests: { ...c.resources?.requests, [GPU_RESOURCE]: gpus },
            }
          : c.resources,
      securityContext: {
        allowPrivilegeEscalation: false,
        runAsNonRoot: true,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
        ...c.securityContext,
      },
    }));
    spec.restartPolicy = 'Never';
    spec.tolerations = [...(spec.tolerations ?? []), gpuToleration];
    spec.terminationGracePeriodSeconds = assignment.gracePeriodSeconds ?? spec.terminationGracePeriodSeconds ?? 30;
    spec.automountServiceAccountToken = false;
    // The provider's own kube-scheduler binds the pod, so the owner's policies still hold; we only
    // require the node the hub chose.
    const node = assignment.nodeNames[replica]!;
    spec.affinity = {
      ...spec.affinity,
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
          ...template.metadata?.labels,
          [JOB_UID_LABEL]: assignment.jobUid,
          [EPOCH_LABEL]: String(assignment.epoch),
          [REPLICA_LABEL]: String(replica),
          [MANAGED_BY_LABEL]: MANAGED_BY,
        },
        annotations: { ...template.metadata?.annotations },
      },
      spec,
    };
  });
}
