import { isError } from 'ethers';
import type { GpuJob } from '../../api/types.js';
import { parseCredits } from '../../chain/credits.js';
import { type ChainRpcErrorReason, observeChainRpcError, observeSettlementConfirmed, observeSettlementFailure, observeSlash } from '../../metrics/settlement-metrics.js';
import type { SettlementAction } from './plan.js';

// The settlement controller's calls into docs/metrics.md's settlement series, kept apart so the
// controller reads as settlement logic.

const credits = (decimal: string) => Number(parseCredits(decimal)) / 1e18;

export function settlementConfirmed(job: GpuJob, action: Extract<SettlementAction, { kind: 'settle' }>, now: number): void {
  const attempt = job.status?.attempts?.find((a) => a.epoch === action.epoch);
  const finished = Date.parse(attempt?.endTime ?? job.status?.completionTime ?? '');
  observeSettlementConfirmed({
    provider: action.provider,
    ...(attempt?.gpuProduct ? { gpuProduct: attempt.gpuProduct } : {}),
    gpuSeconds: action.receipt.gpuSeconds,
    paidCredits: credits(action.receipt.amount),
    ...(Number.isFinite(finished) ? { durationSeconds: Math.max(0, (now - finished) / 1000) } : {}),
  });
}

export function providerSlashed(provider: string, amount: bigint): void {
  observeSlash(provider, Number(amount) / 1e18);
}

/** A refund that gives up on a receipt, a refused receipt, a reverted transaction: terminal failures. */
export function settlementGaveUp(reason: 'timeout' | 'bad_receipt' | 'reverted' | 'insufficient_escrow'): void {
  observeSettlementFailure(reason);
}

/** Every RPC error, retried or not. Reverts are answers, not RPC errors. */
export function chainRpcFailed(err: unknown): void {
  if (isError(err, 'CALL_EXCEPTION')) return;
  const text = String((err as Error)?.message ?? err).toLowerCase();
  let reason: ChainRpcErrorReason = 'server';
  if (isError(err, 'TIMEOUT') || text.includes('timeout')) reason = 'timeout';
  else if (text.includes('econnrefused') || text.includes('econnreset') || text.includes('fetch failed') || text.includes('socket') || isError(err, 'NETWORK_ERROR')) reason = 'connection';
  else if (text.includes('429') || text.includes('rate')) reason = 'rate_limited';
  observeChainRpcError(reason);
}
