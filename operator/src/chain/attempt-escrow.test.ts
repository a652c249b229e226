import { describe, expect, it } from 'vitest';
import { attemptEscrowId } from './attempt-escrow.js';
import { jobIdOf } from './job-id.js';

describe('attemptEscrowId', () => {
  it('is one key per (job, epoch), distinct from the job key', () => {
    const uid = '0b7c3c1e-2c1a-4c7e-9d54-5b6f0e1b2a3c';
    expect(attemptEscrowId(uid, 1)).toBe(jobIdOf(`${uid}:1`));
    expect(attemptEscrowId(uid, 1)).not.toBe(attemptEscrowId(uid, 2));
    expect(attemptEscrowId(uid, 1)).not.toBe(jobIdOf(uid));
  });

  it('refuses epochs that no attempt has', () => {
    expect(() => attemptEscrowId('u', 0)).toThrow(RangeError);
    expect(() => attemptEscrowId('u', 1.5)).toThrow(RangeError);
  });
});
