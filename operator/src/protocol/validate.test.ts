import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { AgentMessage } from '../gen/proto/fedgpu/v1/market.js';
import { EdgeError, rejectReasons } from './edge-error.js';
import { defaultEdgeLimits } from './limits.js';
import { agentMessageKinds, malformedAgentMessage, validAgentMessage } from './testing/agent-messages.js';
import { SeededRandom } from './testing/seeded-random.js';
import { StreamValidator, validateAgentMessage } from './validate.js';

const allowedCodes = new Set([status.INVALID_ARGUMENT, status.FAILED_PRECONDITION]);

describe('validateAgentMessage', () => {
  it('accepts a valid message of every kind, also after a protobuf round trip', () => {
    const rng = new SeededRandom(1);
    for (let i = 0; i < 200; i++) {
      for (const kind of agentMessageKinds) {
        const message = validAgentMessage(rng, i + 1, kind);
        const direct = validateAgentMessage(message, i);
        expect(direct, `${kind}: ${direct.ok ? '' : direct.error.message}`).toMatchObject({ ok: true, kind });
        const decoded = AgentMessage.decode(AgentMessage.encode(message).finish());
        expect(validateAgentMessage(decoded, i).ok).toBe(true);
      }
    }
  });

  it('requires seq to increase strictly', () => {
    const rng = new SeededRandom(2);
    const validator = new StreamValidator();
    expect(validator.check(validAgentMessage(rng, 5)).ok).toBe(true);
    expect(validator.check(validAgentMessage(rng, 9)).ok).toBe(true);
    for (const seq of [9, 3, 0]) {
      const result = validator.check(validAgentMessage(rng, seq));
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.error.reason).toBe(seq === 0 ? 'out_of_range' : 'bad_seq');
    }
    expect(validator.highestSeq).toBe(9);
  });

  it.each([
    ['node name with uppercase', (m: any) => { m.body.value.pools[0].nodes[0].name = 'GPU-1'; }, 'bad_format'],
    ['price with exponent', (m: any) => { m.body.value.pools[0].pricePerGpuHour = '1e3'; }, 'bad_format'],
    ['idle above allocatable', (m: any) => { const p = m.body.value.pools[0]; p.idle = p.allocatable + 1; }, 'inconsistent'],
    ['too many pools', (m: any) => { m.body.value.pools = Array.from({ length: 33 }, () => m.body.value.pools[0]); }, 'too_many_items'],
    ['over-long product', (m: any) => { m.body.value.pools[0].gpuProduct = 'x'.repeat(64); }, 'too_long'],
    ['not-offered reason 42', (m: any) => { m.body.value.pools[0].notOfferedReason = 42; }, 'bad_enum'],
    ['negative memory', (m: any) => { m.body.value.pools[0].memoryMib = -1; }, 'out_of_range'],
    ['memory as string', (m: any) => { m.body.value.pools[0].memoryMib = '80'; }, 'bad_type'],
    ['a refused namespace that is no DNS label', (m: any) => { m.body.value.unisolatedNamespaces = [{ namespace: 'Team A', reason: 'x' }]; }, 'bad_format'],
    ['an over-long refusal reason', (m: any) => { m.body.value.unisolatedNamespaces = [{ namespace: 'ns', reason: 'x'.repeat(1025) }]; }, 'too_long'],
    ['too many refused namespaces', (m: any) => { m.body.value.unisolatedNamespaces = Array.from({ length: 65 }, (_, i) => ({ namespace: `ns-${i}`, reason: 'x' })); }, 'too_many_items'],
  ])('rejects an inventory with %s', (_name, edit, reason) => {
    const rng = new SeededRandom(3);
    let message = validAgentMessage(rng, 1, 'inventory');
    while ((message.body?.value as { pools: unknown[] }).pools.length === 0) message = validAgentMessage(rng, 1, 'inventory');
    edit(message);
    const result = validateAgentMessage(message, 0);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error.reason).toBe(reason);
      expect(result.error.code).toBe(status.INVALID_ARGUMENT);
    }
  });

  it('answers FAILED_PRECONDITION for an unsupported protocol version', () => {
    const message = validAgentMessage(new SeededRandom(4), 1, 'hello');
    (message.body?.value as { protocolVersion: number }).protocolVersion = 2;
    const result = validateAgentMessage(message, 0);
    expect(result).toMatchObject({ ok: false, error: { code: status.FAILED_PRECONDITION, reason: 'unsupported_protocol' } });
  });

  it('never echoes peer input in the error detail', () => {
    const message = validAgentMessage(new SeededRandom(5), 1, 'attemptStatus');
    (message.body?.value as { jobUid: string }).jobUid = 'SECRET-VALUE\u0001';
    const result = validateAgentMessage(message, 0);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.message).not.toContain('SECRET');
  });

  it('fuzz: 5,000 malformed messages are all rejected and none throws', () => {
    const rng = new SeededRandom(0xfed6);
    const reasons = new Map<string, number>();
    for (let i = 0; i < 5000; i++) {
      const lastSeq = rng.int(0, 1000);
      const { mutation, input } = malformedAgentMessage(rng, lastSeq);
      let result: ReturnType<typeof validateAgentMessage> | undefined;
      expect(() => { result = validateAgentMessage(input, lastSeq); }, mutation).not.toThrow();
      expect(result?.ok, `iteration ${i} accepted garbage: ${mutation}`).toBe(false);
      if (result && !result.ok) {
        expect(result.error).toBeInstanceOf(EdgeError);
        expect(rejectReasons).toContain(result.error.reason);
        expect(allowedCodes.has(result.error.code)).toBe(true);
        reasons.set(result.error.reason, (reasons.get(result.error.reason) ?? 0) + 1);
      }
    }
    // The generator reaches every class of rule, not just one.
    for (const reason of ['bad_type', 'missing_body', 'bad_seq', 'too_long', 'bad_format', 'too_many_items', 'out_of_range', 'bad_enum', 'inconsistent', 'duplicate', 'unsupported_protocol']) {
      expect(reasons.get(reason) ?? 0, reason).toBeGreaterThan(0);
    }
  }, 60_000); // a harness bound for loaded machines, not a performance target

  it('fuzz: 2,000 random byte strings decode to something the validator rejects or accepts without throwing', () => {
    const rng = new SeededRandom(77);
    for (let i = 0; i < 2000; i++) {
      const bytes = rng.bytes(rng.int(0, 300));
      let decoded: unknown;
      try {
        decoded = AgentMessage.decode(bytes);
      } catch {
        continue; // the hub answers undecodable frames before validation
      }
      expect(() => validateAgentMessage(decoded, 0)).not.toThrow();
    }
  });

  it('takes a probe answer as bytes or as a 32-byte SHA-256, and names the field when it is neither', () => {
    const answer = (payload: Uint8Array, payloadSha256: Uint8Array) =>
      validateAgentMessage({ seq: 1, body: { $case: 'bandwidthProbeData', value: { probeId: 3, payload, payloadSha256 } } }, 0);
    const none = new Uint8Array(0);
    expect(answer(new Uint8Array(16), none).ok).toBe(true);
    expect(answer(none, new Uint8Array(32)).ok).toBe(true);
    expect(answer(new Uint8Array(16), new Uint8Array(32))).toMatchObject({ ok: false, error: { reason: 'inconsistent', message: expect.stringContaining('payloadSha256') } });
    for (const length of [1, 31, 33, 64]) {
      expect(answer(none, new Uint8Array(length))).toMatchObject({ ok: false, error: { reason: length > 32 ? 'too_long' : 'bad_format', message: expect.stringContaining('payloadSha256') } });
    }
  });

  it('keeps limits configurable', () => {
    const rng = new SeededRandom(6);
    const message = validAgentMessage(rng, 1, 'bandwidthProbeData');
    Object.assign(message.body!.value, { payload: new Uint8Array(10), payloadSha256: new Uint8Array(0) });
    expect(validateAgentMessage(message, 0, { ...defaultEdgeLimits, maxProbePayloadBytes: 9 }).ok).toBe(false);
    expect(validateAgentMessage(message, 0).ok).toBe(true);
  });
});
