import { getAddress } from 'ethers';
import { describe, expect, it } from 'vitest';
import { parseCredits } from '../../chain/credits.js';
import type { OutcomeLog } from '../../chain/market-events.js';
import { computeReputation } from '../../core/reputation.js';
import { chainProviderStatus } from './chain-status.js';
import { consumerOfNamespace } from '../settlement/accounts.js';

const WALLET = '0xAbCdEf0000000000000000000000000000000001';
const other = '0x0000000000000000000000000000000000000002';
const T = 1_800_000_000;
const log = (provider: string, outcome: 'success' | 'failure', block: number, amount = '1'): OutcomeLog =>
  ({ provider: provider.toLowerCase(), outcome, amount: parseCredits(amount), block, logIndex: 0, time: (T - 1000 + block) * 1000 });

describe('chainProviderStatus', () => {
  const logs = [log(WALLET, 'success', 1), log(WALLET, 'failure', 2, '5'), log(other, 'failure', 3, '7'), log(WALLET, 'success', 9)];

  it('is Staked at the minimum, and says why not below it', () => {
    const ok = chainProviderStatus(WALLET, { active: parseCredits('50'), unbonding: 0n }, parseCredits('50'), logs, { number: 5, timestamp: T });
    expect(ok.staked).toMatchObject({ type: 'Staked', status: 'True', reason: 'StakeSufficient', message: 'active stake 50 ≥ the hub minimum 50 credits' });
    const low = chainProviderStatus(WALLET, { active: parseCredits('45'), unbonding: parseCredits('10') }, parseCredits('50'), logs, { number: 5, timestamp: T });
    expect(low.staked).toMatchObject({ status: 'False', reason: 'InsufficientStake', message: 'active stake 45 < the hub minimum 50 credits (10 unbonding)' });
    expect(low.stake).toEqual({ amount: '45', unbonding: '10', slashed: '5', locked: '0', free: '45' });
  });

  it('is not Staked when open escrows lock so much that the free stake cannot back another bond', () => {
    const busy = chainProviderStatus(WALLET, { active: parseCredits('100'), unbonding: 0n, locked: parseCredits('95') }, parseCredits('50'), logs, { number: 5, timestamp: T }, parseCredits('10'));
    expect(busy.staked).toMatchObject({ status: 'False', reason: 'StakeLocked', message: "free stake 5 (95 of 100 locked by open escrows) cannot back another escrow's bond of 10 credits" });
    expect(busy.stake).toMatchObject({ amount: '100', locked: '95', free: '5' });
    const ok = chainProviderStatus(WALLET, { active: parseCredits('100'), unbonding: 0n, locked: parseCredits('90') }, parseCredits('50'), logs, { number: 5, timestamp: T }, parseCredits('10'));
    expect(ok.staked).toMatchObject({ status: 'True', reason: 'StakeSufficient' });
  });

  it("is not Staked until the provider allows this hub's settler, with a bond of slash left for each of its open escrows and one more", () => {
    const settler = '0x00000000000000000000000000000000000000Aa';
    const at = (consent: { allowed: boolean; floor: string; open?: number; lowerAt?: number }, locked = '0') =>
      chainProviderStatus(WALLET, { active: parseCredits('100'), unbonding: 0n, locked: parseCredits(locked) }, parseCredits('50'), logs, { number: 5, timestamp: T }, parseCredits('10'), {
        settler,
        allowed: consent.allowed,
        floor: parseCredits(consent.floor),
        open: consent.open ?? 0,
        lowerAt: consent.lowerAt ?? 0,
      }).staked;
    expect(at({ allowed: false, floor: '0' })).toMatchObject({
      status: 'False',
      reason: 'SettlerNotAllowed',
      message: `the provider wallet does not allow this hub's settler ${settler} to lock its stake; its owner runs \`fedgpu allow-settler --settler ${settler} --slashable <credits>\``,
    });
    expect(at({ allowed: true, floor: '9.5' })).toMatchObject({
      status: 'False',
      reason: 'SlashAllowanceSpent',
      message: `the provider wallet lets this hub's settler ${settler} slash 9.5 more credits, less than the 10 another escrow needs (a bond of 10 for each of its 0 open escrow(s) and the new one); its owner raises it with \`fedgpu allow-settler --settler ${settler} --slashable <credits>\``,
    });
    expect(at({ allowed: true, floor: '10' })).toMatchObject({ status: 'True', reason: 'StakeSufficient' });
    // Two of this key's escrows open: the next needs three bonds of slash left (GpuMarket checks the
    // same); other keys' escrows (locked stake) do not count against this key's bound.
    expect(at({ allowed: true, floor: '29', open: 2 }, '20')).toMatchObject({ status: 'False', reason: 'SlashAllowanceSpent' });
    expect(at({ allowed: true, floor: '30', open: 2 }, '20')).toMatchObject({ status: 'True' });
    expect(at({ allowed: true, floor: '10', open: 0 }, '80')).toMatchObject({ status: 'True' });
    // A lower bound that is due waits for this key's open escrows to close; none opens meanwhile.
    expect(at({ allowed: true, floor: '100', open: 1, lowerAt: T })).toMatchObject({ status: 'False', reason: 'SlashBoundLowering' });
    expect(at({ allowed: true, floor: '100', open: 1, lowerAt: T + 1 })).toMatchObject({ status: 'True' });
    // Too little stake is said first; a consent problem before a lock.
    expect(chainProviderStatus(WALLET, { active: parseCredits('5'), unbonding: 0n }, parseCredits('50'), logs, { number: 5, timestamp: T }, 0n, { settler, allowed: false, floor: 0n, open: 0, lowerAt: 0 }).staked.reason).toBe('InsufficientStake');
    expect(at({ allowed: false, floor: '0' }, '95').reason).toBe('SettlerNotAllowed');
    expect(at({ allowed: true, floor: '1000' }, '95').reason).toBe('StakeLocked');
    // A market without a slash bond needs only the consent.
    const noBond = chainProviderStatus(WALLET, { active: parseCredits('100'), unbonding: 0n }, parseCredits('50'), logs, { number: 5, timestamp: T }, 0n, { settler, allowed: true, floor: 0n, open: 0, lowerAt: 0 });
    expect(noBond.staked.status).toBe('True');
  });

  it('does not count a slash that took nothing against reputation (any key the provider allows could emit those once its bound is spent)', () => {
    const with0 = chainProviderStatus(WALLET, { active: 0n, unbonding: 0n }, 0n, [...logs, log(WALLET, 'failure', 3, '0'), log(WALLET, 'failure', 4, '0')], { number: 5, timestamp: T });
    const without = chainProviderStatus(WALLET, { active: 0n, unbonding: 0n }, 0n, logs, { number: 5, timestamp: T });
    expect(with0.reputation).toEqual(without.reputation);
    expect(with0.reputation.failures).toBeGreaterThan(0.9); // the slash of 5 still counts
  });

  it('counts a slash as the share of a full bond it took, so 1-wei slashes from an allowed key cannot sink a reputation', () => {
    const block = { number: 20, timestamp: T };
    const failuresWith = (amounts: string[]) =>
      chainProviderStatus(WALLET, { active: 0n, unbonding: 0n }, 0n, amounts.map((a, i) => log(WALLET, 'failure', 10 + i, a)), block, parseCredits('10')).reputation.failures!;
    const full = failuresWith(['10']);
    expect(full).toBeGreaterThan(0.99);
    expect(failuresWith(['5'])).toBeCloseTo(full / 2, 3);
    // A hundred slashes of 1 wei weigh next to nothing; more than a bond still counts once.
    expect(failuresWith(Array.from({ length: 100 }, () => '0.000000000000000001'))).toBeLessThan(0.001);
    expect(failuresWith(['25'])).toBeCloseTo(full, 6);
  });

  it('computes reputation from its own Settled and Slashed events up to the block, decayed to the block time', () => {
    const status = chainProviderStatus(WALLET, { active: 0n, unbonding: 0n }, 0n, logs, { number: 5, timestamp: T });
    const expected = computeReputation(WALLET.toLowerCase(), [
      { time: (T - 999) * 1000, provider: WALLET.toLowerCase(), outcome: 'success' },
      { time: (T - 998) * 1000, provider: WALLET.toLowerCase(), outcome: 'failure' },
    ], T * 1000);
    // Published at six decimals (reputationAt).
    const six = (n: number) => Math.round(n * 1e6) / 1e6;
    expect(status.reputation).toEqual({
      score: six(expected.score),
      successes: six(expected.successes),
      failures: six(expected.failures),
      window: '168h',
      asOfBlock: 5,
      asOf: new Date(T * 1000).toISOString(),
    });
  });
});

