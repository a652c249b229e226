import type { CoreV1Api } from '@kubernetes/client-node';
import type { GpuJob } from '../../api/types.js';
import type { AttemptSecret } from '../../gen/proto/fedgpu/v1/market.js';
import { MAX_ATTEMPT_SECRET_BYTES, secretBytes } from '../../protocol/limits.js';

// spec.secrets, read at the moment an attempt is assigned and handed to that attempt's Assign only.
// The hub has no standing access to Secrets: the consumer grants `get` in its own namespace with a
// RoleBinding (docs/secrets.md), and until then the job waits with the reason. Values are never
// cached, logged, or written anywhere but the Assign of the winning agent.

export const SECRETS_DOC = 'docs/secrets.md';

export type SecretsRead = { secrets: AttemptSecret[] } | { waiting: string };

const code = (err: unknown) => (err as { code?: number }).code;

/** The job's secrets with their values, or why the job must wait (no values in the message). */
export async function readJobSecrets(core: CoreV1Api, job: GpuJob): Promise<SecretsRead> {
  const namespace = job.metadata.namespace!;
  const secrets: AttemptSecret[] = [];
  for (const wanted of job.spec.secrets ?? []) {
    let data: Record<string, string>;
    try {
      data = (await core.readNamespacedSecret({ name: wanted.name, namespace })).data ?? {};
    } catch (err) {
      const where = `Secret ${namespace}/${wanted.name}`;
      if (code(err) === 403) {
        return { waiting: `waiting for a RoleBinding in namespace ${namespace} that lets the hub get ${where} (see ${SECRETS_DOC})` };
      }
      if (code(err) === 404) return { waiting: `waiting for ${where} (spec.secrets names it)` };
      throw err;
    }
    for (const env of wanted.env ?? []) {
      if (!Object.hasOwn(data, env.key)) return { waiting: `waiting for key ${env.key} in Secret ${namespace}/${wanted.name} (spec.secrets env ${env.name})` };
    }
    secrets.push({
      name: wanted.name,
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
      env: (wanted.env ?? []).map((e) => ({ name: e.name, key: e.key })),
      mountPath: wanted.mountPath ?? '',
    });
  }
  // The agent refuses more (agent/attempt/secrets.ts); sent anyway, they would cost the attempt.
  const bytes = secretBytes(secrets);
  if (bytes > MAX_ATTEMPT_SECRET_BYTES) {
    return { waiting: `waiting for smaller secrets: the ${secrets.length} Secret(s) spec.secrets names hold ${bytes} bytes, and one attempt may carry at most ${MAX_ATTEMPT_SECRET_BYTES} (see ${SECRETS_DOC})` };
  }
  return { secrets };
}
