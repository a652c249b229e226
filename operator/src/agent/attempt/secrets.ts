import type { V1Container, V1Pod, V1Secret } from '@kubernetes/client-node';
import { GPU_ENV_PATTERN } from '../../core/isolation/allowlist.js';
import type { AttemptSecret } from '../../gen/proto/fedgpu/v1/market.js';
import { MAX_ATTEMPT_SECRET_BYTES, MAX_ATTEMPT_SECRETS, secretBytes } from '../../protocol/limits.js';
import { AttemptRefused } from './refused.js';
import { attemptName, attemptObjectLabels, RENDEZVOUS_ENV_NAMES } from './rendezvous.js';

// The consumer's secrets for one attempt: one Secret `<attempt>-secrets` in the attempt's namespace,
// each consumer secret's keys stored as `s<index>.<key>`, exposed as env vars (secretKeyRef) and/or
// read-only files (a secret volume per mountPath). Deleted with the attempt (resources.ts). Pure.
// The provider's administrators can read this Secret and what the pods see: say so, never hide it.

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]{1,253}$/;
const MOUNT_PATH = /^\/[A-Za-z0-9._/-]{0,511}$/;

export const attemptSecretName = (jobUid: string, epoch: number) => `${attemptName(jobUid, epoch)}-secrets`;
const storedKey = (index: number, key: string) => `s${index}.${key}`;

/** Refuses what could not be stored or mounted safely, naming the field (never a value). */
export function checkSecrets(secrets: readonly AttemptSecret[], { started = false }: { started?: boolean } = {}): void {
  const refuse = (message: string) => {
    throw new AttemptRefused('InvalidSecrets', message);
  };
  if (secrets.length > MAX_ATTEMPT_SECRETS) refuse(`${secrets.length} secrets; at most ${MAX_ATTEMPT_SECRETS}`);
  const bytes = secretBytes(secrets);
  const paths = new Set<string>();
  secrets.forEach((s, i) => {
    for (const key of Object.keys(s.data)) {
      if (!SECRET_KEY.test(key)) refuse(`secrets[${i}] (${s.name}): a key is not a valid Secret key`);
    }
    for (const env of s.env) {
      if (!ENV_NAME.test(env.name)) refuse(`secrets[${i}] (${s.name}): env ${JSON.stringify(env.name.slice(0, 128))} is not a variable name`);
      // A secret's variables land on every container after the template's were checked: the same
      // names stay fedgpu's here (NVIDIA_VISIBLE_DEVICES=all would show the node's every GPU).
      if (GPU_ENV_PATTERN.test(env.name)) refuse(`secrets[${i}] (${s.name}): env ${env.name} is reserved: GPU visibility and FEDGPU_* are set by fedgpu`);
      // Nor the rendezvous variables: a Secret's RANK or MASTER_ADDR would split the gang.
      // (Not for an attempt that already runs with them, admitted before this rule: ending it would
      // leave its provider unpaid for what it ran.)
      if (!started && RENDEZVOUS_ENV_NAMES.includes(env.name)) refuse(`secrets[${i}] (${s.name}): env ${env.name} is reserved: the rendezvous variables are set by fedgpu`);
      if (!Object.hasOwn(s.data, env.key)) refuse(`secrets[${i}] (${s.name}): env ${env.name} names a key the secret lacks`);
    }
    if (s.mountPath) {
      if (!MOUNT_PATH.test(s.mountPath) || s.mountPath.split('/').includes('..')) refuse(`secrets[${i}] (${s.name}): mountPath must be an absolute path without ..`);
      if (paths.has(s.mountPath)) refuse(`secrets[${i}] (${s.name}): mountPath ${s.mountPath} is used twice`);
      paths.add(s.mountPath);
    }
  });
  if (bytes > MAX_ATTEMPT_SECRET_BYTES) refuse(`the secrets hold ${bytes} bytes; one attempt may carry at most ${MAX_ATTEMPT_SECRET_BYTES}`);
}

/** The per-attempt Secret, or undefined when the job has none. Immutable: nobody edits it in place. */
export function attemptSecret(jobUid: string, epoch: number, namespace: string, secrets: readonly AttemptSecret[]): V1Secret | undefined {
  if (secrets.length === 0) return undefined;
  const data: Record<string, string> = {};
  secrets.forEach((s, i) => {
    for (const [key, value] of Object.entries(s.data)) data[storedKey(i, key)] = Buffer.from(value).toString('base64');
  });
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: attemptSecretName(jobUid, epoch), namespace, labels: attemptObjectLabels(jobUid, epoch) },
    type: 'Opaque',
    immutable: true,
    data,
  };
}

/**
 * The pod with the secrets exposed on every container, init containers too (a data download needs
 * the credentials first); refuses a mountPath the template already uses.
 */
export function mountSecrets(pod: V1Pod, jobUid: string, epoch: number, secrets: readonly AttemptSecret[]): V1Pod {
  if (secrets.length === 0) return pod;
  const secretName = attemptSecretName(jobUid, epoch);
  const spec = pod.spec!;
  const volumes = secrets.flatMap((s, i) =>
    s.mountPath
      ? [{ name: `fedgpu-secret-${i}`, secret: { secretName, items: Object.keys(s.data).map((key) => ({ key: storedKey(i, key), path: key })) } }]
      : [],
  );
  const env = secrets.flatMap((s, i) => s.env.map((e) => ({ name: e.name, valueFrom: { secretKeyRef: { name: secretName, key: storedKey(i, e.key) } } })));
  const mounts = secrets.flatMap((s, i) => (s.mountPath ? [{ name: `fedgpu-secret-${i}`, mountPath: s.mountPath, readOnly: true }] : []));
  const names = new Set(env.map((e) => e.name));
  const withSecrets = (c: V1Container): V1Container => {
    const taken = (c.volumeMounts ?? []).find((m) => mounts.some((x) => x.mountPath === m.mountPath));
    if (taken) throw new AttemptRefused('InvalidSecrets', `container ${c.name} already mounts ${taken.mountPath}`);
    return { ...c, env: [...(c.env ?? []).filter((e) => !names.has(e.name)), ...env], volumeMounts: [...(c.volumeMounts ?? []), ...mounts] };
  };
  return {
    ...pod,
    spec: {
      ...spec,
      volumes: [...(spec.volumes ?? []), ...volumes],
      containers: spec.containers.map(withSecrets),
      ...(spec.initContainers?.length ? { initContainers: spec.initContainers.map(withSecrets) } : {}),
    },
  };
}
