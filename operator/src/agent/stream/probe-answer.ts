// The agent's answer to one piece of the hub's bandwidth probe (hub/market/probe.ts).
//
// The piece's SHA-256 when the hub said in Registered that it takes one: that proves receipt
// without sending the bytes back, sparing the provider's upload and the hub's read buffers. A hub
// older than the digest compares the answer with the piece itself, so it gets the piece echoed.
import { createHash } from 'node:crypto';
import type { BandwidthProbe, BandwidthProbeData } from '../../gen/proto/fedgpu/v1/market.js';

export function probeAnswer(probe: BandwidthProbe, hubTakesDigest: boolean): BandwidthProbeData {
  if (!hubTakesDigest) return { probeId: probe.id, payload: probe.payload, payloadSha256: Buffer.alloc(0) };
  return { probeId: probe.id, payload: Buffer.alloc(0), payloadSha256: createHash('sha256').update(probe.payload).digest() };
}
