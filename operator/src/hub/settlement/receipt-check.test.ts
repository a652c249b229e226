import { Wallet } from 'ethers';
import { describe, expect, it } from 'vitest';
import { attemptEscrowId } from '../../chain/attempt-escrow.js';
import { formatCredits } from '../../chain/credits.js';
import { buildUsageReceipt, marketDomain, signUsageReceipt } from '../../chain/receipt.js';
import type { UsageReceipt as ReceiptMessage } from '../../gen/proto/fedgpu/v1/market.js';
import { checkReceipt, type ReceiptCheck } from './receipt-check.js';
import { T0, attempt, ended, openRecord, settlementJob } from './testing/fixtures.js';

const provider = new Wallet('0x' + '12'.repeat(32));
const stranger = new Wallet('0x' + '34'.repeat(32));
const domain = marketDomain(31337, '0x' + 'cd'.repeat(20));
const USAGE = '0x' + '99'.repeat(32);

async function signed(over: { epoch?: number; gpuSeconds?: number; price?: string; jobUid?: string; by?: Wallet } = {}): Promise<ReceiptMessage> {
  const epoch = over.epoch ?? 1;
  const price = over.price ?? '2.4';
  const jobUid = over.jobUid ?? settlementJob().metadata.uid!;
  const receipt = buildUsageReceipt({ jobId: attemptEscrowId(jobUid, epoch), epoch, gpuSeconds: over.gpuSeconds ?? 60, pricePerGpuHour: price, provider: provider.address, usageHash: USAGE });
  return {
    jobUid,
    epoch,
    gpuSeconds: Number(receipt.gpuSeconds),
    pricePerGpuHour: price,
    amount: formatCredits(receipt.amount),
    signature: await signUsageReceipt(over.by ?? provider, domain, receipt),
    providerWallet: provider.address,
    usageHash: USAGE,
  };
}

const succeededJob = (over: Partial<Parameters<typeof ended>[3]> = {}) =>
  settlementJob({ status: { phase: 'Succeeded', attempts: [ended(1, 'Succeeded', 'none', { provider: 'gp-a', ...over })], settlement: { attempts: [openRecord(1)] } } });
const check = (receipt: ReceiptMessage, over: Partial<ReceiptCheck> = {}) =>
  checkReceipt({ job: succeededJob(), providerName: 'gp-a', providerWallet: provider.address, receipt, domain, now: T0 + 3_600_000, ...over });

