// Reads Prometheus text exposition back into samples, so tests assert on series, not on strings.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/;
const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const raw of text.split('\n')) {
    if (!raw || raw.startsWith('#')) continue;
    const m = line.exec(raw);
    if (!m) throw new Error(`not an exposition line: ${raw}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(label)) labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, '$1');
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return samples;
}

/** Samples of one metric whose labels include `match`. */
export function series(samples: readonly Sample[], name: string, match: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

/** The value of the one sample matching, or undefined when there is none. Throws when several match. */
export function valueOf(samples: readonly Sample[], name: string, match: Record<string, string> = {}): number | undefined {
  const found = series(samples, name, match);
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(match)}`);
  return found[0]?.value;
}

/** Metric names declared by # TYPE lines. */
export function metricNames(text: string): Set<string> {
  return new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] as string));
}
