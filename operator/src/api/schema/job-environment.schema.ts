import { arr, int, obj, oneOf, str, type Schema } from './builder.js';

/** What the agent sets on every container for torchrun and friends (agent/attempt/rendezvous.ts): a Secret's env cannot. */
export const RENDEZVOUS_VARIABLES = ['MASTER_ADDR', 'MASTER_PORT', 'WORLD_SIZE', 'RANK', 'NODE_RANK', 'PET_NNODES', 'PET_NPROC_PER_NODE', 'PET_NODE_RANK', 'PET_MASTER_ADDR', 'PET_MASTER_PORT'] as const;

// What a job gets on a stranger's GPU besides its pods (DESIGN §8a): network reach and secrets.

const PROVIDER_ADMINS_SEE =
  "The provider's administrators can read whatever their cluster runs and mounts: secrets delivered to an " +
  'attempt, its environment and its traffic. There is no confidential computing here; send only credentials ' +
  'you would hand to that provider, scoped and short-lived.';

export function egressProfileSchema(description: string, tsName: string): Schema {
  return obj(
    description,
    {
      mode: oneOf(
        'none: nothing beyond the gang; dns: cluster DNS only; cidrs: DNS and the listed destinations; ' +
          'internet: DNS and every public address (private, link-local and loopback ranges stay closed).',
        ['none', 'dns', 'cidrs', 'internet'],
        { default: 'dns' },
      ),
      destinations: arr(
        'With mode cidrs: the address ranges and TCP ports.',
        obj(
          'An address range and its TCP ports.',
          {
            cidr: str('IPv4 or IPv6 CIDR, e.g. 203.0.113.0/24.', {
              pattern: '^[0-9a-fA-F:.]+/[0-9]{1,3}$',
              maxLength: 64,
              'x-kubernetes-validations': [{ rule: 'isCIDR(self)', message: 'must be an IPv4 or IPv6 CIDR, e.g. 203.0.113.0/24' }],
            }),
            ports: arr('TCP ports; empty means every port.', int('A port.', { minimum: 1, maximum: 65535 }), { maxItems: 64 }),
          },
          { required: ['cidr'], tsName: 'EgressDestination' },
        ),
        { maxItems: 64 },
      ),
    },
    {
      tsName,
      'x-kubernetes-validations': [
        { rule: "self.mode != 'cidrs' || (has(self.destinations) && size(self.destinations) > 0)", message: 'mode cidrs needs at least one destination', fieldPath: '.destinations' },
        { rule: "self.mode == 'cidrs' || !has(self.destinations) || size(self.destinations) == 0", message: 'only mode cidrs lists destinations', fieldPath: '.destinations' },
      ],
    },
  );
}

export const jobNetworkSchema: Schema = obj(
  "The job's network needs. The replicas of an attempt always reach each other on every port (a " +
    'NetworkPolicy per attempt, and a headless Service for a gang, see MASTER_ADDR); nothing else reaches them.',
  {
    egress: egressProfileSchema(
      'What the pods must reach beyond their gang. The job is placed only on pools that offer at least this, ' +
        'and the pods get exactly this (default: cluster DNS only).',
      'EgressNeed',
    ),
  },
  { tsName: 'JobNetwork', default: {} },
);

const ENV_NAME = '^[A-Za-z_][A-Za-z0-9_]{0,127}$';
const SECRET_KEY = '^[-._a-zA-Z0-9]{1,253}$';

export const jobSecretsSchema: Schema = arr(
  'Secrets of the job\'s namespace on the hub, delivered to the attempt that wins the placement and to no other ' +
    'provider. The hub reads them when it assigns an attempt (grant it with a RoleBinding in this namespace; ' +
    'see docs/secrets.md: without one the job waits), sends them over the winning agent\'s authenticated stream ' +
    'and never writes their values to status, Events, logs or metrics. The agent keeps them in one Secret per ' +
    'attempt, deleted when the attempt ends. ' +
    PROVIDER_ADMINS_SEE,
  obj(
    'One Secret and how the pods see it.',
    {
      name: str('Name of a Secret in the job\'s namespace on the hub.', { pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$', maxLength: 253 }),
      env: arr(
        'Environment variables set from keys of the Secret, on every container, init containers included.',
        obj(
          'One variable.',
          {
            name: str('Variable name, e.g. HF_TOKEN.', { pattern: ENV_NAME }),
            key: str('Key in the Secret.', { pattern: SECRET_KEY }),
          },
          {
            required: ['name', 'key'],
            tsName: 'JobSecretEnv',
            'x-kubernetes-validations': [
              {
                rule: "!self.name.startsWith('NVIDIA_') && self.name != 'CUDA_VISIBLE_DEVICES' && !self.name.startsWith('FEDGPU_')",
                message: 'NVIDIA_*, CUDA_VISIBLE_DEVICES and FEDGPU_* are set by fedgpu: a job sees only the GPUs it pays for',
                fieldPath: '.name',
              },
              {
                rule: `!(self.name in [${RENDEZVOUS_VARIABLES.map((n) => `'${n}'`).join(', ')}])`,
                message: `${RENDEZVOUS_VARIABLES.join(', ')} are set by fedgpu for the gang's rendezvous (docs/job-environment.md)`,
                fieldPath: '.name',
              },
            ],
          },
        ),
        { maxItems: 64 },
      ),
      mountPath: str('Absolute directory where every key of the Secret becomes a read-only file, in every container, init containers included.', {
        pattern: '^/[A-Za-z0-9._/-]*$',
        maxLength: 512,
      }),
    },
    {
      required: ['name'],
      tsName: 'JobSecret',
      'x-kubernetes-validations': [
        { rule: 'has(self.env) || has(self.mountPath)', message: 'set env, mountPath or both: otherwise the secret reaches no pod' },
      ],
    },
  ),
  { maxItems: 16, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] },
);
