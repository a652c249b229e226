import { obj, type Schema } from './builder.js';
import { gpuJobSpec, gpuJobStatus } from './gpujob.schema.js';
import { gpuProviderSpec, gpuProviderStatus } from './gpuprovider.schema.js';

export const GROUP = 'fedgpu.io';
export const VERSION = 'v1alpha1';

interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'date' | 'boolean';
  jsonPath: string;
  description: string;
  priority?: number;
}

interface CrdInput {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  scope: 'Namespaced' | 'Cluster';
  description: string;
  spec: Schema;
  status: Schema;
  columns: PrinterColumn[];
}

/** Builds an apiextensions.k8s.io/v1 CustomResourceDefinition object. */
function crd(input: CrdInput): Record<string, unknown> {
  const root = obj(input.description, {
    apiVersion: { type: 'string', description: 'APIVersion of this object: fedgpu.io/v1alpha1.' },
    kind: { type: 'string', description: `Kind of this object: ${input.kind}.` },
    // The apiserver owns metadata's schema and refuses a description here.
    metadata: { type: 'object' } as Schema,
    spec: input.spec,
    status: input.status,
  }, { required: ['spec'] });
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${input.plural}.${GROUP}` },
    spec: {
      group: GROUP,
      scope: input.scope,
      names: {
        kind: input.kind,
        listKind: `${input.kind}List`,
        plural: input.plural,
        singular: input.singular,
        shortNames: input.shortNames,
        categories: ['fedgpu'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            ...input.columns,
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Time since creation.' },
          ],
          schema: { openAPIV3Schema: stripTsNames(root) },
        },
      ],
    },
  };
}

/** Removes the generator-only `tsName` keys, leaving a pure OpenAPI schema. */
export function stripTsNames(schema: Schema): Schema {
  const { tsName: _unused, properties, items, additionalProperties, ...rest } = schema;
  const out: Schema = { ...rest };
  if (properties) out.properties = Object.fromEntries(Object.entries(properties).map(([k, v]) => [k, stripTsNames(v)]));
  if (items) out.items = stripTsNames(items);
  if (additionalProperties) out.additionalProperties = stripTsNames(additionalProperties);
  return out;
}

const readyCondition = '.status.conditions[?(@.type=="Ready")].status';

export const gpuJobCrd = crd({
  kind: 'GpuJob',
  plural: 'gpujobs',
  singular: 'gpujob',
  shortNames: ['gj'],
  scope: 'Namespaced',
  description:
    'GpuJob runs a gang of GPU pods on the best idle GPUs of the federation and settles its cost on chain.',
  spec: gpuJobSpec,
  status: gpuJobStatus,
  columns: [
    { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Lifecycle phase.' },
    { name: 'Provider', type: 'string', jsonPath: '.status.placement.provider', description: 'Provider running it.' },
    { name: 'GPUs', type: 'integer', jsonPath: '.status.gpus', description: 'GPUs of the gang.' },
    { name: 'Attempts', type: 'integer', jsonPath: '.status.attemptCount', description: 'Attempts so far.' },
    { name: 'Cost', type: 'string', jsonPath: '.status.cost.amount', description: 'Credits billed.' },
    { name: 'Message', type: 'string', jsonPath: '.status.message', description: 'Why it waits.', priority: 1 },
  ],
});

export const gpuProviderCrd = crd({
  kind: 'GpuProvider',
  plural: 'gpuproviders',
  singular: 'gpuprovider',
  shortNames: ['gp'],
  scope: 'Cluster',
  description: 'GpuProvider is one provider cluster lending its idle GPUs to the federation through its agent.',
  spec: gpuProviderSpec,
  status: gpuProviderStatus,
  columns: [
    { name: 'Ready', type: 'string', jsonPath: readyCondition, description: 'Fresh heartbeat from the agent.' },
    { name: 'Idle/Total GPUs', type: 'string', jsonPath: '.status.gpus', description: 'Idle and total GPUs.' },
    { name: 'Reputation', type: 'number', jsonPath: '.status.reputation.score', description: 'Reputation score.' },
    { name: 'RTT', type: 'number', jsonPath: '.status.latency.rttMs', description: 'Round-trip time in ms.' },
    { name: 'Stake', type: 'string', jsonPath: '.status.stake.amount', description: 'Active stake in credits.' },
    { name: 'Last Heard', type: 'date', jsonPath: '.status.lastHeartbeatTime', description: 'Last heartbeat, written at most once a minute while nothing else changes.' },
    { name: 'Region', type: 'string', jsonPath: '.spec.region', description: 'Region.', priority: 1 },
  ],
});

/** The schemas from which TypeScript types are generated, by root interface name. */
export const typeRoots: Record<string, Schema> = {
  GpuJobSpec: gpuJobSpec,
  GpuJobStatus: gpuJobStatus,
  GpuProviderSpec: gpuProviderSpec,
  GpuProviderStatus: gpuProviderStatus,
};
