import { AuthenticationV1Api, type KubeConfig } from '@kubernetes/client-node';

// Who the agent is to its own apiserver (a SelfSubjectReview, which every authenticated user may
// ask): the username it binds its tenant-access role to in each tenant namespace.

/** The username of the agent's credentials, as its apiserver authenticates them. */
export async function ownUsername(kubeConfig: KubeConfig): Promise<string> {
  const review = await kubeConfig.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
  });
  const username = review.status?.userInfo?.username;
  if (!username) throw new Error('the apiserver named no user for the agent\'s credentials');
  return username;
}