describe('consumerOfNamespace', () => {
  const ns = (labels: Record<string, string>, uid: string | null = 'uid-1') => ({ metadata: { name: 'ml', labels, ...(uid ? { uid } : {}) } });
  it('reads the wallet label, checksummed, with the namespace uid its consent names, and explains a missing or malformed one', () => {
    expect(consumerOfNamespace('ml', ns({ 'fedgpu.io/consumer-wallet': WALLET.toLowerCase() }))).toEqual({ wallet: getAddress(WALLET.toLowerCase()), namespaceUid: 'uid-1' });
    expect(consumerOfNamespace('ml', ns({}))).toEqual({ problem: 'waiting for a consumer wallet: namespace ml has no label fedgpu.io/consumer-wallet=<0x address> (this hub settles on chain)' });
    expect(consumerOfNamespace('ml', undefined)).toEqual({ problem: 'waiting for a consumer wallet: namespace ml has no label fedgpu.io/consumer-wallet=<0x address> (this hub settles on chain)' });
    expect(consumerOfNamespace('ml', ns({ 'fedgpu.io/consumer-wallet': 'alice' }))).toEqual({ problem: 'waiting for a consumer wallet: label fedgpu.io/consumer-wallet=alice on namespace ml is not an 0x address' });
    expect(consumerOfNamespace('ml', ns({ 'fedgpu.io/consumer-wallet': WALLET.toLowerCase() }, null))).toEqual({ problem: 'waiting for a consumer wallet: namespace ml has no uid yet' });
    // A namespace on its way out pays for nothing more (a new one of that name may follow it).
    const deleting = { metadata: { ...ns({ 'fedgpu.io/consumer-wallet': WALLET.toLowerCase() }).metadata, deletionTimestamp: new Date() } };
    expect(consumerOfNamespace('ml', deleting)).toEqual({ problem: 'namespace ml is being deleted: nothing more is escrowed for it' });
  });
});
