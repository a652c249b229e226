import { keccak256, toUtf8Bytes } from 'ethers';

/** The hub id in tenant keys when none is configured (`fedgpu authorize --hub-id` defaults to it too). */
export const DEFAULT_HUB_ID = 'fedgpu';

/**
 * The on-chain key of a hub tenant a consumer authorizes: keccak256("<hub id>/<namespace>").
 * Scoped by the hub id so an authorization for namespace `team-a` on one hub is worth nothing on
 * another hub that settles through the same market.
 */
export function tenantIdOf(hubId: string, namespace: string): string {
  if (!hubId || hubId.includes('/')) throw new RangeError(`hub id ${JSON.stringify(hubId)} must be non-empty and contain no '/'`);
  if (!namespace) throw new RangeError('namespace must be non-empty');
  return keccak256(toUtf8Bytes(`${hubId}/${namespace}`));
}
