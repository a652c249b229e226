// The settlement and chain series, as functions the settlement controller calls wherever it is
// (no metrics object to thread through). They act on the hub's installed HubMetrics and do nothing
// when none is installed (unit tests of the settlement code, CLI tools).
//
// Which call for what (docs/metrics.md, "Settlement and chain"):
//   observeSettlementConfirmed({ provider, gpuProduct, gpuSeconds, paidCredits, durationSeconds })
//       once per settlement confirmed after N confirmations: fedgpu_settlements_total,
//       fedgpu_paid_credits_total{provider}, fedgpu_gpu_seconds_total{provider,product},
//       fedgpu_settlement_duration_seconds (job finish → confirmation).
//   observeSettlementFailure(reason)   a TERMINAL failure only (retries exhausted, reverted):
//       fedgpu_settlement_failures_total{reason}; reason ∈ rpc, reverted, nonce,
//       insufficient_escrow, bad_receipt, timeout.
//   observeSlash(provider, credits)    fedgpu_provider_slashed_credits_total{provider}.
//   observeChainHead(block)            fedgpu_chain_head_block.
//   observeChainRpcError(reason)       EVERY RPC error, retried or not: fedgpu_chain_rpc_errors_total;
//       reason ∈ timeout, connection, rate_limited, server.
//   setMinStakeCredits(credits)        fedgpu_provider_min_stake_credits (GpuMarket parameter).
//   setChainConnected(connected)       fedgpu_settlement_chain_connected (0: degraded, retrying).
//   enableSettlementPending()          call once when the hub settles on chain: from then on
//       fedgpu_settlement_pending counts finished GpuJobs without Settled=True (0 before).
// Amounts are floats of whole credits: the 18-decimal token amount divided by 10^18.
// Reconciles of a settlement Controller: pass `settlementControllerMetrics()` as its `metrics`
// and name the controller 'settlement'.
import type { ControllerMetrics } from '../runtime/controller.js';
import type { HubMetrics, SettlementConfirmed } from './hub-metrics.js';
import type { ChainRpcErrorReason, SettlementFailureReason } from './labels.js';

export type { SettlementConfirmed } from './hub-metrics.js';
export type { ChainRpcErrorReason, SettlementFailureReason } from './labels.js';

let installed: HubMetrics | undefined;

/** Makes `metrics` the target of the functions below (the hub does this at start). */
export function installHubMetrics(metrics: HubMetrics | undefined): void {
  installed = metrics;
}

export function observeSettlementConfirmed(settlement: SettlementConfirmed): void {
  installed?.observeSettlementConfirmed(settlement);
}

export function observeSettlementFailure(reason: SettlementFailureReason): void {
  installed?.observeSettlementFailure(reason);
}

export function observeSlash(provider: string, credits: number): void {
  installed?.observeSlash(provider, credits);
}

export function observeChainHead(block: number): void {
  installed?.observeChainHead(block);
}

export function observeChainRpcError(reason: ChainRpcErrorReason): void {
  installed?.observeChainRpcError(reason);
}

/** fedgpu_settlement_chain_connected: 1 once the chain is reached, 0 while settlement is degraded. */
export function setChainConnected(connected: boolean): void {
  installed?.setChainConnected(connected);
}

export function setMinStakeCredits(credits: number): void {
  installed?.setMinStakeCredits(credits);
}

export function enableSettlementPending(): void {
  installed?.enableSettlementPending();
}

/** ControllerMetrics hooks for the settlement Controller (fedgpu_reconcile_*{controller="settlement"}). */
export function settlementControllerMetrics(): ControllerMetrics {
  return { reconciled: (sample) => installed?.controllerMetrics.reconciled?.(sample) };
}
