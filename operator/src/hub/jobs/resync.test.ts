import { describe, expect, it } from 'vitest';
import { HubMessage, type Assign } from '../../gen/proto/fedgpu/v1/market.js';
import { resyncMessages } from './resync.js';

const assign = (i: number, templateBytes: number, secretBytes = 0): Assign => ({
  jobUid: `job-${i}`,
  epoch: 1,
  namespace: 'ml',
  podTemplates: [Buffer.alloc(templateBytes, 120)],
  nodeNames: ['n1'],
  gpusPerReplica: 1,
  checkpointDir: '',
  gracePeriodSeconds: 30,
  env: [],
  pricePerGpuHour: '1',
  coveredGpuSeconds: 0,
  egress: undefined,
  secrets: secretBytes ? [{ name: 's', data: { k: Buffer.alloc(secretBytes, 1) }, env: [], mountPath: '/s' }] : [],
  secretsWithheld: false,
});

const size = (m: HubMessage) => HubMessage.encode(m).finish().byteLength;
const desiredOf = (messages: HubMessage[]) =>
  messages.flatMap((m) => (m.body?.$case === 'resync' || m.body?.$case === 'resyncPart' ? m.body.value.desired : []));

describe('resyncMessages', () => {
  it('sends one Resync when the desired set fits', () => {
    const desired = [assign(1, 1000), assign(2, 1000)];
    const result = resyncMessages(desired, 64 * 1024);
    expect(result).toEqual({ messages: [{ seq: 0, body: { $case: 'resync', value: { desired } } }] });
  });

  it('splits a set too large for one message into parts that each fit, in order, the last marked', () => {
    // The attack it answers: two consumers' large templates on one provider made its Resync too
    // large, and the hub sent none, so other tenants' Assigns lost while the agent was away never came.
    const desired = Array.from({ length: 10 }, (_, i) => assign(i, 30_000));
    const max = 100_000;
    const result = resyncMessages(desired, max);
    if (!('messages' in result)) throw new Error('expected messages');
    expect(result.messages.length).toBeGreaterThan(3);
    for (const m of result.messages) {
      expect(m.body?.$case).toBe('resyncPart');
      expect(size(m)).toBeLessThanOrEqual(max);
    }
    expect(result.messages.map((m) => m.body?.$case === 'resyncPart' && m.body.value.last)).toEqual([...result.messages.map(() => false).slice(1), true]);
    expect(desiredOf(result.messages)).toEqual(desired); // every attempt, once, in order
  });

  it('sends an attempt too large alone with its secrets without them, marked withheld, and says when even that does not fit', () => {
    const result = resyncMessages([assign(1, 1000), assign(2, 20_000, 60_000)], 50_000);
    if (!('messages' in result)) throw new Error('expected messages');
    const sent = desiredOf(result.messages);
    expect(sent.map((a) => [a.jobUid, a.secrets.length, a.secretsWithheld])).toEqual([['job-1', 0, false], ['job-2', 0, true]]);
    expect(resyncMessages([assign(1, 60_000)], 50_000)).toMatchObject({ tooLarge: { jobUid: 'job-1' } });
  });

  it('sends no more parts than an agent gathers (it would ignore the whole Resync)', () => {
    // Three of these fit a part: 51 need 17 parts, one more than an agent gathers; 48 need 16.
    const desired = Array.from({ length: 51 }, (_, i) => assign(i, 30_000));
    expect(resyncMessages(desired, 100_000)).toEqual({ tooManyParts: 17 });
    const fits = resyncMessages(desired.slice(0, 48), 100_000);
    expect('messages' in fits && fits.messages.length).toBe(16);
  });
});
