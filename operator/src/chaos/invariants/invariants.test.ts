import { describe, expect, it } from 'vitest';
import { attemptEscrowId } from '../../chain/attempt-escrow.js';
import type { ChaosHistory } from '../history.js';
import { checkHistory, formatViolation } from './index.js';
import { nothingLeftBehind } from './cleanup.js';
import { attemptsWellFormed, blameHasACause, jobsEndAsAllowed, noTwoEpochsAtOnce } from './jobs.js';
import { deliveredWorkPaid, escrowsClosedOnce, paidAsSigned, slashedExactlyOnce, tokensConserved } from './money.js';
import { reputationAgrees } from './reputation.js';
import { parseCredits } from '../../chain/credits.js';
import { cleanHistory, CONSUMER, T0, WALLET_A, WALLET_B } from './testing.js';

// Each invariant over a recorded history: the clean one passes every check, and each test breaks
// one promise the way a bug would and shows the matching check (and only it) catches it.

const h = () => cleanHistory();
const moved = (x: ChaosHistory) => x.jobs[0]!;
const messages = (vs: { message: string }[]) => vs.map((v) => v.message);

describe('a history that keeps every promise', () => {
  it('passes every invariant', () => {
    for (const r of checkHistory(h())) expect(r.violations.map(formatViolation), r.name).toEqual([]);
  });
});

