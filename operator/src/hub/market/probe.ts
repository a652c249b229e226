// One bandwidth probe round: fresh random bytes sent to the agent as several small BandwidthProbe
// messages with consecutive ids, each echoed back. The round ends when every piece is back; its
// time from the first send to the last echo is the transfer time of all the bytes both ways.
//
// Why pieces: a single large message makes the hub's TLS and http2 layers grow per-connection
// buffers to its size, and those stay with the connection (about 100 KiB per agent for a 64 or
// 256 KiB message; docs/benchmarks.md). Pieces that each fit an http2 frame keep every buffer small,
// while the round still moves the same bytes back to back. One random allocation serves every
// piece (they are views of it).
//
// Why random: an agent cannot echo a piece before it has received it, so it cannot report a faster
// link than it has by answering early (at most it echoes bytes as they arrive, as with one message).
import { randomBytes } from 'node:crypto';

/** What an echo did to the round. */
export type ProbeEcho = 'pending' | 'complete' | 'repeat' | 'mismatch';

export class ProbeRound {
  private readonly pieces: Buffer[] = [];
  private readonly echoed: boolean[];
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
    this.echoed = this.pieces.map(() => false);
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

  /** Matches an echo of piece `id` (which this round covers). */
  echo(id: number, payload: Uint8Array): ProbeEcho {
    const index = id - this.firstId;
    if (!this.pieces[index]!.equals(payload)) return 'mismatch';
    if (this.echoed[index]) return 'repeat';
    this.echoed[index] = true;
    this.remaining -= 1;
    return this.remaining === 0 ? 'complete' : 'pending';
  }
}
