import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { START_BLOCKED_REASONS, type StartBlocker } from '../../core/fault.js';
import { parseQuantity, podRequest } from '../../core/idle.js';
import { podInfo } from '../inventory.js';
import { requiredNode } from './build.js';

// Rolls the pods of one attempt up into the attempt's state, as the agent reports it to the hub:
// a phase, the measured GPU-seconds, and who is at fault when it ended early.

export type AttemptPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

export interface AttemptState {
  phase: AttemptPhase;
  /** GPUs × seconds each replica's pod ran (start to end, or to `now` while running). */
  gpuSeconds: number;
  exitCode?: number;
  /**
   * PascalCase cause when Failed: ContainerFailed (the user's code) or a provider-side cause. When
   * Pending: what bound pods wait for, if the job's own pods can cause it (START_BLOCKED_REASONS).
   */
  reason?: string;
  message?: string;
  pods: { name: string; nodeName?: string; phase: string; exitCode?: number }[];
}

/** Pod failures caused by the node or cluster, not by the container's own code. */
const PROVIDER_POD_REASONS = new Set(['Evicted', 'NodeLost', 'Preempting', 'OutOfgpu', 'UnexpectedAdmissionError', 'Terminated', 'NodeShutdown']);

const time = (t: Date | string | undefined): number | undefined => (t === undefined ? undefined : new Date(t).getTime());

function podStart(pod: V1Pod): number | undefined {
  // A container that never started (StartError: a command that does not exist, say) shows
  // startedAt 1970-01-01 (kubernetes/kubernetes#120331): counted from there, one pod would claim
  // decades of GPU time. No container starts before its pod does.
  const podStarted = time(pod.status?.startTime);
  const started = pod.status?.containerStatuses
    ?.map((s) => time(s.state?.running?.startedAt ?? s.state?.terminated?.startedAt))
    .filter((t): t is number => t !== undefined && t > 0 && (podStarted === undefined || t >= podStarted));
  return started?.length ? Math.min(...started) : podStarted;
}

function podEnd(pod: V1Pod): number | undefined {
  const ended = pod.status?.containerStatuses?.map((s) => time(s.state?.terminated?.finishedAt));
  if (!ended?.length || ended.some((t) => t === undefined)) return undefined;
  return Math.max(...(ended as number[]));
}

function firstFailure(pod: V1Pod): { exitCode: number; container: string } | undefined {
  for (const s of pod.status?.containerStatuses ?? []) {
    const code = s.state?.terminated?.exitCode;
    if (code !== undefined && code !== 0) return { exitCode: code, container: s.name };
  }
  return undefined;
}

/**
 * `nodes`: the cluster's nodes, so that pods no node can take are told apart: asking more than
 * their node holds at all is the template's doing, short of what the owner's own pods use is not.
 */
export function attemptState(pods: readonly V1Pod[], replicas: number, gpusPerReplica: number, now: number, nodes: readonly V1Node[] = []): AttemptState {
  let gpuSeconds = 0;
  for (const pod of pods) {
    const start = podStart(pod);
    if (start === undefined) continue;
    const end = podEnd(pod) ?? (pod.status?.phase === 'Running' ? now : start);
    gpuSeconds += (gpusPerReplica * Math.max(0, end - start)) / 1000;
  }
  const summary = pods.map((p) => {
    const failure = firstFailure(p);
    return {
      name: p.metadata?.name ?? '',
      nodeName: p.spec?.nodeName,
      phase: p.status?.phase ?? 'Pending',
      ...(failure ? { exitCode: failure.exitCode } : {}),
    };
  });
  const base = { gpuSeconds: Math.round(gpuSeconds * 1000) / 1000, pods: summary };

  const failed = pods.find((p) => p.status?.phase === 'Failed');
  if (failed) {
    const name = failed.metadata?.name ?? '';
    const podReason = failed.status?.reason;
    if (podReason && PROVIDER_POD_REASONS.has(podReason)) {
      return { ...base, phase: 'Failed', reason: podReason, message: `pod ${name}: ${failed.status?.message ?? podReason}` };
    }
    const failure = firstFailure(failed);
    return {
      ...base,
      phase: 'Failed',
      reason: 'ContainerFailed',
      ...(failure ? { exitCode: failure.exitCode } : {}),
      message: failure
        ? `pod ${name}: container ${failure.container} exited with code ${failure.exitCode}`
        : `pod ${name} failed`,
    };
  }
  const succeeded = pods.filter((p) => p.status?.phase === 'Succeeded').length;
  if (succeeded === replicas) return { ...base, phase: 'Succeeded' };
  const running = pods.filter((p) => p.status?.phase === 'Running' || p.status?.phase === 'Succeeded').length;
  if (running === replicas) return { ...base, phase: 'Running' };
  const blocked = pods.length === replicas ? startBlocked(pods, nodes) : undefined;
  // Kept short: the hub quotes it in the job's status message when the start times out. (Every
  // report is also kept within the hub's bounds in one place: agent/attempt/report.ts.)
  return { ...base, phase: 'Pending', ...(blocked ? { reason: START_BLOCKED_REASONS[blocked.on], message: blocked.message.slice(0, 400) } : {}) };
}

