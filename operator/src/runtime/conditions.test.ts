import { describe, expect, it } from 'vitest';
import {
  type Condition,
  conditionTime,
  getCondition,
  isFalse,
  isTrue,
  isUnknown,
  removeCondition,
  setCondition,
} from './conditions.js';

const t0 = new Date('2025-03-01T10:00:00.250Z');
const t1 = new Date('2025-03-01T10:05:00.999Z');

describe('setCondition', () => {
  it('adds a new condition with lastTransitionTime now, at whole seconds', () => {
    const { conditions, changed } = setCondition(undefined, { type: 'Ready', status: 'True', reason: 'HeartbeatFresh' }, t0);
    expect(changed).toBe(true);
    expect(conditions).toEqual([
      { type: 'Ready', status: 'True', reason: 'HeartbeatFresh', message: '', lastTransitionTime: '2025-03-01T10:00:00Z' },
    ]);
  });

  it('reports no change (and keeps the same content) when nothing differs', () => {
    const first = setCondition([], { type: 'Ready', status: 'True', reason: 'Ok', message: 'm', observedGeneration: 2 }, t0);
    const again = setCondition(first.conditions, { type: 'Ready', status: 'True', reason: 'Ok', message: 'm', observedGeneration: 2 }, t1);
    expect(again.changed).toBe(false);
    expect(again.conditions).toEqual(first.conditions);
  });

  it('keeps lastTransitionTime when only reason, message or generation change', () => {
    const first = setCondition([], { type: 'Ready', status: 'False', reason: 'HeartbeatMissed' }, t0);
    const next = setCondition(first.conditions, { type: 'Ready', status: 'False', reason: 'AgentLost', message: 'gone', observedGeneration: 3 }, t1);
    expect(next.changed).toBe(true);
    expect(getCondition(next.conditions, 'Ready')).toEqual({
      type: 'Ready', status: 'False', reason: 'AgentLost', message: 'gone', observedGeneration: 3,
      lastTransitionTime: conditionTime(t0),
    });
  });

  it('moves lastTransitionTime when the status flips', () => {
    const first = setCondition([], { type: 'Ready', status: 'False', reason: 'HeartbeatMissed' }, t0);
    const next = setCondition(first.conditions, { type: 'Ready', status: 'True', reason: 'HeartbeatFresh' }, t1);
    expect(next.changed).toBe(true);
    expect(getCondition(next.conditions, 'Ready')?.lastTransitionTime).toBe('2025-03-01T10:05:00Z');
  });

  it('leaves other conditions and their order alone, and does not modify its input', () => {
    const input: Condition[] = [
      { type: 'Registered', status: 'True', reason: 'WalletVerified', message: '', lastTransitionTime: '2025-01-01T00:00:00Z' },
      { type: 'Ready', status: 'False', reason: 'HeartbeatMissed', message: '', lastTransitionTime: '2025-01-01T00:00:00Z' },
    ];
    const frozen = structuredClone(input);
    const { conditions } = setCondition(input, { type: 'Ready', status: 'True', reason: 'HeartbeatFresh' }, t1);
    expect(input).toEqual(frozen);
    expect(conditions.map((c) => c.type)).toEqual(['Registered', 'Ready']);
    expect(conditions[0]).toBe(input[0]);
  });

  it('refuses a reason that is not PascalCase', () => {
    expect(() => setCondition([], { type: 'Ready', status: 'True', reason: 'heartbeat missed' }, t0)).toThrow(/PascalCase/);
    expect(() => setCondition([], { type: 'Ready', status: 'True', reason: '' }, t0)).toThrow(/PascalCase/);
  });
});

describe('getCondition / isTrue / isFalse / isUnknown / removeCondition', () => {
  const list = setCondition(
    setCondition([], { type: 'Ready', status: 'True', reason: 'Ok' }, t0).conditions,
    { type: 'Staked', status: 'False', reason: 'NoStake' },
    t0,
  ).conditions;

  it('reads conditions by type', () => {
    expect(getCondition(list, 'Ready')?.reason).toBe('Ok');
    expect(getCondition(list, 'Degraded')).toBeUndefined();
    expect(getCondition(undefined, 'Ready')).toBeUndefined();
    expect(isTrue(list, 'Ready')).toBe(true);
    expect(isTrue(list, 'Staked')).toBe(false);
    expect(isFalse(list, 'Staked')).toBe(true);
    expect(isTrue(list, 'Degraded')).toBe(false);
    expect(isFalse(list, 'Degraded')).toBe(false);
    expect(isUnknown(list, 'Degraded')).toBe(true);
    expect(isUnknown(list, 'Ready')).toBe(false);
  });

  it('removes a condition by type', () => {
    expect(removeCondition(list, 'Ready')).toEqual({ conditions: [list[1]], changed: true });
    expect(removeCondition(list, 'Degraded').changed).toBe(false);
  });
});
