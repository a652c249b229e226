// HA hubs (docs/ha.md): only the leader serves agent streams. A stand-by refuses a stream with
// UNAVAILABLE and names the leader's marketplace address in this trailer; the agent dials it next.

/** gRPC trailer (lower-case ASCII, as metadata keys must be) carrying the leader's host:port. */
export const LEADER_ADDRESS_TRAILER = 'fedgpu-leader-address';

/** What a stand-by tells a refused agent; `leaderAddress` is absent while no leader is known. */
export interface StandbyRefusal {
  leaderAddress?: string;
}

const hostPort = /^[A-Za-z0-9.\-:[\]]{1,253}:\d{1,5}$/;

/** A redirect target is used only when it looks like host:port (it comes from the network). */
export function validLeaderAddress(value: unknown): string | undefined {
  return typeof value === 'string' && hostPort.test(value) ? value : undefined;
}
