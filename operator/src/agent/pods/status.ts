import type { V1Pod } from '@kubernetes/client-node';

// Rolls the pods of one attempt up into the attempt's state, as the agent reports it to the hub:
// a phase, the measured GPU-seconds, and who is at fault when it ended early.

export type AttemptPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

export interface AttemptState {
  phase: AttemptPhase;
  /** GPUs × seconds each replica's pod ran (start to end, or to `now` while running). */
  gpuSeconds: number;
  exitCode?: number;
  /** PascalCase cause when Failed: ContainerFailed (the user's code) or a provider-side cause. */
  reason?: string;
  message?: string;
  pods: { name: string; nodeName?: string; phase: string; exitCode?: number }[];
}

/** Pod failures caused by the node or cluster, not by the container's own code. */
const PROVIDER_POD_REASONS = new Set(['Evicted', 'NodeLost', 'Preempting', 'OutOfgpu', 'UnexpectedAdmissionError', 'Terminated', 'NodeShutdown']);

const time = (t: Date | string | undefined): number | undefined => (t === undefined ? undefined : new Date(t).getTime());

function podStart(pod: V1Pod): number | undefined {
  const started = pod.status?.containerStatuses
    ?.map((s) => time(s.state?.running?.startedAt ?? s.state?.terminated?.startedAt))
    .filter((t): t is number => t !== undefined);
  return started?.length ? Math.min(...started) : time(pod.status?.startTime);
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

export function attemptState(pods: readonly V1Pod[], replicas: number, gpusPerReplica: number, now: number): AttemptState {
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
  return { ...base, phase: 'Pending' };
}
