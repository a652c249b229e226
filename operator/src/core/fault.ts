// Fault attribution (DESIGN §5, docs/settlement.md "Fault attribution"): who caused an attempt to
// end, so that no one profits from blaming another. The provider is at fault only for what only the
// provider can cause; what the pod does to itself is the user's; what cannot be told apart (a node
// under pressure may be the provider's other load or the pod's own) is unattributed: retried, never
// slashed. Only provider faults hurt reputation and stake.

import type { FaultOf } from './types.js';

/** How an attempt ended, as the agent reported it and the hub checked it. */
export type AttemptEnd =
  | { kind: 'succeeded' }
  /** A container terminated; exit 0 of every container is success. */
  | { kind: 'container-exit'; exitCode: number; reason?: string }
  /** The node under a running pod went away or NotReady. */
  | { kind: 'node-lost' }
  /** The agent missed heartbeats past providerLostAfter. */
  | { kind: 'agent-lost' }
  /** Lost with many others at once: the hub's side more likely than the provider's. */
  | { kind: 'agent-unreachable' }
  /** The job's pods were deleted by someone other than the agent (the provider's admins). */
  | { kind: 'pods-deleted' }
  /**
   * The attempt was not Running within its start timeout. `stuckOn`: what its pods were waiting
   * for, as the agent last saw them, where that is something the job's own pods can cause.
   */
  | { kind: 'start-timeout'; stuckOn?: StartBlocker; waitedSeconds?: number; blameAfterSeconds?: number }
  /** The agent reported a reclaim the hub cannot see announced (no closed window, no cordon). */
  | { kind: 'reclaim-without-notice' }
  /** The kubelet or API evicted the pod; `cause` from classifyEviction. */
  | { kind: 'evicted'; cause?: EvictionCause }
  /** An NVIDIA XID or similar hardware error. */
  | { kind: 'gpu-error'; xid?: number }
  /** The provider's own workload preempted the pods without announcing a reclaim. */
  | { kind: 'provider-preempted' }
  /**
   * The provider's admission refused the pods (its LimitRange, a quota, a webhook or policy): the
   * template's own choices can draw these, so nobody's fault, retried elsewhere.
   */
  | { kind: 'admission-refused' }
  /**
   * The agent refused the placement before making anything (agent/placement.ts): a node outside its
   * offered pools, cordoned or NotReady since the hub looked. Nobody's fault, retried elsewhere.
   */
  | { kind: 'placement-refused' }
  /** The owner's availability window ended (announced, with checkpoint grace). */
  | { kind: 'window-ended' }
  /** The owner cordoned or drained the node (announced, with checkpoint grace). */
  | { kind: 'owner-cordon' }
  /** The job ran past activeDeadlineSeconds. */
  | { kind: 'deadline-exceeded' }
  /** The attempt used all the GPU-seconds its escrow covers. */
  | { kind: 'budget-exhausted' }
  /** The user deleted or cancelled the job. */
  | { kind: 'cancelled' };

/**
 * What scheduled pods of an attempt were still waiting for: an image that cannot be pulled (a
 * missing or private image, or a registry the provider cannot reach), init containers not done
 * (the job's own code, or a slow provider), a container the runtime refused to create (a bad
 * command or mount), or the kubelet still creating them (a large image, or a slow node). The job
 * chooses its image, its init containers and its start timeout, so none of these may slash the
 * provider; none proves the provider right either. `resources`: pods the provider's scheduler
 * cannot bind for want of the cpu, memory or ephemeral storage the template asks for (a job that
 * asks for 100000 CPUs never starts anywhere). Other unbound pods, or pods bound with nothing heard
 * from the kubelet, are not among them: only the provider can cause those.
 */
export type StartBlocker = 'image' | 'init' | 'container-config' | 'kubelet' | 'resources';

/**
 * A start timeout shorter than this never blames the provider: the job sets its own timeout (5 s
 * at least), and no provider namespaces, binds, pulls and starts a gang that fast under load. A
 * consumer must not be able to make an honest provider fail, and slash it, by asking for the
 * impossible. The hub may set another bound (`fedgpu hub --start-blame-after`).
 */
export const MIN_BLAMED_START_SECONDS = 300;

/** The PascalCase reason the agent reports for a Pending attempt blocked on each, and back. */
export const START_BLOCKED_REASONS: Readonly<Record<StartBlocker, string>> = {
  image: 'ImagePullFailed',
  init: 'InitContainersNotDone',
  'container-config': 'ContainerConfigError',
  kubelet: 'ContainersNotStarted',
  resources: 'InsufficientResources',
};

/** The blocker a reported reason names; undefined for any other reason (the provider's, then). */
export function startBlockerOf(reason: string | undefined): StartBlocker | undefined {
  return (Object.keys(START_BLOCKED_REASONS) as StartBlocker[]).find((b) => START_BLOCKED_REASONS[b] === reason);
}

/**
 * Why a pod was evicted: `own-limit` when it exceeded a limit it set itself (ephemeral storage,
 * emptyDir sizeLimit), `node-pressure` when the node ran short (cannot be told apart: the pod may
 * have caused it), `api` when an Eviction API call removed it (only the provider's admins can).
 */
