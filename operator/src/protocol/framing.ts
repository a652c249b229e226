// Framing helpers shared by the hub server and the agent client: a service definition whose
// request decoder never throws, envelope builders that stamp the per-stream seq, and the mapping
// from gRPC status to the protocol's ErrorCode.
import { status, type ServiceDefinition } from '@grpc/grpc-js';
import {
  AgentMessage,
  ErrorCode,
  HubMessage,
  MarketplaceService,
} from '../gen/proto/fedgpu/v1/market.js';

/** The protocol version this code speaks (Hello.protocolVersion). */
export const protocolVersion = 1;

/** Largest agent->hub message the hub accepts (an older agent's echo of a bandwidth probe piece may carry up to 256 KiB, maxProbePayloadBytes). */
export const defaultMaxAgentMessageBytes = 1024 * 1024;

/** Largest hub->agent message (a Resync carries every desired pod template). */
export const defaultMaxHubMessageBytes = 16 * 1024 * 1024;

export type AgentMessageBody = NonNullable<AgentMessage['body']>;
export type HubMessageBody = NonNullable<HubMessage['body']>;

/** What the hub's decoder hands the handler: a message, or the fact that the bytes did not decode. */
export type AgentFrame = { decoded: true; message: AgentMessage } | { decoded: false; byteLength: number };

/** Decodes one agent message; never throws (ts-proto throws on truncation and 64-bit overflow). */
export function decodeAgentFrame(bytes: Uint8Array): AgentFrame {
  try {
    return { decoded: true, message: AgentMessage.decode(bytes) };
  } catch {
    return { decoded: false, byteLength: bytes.byteLength };
  }
}

/**
 * The Marketplace service with a request decoder that cannot throw. grpc-js would otherwise end the
 * stream with INTERNAL on a decode error; this way the session answers INVALID_ARGUMENT and counts it.
 */
export const tolerantMarketplaceService = {
  connect: {
    ...MarketplaceService.connect,
    requestDeserialize: (bytes: Buffer): AgentFrame => decodeAgentFrame(bytes),
    requestSerialize: (frame: AgentFrame): Buffer =>
      frame.decoded ? Buffer.from(AgentMessage.encode(frame.message).finish()) : Buffer.alloc(0),
  },
} satisfies ServiceDefinition;

/** Stamps a strictly increasing seq (from 1) on each outgoing envelope of one stream. */
export class Sequencer {
  private last = 0;

  next(): number {
    this.last += 1;
    return this.last;
  }
}

export function hubMessage(sequencer: Sequencer, body: HubMessageBody): HubMessage {
  return { seq: sequencer.next(), body };
}

export function agentMessage(sequencer: Sequencer, body: AgentMessageBody): AgentMessage {
  return { seq: sequencer.next(), body };
}

const errorCodes: Partial<Record<status, ErrorCode>> = {
  [status.INVALID_ARGUMENT]: ErrorCode.ERROR_CODE_INVALID_ARGUMENT,
  [status.UNAUTHENTICATED]: ErrorCode.ERROR_CODE_UNAUTHENTICATED,
  [status.PERMISSION_DENIED]: ErrorCode.ERROR_CODE_PERMISSION_DENIED,
  [status.RESOURCE_EXHAUSTED]: ErrorCode.ERROR_CODE_RESOURCE_EXHAUSTED,
  [status.FAILED_PRECONDITION]: ErrorCode.ERROR_CODE_FAILED_PRECONDITION,
  [status.DEADLINE_EXCEEDED]: ErrorCode.ERROR_CODE_DEADLINE_EXCEEDED,
  [status.UNAVAILABLE]: ErrorCode.ERROR_CODE_UNAVAILABLE,
  [status.ABORTED]: ErrorCode.ERROR_CODE_ABORTED,
  [status.INTERNAL]: ErrorCode.ERROR_CODE_INTERNAL,
};

export function errorCodeFor(code: status): ErrorCode {
  return errorCodes[code] ?? ErrorCode.ERROR_CODE_UNSPECIFIED;
}
