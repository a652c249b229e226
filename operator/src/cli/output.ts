import { stringify } from 'yaml';

export type OutputFormat = 'table' | 'json' | 'yaml';

export const OUTPUT_FORMATS: OutputFormat[] = ['table', 'json', 'yaml'];

/** Prints rows as an aligned table (kubectl style), or the raw value as JSON or YAML. */
export function render(format: OutputFormat, value: unknown, table: () => string[][]): string {
  if (format === 'json') return `${JSON.stringify(value, null, 2)}\n`;
  if (format === 'yaml') return stringify(value);
  return formatTable(table());
}

export function formatTable(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return `${rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]! + 3))).join('').trimEnd()).join('\n')}\n`;
}