export type EvictionCause = 'own-limit' | 'node-pressure' | 'api';

export interface FaultAttribution {
  faultOf: FaultOf;
  /** PascalCase cause for status.attempts[].reason and Events. */
  reason: string;
  /** Whether the job should start a new attempt (subject to maxAttempts). */
  retryable: boolean;
}

// XIDs that NVIDIA documents as usually caused by the application (illegal memory access, a kernel
// that stopped), not by the hardware: blaming the provider for them would let users slash providers.
const APPLICATION_XIDS = new Set([13, 31, 43]);

const user = (reason: string): FaultAttribution => ({ faultOf: 'user', reason, retryable: false });
const provider = (reason: string): FaultAttribution => ({ faultOf: 'provider', reason, retryable: true });
const unattributed = (reason: string): FaultAttribution => ({ faultOf: 'unattributed', reason, retryable: true });

/** Attribute the end of an attempt to the user, the provider, the owner, or nobody. */
export function attributeFault(end: AttemptEnd): FaultAttribution {
  switch (end.kind) {
    case 'succeeded':
      return { faultOf: 'none', reason: 'Succeeded', retryable: false };
    case 'container-exit':
      if (end.exitCode === 0) return { faultOf: 'none', reason: 'Succeeded', retryable: false };
      return user(end.reason === 'OOMKilled' ? 'OOMKilled' : 'ContainerFailed');
    case 'deadline-exceeded':
      return user('DeadlineExceeded');
    case 'budget-exhausted':
      return user('BudgetExhausted');
    case 'cancelled':
      return user('Cancelled');
    case 'node-lost':
      return provider('NodeLost');
    case 'agent-lost':
      return provider('ProviderLost');
    case 'agent-unreachable':
      return unattributed('ProviderUnreachable');
    case 'pods-deleted':
      return provider('PodsDeleted');
    case 'start-timeout':
      // Pods blocked by what the job chose (its image, its init containers, its container spec):
      // nobody's fault, retried elsewhere, never slashed. Pods the kubelet is still creating are
      // the provider's only past a wait no job can make too short to pull an image in.
      if (end.stuckOn && end.stuckOn !== 'kubelet') return unattributed(START_BLOCKED_REASONS[end.stuckOn]);
      if ((end.waitedSeconds ?? Infinity) < (end.blameAfterSeconds ?? MIN_BLAMED_START_SECONDS)) {
        return unattributed(end.stuckOn === 'kubelet' ? START_BLOCKED_REASONS.kubelet : 'StartTimeout');
      }
      return provider('StartTimeout');
    case 'reclaim-without-notice':
      return provider('ReclaimWithoutNotice');
    case 'provider-preempted':
      return provider('ProviderPreempted');
    case 'admission-refused':
      return unattributed('AdmissionRefused');
    case 'placement-refused':
      return unattributed('PlacementRefused');
    case 'evicted':
      if (end.cause === 'own-limit') return user('EvictedOverLimit');
      if (end.cause === 'api') return provider('EvictedByProvider');
      return unattributed('Evicted');
    case 'gpu-error':
      if (end.xid !== undefined && APPLICATION_XIDS.has(end.xid)) return user('GpuApplicationError');
      return provider('GpuError');
    case 'window-ended':
      return { faultOf: 'owner-reclaim', reason: 'AvailabilityWindowEnded', retryable: true };
    case 'owner-cordon':
      return { faultOf: 'owner-reclaim', reason: 'OwnerReclaim', retryable: true };
  }
  // Malformed input from the wire: blame nobody (no slash on a guess) but let the job move on.
  return unattributed('Unknown');
}

/** Whether an attribution counts against the provider's reputation and stake. */
export function hurtsProvider(attribution: FaultAttribution): boolean {
  return attribution.faultOf === 'provider';
}

// The kubelet's eviction messages (pkg/kubelet/eviction): a pod over a limit it set itself gets one
// of the first three; node pressure gets "The node was low on resource" or "The node had condition".
const OWN_LIMIT_MESSAGES = [
  /Pod ephemeral local storage usage exceeds the total limit of containers/i,
  /Container \S+ exceeded its local ephemeral storage limit/i,
  /Usage of EmptyDir volume \S+ exceeds the limit/i,
];
const NODE_PRESSURE_MESSAGES = [/The node was low on resource/i, /The node had condition/i];
const API_MESSAGES = [/Eviction API/i, /evicted by the Eviction API/i];

/**
 * Why a pod was evicted, from the message on its status. A message that names both a node shortage
 * and an own limit is node pressure (the weaker claim wins: no one is slashed and no one is blamed
 * for certain); an unknown message is node pressure too.
 */
export function classifyEviction(message: string | undefined): EvictionCause {
  const text = message ?? '';
  if (NODE_PRESSURE_MESSAGES.some((r) => r.test(text))) return 'node-pressure';
  if (OWN_LIMIT_MESSAGES.some((r) => r.test(text))) return 'own-limit';
  if (API_MESSAGES.some((r) => r.test(text))) return 'api';
  return 'node-pressure';
}
