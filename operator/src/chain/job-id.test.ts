import { keccak256, toUtf8Bytes } from 'ethers';
import { describe, expect, it } from 'vitest';
import { jobIdOf } from './job-id.js';

describe('jobIdOf', () => {
  it('is the keccak256 of the uid, stable across calls', () => {
    const uid = '9a1c3f0e-5d1b-4c0e-8f7a-2b6d4e8c1a20';
    expect(jobIdOf(uid)).toBe(keccak256(toUtf8Bytes(uid)));
    expect(jobIdOf(uid)).toBe(jobIdOf(uid));
    expect(jobIdOf(uid)).toMatch(/^0x[0-9a-f]{64}$/);
  });

  it('differs between uids and refuses an empty one', () => {
    expect(jobIdOf('a')).not.toBe(jobIdOf('b'));
    expect(() => jobIdOf('')).toThrow(RangeError);
  });
});
