// The bounded label values of docs/metrics.md. A value that is not listed here never becomes a
// label: unknown inputs map to nothing (and are not counted) rather than growing a series set.

export const JOB_PHASES = ['Pending', 'Scheduled', 'Running', 'Succeeded', 'Failed'] as const;
export const FAULTS = ['none', 'user', 'provider', 'owner-reclaim', 'unattributed'] as const;
export const CONTROLLERS = ['gpujob', 'gpuprovider', 'settlement'] as const;
export const MARKET_REJECT_REASONS = ['invalid', 'unauthenticated', 'rate_limited', 'stale_epoch', 'unknown_job'] as const;
export const SCHEDULER_DECISIONS = ['scheduled', 'unschedulable'] as const;
export const SCHEDULER_REJECT_REASONS = [
  'product',
  'memory',
  'driver',
  'runtime_class',
  'cpu_memory',
  'idle',
  'price',
  'region',
  'audit',
  'stake',
  'reputation',
  'latency',
  'not_ready',
  'availability',
  'egress',
  'access',
] as const;
export const SETTLEMENT_FAILURE_REASONS = ['rpc', 'reverted', 'nonce', 'insufficient_escrow', 'bad_receipt', 'timeout'] as const;
export const CHAIN_RPC_ERROR_REASONS = ['timeout', 'connection', 'rate_limited', 'server'] as const;
export const AGENT_RECONNECT_REASONS = ['eof', 'unavailable', 'unauthenticated', 'heartbeat_timeout'] as const;
export const POD_PHASES = ['Pending', 'Running', 'Succeeded', 'Failed'] as const;

export type JobPhase = (typeof JOB_PHASES)[number];
export type Fault = (typeof FAULTS)[number];
export type ControllerLabel = (typeof CONTROLLERS)[number];
export type MarketRejectLabel = (typeof MARKET_REJECT_REASONS)[number];
export type SchedulerRejectLabel = (typeof SCHEDULER_REJECT_REASONS)[number];
export type SettlementFailureReason = (typeof SETTLEMENT_FAILURE_REASONS)[number];
export type ChainRpcErrorReason = (typeof CHAIN_RPC_ERROR_REASONS)[number];
export type AgentReconnectReason = (typeof AGENT_RECONNECT_REASONS)[number];

export const isOneOf = <T extends string>(values: readonly T[], value: string | undefined): value is T =>
  value !== undefined && (values as readonly string[]).includes(value);
