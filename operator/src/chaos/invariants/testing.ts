import type { GpuJob, JobAttempt } from '../../api/types.js';
import { attemptEscrowId } from '../../chain/attempt-escrow.js';
import { parseCredits } from '../../chain/credits.js';
import { usageAmount } from '../../chain/receipt.js';
import type { ChainEvent, ChaosHistory, JobRecord } from '../history.js';
import type { JobPlan } from '../schedule.js';

// A small recorded history that keeps every promise, for the invariants' unit tests to break one
// promise at a time: a job that lost its first attempt to a killed agent and succeeded elsewhere,
// a job whose pods exit 1, and a job deleted while it ran.

export const T0 = Date.parse('2026-11-29T12:00:00Z');
export const WALLET_A = '0x' + 'a'.repeat(40);
export const WALLET_B = '0x' + 'b'.repeat(40);
export const CONSUMER = '0x' + 'c'.repeat(40);
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();
const credits = (c: string) => parseCredits(c).toString();
const PRICE = '2';
const ESCROW = credits('1');
const SLASH = credits('10');

function job(name: string, uid: string, phase: string | undefined, reason: string | undefined, attempts: JobAttempt[], receipts: Record<number, number>): GpuJob {
  return {
    apiVersion: 'fedgpu.io/v1alpha1',
    kind: 'GpuJob',
    metadata: { name, namespace: 'chaos', uid, creationTimestamp: new Date(T0) },
    spec: { template: { spec: { containers: [{ name: 'c', image: 'x' }] } }, budget: { maxPricePerGpuHour: '3' } },
    status: {
      ...(phase ? { phase: phase as 'Succeeded' } : {}),
      currentEpoch: attempts.at(-1)?.epoch,
      attempts,
      ...(reason ? { conditions: [{ type: 'Finished', status: 'True', reason, message: '', lastTransitionTime: iso(60) }] } : {}),
      settlement: {
        attempts: attempts.map((a) => ({
          epoch: a.epoch,
          ...(receipts[a.epoch] !== undefined
            ? { receipt: { gpuSeconds: receipts[a.epoch]!, amount: formatUnits(usageAmount(receipts[a.epoch]!, PRICE)), usageHash: '0x', signature: '0x', wallet: a.provider === 'gp-a' ? WALLET_A : WALLET_B } }
            : {}),
        })),
      },
    },
  };
}

const formatUnits = (units: bigint) => {
  const s = units.toString().padStart(19, '0');
  return `${s.slice(0, -18)}.${s.slice(-18)}`.replace(/\.?0+$/, '');
};

const attempt = (epoch: number, provider: string, start: number, end: number | undefined, outcome: JobAttempt['outcome'], faultOf: JobAttempt['faultOf'], gpuSeconds: number, reason = ''): JobAttempt => ({
  epoch, provider, startTime: iso(start), ...(end !== undefined ? { endTime: iso(end) } : {}), outcome, faultOf, reason, gpuSeconds, pricePerGpuHour: PRICE,
});

const plan = (name: string, kind: JobPlan['kind'], extra: Partial<JobPlan> = {}): JobPlan => ({ name, kind, atMs: 0, replicas: 1, gpusPerReplica: 1, runForS: 10, ...extra });

