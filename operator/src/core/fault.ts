// Fault attribution (DESIGN §5): who caused an attempt to end. Only provider faults hurt reputation
// and stake; owner reclaims are announced and resume elsewhere without a penalty; user faults end the
// job (rescheduling would fail the same way).

import type { FaultOf } from './types.js';

/** How an attempt ended, as the agent or the hub observed it. */
export type AttemptEnd =
  | { kind: 'succeeded' }
  /** A container terminated; exit 0 of every container is success. */
  | { kind: 'container-exit'; exitCode: number; reason?: string }
  /** The node with the pods went NotReady or disappeared. */
  | { kind: 'node-lost' }
  /** The agent missed heartbeats past providerLostAfter. */
  | { kind: 'agent-lost' }
  /** The kubelet or API evicted the pod; `cause` distinguishes the user's own limits. */
  | { kind: 'evicted'; cause?: 'node-pressure' | 'api' | 'container-limit' }
  /** An NVIDIA XID or similar hardware error. */
  | { kind: 'gpu-error'; xid?: number }
  /** The provider's own workload preempted the pods without announcing a reclaim. */
  | { kind: 'provider-preempted' }
  /** The owner's availability window ended (announced, with checkpoint grace). */
  | { kind: 'window-ended' }
  /** The owner cordoned or drained the node (announced, with checkpoint grace). */
  | { kind: 'owner-cordon' }
  /** The job ran past activeDeadlineSeconds. */
  | { kind: 'deadline-exceeded' }
  /** The user deleted or cancelled the job. */
  | { kind: 'cancelled' };

export interface FaultAttribution {
  faultOf: FaultOf;
  /** PascalCase cause for status.attempts[].reason and Events. */
  reason: string;
  /** Whether the job should start a new attempt on another provider (subject to maxAttempts). */
  retryable: boolean;
}

// XIDs that NVIDIA documents as usually caused by the application (illegal memory access, a kernel
// that stopped), not by the hardware: blaming the provider for them would let users slash providers.
const APPLICATION_XIDS = new Set([13, 31, 43]);

/** Attribute the end of an attempt to the user, the provider, the owner, or nobody. */
export function attributeFault(end: AttemptEnd): FaultAttribution {
  switch (end.kind) {
    case 'succeeded':
      return { faultOf: 'none', reason: 'Succeeded', retryable: false };
    case 'container-exit':
      if (end.exitCode === 0) return { faultOf: 'none', reason: 'Succeeded', retryable: false };
      return { faultOf: 'user', reason: end.reason === 'OOMKilled' ? 'OOMKilled' : 'ContainerFailed', retryable: false };
    case 'deadline-exceeded':
      return { faultOf: 'user', reason: 'DeadlineExceeded', retryable: false };
    case 'cancelled':
      return { faultOf: 'user', reason: 'Cancelled', retryable: false };
    case 'node-lost':
      return { faultOf: 'provider', reason: 'NodeLost', retryable: true };
    case 'agent-lost':
      return { faultOf: 'provider', reason: 'ProviderLost', retryable: true };
    case 'evicted':
      if (end.cause === 'container-limit') return { faultOf: 'user', reason: 'EvictedOverLimit', retryable: false };
      return { faultOf: 'provider', reason: 'Evicted', retryable: true };
    case 'gpu-error':
      if (end.xid !== undefined && APPLICATION_XIDS.has(end.xid)) {
        return { faultOf: 'user', reason: 'GpuApplicationError', retryable: false };
      }
      return { faultOf: 'provider', reason: 'GpuError', retryable: true };
    case 'provider-preempted':
      return { faultOf: 'provider', reason: 'ProviderPreempted', retryable: true };
    case 'window-ended':
      return { faultOf: 'owner-reclaim', reason: 'AvailabilityWindowEnded', retryable: true };
    case 'owner-cordon':
      return { faultOf: 'owner-reclaim', reason: 'OwnerReclaim', retryable: true };
  }
  // Malformed input from the wire: blame nobody (no slash on a guess) but let the job move on.
  return { faultOf: 'none', reason: 'Unknown', retryable: true };
}

/** Whether an attribution counts against the provider's reputation and stake. */
export function hurtsProvider(attribution: FaultAttribution): boolean {
  return attribution.faultOf === 'provider';
}
