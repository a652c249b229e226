// Fine-grained reasons from the edge, the scheduler and the stream client, folded into the small
// label sets of docs/metrics.md. Logs keep the fine reason; metrics keep the series count bounded.
import { status } from '@grpc/grpc-js';
import type { RejectReason as SchedulerRejectReason } from '../core/scheduling/filter.js';
import type { RejectReason as EdgeRejectReason } from '../protocol/edge-error.js';
import type { AgentReconnectReason, MarketRejectLabel, SchedulerRejectLabel } from './labels.js';

const EDGE: Record<EdgeRejectReason, MarketRejectLabel | undefined> = {
  // A malformed or out-of-place message.
  undecodable: 'invalid',
  bad_type: 'invalid',
  missing_body: 'invalid',
  bad_seq: 'invalid',
  too_long: 'invalid',
  bad_format: 'invalid',
  too_many_items: 'invalid',
  out_of_range: 'invalid',
  bad_enum: 'invalid',
  inconsistent: 'invalid',
  duplicate: 'invalid',
  unsupported_protocol: 'invalid',
  unexpected_message: 'invalid',
  already_registered: 'invalid',
  unexpected_probe: 'invalid',
  probe_mismatch: 'invalid',
  // The peer did not (or could not) prove who it is, or claims to be someone else.
  not_registered: 'unauthenticated',
  registration_timeout: 'unauthenticated',
  nonce_unknown: 'unauthenticated',
  nonce_mismatch: 'unauthenticated',
  nonce_replayed: 'unauthenticated',
  challenge_expired: 'unauthenticated',
  bad_signature: 'unauthenticated',
  wallet_mismatch: 'unauthenticated',
  certificate_mismatch: 'unauthenticated',
  registration_refused: 'unauthenticated',
  // Too much, too fast.
  rate_limited: 'rate_limited',
  backlog_full: 'rate_limited',
  slow_consumer: 'rate_limited',
  too_many_streams: 'rate_limited',
  too_many_challenges: 'rate_limited',
  // Not a refused message: a silent stream, the hub's own failure, or the stream's life cycle.
  heartbeat_timeout: undefined,
  internal: undefined,
  stream_replaced: undefined,
  server_shutdown: undefined,
  not_leader: undefined,
};

/** The `reason` of fedgpu_marketplace_rejected_messages_total for an edge refusal; undefined: not counted. */
export function marketRejectionLabel(reason: EdgeRejectReason): MarketRejectLabel | undefined {
  return EDGE[reason];
}

const SCHEDULER: Record<SchedulerRejectReason, SchedulerRejectLabel | undefined> = {
  NoMatchingProduct: 'product',
  InsufficientMemory: 'memory',
  DriverTooOld: 'driver',
  RuntimeClassMismatch: 'runtime_class',
  InsufficientCpuMemory: 'cpu_memory',
  InsufficientIdle: 'idle',
  InvalidPrice: 'price',
  PriceAboveBudget: 'price',
  TotalAboveBudget: 'price',
  EgressNotOffered: 'egress',
  AccessNotOffered: 'access',
  RegionNotAllowed: 'region',
  MissingAuditedAttribute: 'audit',
  RttTooHigh: 'latency',
  ReputationTooLow: 'reputation',
  NotStaked: 'stake',
  NotReady: 'not_ready',
  OutsideAvailabilityWindow: 'availability',
  // The job's own history, not a property of the pool: metrics.md lists no label for it.
  Excluded: undefined,
};

/** The `reason` of fedgpu_scheduler_rejections_total for a scheduler rejection; undefined: not counted. */
export function schedulerRejectionLabel(reason: string): SchedulerRejectLabel | undefined {
  return Object.hasOwn(SCHEDULER, reason) ? SCHEDULER[reason as SchedulerRejectReason] : undefined;
}

/** Why the agent's stream restarted, from the gRPC status it ended with. */
export function agentReconnectReason(code: status): AgentReconnectReason {
  switch (code) {
    case status.OK:
    case status.CANCELLED:
      return 'eof';
    case status.UNAUTHENTICATED:
    case status.PERMISSION_DENIED:
      return 'unauthenticated';
    case status.DEADLINE_EXCEEDED:
      return 'heartbeat_timeout';
    default:
      return 'unavailable';
  }
}
