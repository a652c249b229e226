import { describe, expect, it } from 'vitest';
import { CONFLICT_REQUEUE_MS } from './action.js';
import { setCondition } from './conditions.js';
import { type StatusPatchBody, StatusWriter, type WithStatus } from './status-writer.js';

interface Status {
  phase?: string;
  message?: string;
  conditions?: ReturnType<typeof setCondition>['conditions'];
}
type Obj = WithStatus<Status>;

function setup(fail?: { code: number }) {
  const bodies: StatusPatchBody[] = [];
  const writer = new StatusWriter<Obj>(async (obj, body) => {
    bodies.push(body);
    if (fail) throw Object.assign(new Error('failed'), fail);
    return { ...obj, status: { ...obj.status, ...(body.status as Status) } };
  });
  return { bodies, writer };
}

const obj = (status?: Status): Obj => ({ metadata: { name: 'j', namespace: 'ns', resourceVersion: '7' }, status });
const now = new Date('2025-01-01T00:00:00Z');

describe('StatusWriter', () => {
  it('writes nothing when the desired status deep-equals the current one', async () => {
    const { bodies, writer } = setup();
    const conditions = setCondition([], { type: 'Ready', status: 'True', reason: 'Ok' }, now).conditions;
    const current = obj({ phase: 'Running', conditions });
    const desired: Status = { conditions: structuredClone(conditions), phase: 'Running' };
    expect(await writer.write(current, desired)).toEqual({ outcome: 'unchanged' });
    expect(bodies).toEqual([]);
  });

  it('sends only the changed keys, removes dropped keys, and carries the resourceVersion', async () => {
    const { bodies, writer } = setup();
    const result = await writer.write(obj({ phase: 'Pending', message: 'waiting' }), { phase: 'Running' });
    expect(result.outcome).toBe('written');
    expect(bodies).toEqual([{ metadata: { resourceVersion: '7' }, status: { phase: 'Running', message: null } }]);
  });

  it('writes a whole status when there was none', async () => {
    const { bodies, writer } = setup();
    await writer.write(obj(), { phase: 'Pending' });
    expect(bodies[0]?.status).toEqual({ phase: 'Pending' });
  });

  it('turns a 409 conflict into a requeue', async () => {
    const { writer } = setup({ code: 409 });
    expect(await writer.write(obj({ phase: 'Pending' }), { phase: 'Running' })).toEqual({
      outcome: 'conflict',
      action: { requeueAfterMs: CONFLICT_REQUEUE_MS },
    });
  });

  it('reports an object that is gone, and passes other errors on', async () => {
    expect(await setup({ code: 404 }).writer.write(obj(), { phase: 'Running' })).toEqual({ outcome: 'gone' });
    await expect(setup({ code: 500 }).writer.write(obj(), { phase: 'Running' })).rejects.toThrow('failed');
  });
});
