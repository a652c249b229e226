import { AttemptPhase, type AttemptStatus, PodPhase } from '../../gen/proto/fedgpu/v1/market.js';
import { defaultEdgeLimits } from '../../protocol/limits.js';
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

/**
 * `text` as the hub accepts it: control characters (the hub refuses them; apiserver and kubelet
 * messages may hold newlines) become spaces, and it is cut to `max` UTF-16 units, as the hub
 * counts, without splitting a surrogate pair, marked as cut.
 */
export function boundedText(text: string, max = REPORT_MESSAGE_CHARS): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
  if (clean.length <= max) return clean;
  let cut = clean.slice(0, max - 1);
  if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

export function attemptStatus(jobUid: string, epoch: number, state: ReportedState): AttemptStatus {
  const reason = state.reason ?? '';
  return {
    jobUid,
    epoch,
    phase: PHASES[state.phase],
    gpuSeconds: state.gpuSeconds,
    exitCode: state.exitCode ?? 0,
    // Reasons are the agent's own words; anything else is not sent as one.
    reason: reason.length <= defaultEdgeLimits.maxReasonChars && machineReason.test(reason) ? reason : '',
    message: boundedText(state.message ?? ''),
    podStates: state.pods.map((p) => ({
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
