// The scheduler's own in-memory model. It mirrors the GpuProvider status and GpuJob spec field names
// (DESIGN §2) but depends on nothing from Kubernetes, so the core stays pure and a simulator or the
// bench can drive it with plain objects. Money is a decimal string of credits here, exactly as in the
// API; the core parses it to bigint (see money.ts) and never uses floats for it.

import type { EgressProfile } from './egress.js';

/** A weekday as the API spells it. */
export type Weekday = 'Mon' | 'Tue' | 'Wed' | 'Thu' | 'Fri' | 'Sat' | 'Sun';

/**
 * A daily lending window, HH:MM in the owner's time zone. `end` earlier than `start` crosses
 * midnight (22:00-06:00); `days` names the day the window opens on (empty or absent: every day).
 */
export interface AvailabilityWindow {
  start: string;
  end: string;
  days?: Weekday[];
}

/** When the owner lends GPUs and how many it keeps (GpuProvider spec.availability). */
export interface Availability {
  /** No windows means always available. */
  windows?: AvailabilityWindow[];
  /** Fixed offset of the windows' time zone from UTC in minutes (no DST: the owner edits it). */
  utcOffsetMinutes?: number;
  /** GPUs the owner keeps across the cluster; never offered. */
  reservedGpus?: number;
}

/** Idle GPUs on one node of a pool, as the agent last reported them. */
export interface NodeSnapshot {
  name: string;
  idleGpus: number;
  totalGpus: number;
}

/** CPU (millicores) and host memory (MiB): a pool's share per GPU, or what one replica asks. */
export interface HostResources {
  cpuMilli: number;
  memoryMiB: number;
}

/** A group of identical GPU nodes of one provider. */
export interface PoolSnapshot {
  gpuProduct: string;
  memoryMiB: number;
  cudaDriverMajor: number;
  /** Decimal credits per GPU-hour, e.g. "2.4". */
  pricePerGpuHour: string;
  /** RuntimeClass the owner runs the pool's job pods under; absent: the cluster default. */
  runtimeClassName?: string;
  nodes: NodeSnapshot[];
  /** What job pods in the pool may reach; absent: DNS only. */
  egress?: EgressProfile;
  /** Whether the owner lets consumers exec into / port-forward to this pool's job pods; absent: both. */
  access?: PoolAccess;
  /** CPU and memory each GPU brings on the pool's smallest node (the agent bounds replicas to it); absent: not reported. */
  hostPerGpu?: HostResources;
}

/** What the owner allows consumers to do with a pool's job pods beyond reading logs. */
export interface PoolAccess {
  exec: boolean;
  portForward: boolean;
}

/** Reputation as the hub publishes it (status.reputation); successes/failures are decayed counts. */
export interface ReputationSnapshot {
  score: number;
  successes: number;
  failures: number;
}

/**
 * One provider as the scheduler sees it. Node idle counts are what the agent reported, already net of
 * the owner's reserved GPUs (idle.ts); the scheduler re-checks only the availability window, because
 * a window may have closed since the last inventory.
 */
export interface ProviderSnapshot {
  name: string;
  wallet: string;
  region: string;
  ready: boolean;
  /** Age of the last heartbeat; a stale one makes the provider not ready even if `ready` lags. */
  heartbeatAgeMs?: number;
  availability?: Availability;
  staked: boolean;
  /** Active stake in decimal credits. */
  stakeAmount?: string;
  reputation: ReputationSnapshot;
  rttMs: number;
  bandwidthMbps: number;
  auditedAttributes: Record<string, string>;
  pools: PoolSnapshot[];
}

/** What a GpuJob asks for (its spec, minus the pod template), plus rescheduling state. */
export interface JobRequest {
  replicas: number;
  gpusPerReplica: number;
  gpu?: {
    /** Acceptable products; empty or absent accepts any. */
    products?: string[];
    minMemoryGiB?: number;
    minCudaDriverMajor?: number;
  };
  placement?: {
    regions?: string[];
    maxLatencyMs?: number;
    minReputation?: number;
    /** Attribute names, or name=value, that must be audited. */
    requireAudited?: string[];
    sameNode?: boolean;
    /** Only pools whose owner runs job pods under this RuntimeClass (e.g. gvisor). */
    runtimeClassName?: string;
  };
  data?: {
    sizeGiB?: number;
    sourceRegion?: string;
  };
  budget?: {
    maxPricePerGpuHour?: string;
    maxTotal?: string;
  };
  activeDeadlineSeconds?: number;
  /** What the pods must reach beyond their gang; absent: no constraint. */
  network?: { egress?: EgressProfile };
  /** Consumer access the job needs through the tunnel; absent or false: not needed (logs always work). */
  access?: { exec?: boolean; portForward?: boolean };
  /** CPU and memory one replica's containers ask (core/isolation/share.ts replicaAsk); absent: nothing asked. */
  hostPerReplica?: HostResources;
  /** What in the template's CPU and memory every provider's agent would refuse: the job is invalid. */
  hostProblems?: string[];
  /** Providers this job already failed on (provider fault); never chosen again. */
  excludeProviders?: string[];
}

/** The parts of a placement's score, each from 0 to 1, higher is better. */
export interface ScoreParts {
  reputation: number;
  latency: number;
  price: number;
  timeToStart: number;
  fragmentation: number;
}

export interface PlacementScore {
  /** Weighted mean of the parts (weights from SchedulerConfig). */
  total: number;
  parts: ScoreParts;
}

/** Which node each replica runs on. */
export interface ReplicaAssignment {
  replica: number;
  node: string;
}

/** A successful scheduling decision: one pool of one provider holds the whole gang. */
export interface Decision {
  kind: 'decision';
  provider: string;
  gpuProduct: string;
  memoryMiB: number;
  cudaDriverMajor: number;
  gpusPerReplica: number;
  assignments: ReplicaAssignment[];
  /** The pool's price, as listed (decimal credits). */
  pricePerGpuHour: string;
  /** price × GPUs × activeDeadlineSeconds, when the job has a deadline (decimal credits, rounded up). */
  estimatedMaxTotal?: string;
  /** Seconds to move the job's input data to the provider; 0 when none or same region. */
  estimatedTimeToStartSeconds: number;
  score: PlacementScore;
}

/** Why nothing fits: rejections counted by reason code, one per provider, and a human message. */
export interface Unschedulable {
  kind: 'unschedulable';
  reasons: Record<string, number>;
  message: string;
}

export type ScheduleResult = Decision | Unschedulable;

/** Narrow a schedule() result. */
export function isDecision(result: ScheduleResult): result is Decision {
  return result.kind === 'decision';
}

/** Who is at fault for an attempt ending (GpuJob status.attempts[].faultOf). */
export type FaultOf = 'none' | 'user' | 'provider' | 'owner-reclaim' | 'unattributed';
