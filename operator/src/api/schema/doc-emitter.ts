import type { Schema } from './builder.js';

// Turns our OpenAPI schemas into the API reference (docs/api-reference.md): one table per kind's
// spec and status, a row per field with its type, constraints and description.

export function emitReference(kinds: { kind: string; summary: string; spec: Schema; status: Schema }[], header: string): string {
  const out = [header];
  for (const k of kinds) {
    out.push(`## ${k.kind}\n\n${k.summary}\n`);
    for (const [part, schema] of [['spec', k.spec], ['status', k.status]] as const) {
      out.push(`### ${k.kind}.${part}\n\n${schema.description}\n`);
      out.push('| field | type | constraints | description |', '| --- | --- | --- | --- |');
      for (const row of rows(schema, part)) out.push(row);
      out.push('');
    }
  }
  return `${out.join('\n').trimEnd()}\n`;
}

function rows(schema: Schema, path: string): string[] {
  const out: string[] = [];
  const required = new Set(schema.required ?? []);
  for (const [name, prop] of Object.entries(schema.properties ?? {})) {
    const field = `${path}.${name}`;
    out.push(`| \`${field}\`${required.has(name) ? ' (required)' : ''} | ${typeName(prop)} | ${constraints(prop)} | ${cell(prop.description)} |`);
    const inner = prop.type === 'array' ? prop.items : prop;
    const innerPath = prop.type === 'array' ? `${field}[]` : field;
    if (inner?.properties && Object.keys(inner.properties).length) out.push(...rows(inner, innerPath));
  }
  return out;
}

function typeName(s: Schema): string {
  if (s.type === 'array') return `${typeName(s.items ?? { description: '' })}[]`;
  if (s.type === 'object' && s.additionalProperties) return `map[string]${typeName(s.additionalProperties)}`;
  if (s.format) return `${s.type} (${s.format})`;
  return s.type ?? 'any';
}

function constraints(s: Schema): string {
  const c: string[] = [];
  if (s.enum) c.push(`one of ${s.enum.map((v) => `\`${v}\``).join(', ')}`);
  if (s.default !== undefined) c.push(`default \`${JSON.stringify(s.default)}\``);
  if (s.minimum !== undefined) c.push(`≥ ${s.minimum}`);
  if (s.maximum !== undefined) c.push(`≤ ${s.maximum}`);
  if (s.minItems !== undefined) c.push(`≥ ${s.minItems} items`);
  if (s.maxItems !== undefined) c.push(`≤ ${s.maxItems} items`);
  if (s.maxLength !== undefined) c.push(`≤ ${s.maxLength} chars`);
  if (s.pattern) c.push(`pattern \`${s.pattern.replace(/\|/g, '\\|')}\``);
  for (const rule of s['x-kubernetes-validations'] ?? []) c.push(rule.message ?? `rule \`${rule.rule}\``);
  return cell(c.join('; '));
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
