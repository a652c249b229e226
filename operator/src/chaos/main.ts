import { join } from 'node:path';
import { repoRoot } from '../testbed/tools.js';
import { reapStaleRuns } from '../testbed/processes.js';
import { formatViolation } from './invariants/index.js';
import { runChaos } from './run.js';
import { FAULT_KINDS, type FaultKind } from './schedule.js';

// `make chaos SEED=1 JOBS=200 MINUTES=30`: one seeded chaos run; prints each violation with its
// job, attempt and nearby faults, then a summary; exits 1 on any violation, 2 on bad settings.

function setting(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`${name}=${raw} is not a positive number`);
    process.exit(2);
  }
  return n;
}

const kinds = process.env.KINDS ? (process.env.KINDS.split(',') as FaultKind[]) : undefined;
const unknown = kinds?.filter((k) => !FAULT_KINDS.includes(k));
if (unknown?.length) {
  console.error(`KINDS: unknown fault kind(s) ${unknown.join(', ')}; known: ${FAULT_KINDS.join(', ')}`);
  process.exit(2);
}

const seed = setting('SEED', 1);
const root = join(repoRoot, '.testbed', 'chaos');
reapStaleRuns(root);
const result = await runChaos({
  seed,
  jobs: setting('JOBS', 200),
  minutes: setting('MINUTES', 30),
  providers: setting('PROVIDERS', 3),
  ...(kinds ? { kinds } : {}),
  ...(process.env.FAULT_RATE ? { faultRate: setting('FAULT_RATE', 3) } : {}),
  dir: join(root, String(process.pid)),
});
let violations = 0;
for (const r of result.results) {
  for (const v of r.violations) console.log(formatViolation(v));
  violations += r.violations.length;
}
console.log('\n' + JSON.stringify(result.summary, null, 1));
for (const r of result.results) console.log(`${r.violations.length ? '✗' : '✓'} ${r.name}${r.violations.length ? ` (${r.violations.length})` : ''}`);
console.log(violations ? `${violations} violation(s); history in ${join(root, String(process.pid), 'history.json')}` : 'every invariant held');
process.exit(violations ? 1 : 0);