export function cleanHistory(): ChaosHistory {
  const moved: JobRecord = {
    plan: plan('chaos-000-single', 'single'),
    uid: 'uid-moved',
    final: job('chaos-000-single', 'uid-moved', 'Succeeded', 'Succeeded', [
      attempt(1, 'gp-a', 0, 20, 'Lost', 'provider', 0, 'ProviderLost'),
      attempt(2, 'gp-b', 21, 40, 'Succeeded', 'none', 10),
    ], { 2: 10 }),
  };
  const crashed: JobRecord = {
    plan: plan('chaos-001-user-exit', 'user-exit', { exitCode: 1 }),
    uid: 'uid-crashed',
    final: job('chaos-001-user-exit', 'uid-crashed', 'Failed', 'ContainerFailed', [attempt(1, 'gp-b', 0, 10, 'Failed', 'user', 3, 'ContainerFailed')], { 1: 3 }),
  };
  const deleted: JobRecord = {
    plan: plan('chaos-002-delete-mid-run', 'delete-mid-run', { deleteAfterMs: 5_000 }),
    uid: 'uid-deleted',
    deletedAt: T0 + 5_000,
    lastSeen: job('chaos-002-delete-mid-run', 'uid-deleted', 'Running', undefined, [attempt(1, 'gp-a', 0, 6, 'Cancelled', 'none', 4, 'JobDeleted')], { 1: 4 }),
  };
  const paid = (gpuSeconds: number) => usageAmount(gpuSeconds, PRICE);
  const id = (uid: string, epoch: number) => attemptEscrowId(uid, epoch);
  let block = 10;
  const ev = (name: ChainEvent['name'], escrowId: string, extra: Partial<ChainEvent> = {}): ChainEvent => ({ name, escrowId, block: block++, txHash: '0x', amount: ESCROW, ...extra });
  const settled = (escrowId: string, wallet: string, epoch: number, gpuSeconds: number) =>
    ev('Settled', escrowId, { provider: wallet, consumer: CONSUMER, epoch, gpuSeconds, amount: paid(gpuSeconds).toString(), refunded: (BigInt(ESCROW) - paid(gpuSeconds)).toString() });
  const events: ChainEvent[] = [
    ev('EscrowOpened', id('uid-moved', 1), { consumer: CONSUMER }),
    ev('Slashed', id('uid-moved', 1), { provider: WALLET_A, consumer: CONSUMER, epoch: 1, amount: SLASH, requested: SLASH }),
    ev('Refunded', id('uid-moved', 1), { consumer: CONSUMER }),
    ev('EscrowOpened', id('uid-moved', 2), { consumer: CONSUMER }),
    settled(id('uid-moved', 2), WALLET_B, 2, 10),
    ev('EscrowOpened', id('uid-crashed', 1), { consumer: CONSUMER }),
    settled(id('uid-crashed', 1), WALLET_B, 1, 3),
    ev('EscrowOpened', id('uid-deleted', 1), { consumer: CONSUMER }),
    settled(id('uid-deleted', 1), WALLET_A, 1, 4),
  ];
  const paidA = paid(4);
  const paidB = paid(10) + paid(3);
  const stake = parseCredits('200');
  const free = parseCredits('1000');
  return {
    seed: 1,
    startedAt: T0 - 10_000,
    endedAt: T0 + 120_000,
    graceMs: 5_000,
    providers: { 'gp-a': { cluster: 'a', wallet: WALLET_A }, 'gp-b': { cluster: 'b', wallet: WALLET_B } },
    faults: [{ kind: 'agent-kill', target: 'provider:a', atMs: 10_000, durationMs: 30_000, startedAt: T0 + 8_000, endedAt: T0 + 38_000 }],
    jobs: [moved, crashed, deleted],
    pods: [
      { at: T0 + 5_000, provider: 'gp-a', jobUid: 'uid-moved', epoch: 1, pod: 'p1' },
      { at: T0 + 30_000, provider: 'gp-a', jobUid: 'uid-moved', epoch: 1, pod: 'p1' }, // zombie while a is cut off
      { at: T0 + 30_000, provider: 'gp-b', jobUid: 'uid-moved', epoch: 2, pod: 'p2' },
      { at: T0 + 5_000, provider: 'gp-b', jobUid: 'uid-crashed', epoch: 1, pod: 'p3' },
      { at: T0 + 3_000, provider: 'gp-a', jobUid: 'uid-deleted', epoch: 1, pod: 'p4' },
    ],
    chain: {
      consumer: CONSUMER,
      events,
      before: { block: 1, totalSupply: credits('20000'), marketBalance: (free + 2n * stake).toString(), consumerFree: { [CONSUMER]: free.toString() }, providerStake: { [WALLET_A]: stake.toString(), [WALLET_B]: stake.toString() }, providerEarnings: { [WALLET_A]: '0', [WALLET_B]: '0' }, openEscrowed: '0' },
      after: {
        block: block,
        totalSupply: credits('20000'),
        marketBalance: (free + 2n * stake).toString(),
        consumerFree: { [CONSUMER]: (free - paidA - paidB + BigInt(SLASH)).toString() },
        providerStake: { [WALLET_A]: (stake - BigInt(SLASH)).toString(), [WALLET_B]: stake.toString() },
        providerEarnings: { [WALLET_A]: paidA.toString(), [WALLET_B]: paidB.toString() },
        openEscrowed: '0',
      },
    },
    leftovers: [],
    reputation: [{ provider: 'gp-a', wallet: WALLET_A, status: { score: 0.2, successes: 1, failures: 1, asOfBlock: 18 }, fromChain: { score: 0.2, successes: 1, failures: 1, asOfBlock: 18 } }],
  };
}
