import type { V1Pod } from '@kubernetes/client-node';
import type { Assign } from '../../gen/proto/fedgpu/v1/market.js';
import type { AttemptObjects } from './resources.js';
import { gangPolicy, headlessService, joinRendezvous, type GangShape } from './rendezvous.js';

// What an attempt gets besides its built pods, in one place the runner calls: the rendezvous
// (Service, gang NetworkPolicy, environment). Pure; the runner applies the result.

/** The attempt cannot run here as assigned (reported as a Failed attempt with this reason). */
export class AttemptRefused extends Error {
  override name = 'AttemptRefused';
  constructor(readonly reason: string, message: string) {
    super(message);
  }
}

export interface PreparedAttempt {
  pods: V1Pod[];
  objects: AttemptObjects;
}

/** The built pods joined to their rendezvous, and the objects to create before them. */
export function prepareAttempt(assign: Assign, pods: V1Pod[], namespace: string): PreparedAttempt {
  const shape: GangShape = { jobUid: assign.jobUid, epoch: assign.epoch, replicas: pods.length, gpusPerReplica: assign.gpusPerReplica };
  return {
    pods: pods.map((pod, replica) => joinRendezvous(pod, shape, replica, namespace)),
    objects: {
      services: [headlessService(assign.jobUid, assign.epoch, namespace)],
      policies: [gangPolicy(assign.jobUid, assign.epoch, namespace)],
      secrets: [],
    },
  };
}
