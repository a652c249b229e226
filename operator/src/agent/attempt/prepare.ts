import type { V1Pod } from '@kubernetes/client-node';
import type { Assign } from '../../gen/proto/fedgpu/v1/market.js';
import type { AttemptObjects } from './resources.js';
import { AttemptRefused } from './refused.js';
import { attemptSecret, checkSecrets, mountSecrets } from './secrets.js';

export { AttemptRefused };
import { attemptPolicy, headlessService, isGang, joinRendezvous, type GangShape } from './rendezvous.js';
import { egressFromMessage, egressRefusal, egressRules } from './egress.js';
import { DEFAULT_EGRESS, type EgressProfile } from '../../core/egress.js';

// What an attempt gets besides its built pods, in one place the runner calls: the rendezvous
// (a gang's Service, the attempt's NetworkPolicy, environment), the egress the job needs, once
// checked against what the pool under it offers, and the job's secrets. Pure; the runner applies
// the result.


export interface PreparedAttempt {
  pods: V1Pod[];
  objects: AttemptObjects;
}

/** What the pool under a node offers (the owner's settings); absent: DNS only. */
export type EgressOffer = (nodeName: string) => EgressProfile;

/**
 * Whether an attempt needs a NetworkPolicy of its own. A gang's pods must reach each other, and
 * egress beyond what every pod of the tenant namespace has (its DNS rule, when the agent writes
 * one) is granted per attempt. A lone pod that asks no more adds nothing to the namespace's
 * default deny and DNS rule, so it gets no policy: a write and a delete fewer on the provider's
 * apiserver per attempt.
 */
export function needsAttemptPolicy(replicas: number, need: EgressProfile, namespaceAllowsDns: boolean): boolean {
  if (replicas > 1) return true;
  return !(need.mode === 'none' || (need.mode === 'dns' && namespaceAllowsDns));
}

/** The built pods joined to their rendezvous, and the objects to create before them. */
export function prepareAttempt(
  assign: Assign,
  pods: V1Pod[],
  namespace: string,
  offer: EgressOffer = () => DEFAULT_EGRESS,
  /** The tenant namespace lets every pod reach DNS (TenancyOptions.allowDns); unknown: it does not. */
  namespaceAllowsDns = false,
  /**
   * The attempt already runs here (a resync after a restart): what it was granted stays, and a
   * re-sent Assign can neither widen it nor end it. An egress beyond the pool's offer (the spec
   * edited since, a hostile hub, an owner who narrowed the offer) writes no policy; the ones in
   * place stay. New refusals of names the pods already carry are not made either.
   */
  started = false,
): PreparedAttempt {
  // The hub placed the job by the pool's offer; an agent grants no more than its owner declared.
  const need = egressFromMessage(assign.egress);
  let widening = false;
  for (const node of new Set(assign.nodeNames)) {
    const refusal = egressRefusal(offer(node), need);
    if (refusal && !started) throw new AttemptRefused('EgressNotOffered', `node ${node}: ${refusal}`);
    if (refusal) widening = true;
  }
  checkSecrets(assign.secrets, { started });
  const secret = attemptSecret(assign.jobUid, assign.epoch, namespace, assign.secrets);
  const shape: GangShape = { jobUid: assign.jobUid, epoch: assign.epoch, replicas: pods.length, gpusPerReplica: assign.gpusPerReplica };
  const grant = isGang(shape) ? gangGrant(need, assign.nodeNames, offer, namespaceAllowsDns, started) : need;
  return {
    pods: pods.map((pod, replica) => mountSecrets(joinRendezvous(pod, shape, replica, namespace), assign.jobUid, assign.epoch, assign.secrets)),
    objects: {
      services: isGang(shape) ? [headlessService(assign.jobUid, assign.epoch, namespace)] : [],
      policies: !widening && needsAttemptPolicy(pods.length, grant, namespaceAllowsDns) ? [attemptPolicy(assign.jobUid, assign.epoch, namespace, egressRules(grant))] : [],
      secrets: secret ? [secret] : [],
    },
  };
}

/**
 * What a gang is granted: its replicas find each other by DNS names (MASTER_ADDR and the peers are
 * names of the attempt's headless Service), so a gang that asked for no egress at all still needs
 * cluster DNS where the tenant namespace does not grant it (the owner's allowDNS false). It gets
 * DNS where every pool under it offers DNS; a pool that offers none refuses the gang instead of
 * running replicas that can never meet (and would be failed for it after the start timeout).
 */
function gangGrant(need: EgressProfile, nodeNames: readonly string[], offer: EgressOffer, namespaceAllowsDns: boolean, started: boolean): EgressProfile {
  if (need.mode !== 'none' || namespaceAllowsDns) return need;
  const noDns = [...new Set(nodeNames)].find((node) => egressRefusal(offer(node), DNS_ONLY) !== undefined);
  if (noDns === undefined) return DNS_ONLY;
  if (started) return need; // a running attempt is left as it was granted
  // The hub reads it as any egress refusal: nobody's fault, and the job goes elsewhere.
  throw new AttemptRefused('EgressNotOffered', `node ${noDns}: a gang needs cluster DNS to find its replicas (MASTER_ADDR is a DNS name); this pool offers egress none and its namespaces no DNS`);
}

const DNS_ONLY: EgressProfile = { mode: 'dns' };