/**
 * The scheduler's word on an unbound pod that no node has the cpu, memory or ephemeral storage it
 * asks for, which the template chose; undefined when the GPUs are short too (the hub placed it on
 * GPUs the provider said were idle) or it is unschedulable for any other reason (taints, the node).
 */
function unschedulableForOwnRequests(pod: V1Pod, nodes: readonly V1Node[]): string | undefined {
  if (pod.spec?.nodeName) return undefined;
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status !== 'False' || scheduled.reason !== 'Unschedulable') return undefined;
  const message = scheduled.message ?? '';
  if (/Insufficient nvidia\.com\/gpu/.test(message)) return undefined;
  // Only what the pod asks beyond everything its node can hold: short of what the owner's pods
  // leave free is the owner taking the node back unannounced, which stays the provider's.
  const node = nodes.find((n) => n.metadata?.name === requiredNode(pod));
  const info = podInfo(pod);
  const over = (['cpu', 'memory', 'ephemeral-storage'] as const).filter((r) => new RegExp(`Insufficient ${r}\\b`).test(message) && podRequest(info, r) > parseQuantity(node?.status?.allocatable?.[r] ?? '0'));
  if (!node || over.length === 0) return undefined;
  return `pod ${pod.metadata?.name ?? ''} asks more ${over.join(', ')} than node ${node.metadata?.name ?? ''} holds: ${message}`;
}

/** Waiting reasons of a container whose image cannot be pulled (the kubelet's, and containerd's). */
const IMAGE_WAITING = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull', 'RegistryUnavailable', 'ImageInspectError', 'SignatureValidationFailed']);
/**
 * Waiting reasons of a container the kubelet could not configure from its spec (a missing key, a
 * user the image lacks). Not CreateContainerError or RunContainerError: the provider's runtime or
 * its GPU hook cause those too.
 */
const CONFIG_WAITING = new Set(['CreateContainerConfigError']);

/**
 * What pods that are not all Running wait for, when it is something the job itself can cause
 * (core/fault.ts StartBlocker): only for pods bound to a node whose kubelet has reported on them.
 * Unbound pods, or pods the kubelet says nothing about, are the provider's to start: undefined.
 */
function startBlocked(pods: readonly V1Pod[], nodes: readonly V1Node[]): { on: StartBlocker; message: string } | undefined {
  const pending = pods.filter((p) => p.status?.phase !== 'Running' && p.status?.phase !== 'Succeeded');
  // Every unbound pod must be one that asks too much: one short pod excuses no other.
  const unbound = pending.filter((p) => !p.spec?.nodeName);
  const short = unbound.map((p) => unschedulableForOwnRequests(p, nodes));
  if (unbound.length > 0 && short.every((m) => m !== undefined)) return { on: 'resources', message: short[0]! };
  if (pending.some((p) => !p.spec?.nodeName || !(p.status?.containerStatuses?.length || p.status?.initContainerStatuses?.length))) return undefined;
  const waiting = pending.flatMap((p) =>
    [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])].flatMap((c) =>
      c.state?.waiting ? [{ pod: p.metadata?.name ?? '', container: c.name, reason: c.state.waiting.reason ?? '', detail: c.state.waiting.message ?? '' }] : [],
    ),
  );
  const say = (w: { pod: string; container: string; reason: string; detail: string }) =>
    `pod ${w.pod} container ${w.container}: ${w.reason}${w.detail ? `: ${w.detail}` : ''}`;
  const image = waiting.find((w) => IMAGE_WAITING.has(w.reason));
  if (image) return { on: 'image', message: say(image) };
  const config = waiting.find((w) => CONFIG_WAITING.has(w.reason));
  if (config) return { on: 'container-config', message: say(config) };
  for (const p of pending) {
    // A sidecar (restartPolicy Always) holds the main containers until it has started (its
    // startupProbe passed); any other init container until it exited 0.
    const sidecars = new Set((p.spec?.initContainers ?? []).filter((c) => c.restartPolicy === 'Always').map((c) => c.name));
    const unfinished = (p.status?.initContainerStatuses ?? []).find((c) => (sidecars.has(c.name) ? c.started !== true : c.state?.terminated?.exitCode !== 0));
    if (unfinished) return { on: 'init', message: `pod ${p.metadata?.name ?? ''} init container ${unfinished.name} has not finished` };
  }
  const names = pending.map((p) => p.metadata?.name ?? '');
  return { on: 'kubelet', message: `${names.length} pod(s) bound and being created by the kubelet: ${names.slice(0, 3).join(', ')}${names.length > 3 ? ', …' : ''}` };
}