describe('job-terminal', () => {
  it('catches a job lost from the apiserver', () => {
    const x = h();
    delete moved(x).final;
    expect(messages(jobsEndAsAllowed(x))).toEqual([expect.stringMatching(/^lost/)]);
  });

  it('catches a stuck job, with the faults during its life', () => {
    const x = h();
    moved(x).final!.status!.phase = 'Running';
    const [v] = jobsEndAsAllowed(x);
    expect(v?.message).toMatch(/stuck in phase Running/);
    expect(v?.faults.map((f) => f.kind)).toEqual(['agent-kill']);
  });

  it('catches a deleted job held by its finalizer', () => {
    const x = h();
    x.jobs[2]!.final = { ...x.jobs[2]!.lastSeen!, metadata: { ...x.jobs[2]!.lastSeen!.metadata, finalizers: ['fedgpu.io/cleanup'] } };
    expect(messages(jobsEndAsAllowed(x))).toEqual([expect.stringMatching(/still present \(finalizers \["fedgpu.io\/cleanup"\]/)]);
  });

  it('catches a user-exit job reported Succeeded, and a clean job failed for a reason its spec does not allow', () => {
    const x = h();
    x.jobs[1]!.final!.status!.phase = 'Succeeded';
    x.jobs[1]!.final!.status!.attempts![0]!.outcome = 'Succeeded';
    moved(x).final!.status!.phase = 'Failed';
    moved(x).final!.status!.conditions![0]!.reason = 'DeadlineExceeded';
    expect(messages(jobsEndAsAllowed(x))).toEqual([
      expect.stringMatching(/DeadlineExceeded, which is for only a job with activeDeadlineSeconds/),
      expect.stringMatching(/Succeeded although every pod exits 1/),
    ]);
  });

  it('allows MaxAttemptsReached only when no attempt was the user\'s', () => {
    const x = h();
    const j = x.jobs[1]!.final!;
    j.status!.conditions![0]!.reason = 'MaxAttemptsReached';
    expect(messages(jobsEndAsAllowed(x))).toEqual([expect.stringMatching(/MaxAttemptsReached, which is for only a job whose every attempt ended through no fault of its own/)]);
    j.status!.attempts![0]!.faultOf = 'provider';
    expect(jobsEndAsAllowed(x)).toEqual([]);
  });
});

describe('one-live-epoch', () => {
  it('catches two live attempts in status', () => {
    const x = h();
    for (const a of moved(x).final!.status!.attempts!) delete a.endTime;
    expect(messages(attemptsWellFormed(x))).toEqual(['2 attempts live at once in status: epochs 1,2', 'job Succeeded with an attempt still live']);
  });

  it('catches a zombie running alongside the new epoch with its provider reachable and past the grace', () => {
    const x = h();
    x.faults = [];
    const [v] = noTwoEpochsAtOnce(x);
    expect(v?.message).toMatch(/epoch 1 still running at .* alongside epoch 2, beyond the 5000 ms grace/);
    expect(v?.attempt).toMatchObject({ epoch: 1, provider: 'gp-a', outcome: 'Lost' });
  });

  it('excuses the overlap within the grace after the hub ended the old attempt', () => {
    const x = h();
    x.faults = [];
    x.pods = x.pods.map((p) => (p.at === T0 + 30_000 ? { ...p, at: T0 + 23_000 } : p));
    expect(noTwoEpochsAtOnce(x)).toEqual([]);
  });
});

describe('blame-has-a-cause', () => {
  it('catches a provider blamed with no fault on it', () => {
    const x = h();
    x.faults = [{ ...x.faults[0]!, target: 'provider:b' }];
    expect(messages(blameHasACause(x))).toEqual(['attempt blamed on provider (ProviderLost) with no fault injected on a']);
  });
});

describe('escrow-once', () => {
  it('catches an escrow settled twice, and one left open', () => {
    const x = h();
    const settle = x.chain.events.find((e) => e.name === 'Settled')!;
    x.chain.events.push({ ...settle, block: 99 });
    x.chain.events = x.chain.events.filter((e) => !(e.name === 'Settled' && e.escrowId === attemptEscrowId('uid-crashed', 1)));
    expect(messages(escrowsClosedOnce(x)).sort()).toEqual(['closed 2 times (EscrowOpened, Settled, Settled)', 'still open at the end']);
  });
});

describe('paid-as-signed', () => {
  it('catches a payment above the signed receipt', () => {
    const x = h();
    const settle = x.chain.events.find((e) => e.name === 'Settled')!;
    settle.amount = (BigInt(settle.amount) + 1n).toString();
    expect(messages(paidAsSigned(x))).toEqual([expect.stringMatching(/^paid \d+, expected min\(signed/)]);
  });

  it('catches a payment for a lost attempt, to the wrong wallet', () => {
    const x = h();
    const e = x.chain.events.find((e) => e.name === 'Refunded' && e.escrowId === attemptEscrowId('uid-moved', 1))!;
    Object.assign(e, { name: 'Settled', provider: WALLET_B, gpuSeconds: 5, amount: '1000' });
    const found = messages(paidAsSigned(x));
    expect(found).toContain(`paid ${WALLET_B}, not the attempt's provider ${WALLET_A}`);
    expect(found).toContain('paid 1000 for an attempt that ended Lost (provider)');
    expect(found).toContain('paid 1000 with no signed receipt recorded');
  });

  it('catches metered time beyond the attempt\'s wall time, and a receipt off the agreed price', () => {
    const x = h();
    const a = moved(x).final!.status!.attempts![1]!;
    a.endTime = new Date(T0 + 22_000).toISOString(); // 1 s long
    a.pricePerGpuHour = '3';
    const found = messages(paidAsSigned(x));
    expect(found).toContain("paid for 10 GPU-s; 1 GPU(s) over the attempt's 1.0 s allow at most 6");
    expect(found.some((m) => /is not 10 GPU-s at the agreed 3\/GPU-h/.test(m)), found.join('; ')).toBe(true);
  });

  it('catches a job paid more than its maxTotal', () => {
    const x = h();
    x.jobs[1]!.plan.maxTotal = '0.000001';
    expect(messages(paidAsSigned(x))).toEqual([expect.stringMatching(/more than budget.maxTotal 0.000001/)]);
  });
});

describe('delivered work paid', () => {
  it('catches a reclaimed attempt with a signed receipt refunded in full', () => {
    const x = h();
    const e = x.chain.events.find((e) => e.name === 'Settled' && e.escrowId === attemptEscrowId('uid-deleted', 1))!;
    Object.assign(e, { name: 'Refunded', amount: '1' });
    x.jobs[2]!.lastSeen!.status!.attempts![0]!.outcome = 'Reclaimed';
    expect(messages(deliveredWorkPaid(x))).toEqual(['a Reclaimed attempt with a signed receipt for 4 GPU-s was refunded in full: the provider was not paid for delivered work']);
  });
});

describe('slash-once', () => {
  it('catches a provider fault never slashed, and a slash of a user-fault attempt', () => {
    const x = h();
    const slash = x.chain.events.find((e) => e.name === 'Slashed')!;
    slash.escrowId = attemptEscrowId('uid-crashed', 1);
    expect(messages(slashedExactlyOnce(x)).sort()).toEqual([
      'provider-fault attempt slashed 0 times',
      `slashed ${WALLET_A}, not the attempt's provider ${WALLET_B}`,
      'slashed 1 time(s) although the attempt\'s fault is user (Failed)',
    ].sort());
  });

  it('catches a double slash', () => {
    const x = h();
    x.chain.events.push({ ...x.chain.events.find((e) => e.name === 'Slashed')!, block: 99 });
    expect(messages(slashedExactlyOnce(x))).toEqual(['provider-fault attempt slashed 2 times']);
  });
});

describe('token-conservation', () => {
  /** The recorded history with its slash paying the consumer 1 credit of the 10 taken, 9 burned (an escrow of 1 credit). */
  const partlyBurned = () => {
    const x = h();
    const slash = x.chain.events.find((e) => e.name === 'Slashed')!;
    const burned = BigInt(slash.amount) - parseCredits('1');
    slash.compensated = parseCredits('1').toString();
    x.chain.before.burned = '0';
    x.chain.after.burned = burned.toString();
    x.chain.after.consumerFree[CONSUMER] = (BigInt(x.chain.after.consumerFree[CONSUMER]!) - burned).toString();
    return x;
  };

  it('holds when a slash pays the consumer only what the attempt cost and burns the rest (GpuMarket.burned)', () => {
    expect(messages(tokensConserved(partlyBurned()))).toEqual([]);
  });

  it('catches burned credits the market does not account for, or a consumer paid more than compensated', () => {
    const unaccounted = partlyBurned();
    unaccounted.chain.after.burned = '0';
    expect(messages(tokensConserved(unaccounted))).toEqual([
      expect.stringMatching(/^after \(block \d+\): the market holds \d+ but accounts sum to \d+/),
      expect.stringMatching(/^the market burned 0; slashes taken \(\d+\) minus compensation \(\d+\) is \d+/),
    ]);
    const overpaid = partlyBurned();
    overpaid.chain.after.consumerFree[CONSUMER] = (BigInt(overpaid.chain.after.consumerFree[CONSUMER]!) + 5n).toString();
    expect(messages(tokensConserved(overpaid))).toContainEqual(expect.stringMatching(/^the consumer's funds moved by \d+; slash compensation/));
  });

  it('catches credits that appear from nowhere or vanish', () => {
    const x = h();
    x.chain.after.providerEarnings[WALLET_B] = (BigInt(x.chain.after.providerEarnings[WALLET_B]!) + 5n).toString();
    expect(messages(tokensConserved(x))).toEqual([
      expect.stringMatching(/^after \(block \d+\): the market holds \d+ but accounts sum to \d+/),
      expect.stringMatching(/^providers' earnings grew by \d+, payments were \d+/),
    ]);
  });
});

describe('no-orphans and reputation', () => {
  it('names each leftover with its job', () => {
    const x = h();
    x.leftovers = [{ cluster: 'a', kind: 'Pod', name: 'job-uid-moved-1-0', jobUid: 'uid-moved', epoch: 1 }];
    expect(nothingLeftBehind(x)).toEqual([expect.objectContaining({ job: 'chaos-000-single', message: 'Pod job-uid-moved-1-0 left on a (epoch 1)' })]);
  });

  it('catches a reputation that does not match the chain', () => {
    const x = h();
    x.reputation[0]!.fromChain!.failures = 2;
    expect(messages(reputationAgrees(x))).toEqual([`gp-a (${WALLET_A}): failures 1 in status, 2 from chain`]);
  });
});
