import type { Schema } from './builder.js';

// Turns our OpenAPI schemas into TypeScript interfaces. Objects that carry a `tsName` become named
// interfaces; others are written inline. Descriptions become doc comments.

export function emitTypes(roots: Record<string, Schema>, header: string): string {
  const named = new Map<string, string>();
  for (const [name, schema] of Object.entries(roots)) emitNamed({ ...schema, tsName: name }, named);
  const body = [...named.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, text]) => text);
  return `${header}\n${body.join('\n\n')}\n`;
}

function emitNamed(schema: Schema, named: Map<string, string>): string {
  const name = schema.tsName as string;
  const text = `${doc(schema.description, '')}export interface ${name} ${objectLiteral(schema, named, '')}`;
  const seen = named.get(name);
  if (seen !== undefined && seen !== text) throw new Error(`two different schemas are both named ${name}`);
  named.set(name, text);
  return name;
}

function typeOf(schema: Schema, named: Map<string, string>, indent: string): string {
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(' | ');
  switch (schema.type) {
    case 'string':
      return 'string';
    case 'integer':
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'array':
      return `${wrap(typeOf(schema.items ?? { description: '' }, named, indent))}[]`;
    case 'object':
      if (schema.tsName) return emitNamed(schema, named);
      if (schema.additionalProperties) {
        return `Record<string, ${typeOf(schema.additionalProperties, named, indent)}>`;
      }
      if (!schema.properties) return 'Record<string, unknown>';
      return objectLiteral(schema, named, indent);
    default:
      return schema['x-kubernetes-int-or-string'] ? 'number | string' : 'unknown';
  }
}

function objectLiteral(schema: Schema, named: Map<string, string>, indent: string): string {
  const inner = `${indent}  `;
  const required = new Set(schema.required ?? []);
  const lines = Object.entries(schema.properties ?? {}).map(([key, prop]) => {
    const optional = required.has(key) ? '' : '?';
    return `${doc(prop.description, inner)}${inner}${safeKey(key)}${optional}: ${typeOf(prop, named, inner)};`;
  });
  if (schema['x-kubernetes-preserve-unknown-fields']) {
    lines.push(`${inner}/** Other fields of the Kubernetes type, passed through unchanged. */`);
    lines.push(`${inner}[field: string]: unknown;`);
  }
  return `{\n${lines.join('\n')}\n${indent}}`;
}

const wrap = (t: string): string => (t.includes('|') ? `(${t})` : t);
const safeKey = (k: string): string => (/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k));

function doc(description: string, indent: string): string {
  if (!description) return '';
  return `${indent}/** ${description.replace(/\*\//g, '*\\/')} */\n`;
}
