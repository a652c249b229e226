import { describe, expect, it } from 'vitest';
import { consumerOfNamespace } from './accounts.js';
import { fundsMessage } from './funding.js';
import { fundingWaitReason } from './wait-reason.js';

describe('fundingWaitReason', () => {
  it('tells a consumer short of credits from one whose escrow is being locked', () => {
    expect(fundingWaitReason(fundsMessage('0xabc', 3n * 10n ** 18n, 10n * 10n ** 18n, 'spec.budget.maxTotal'))).toBe('InsufficientFunds');
    expect(fundingWaitReason("waiting: the job's budget of 10 credits is spent (10 committed by earlier attempts)")).toBe('InsufficientFunds');
    expect(fundingWaitReason('waiting for escrow: locking 10 credits of consumer 0xabc for attempt 1 on west')).toBe('WaitingForEscrow');
    expect(fundingWaitReason('waiting for escrow: none open pays provider west')).toBe('WaitingForEscrow');
  });

  it('names the missing consent, the missing wallet and an unreachable chain', () => {
    expect(fundingWaitReason('waiting for authorization: wallet 0xabc has not authorized namespace ml')).toBe('WaitingForAuthorization');
    const unlabelled = consumerOfNamespace('ml', { metadata: { name: 'ml', uid: 'u1' } });
    expect('problem' in unlabelled && fundingWaitReason(unlabelled.problem)).toBe('WaitingForConsumerWallet');
    const notAnAddress = consumerOfNamespace('ml', { metadata: { name: 'ml', uid: 'u1', labels: { 'fedgpu.io/consumer-wallet': 'me' } } });
    expect('problem' in notAnAddress && fundingWaitReason(notAnAddress.problem)).toBe('WaitingForConsumerWallet');
    expect(fundingWaitReason('waiting for the chain: connection refused')).toBe('ChainUnavailable');
  });

  it('says settlement, not funds, for anything else', () => {
    expect(fundingWaitReason('provider west has no wallet to open an escrow for')).toBe('WaitingForSettlement');
    expect(fundingWaitReason('namespace ml is being deleted: nothing more is escrowed for it')).toBe('WaitingForSettlement');
  });
});
