// One bandwidth probe round: fresh random bytes sent to the agent as several small BandwidthProbe
// messages with consecutive ids, each answered with its SHA-256 (or, by agents from before the
// digest, echoed whole). The round ends when every piece is answered; its time from the first send
// to the last answer is the transfer time of the bytes that moved: one way for a digest, both ways
// for an echo (movedBytes counts each piece accordingly).
//
// Why pieces: a single large message makes the hub's TLS and http2 layers grow per-connection
// buffers to its size, and those stay with the connection (about 100 KiB per agent for a 64 or
// 256 KiB message; docs/benchmarks.md). Pieces that each fit an http2 frame keep every buffer small,
// while the round still moves the same bytes back to back. One random allocation serves every
// piece (they are views of it).
//
// Why a digest: an echo made the hub read 64 KiB at once from every agent, and Node's TLS read
// buffer keeps resident every page a read has touched, for the life of the connection (25 KiB per
// agent; docs/benchmarks.md). It also spent the provider's upload, which on a home link is the
// narrow direction, to measure the direction job data does not take.
//
// Why random: an agent cannot hash or echo a piece before it has received it, so it cannot report
// a faster link than it has by answering early (at most it answers pieces as they arrive).
import { createHash, randomBytes } from 'node:crypto';

/** What an answer did to the round. */
export type ProbeAnswer = 'pending' | 'complete' | 'repeat' | 'mismatch';

export class ProbeRound {
  private readonly pieces: Buffer[] = [];
  private readonly digests: Buffer[];
  private readonly answered: boolean[];
  private remaining: number;
  private moved = 0;

  constructor(
    readonly firstId: number,
    readonly bytes: number,
    pieceBytes: number,
    readonly sentAtMs: number,
  ) {
    if (!(bytes > 0) || !(pieceBytes > 0)) throw new Error('a probe round needs positive bytes and piece size');
    const payload = randomBytes(bytes);
    for (let offset = 0; offset < bytes; offset += pieceBytes) this.pieces.push(payload.subarray(offset, offset + pieceBytes));
    this.digests = this.pieces.map((piece) => createHash('sha256').update(piece).digest());
    this.answered = this.pieces.map(() => false);
    this.remaining = this.pieces.length;
  }

  /** Ids this round uses: firstId … firstId + pieceCount - 1. */
  get pieceCount(): number {
    return this.pieces.length;
  }

  /** The BandwidthProbe messages to send, in order. */
  messages(): { id: number; payload: Buffer }[] {
    return this.pieces.map((payload, i) => ({ id: this.firstId + i, payload }));
  }

  covers(id: number): boolean {
    return id >= this.firstId && id < this.firstId + this.pieces.length;
  }

  /** Bytes the answered pieces moved so far: a piece once for a digest, twice for an echo. */
  get movedBytes(): number {
    return this.moved;
  }

  /**
   * Matches the answer to piece `id` (which this round covers): its SHA-256 when `digest` is not
   * empty, else `payload` as a whole echo.
   */
  answer(id: number, payload: Uint8Array, digest: Uint8Array = new Uint8Array(0)): ProbeAnswer {
    const index = id - this.firstId;
    const piece = this.pieces[index]!;
    const matches = digest.byteLength > 0 ? this.digests[index]!.equals(digest) : piece.equals(payload);
    if (!matches) return 'mismatch';
    if (this.answered[index]) return 'repeat';
    this.answered[index] = true;
    this.remaining -= 1;
    this.moved += digest.byteLength > 0 ? piece.byteLength : 2 * piece.byteLength;
    return this.remaining === 0 ? 'complete' : 'pending';
  }
}
