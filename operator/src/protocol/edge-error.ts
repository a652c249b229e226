// The one error type of the protocol edge: a gRPC status for the peer and a short reason that is
// safe to use as a metrics label (a fixed set, never derived from peer input).
import { status } from '@grpc/grpc-js';

export const rejectReasons = [
  // Shape and content of a single message (validate.ts).
  'undecodable',
  'bad_type',
  'missing_body',
  'bad_seq',
  'too_long',
  'bad_format',
  'too_many_items',
  'out_of_range',
  'bad_enum',
  'inconsistent',
  'duplicate',
  'unsupported_protocol',
  // Registration and identity (wallet-proof.ts, hub session).
  'not_registered',
  'unexpected_message',
  'already_registered',
  'registration_timeout',
  'nonce_unknown',
  'nonce_mismatch',
  'nonce_replayed',
  'challenge_expired',
  'bad_signature',
  'wallet_mismatch',
  'certificate_mismatch',
  'registration_refused',
  // Stream-level limits and lifecycle.
  'rate_limited',
  'backlog_full',
  'slow_consumer',
  'too_many_streams',
  'too_many_challenges',
  'unexpected_probe',
  'probe_mismatch',
  'heartbeat_timeout',
  'stream_replaced',
  'server_shutdown',
  // A hub stand-by (HA): the agent goes to the leader, named in a trailer (leader-redirect.ts).
  'not_leader',
  'internal',
] as const;

export type RejectReason = (typeof rejectReasons)[number];

/** A refusal at the edge: `code` goes to the peer as the gRPC status, `reason` to metrics and logs. */
export class EdgeError extends Error {
  override readonly name = 'EdgeError';

  constructor(
    readonly code: status,
    readonly reason: RejectReason,
    /** Short human detail (a field path and the rule broken); never echoes peer-supplied values. */
    readonly detail: string,
    /** gRPC trailers sent with the status (lower-case ASCII keys), e.g. the leader's address. */
    readonly trailers?: Readonly<Record<string, string>>,
  ) {
    super(`${reason}: ${detail}`);
  }
}

export const invalid = (reason: RejectReason, detail: string): EdgeError =>
  new EdgeError(status.INVALID_ARGUMENT, reason, detail);
