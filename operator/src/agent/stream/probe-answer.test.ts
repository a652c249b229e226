import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { probeAnswer } from './probe-answer.js';

describe('probeAnswer', () => {
  const probe = { id: 42, payload: randomBytes(1_000) };

  it('answers a hub that takes digests with the SHA-256 of the piece and no bytes', () => {
    const answer = probeAnswer(probe, true);
    expect(answer.probeId).toBe(42);
    expect(answer.payload.byteLength).toBe(0);
    expect(answer.payloadSha256.equals(createHash('sha256').update(probe.payload).digest())).toBe(true);
  });

  it('echoes the piece whole to a hub older than the digest', () => {
    const answer = probeAnswer(probe, false);
    expect(answer.probeId).toBe(42);
    expect(Buffer.from(answer.payload).equals(probe.payload)).toBe(true);
    expect(answer.payloadSha256.byteLength).toBe(0);
  });
});
