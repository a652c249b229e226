// May this user do this to this GpuJob? Asked of the hub cluster's own authorizer with a
// SubjectAccessReview, so RBAC on gpujobs/log, gpujobs/exec and gpujobs/portforward (group
// fedgpu.io) decides, exactly as for any built-in subresource.
import { AuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { GROUP } from '../../api/types.js';
import type { UserInfo } from './identity.js';

export type AccessSubresource = 'log' | 'exec' | 'portforward';

/** The verb each subresource needs: reading a log is a get, opening a session into a pod a create. */
export const verbOf: Record<AccessSubresource, 'get' | 'create'> = { log: 'get', exec: 'create', portforward: 'create' };

export type Decision = { allowed: true } | { allowed: false; message: string };

export class AccessAuthorizer {
  private readonly api: AuthorizationV1Api;

  constructor(kubeConfig: KubeConfig) {
    this.api = kubeConfig.makeApiClient(AuthorizationV1Api);
  }

  async check(user: UserInfo, namespace: string, name: string, subresource: AccessSubresource): Promise<Decision> {
    const verb = verbOf[subresource];
    const review = await this.api.createSubjectAccessReview({
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: user.user,
          groups: user.groups,
          extra: user.extra,
          resourceAttributes: { namespace, verb, group: GROUP, resource: 'gpujobs', subresource, name },
        },
      },
    });
    if (review.status?.allowed) return { allowed: true };
    return {
      allowed: false,
      message: `User ${JSON.stringify(user.user)} cannot ${verb} resource "gpujobs/${subresource}" in API group "${GROUP}" in the namespace ${JSON.stringify(namespace)}`,
    };
  }
}
