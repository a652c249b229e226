import { describe, expect, it } from 'vitest';
import { Assign } from '../../gen/proto/fedgpu/v1/market.js';
import type { V1Pod } from '@kubernetes/client-node';
import { EPOCH_LABEL, JOB_UID_LABEL, REPLICA_LABEL } from './build.js';
import { assignmentFromProto, isPlacedAsAssigned, MAX_GRACE_PERIOD_SECONDS } from './runner.js';

describe('assignmentFromProto', () => {
  const assign = (gracePeriodSeconds: number) =>
    Assign.fromPartial({ jobUid: 'u', epoch: 1, namespace: 'ml', podTemplates: [Buffer.from('{"spec":{"containers":[]}}')], nodeNames: ['n'], gpusPerReplica: 1, gracePeriodSeconds });

  it("holds a hostile hub's checkpoint grace to the CRD's bound, so a reclaim gives the owner its GPU back within an hour", () => {
    expect(assignmentFromProto(assign(30)).gracePeriodSeconds).toBe(30);
    expect(assignmentFromProto(assign(MAX_GRACE_PERIOD_SECONDS)).gracePeriodSeconds).toBe(3600);
    expect(assignmentFromProto(assign(7 * 24 * 3600)).gracePeriodSeconds).toBe(3600);
  });
});

describe('isPlacedAsAssigned', () => {
  const pod = (replica: number, node: string, namespace = 'tenant-a', bound = true): V1Pod => ({
    metadata: { namespace, labels: { [JOB_UID_LABEL]: 'u', [EPOCH_LABEL]: '1', [REPLICA_LABEL]: String(replica) } },
    spec: {
      containers: [],
      ...(bound ? { nodeName: node } : {}),
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [node] }] }] } } },
    },
  });
  const assign = (nodeNames: string[]) => ({ jobUid: 'u', epoch: 1, nodeNames });

  it('skips the placement check only when every replica already runs where the hub says, in its namespace', () => {
    const pods = [pod(0, 'n1'), pod(1, 'n2', 'tenant-a', false)];
    expect(isPlacedAsAssigned(assign(['n1', 'n2']), pods, 'tenant-a')).toBe(true);
    // A hostile hub resyncing the known attempt key onto other nodes, more replicas or another tenant.
    expect(isPlacedAsAssigned(assign(['n1', 'n9']), pods, 'tenant-a')).toBe(false);
    expect(isPlacedAsAssigned(assign(['n1', 'n2', 'n3']), pods, 'tenant-a')).toBe(false);
    expect(isPlacedAsAssigned(assign(['n1', 'n2']), pods, 'tenant-b')).toBe(false);
    expect(isPlacedAsAssigned(assign([]), pods, 'tenant-a')).toBe(false);
    expect(isPlacedAsAssigned({ jobUid: 'u', epoch: 2, nodeNames: ['n1', 'n2'] }, pods, 'tenant-a')).toBe(false);
  });
});
