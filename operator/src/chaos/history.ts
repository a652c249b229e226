import type { GpuJob } from '../api/types.js';
import type { FaultPlan, JobPlan } from './schedule.js';

// What a chaos run leaves behind for the checker: the plan, what was actually injected and when,
// samples of what ran where, and the final state of every apiserver and of the chain. Plain data
// (JSON-serialisable, bigints as decimal strings), so a run can be saved and checked again, and the
// invariants are tested over recorded histories without any cluster.

export interface InjectedFault extends FaultPlan {
  /** Wall-clock ms when the fault began and ended (ended: undefined if the run stopped first). */
  startedAt: number;
  endedAt?: number;
  /** Resolved victim, e.g. the node cordoned or the hub replica killed. */
  detail?: string;
}

export interface JobRecord {
  plan: JobPlan;
  /** The job as last read from the hub apiserver; undefined once deleted and gone. */
  final?: GpuJob;
  uid?: string;
  /** When the scenario deleted it (wall-clock ms). */
  deletedAt?: number;
  /** The last state seen before it was deleted (attempts, settlement), for deleted jobs. */
  lastSeen?: GpuJob;
}

/** A provider-side pod of a job attempt seen running at one instant. */
export interface PodSample {
  at: number;
  provider: string; // GpuProvider name
  jobUid: string;
  epoch: number;
  pod: string;
}

/** A market event, decoded (amounts in token units as decimal strings). */
export interface ChainEvent {
  name: 'EscrowOpened' | 'Settled' | 'Refunded' | 'Slashed';
  escrowId: string;
  block: number;
  txHash: string;
  provider?: string; // lower-case wallet
  consumer?: string;
  epoch?: number;
  gpuSeconds?: number;
  amount: string;
  refunded?: string;
  requested?: string;
  /** Slashed: the part of `amount` the consumer received; the rest is burned (absent in older histories: all of it). */
  compensated?: string;
}

/** Token holdings the conservation check compares (token units as decimal strings). */
export interface Holdings {
  block: number;
  totalSupply: string;
  marketBalance: string;
  consumerFree: Record<string, string>;
  providerStake: Record<string, string>;
  providerEarnings: Record<string, string>;
  /** Σ amounts of escrows open at this block. */
  openEscrowed: string;
  /** GpuMarket.burned: the parts of slashes no one received (absent in older histories). */
  burned?: string;
}

export interface Leftover {
  cluster: string;
  kind: 'Pod' | 'Secret' | 'Service' | 'NetworkPolicy' | 'Escrow';
  name: string;
  jobUid?: string;
  epoch?: number;
}

export interface ReputationPair {
  provider: string;
  wallet: string;
  status?: { score: number; successes: number; failures: number; asOfBlock?: number };
  fromChain?: { score: number; successes: number; failures: number; asOfBlock?: number };
}

export interface ChaosHistory {
  seed: number;
  startedAt: number;
  endedAt: number;
  /** providerLostAfter plus Cancel delivery: how long two epochs may overlap after a loss is seen. */
  graceMs: number;
  /** GpuProvider name → cluster name and wallet (lower case). */
  providers: Record<string, { cluster: string; wallet: string }>;
  faults: InjectedFault[];
  jobs: JobRecord[];
  pods: PodSample[];
  chain: { events: ChainEvent[]; before: Holdings; after: Holdings; consumer: string };
  leftovers: Leftover[];
  reputation: ReputationPair[];
}
