import { AttemptPhase, type AttemptStatus, PodPhase } from '../../gen/proto/fedgpu/v1/market.js';
import { defaultEdgeLimits } from '../../protocol/limits.js';
import { oneLine } from '../../protocol/event-text.js';
import { machineReason } from '../../protocol/patterns.js';
import type { AttemptState } from '../pods/status.js';

// An attempt's state as the agent reports it to the hub. The hub ends a stream whose message
// breaks its bounds (protocol/limits.ts), and the agent sends its whole state again after every
// reconnect: one over-long text would keep the provider off the market. Text that can come from
// the consumer's side (an apiserver refusing the consumer's template lists every invalid field;
// a kubelet's eviction message names every container) is cut to fit here, in one place.

export type ReportedState = Omit<AttemptState, 'phase'> & { phase: AttemptState['phase'] | 'Reclaimed' };

/** Under the hub's limit, with room to spare for an older hub's. */
export const REPORT_MESSAGE_CHARS = Math.min(1000, defaultEdgeLimits.maxMessageChars);

const PHASES = {
  Reclaimed: AttemptPhase.ATTEMPT_PHASE_RECLAIMED,
  Pending: AttemptPhase.ATTEMPT_PHASE_PENDING,
  Running: AttemptPhase.ATTEMPT_PHASE_RUNNING,
  Succeeded: AttemptPhase.ATTEMPT_PHASE_SUCCEEDED,
  Failed: AttemptPhase.ATTEMPT_PHASE_FAILED,
} as const;
const POD_PHASES: Record<string, PodPhase> = {
  Pending: PodPhase.POD_PHASE_PENDING,
  Running: PodPhase.POD_PHASE_RUNNING,
  Succeeded: PodPhase.POD_PHASE_SUCCEEDED,
  Failed: PodPhase.POD_PHASE_FAILED,
};

export function attemptStatus(jobUid: string, epoch: number, state: ReportedState): AttemptStatus {
  const reason = state.reason ?? '';
  return {
    jobUid,
    epoch,
    phase: PHASES[state.phase],
    // Within the hub's bound, whatever a pod's times say.
    gpuSeconds: Math.min(Math.max(0, state.gpuSeconds), defaultEdgeLimits.maxGpuSeconds),
    exitCode: state.exitCode ?? 0,
    // Reasons are the agent's own words; anything else is not sent as one.
    reason: reason.length <= defaultEdgeLimits.maxReasonChars && machineReason.test(reason) ? reason : '',
    // One printable line (the hub refuses control characters), within the hub's bound.
    message: oneLine(state.message ?? '', REPORT_MESSAGE_CHARS),
    // One per replica (at most 256, the hub's bound too); cut in case a pod list ever grows.
    podStates: state.pods.slice(0, defaultEdgeLimits.maxPodStates).map((p) => ({
      name: p.name,
      nodeName: p.nodeName ?? '',
      phase: POD_PHASES[p.phase] ?? PodPhase.POD_PHASE_UNKNOWN,
      ready: p.phase === 'Running',
      restartCount: 0,
      reason: '',
      exitCode: p.exitCode ?? 0,
    })),
  };
}
