// Framing on an upgraded exec connection between the CLI and the hub: [channel u8][length u32 BE]
// [payload]. Channels: 0 stdin (length 0 = end of input), 1 stdout, 2 stderr, 3 the final status
// (JSON {exitCode?, error?}). Port-forward connections carry raw bytes, unframed.

export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;
export const STATUS = 3;
export const maxFramePayload = 1024 * 1024;

export function encodeFrame(channel: number, payload: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt8(channel, 0);
  header.writeUInt32BE(payload.byteLength, 1);
  return Buffer.concat([header, payload]);
}

/** Incremental decoder; throws on a frame larger than maxFramePayload or an unknown channel. */
export class FrameDecoder {
  private buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): { channel: number; payload: Buffer }[] {
    this.buffer = this.buffer.byteLength === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const frames: { channel: number; payload: Buffer }[] = [];
    while (this.buffer.byteLength >= 5) {
      const channel = this.buffer.readUInt8(0);
      const length = this.buffer.readUInt32BE(1);
      if (channel > STATUS) throw new Error(`unknown channel ${channel}`);
      if (length > maxFramePayload) throw new Error(`frame of ${length} bytes is too large`);
      if (this.buffer.byteLength < 5 + length) break;
      frames.push({ channel, payload: this.buffer.subarray(5, 5 + length) });
      this.buffer = this.buffer.subarray(5 + length);
    }
    return frames;
  }
}