describe('checkReceipt', () => {
  it('accepts the provider\'s receipt for its paid attempt', async () => {
    const receipt = await signed();
    const verdict = check(receipt);
    expect(verdict).toMatchObject({ kind: 'accept', epoch: 1, record: { gpuSeconds: 60, amount: '0.04', usageHash: USAGE, signature: receipt.signature } });
  });

  it('acknowledges a resent receipt without recording it twice, and refuses a different one for the same attempt', async () => {
    const receipt = await signed();
    const job = succeededJob();
    job.status!.settlement!.attempts![0]!.receipt = { gpuSeconds: 60, amount: '0.04', usageHash: USAGE, signature: receipt.signature, wallet: provider.address };
    expect(check(receipt, { job })).toEqual({ kind: 'duplicate', epoch: 1 });
    expect(check(await signed({ gpuSeconds: 59 }), { job })).toEqual({ kind: 'refuse', reason: 'another receipt for attempt 1 is recorded already' });
  });

  it('refuses a forged signature, a tampered field and a receipt replayed for another job', async () => {
    expect(check(await signed({ by: stranger }))).toMatchObject({ kind: 'refuse', reason: expect.stringMatching(/^signed by 0x[0-9a-fA-F]{40}, not by the provider wallet/) });
    const tampered = { ...(await signed({ gpuSeconds: 60 })), gpuSeconds: 63, amount: '0.042' };
    expect(check(tampered)).toMatchObject({ kind: 'refuse', reason: expect.stringContaining('not by the provider wallet') });
    // A genuine receipt of another job (same provider, same epoch) does not verify for this one.
    expect(check({ ...(await signed({ jobUid: 'another-uid' })), jobUid: settlementJob().metadata.uid! })).toMatchObject({ kind: 'refuse' });
  });

  it('refuses receipts for fenced or unpaid attempts, other providers, other prices and impossible usage', async () => {
    const lost = succeededJob({ outcome: 'Lost', faultOf: 'provider', reason: 'ProviderLost' });
    expect(check(await signed(), { job: lost })).toEqual({ kind: 'refuse', reason: 'attempt 1 ended Lost (ProviderLost): the provider is not paid for it' });
    expect(check(await signed(), { providerName: 'gp-b' })).toEqual({ kind: 'refuse', reason: 'attempt 1 ran on gp-a, not on gp-b' });
    expect(check(await signed({ epoch: 2 }))).toEqual({ kind: 'refuse', reason: 'job train has no attempt 2' });
    expect(check(await signed({ price: '9' }))).toEqual({ kind: 'refuse', reason: 'price 9 differs from the agreed 2.4' });
    // The attempt lasted 30 s on 2 GPUs: 70 GPU-seconds with the slack, not 3600.
    expect(check(await signed({ gpuSeconds: 3600 }))).toEqual({ kind: 'refuse', reason: '3600 GPU-seconds is more than attempt 1 could use: the hub saw it running for 60 GPU-seconds (+10 slack)' });
    expect(check({ ...(await signed()), amount: '1' })).toEqual({ kind: 'refuse', reason: 'amount 1 is not gpuSeconds × price / 3600' });
  });

  it('bounds usage by the interval the hub saw running, not the attempt\'s lifetime, and by what the budget covers', async () => {
    // Assigned at T0+60s but seen Running only 20 s before its end: 2 GPUs × 20 s + 10 slack.
    const late = succeededJob({ runningTime: new Date(T0 + 70_000).toISOString() });
    expect(check(await signed({ gpuSeconds: 50 }), { job: late })).toMatchObject({ kind: 'accept' });
    expect(check(await signed({ gpuSeconds: 60 }), { job: late })).toEqual({ kind: 'refuse', reason: '60 GPU-seconds is more than attempt 1 could use: the hub saw it running for 40 GPU-seconds (+10 slack)' });
    const never = succeededJob({ runningTime: undefined });
    expect(check(await signed({ gpuSeconds: 60 }), { job: never })).toEqual({ kind: 'refuse', reason: '60 GPU-seconds is more than attempt 1 could use: the hub never saw it running (+10 slack)' });
    const capped = succeededJob({ coveredGpuSeconds: 40 });
    expect(check(await signed({ gpuSeconds: 60 }), { job: capped })).toEqual({ kind: 'refuse', reason: '60 GPU-seconds is more than the 40 the budget of attempt 1 covers' });
  });

  it('counts the early replicas of a gang that started apart, so an honest receipt is not refused whole; all but one replica before the gang ran', async () => {
    // 2 replicas × 1 GPU, assigned T0+60s: replica 0 used its GPU from T0+40s... the hub heard of
    // GPU time at T0+40s (Pending), saw the whole gang Running at T0+60s, and its end at T0+90s.
    // The agent measured 50 + 30 = 80 GPU-seconds; counted from Running alone the bound was
    // 2 × 30 + 10 = 70, and the whole receipt was refused (the provider unpaid for the attempt).
    const gang = (over: Parameters<typeof ended>[3]) =>
      settlementJob({ spec: { replicas: 2, gpusPerReplica: 1 }, status: { phase: 'Succeeded', attempts: [ended(1, 'Succeeded', 'none', { provider: 'gp-a', ...over })], settlement: { attempts: [openRecord(1)] } } });
    const staggered = gang({ firstUsageTime: new Date(T0 + 40_000).toISOString() });
    expect(check(await signed({ gpuSeconds: 80 }), { job: staggered })).toMatchObject({ kind: 'accept' });
    // (1 GPU × 20 s before, 2 × 30 after, + 10 slack.)
    expect(check(await signed({ gpuSeconds: 91 }), { job: staggered })).toEqual({ kind: 'refuse', reason: '91 GPU-seconds is more than attempt 1 could use: the hub saw it running for 80 GPU-seconds (+10 slack)' });
    // Never all Running (a start timeout): one GPU from its first word of GPU time to the end.
    const partial = gang({ runningTime: undefined, firstUsageTime: new Date(T0 + 40_000).toISOString(), outcome: 'Failed', faultOf: 'unattributed', reason: 'InitContainersNotDone' });
    expect(check(await signed({ gpuSeconds: 60 }), { job: partial })).toMatchObject({ kind: 'accept' });
    expect(check(await signed({ gpuSeconds: 61 }), { job: partial })).toMatchObject({ kind: 'refuse' });
  });

  it('takes a receipt for a running attempt (it may arrive before the attempt\'s end is recorded)', async () => {
    const running = settlementJob({ status: { phase: 'Running', attempts: [attempt(1, { provider: 'gp-a' })] } });
    expect(check(await signed({ gpuSeconds: 20 }), { job: running, now: T0 + 90_000 })).toMatchObject({ kind: 'accept' });
  });
});
