// One bandwidth probe round: fresh random bytes sent to the agent as several small BandwidthProbe
// messages with consecutive ids, each answered with its SHA-256 (or, by agents from before the
// digest, echoed whole). The round ends when every piece is answered; its time from the first send
// to the last answer, less the RTT, is the transfer time of the bytes to the agent (latency.ts).
//
// Why pieces: a single large message makes the hub's TLS and http2 layers grow per-connection
// buffers to its size, and those stay with the connection (about 100 KiB per agent for a 64 or
// 256 KiB message; docs/benchmarks.md). Pieces that each fit an http2 frame keep every buffer small,
// while the round still moves the same bytes back to back. One random allocation serves every
// piece (they are views of it).
//
// Why a digest: an echo made the hub read up to 64 KiB at once from every agent, and Node's TLS
// read buffer keeps resident every page a read has touched, for the life of the connection (about
// 28 KiB per agent; docs/benchmarks.md, "The bandwidth probe answered by its digest"). It also spent
// the provider's upload, on a home link the narrow direction, which job data does not take.
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

  /**
   * Matches the answer to piece `id` (which this round covers): its SHA-256 when `digest` is not
   * empty, else `payload` as a whole echo.
   */
  answer(id: number, payload: Uint8Array, digest: Uint8Array): ProbeAnswer {
    const index = id - this.firstId;
    const byDigest = digest.byteLength > 0;
    if (!(byDigest ? this.digests[index]!.equals(digest) : this.pieces[index]!.equals(payload))) return 'mismatch';
    if (this.answered[index]) return 'repeat';
    this.answered[index] = true;
    this.remaining -= 1;
    return this.remaining === 0 ? 'complete' : 'pending';
  }
}
