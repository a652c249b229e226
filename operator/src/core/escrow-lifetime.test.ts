import { describe, expect, it } from 'vitest';
import { coveredGpuSeconds } from './budget.js';
import { attemptRunBoundSeconds, DEADLINE_MARGIN_SECONDS, escrowOpenSeconds, escrowRunwayGpuSeconds } from './escrow-lifetime.js';
import { parseMoney } from './money.js';

const DAY = 24 * 3600;
const MAX = 89 * DAY;
const SETTLE = 7 * DAY;
const base = { placeWithinSeconds: 120, startTimeoutSeconds: 600, gracePeriodSeconds: 30 };

describe('escrow lifetime', () => {
  it('outlasts the run a budget buys: 800 credits at 3.6/GPU-hour on one GPU run 9¼ days, past the old fixed 7', () => {
    const covered = coveredGpuSeconds(parseMoney('800'), parseMoney('3.6'));
    expect(covered).toBe(800_000);
    const run = attemptRunBoundSeconds({ ...base, coveredGpuSeconds: covered, gpus: 1 });
    // Placed, started, run through what it covers, stopped with its grace and the billing slack.
    expect(run).toBe(120 + 600 + 800_000 + 30 + 5);
    expect(escrowOpenSeconds(run, SETTLE, MAX)).toBe(run + SETTLE);
    expect(escrowOpenSeconds(run, SETTLE, MAX)).toBeGreaterThan(SETTLE + 9 * DAY);
  });

  it('divides the covered GPU-seconds among the GPUs, and rounds a partial second up', () => {
    expect(attemptRunBoundSeconds({ ...base, coveredGpuSeconds: 801, gpus: 8 })).toBe(120 + 600 + 101 + 30 + 5);
  });

  it('is the job deadline, with the grace and slack of the stop it brings, when that comes first', () => {
    // Plus a minute for the roundings between the expiry and the placement's check.
    expect(attemptRunBoundSeconds({ ...base, coveredGpuSeconds: 10_000_000, gpus: 1, deadlineSeconds: 3600 })).toBe(3600 + 30 + 5 + DEADLINE_MARGIN_SECONDS);
    expect(attemptRunBoundSeconds({ ...base, coveredGpuSeconds: 60, gpus: 1, deadlineSeconds: 30 * DAY })).toBe(120 + 600 + 60 + 30 + 5);
  });

  it('leaves a job its whole deadline: no cap while the deadline stops it before the settle window', () => {
    // An escrow opened for a 1-hour deadline, placed at once: the deadline ends the run in time.
    const open = escrowOpenSeconds(attemptRunBoundSeconds({ ...base, coveredGpuSeconds: 10_000_000, gpus: 1, deadlineSeconds: 3600 }), SETTLE, MAX);
    const runway = (secondsLeft: number, deadlineLeftSeconds: number) => escrowRunwayGpuSeconds({ secondsLeft, gpus: 1, startTimeoutSeconds: 600, gracePeriodSeconds: 30, deadlineLeftSeconds });
    expect(runway(open - SETTLE, 3600)).toBe(Number.POSITIVE_INFINITY);
    // Rounded the wrong way on both sides (a creationTimestamp cut to the second, seconds left
    // rounded down), placed a minute in: still no cap.
    expect(runway(open - SETTLE - 61, 3600 - 59)).toBe(Number.POSITIVE_INFINITY);
    // A deadline of 40 s (shorter than the start timeout) still places.
    const short = escrowOpenSeconds(attemptRunBoundSeconds({ ...base, coveredGpuSeconds: 600, gpus: 1, deadlineSeconds: 40 }), SETTLE, MAX);
    expect(escrowRunwayGpuSeconds({ secondsLeft: short - SETTLE, gpus: 1, startTimeoutSeconds: 600, gracePeriodSeconds: 30, deadlineLeftSeconds: 40 })).toBe(Number.POSITIVE_INFINITY);
    // A deadline past what the escrow covers (longer than the chain allows) is capped like no deadline.
    expect(escrowRunwayGpuSeconds({ secondsLeft: DAY, gpus: 1, startTimeoutSeconds: 600, gracePeriodSeconds: 30, deadlineLeftSeconds: 2 * DAY })).toBe(DAY - 635);
  });

  it('never asks the chain for more than its maximum, nor for nothing', () => {
    // A free price covers anything: the chain's bound decides.
    const run = attemptRunBoundSeconds({ ...base, coveredGpuSeconds: Number.MAX_SAFE_INTEGER, gpus: 1 });
    expect(escrowOpenSeconds(run, SETTLE, MAX)).toBe(MAX);
    expect(escrowOpenSeconds(0, 0, MAX)).toBe(1);
  });

  it('gives an attempt no more GPU-seconds than it can use before the settle window', () => {
    // 1 day left before the window: start timeout, grace and slack come off, the rest × GPUs.
    expect(escrowRunwayGpuSeconds({ secondsLeft: DAY, gpus: 4, startTimeoutSeconds: 600, gracePeriodSeconds: 30 })).toBe((DAY - 635) * 4);
    expect(escrowRunwayGpuSeconds({ secondsLeft: 100, gpus: 4, startTimeoutSeconds: 600, gracePeriodSeconds: 30 })).toBe(0);
  });

  it('meets itself: an escrow opened for a run leaves that run its whole budget at placement', () => {
    const covered = coveredGpuSeconds(parseMoney('800'), parseMoney('3.6'));
    const run = attemptRunBoundSeconds({ ...base, coveredGpuSeconds: covered, gpus: 1 });
    const open = escrowOpenSeconds(run, SETTLE, MAX);
    // Placed at the last moment it may wait unplaced.
    const left = open - SETTLE - base.placeWithinSeconds;
    expect(escrowRunwayGpuSeconds({ secondsLeft: left, gpus: 1, startTimeoutSeconds: 600, gracePeriodSeconds: 30 })).toBe(covered);
  });
});
