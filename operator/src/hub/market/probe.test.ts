import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ProbeRound } from './probe.js';

describe('ProbeRound', () => {
  const none = new Uint8Array(0);
  const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest();

  it('splits the bytes into pieces with consecutive ids, the last one shorter', () => {
    const round = new ProbeRound(7, 40_000, 16_000, 100);
    const messages = round.messages();
    expect(messages.map((m) => m.id)).toEqual([7, 8, 9]);
    expect(messages.map((m) => m.payload.byteLength)).toEqual([16_000, 16_000, 8_000]);
    expect(round.pieceCount).toBe(3);
    expect([6, 7, 9, 10].map((id) => round.covers(id))).toEqual([false, true, true, false]);
  });

  it('completes only when every piece came back, ignoring a repeated piece', () => {
    const round = new ProbeRound(1, 30, 10, 0);
    const [a, b, c] = round.messages();
    expect(round.answer(a!.id, Buffer.from(a!.payload), none)).toBe('pending');
    expect(round.answer(a!.id, Buffer.from(a!.payload), none)).toBe('repeat');
    expect(round.answer(c!.id, Buffer.from(c!.payload), none)).toBe('pending');
    expect(round.answer(b!.id, Buffer.from(b!.payload), none)).toBe('complete');
  });

  it('refuses an echo that differs from its piece, also one that is another piece of the same round', () => {
    const round = new ProbeRound(1, 32, 16, 0);
    const [a, b] = round.messages();
    const flipped = Buffer.from(a!.payload);
    flipped[5] = flipped[5]! ^ 1;
    expect(round.answer(a!.id, flipped, none)).toBe('mismatch');
    expect(round.answer(a!.id, Buffer.from(b!.payload), none)).toBe('mismatch');
    expect(round.answer(a!.id, a!.payload.subarray(0, 15), none)).toBe('mismatch');
    // A refused echo does not count: the round still needs both pieces.
    expect(round.answer(a!.id, Buffer.from(a!.payload), none)).toBe('pending');
  });

  it("takes a piece's SHA-256 for the piece, mixed with an older agent's echoes, and completes once every piece is answered", () => {
    const round = new ProbeRound(1, 30, 10, 0);
    const [a, b, c] = round.messages();
    expect(round.answer(a!.id, none, sha(a!.payload))).toBe('pending');
    expect(round.answer(a!.id, none, sha(a!.payload))).toBe('repeat');
    expect(round.answer(a!.id, Buffer.from(a!.payload), none)).toBe('repeat');
    expect(round.answer(b!.id, Buffer.from(b!.payload), none)).toBe('pending');
    expect(round.answer(c!.id, none, sha(c!.payload))).toBe('complete');
  });

  it('refuses a digest of anything but its piece: another piece, a prefix, a flipped bit, the bytes themselves', () => {
    const round = new ProbeRound(1, 32, 16, 0);
    const [a, b] = round.messages();
    const flipped = sha(a!.payload);
    flipped[0] = flipped[0]! ^ 1;
    expect(round.answer(a!.id, none, sha(b!.payload))).toBe('mismatch');
    expect(round.answer(a!.id, none, sha(a!.payload.subarray(0, 15)))).toBe('mismatch');
    expect(round.answer(a!.id, none, flipped)).toBe('mismatch');
    expect(round.answer(a!.id, none, Buffer.from(a!.payload))).toBe('mismatch');
    expect(round.answer(a!.id, none, sha(a!.payload))).toBe('pending');
  });

  it('sends fresh random bytes every round, so no echo can be prepared before the probe arrives', () => {
    const first = Buffer.concat(new ProbeRound(1, 64, 16, 0).messages().map((m) => m.payload));
    const second = Buffer.concat(new ProbeRound(1, 64, 16, 0).messages().map((m) => m.payload));
    expect(first.equals(second)).toBe(false);
    expect(new Set(first).size).toBeGreaterThan(8);
  });

  it('needs positive sizes', () => {
    expect(() => new ProbeRound(1, 0, 16, 0)).toThrow(/positive/);
    expect(() => new ProbeRound(1, 16, 0, 0)).toThrow(/positive/);
  });
});
