import { keccak256, toUtf8Bytes } from 'ethers';

/** The hub id in tenant keys when none is configured (`fedgpu authorize --hub-id` defaults to it too). */
export const DEFAULT_HUB_ID = 'fedgpu';

/**
 * The on-chain key of a hub tenant a consumer authorizes: keccak256("<hub id>/<namespace>/<uid>").
 * Scoped by the hub id so two hubs' `team-a` are two tenants (the contract also keys each
 * consent by the settler it names, so another hub's key cannot draw on it whatever tenant it
 * names: docs/settlement.md "Consent"), and by the namespace's uid so it is worth
 * nothing to a namespace made later under the same name: whoever creates `team-a` after the
 * team deleted theirs, and labels it with the team's wallet, finds no consent to spend.
 */
export function tenantIdOf(hubId: string, namespace: string, namespaceUid: string): string {
  if (!hubId || hubId.includes('/')) throw new RangeError(`hub id ${JSON.stringify(hubId)} must be non-empty and contain no '/'`);
  if (!namespace || namespace.includes('/')) throw new RangeError(`namespace ${JSON.stringify(namespace)} must be non-empty and contain no '/'`);
  if (!namespaceUid || namespaceUid.includes('/')) throw new RangeError(`namespace uid ${JSON.stringify(namespaceUid)} must be non-empty and contain no '/'`);
  return keccak256(toUtf8Bytes(`${hubId}/${namespace}/${namespaceUid}`));
}
