import { describe, expect, it } from 'vitest';
import { validateAgentMessage } from '../../protocol/validate.js';
import { attemptStatus, REPORT_MESSAGE_CHARS, type ReportedState } from './report.js';

const JOB_UID = '0d6f1c2e-8a4b-4c3d-9e5f-112233445566';
const sent = (state: ReportedState) => validateAgentMessage({ seq: 1, body: { $case: 'attemptStatus', value: attemptStatus(JOB_UID, 1, state) } }, 0);

describe('attemptStatus: what the agent reports always passes the hub\'s edge', () => {
  it('GPU-seconds past the hub\'s bound', () => {
    expect(sent({ phase: 'Succeeded', gpuSeconds: 1e15, pods: [] }).ok).toBe(true);
  });

  // A consumer's template that the provider's apiserver refuses field by field: its message lists
  // every invalid field. Sent as is, the hub ends the stream, and the agent sends it again after
  // every reconnect: the provider would stay off the market, with its other jobs lost.
  const refusal = `InvalidTemplate: Pod "fj-1" is invalid: [${Array.from({ length: 80 }, (_, i) => `spec.containers[0].env[${i}].name: Invalid value: "bad name ${i}": a valid environment variable name must consist of alphabetic characters`).join(',\n')}]`;

  it('a refusal with a message far over the hub\'s limit, across lines', () => {
    expect(refusal.length).toBeGreaterThan(5_000);
    const result = sent({ phase: 'Failed', gpuSeconds: 0, reason: 'InvalidTemplate', message: refusal, pods: [] });
    expect(result.ok).toBe(true);
    const status = attemptStatus(JOB_UID, 1, { phase: 'Failed', gpuSeconds: 0, reason: 'InvalidTemplate', message: refusal, pods: [] });
    expect(status.message.length).toBeLessThanOrEqual(REPORT_MESSAGE_CHARS);
    expect(status.message.startsWith('InvalidTemplate: Pod "fj-1" is invalid: [spec.containers[0].env[0].name')).toBe(true);
    expect(status.message.endsWith('…')).toBe(true);
  });

  it('an eviction message naming many containers, with control characters', () => {
    const message = `pod fj-2-r0: The node was low on resource: ephemeral-storage.\u0007 ${'Container c was using 9Gi, request is 0. '.repeat(60)}`;
    expect(sent({ phase: 'Failed', gpuSeconds: 12, reason: 'Evicted', message, pods: [{ name: 'fj-2-r0', phase: 'Failed' }] }).ok).toBe(true);
  });

  it('a reason that is not one word is not sent as a reason', () => {
    expect(attemptStatus(JOB_UID, 1, { phase: 'Failed', gpuSeconds: 0, reason: 'Not a reason', message: 'x', pods: [] }).reason).toBe('');
    expect(sent({ phase: 'Failed', gpuSeconds: 0, reason: `${'A'.repeat(200)}`, message: 'x', pods: [] }).ok).toBe(true);
    expect(attemptStatus(JOB_UID, 1, { phase: 'Failed', gpuSeconds: 0, reason: `${'A'.repeat(200)}`, message: 'x', pods: [] }).reason).toBe('');
  });
});
