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
    if (await this.allowed(user, { namespace, verb, group: GROUP, resource: 'gpujobs', subresource, name })) return { allowed: true };
    return {
      allowed: false,
      message: `User ${JSON.stringify(user.user)} cannot ${verb} resource "gpujobs/${subresource}" in API group "${GROUP}" in the namespace ${JSON.stringify(namespace)}`,
    };
  }

  /**
   * Exec and port-forward reach the job's processes, which hold its Secrets (env, files): a user may
   * open them only when allowed to get every Secret the job names. Otherwise anyone allowed to exec
   * into a teammate's job would read the teammate's Secrets from it.
   */
  async checkSecrets(user: UserInfo, namespace: string, secrets: readonly string[], subresource: AccessSubresource): Promise<Decision> {
    for (const name of secrets) {
      if (await this.allowed(user, { namespace, verb: 'get', group: '', resource: 'secrets', name })) continue;
      return {
        allowed: false,
        message: `User ${JSON.stringify(user.user)} cannot get resource "secrets" in API group "" in the namespace ${JSON.stringify(namespace)}: ` +
          `${subresource} reaches the job's processes, which hold Secret ${JSON.stringify(name)} (spec.secrets)`,
      };
    }
    return { allowed: true };
  }

  private async allowed(user: UserInfo, resourceAttributes: { namespace: string; verb: string; group: string; resource: string; subresource?: string; name: string }): Promise<boolean> {
    const review = await this.api.createSubjectAccessReview({
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: { user: user.user, groups: user.groups, extra: user.extra, resourceAttributes },
      },
    });
    return review.status?.allowed === true;
  }
}
