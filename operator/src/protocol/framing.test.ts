import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { AgentMessage, ErrorCode } from '../gen/proto/fedgpu/v1/market.js';
import { Sequencer, agentMessage, decodeAgentFrame, errorCodeFor, hubMessage, tolerantMarketplaceService } from './framing.js';

describe('framing', () => {
  it('decodes a good frame and reports a bad one instead of throwing', () => {
    const bytes = AgentMessage.encode({ seq: 3, body: { $case: 'heartbeat', value: { sentAtUnixMs: 1, pongFor: 2, bandwidthProbeResults: [] } } }).finish();
    expect(decodeAgentFrame(bytes)).toMatchObject({ decoded: true, message: { seq: 3, body: { $case: 'heartbeat' } } });
    // Truncated length-delimited field.
    expect(decodeAgentFrame(Uint8Array.from([0x52, 0x10, 0x01]))).toEqual({ decoded: false, byteLength: 3 });
    // uint64 seq above 2^53 (ts-proto refuses to lose precision).
    expect(decodeAgentFrame(Uint8Array.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])).decoded).toBe(false);
    expect(tolerantMarketplaceService.connect.requestDeserialize(Buffer.from([0xff])).decoded).toBe(false);
  });

  it('stamps strictly increasing seqs per sequencer', () => {
    const sequencer = new Sequencer();
    const a = hubMessage(sequencer, { $case: 'ping', value: { id: 1, sentAtUnixMs: 0 } });
    const b = agentMessage(sequencer, { $case: 'inventory', value: { pools: [], unisolatedNamespaces: [] } });
    expect([a.seq, b.seq]).toEqual([1, 2]);
  });

  it('maps gRPC status codes to protocol error codes', () => {
    expect(errorCodeFor(status.PERMISSION_DENIED)).toBe(ErrorCode.ERROR_CODE_PERMISSION_DENIED);
    expect(errorCodeFor(status.NOT_FOUND)).toBe(ErrorCode.ERROR_CODE_UNSPECIFIED);
  });
});
