import { describe, expect, it } from 'vitest';
import { Assign } from '../../gen/proto/fedgpu/v1/market.js';
import { assignmentFromProto, MAX_GRACE_PERIOD_SECONDS } from './runner.js';

describe('assignmentFromProto', () => {
  const assign = (gracePeriodSeconds: number) =>
    Assign.fromPartial({ jobUid: 'u', epoch: 1, namespace: 'ml', podTemplates: [Buffer.from('{"spec":{"containers":[]}}')], nodeNames: ['n'], gpusPerReplica: 1, gracePeriodSeconds });

  it("holds a hostile hub's checkpoint grace to the CRD's bound, so a reclaim gives the owner its GPU back within an hour", () => {
    expect(assignmentFromProto(assign(30)).gracePeriodSeconds).toBe(30);
    expect(assignmentFromProto(assign(MAX_GRACE_PERIOD_SECONDS)).gracePeriodSeconds).toBe(3600);
    expect(assignmentFromProto(assign(7 * 24 * 3600)).gracePeriodSeconds).toBe(3600);
  });
});
