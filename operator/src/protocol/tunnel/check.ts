// Shape checks of one TunnelFrame at the edge (the agent may be hostile). Credit, session ids and
// caps are the mux's business; this only keeps sizes and strings bounded. Returns a problem or undefined.
import type { TunnelFrame } from '../../gen/proto/fedgpu/v1/market.js';
import { oneLine } from '../event-text.js';
import { KEEPALIVE_CHANNEL, type TunnelLimits } from './mux.js';

const maxErrorChars = 1024;
const maxReasonChars = 64;

/**
 * A close frame's error as the peer accepts it. The hub ends the whole agent stream on a frame
 * over its bounds, and some errors carry text a consumer chose (a container name it asked for,
 * the apiserver's answer): every close is cut here, on the side that sends it.
 */
export function closeErrorText(error: string): string {
  return oneLine(error, maxErrorChars);
}

export function checkTunnelFrame(frame: TunnelFrame, limits: Readonly<TunnelLimits>): string | undefined {
  if (!Number.isSafeInteger(frame.sessionId) || frame.sessionId < 1) return 'tunnel session id must be >= 1';
  const body = frame.frame;
  if (!body) return 'tunnel frame has no body';
  switch (body.$case) {
    case 'open':
      return 'only the hub opens tunnel sessions';
    case 'opened':
      return body.value.initialWindow > limits.windowBytes * 4 ? 'tunnel window too large' : undefined;
    case 'data':
      if (body.value.data.byteLength > limits.chunkBytes) return `tunnel data frame over ${limits.chunkBytes} bytes`;
      if (body.value.channel === KEEPALIVE_CHANNEL) return body.value.data.byteLength === 0 ? undefined : 'tunnel keepalive frame with data';
      return body.value.channel > 3 ? 'tunnel channel out of range' : undefined;
    case 'window':
      return body.value.increment > limits.windowBytes * 4 ? 'tunnel window increment too large' : undefined;
    case 'close':
      if (body.value.error.length > maxErrorChars) return 'tunnel close error too long';
      return body.value.reason.length > maxReasonChars || !/^[a-z0-9_]*$/.test(body.value.reason) ? 'tunnel close reason malformed' : undefined;
    default:
      return 'unknown tunnel frame';
  }
}
