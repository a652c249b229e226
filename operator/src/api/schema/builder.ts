// Small constructors for OpenAPI v3 structural schemas. The CRD YAML in crds/ and the TypeScript
// types in operator/src/gen/ are both generated from schemas built with these, so the two can never
// drift. Every constructor takes a description first: `kubectl explain` shows it to users.

export interface CelRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

export interface Schema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema;
  required?: string[];
  items?: Schema;
  enum?: (string | number)[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  format?: string;
  'x-kubernetes-validations'?: CelRule[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  /** An integer or a string (Kubernetes quantities and ports); no `type`. */
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  /** Name of the generated TypeScript interface; stripped from the CRD YAML. */
  tsName?: string;
}

type Extra = Partial<Omit<Schema, 'description' | 'type'>>;

/** Decimal money in credits, e.g. "2.5". A string because floats lose cents. */
export const MONEY_PATTERN = '^(0|[1-9][0-9]{0,11})(\\.[0-9]{1,18})?$';
/** A 0x-prefixed 20-byte hex Ethereum address. */
export const WALLET_PATTERN = '^0x[0-9a-fA-F]{40}$';
/** An NVIDIA product name as GPU Feature Discovery labels it, e.g. NVIDIA-H100-80GB-HBM3. */
export const GPU_PRODUCT_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$';

export const str = (description: string, extra: Extra = {}): Schema => ({ type: 'string', description, ...extra });
export const int = (description: string, extra: Extra = {}): Schema => ({ type: 'integer', description, ...extra });
export const num = (description: string, extra: Extra = {}): Schema => ({ type: 'number', description, ...extra });
export const bool = (description: string, extra: Extra = {}): Schema => ({ type: 'boolean', description, ...extra });
export const time = (description: string): Schema => str(description, { format: 'date-time' });
export const money = (description: string, extra: Extra = {}): Schema => str(description, { pattern: MONEY_PATTERN, maxLength: 32, ...extra });
export const wallet = (description: string, extra: Extra = {}): Schema =>
  str(description, { pattern: WALLET_PATTERN, ...extra });
export const oneOf = (description: string, values: string[], extra: Extra = {}): Schema =>
  str(description, { enum: values, ...extra });

export function obj(
  description: string,
  properties: Record<string, Schema>,
  extra: Extra & { required?: string[] } = {},
): Schema {
  return { type: 'object', description, properties, ...extra };
}

export function arr(description: string, items: Schema, extra: Extra = {}): Schema {
  return { type: 'array', description, items, ...extra };
}

export function stringMap(description: string, values: Schema, extra: Extra = {}): Schema {
  return { type: 'object', description, additionalProperties: values, ...extra };
}

/** A field that may be set at creation and never changed afterwards. */
export function immutable(schema: Schema, what = 'this field'): Schema {
  const rules = schema['x-kubernetes-validations'] ?? [];
  return {
    ...schema,
    'x-kubernetes-validations': [...rules, { rule: 'self == oldSelf', message: `${what} is immutable` }],
  };
}

/** metav1.Condition, as every Kubernetes API writes conditions. */
export function conditions(description: string): Schema {
  return arr(
    description,
    obj(
      'One aspect of the current state (metav1.Condition).',
      {
        type: str('Type of condition in PascalCase, e.g. Ready.', { maxLength: 316 }),
        status: oneOf('Status of the condition.', ['True', 'False', 'Unknown']),
        observedGeneration: int('The .metadata.generation the condition was set from.', { minimum: 0 }),
        lastTransitionTime: time('Last time the condition changed status.'),
        reason: str('Machine-readable PascalCase cause of the last transition.', { maxLength: 1024 }),
        message: str('Human-readable detail about the transition.', { maxLength: 32768 }),
      },
      { required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'], tsName: 'Condition' },
    ),
    { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'], maxItems: 16 },
  );
}
