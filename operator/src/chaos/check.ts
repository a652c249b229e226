import { readFileSync } from 'node:fs';
import type { ChaosHistory } from './history.js';
import { checkHistory, formatViolation } from './invariants/index.js';

// Checks a saved history again (`tsx operator/src/chaos/check.ts .testbed/chaos/<pid>/history.json`),
// e.g. after an invariant is added or corrected: no cluster needed.

const path = process.argv[2];
if (!path) {
  console.error('usage: check.ts <history.json>');
  process.exit(2);
}
const history = JSON.parse(readFileSync(path, 'utf8')) as ChaosHistory;
let violations = 0;
for (const r of checkHistory(history)) {
  for (const v of r.violations) console.log(formatViolation(v));
  violations += r.violations.length;
  console.log(`${r.violations.length ? '✗' : '✓'} ${r.name}${r.violations.length ? ` (${r.violations.length})` : ''}`);
}
process.exit(violations ? 1 : 0);
