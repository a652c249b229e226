import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatViolation } from '../../operator/src/chaos/invariants/index.js';
import { runChaos } from '../../operator/src/chaos/run.js';
import { reapStaleRuns } from '../../operator/src/testbed/processes.js';
import { repoRoot } from '../../operator/src/testbed/tools.js';

// The short chaos soak CI runs (docs/reliability.md has the long one): a fixed seed, a few jobs
// over a few minutes on the full chaos federation (two hub replicas on a Lease, three provider
// clusters behind fault proxies, anvil behind an RPC proxy), every fault kind eligible, and every
// invariant held. A violation prints with its job, attempt and the faults around it.

const root = join(repoRoot, '.testbed', 'e2e-chaos');

describe('chaos soak (short)', () => {
  it('keeps every promise through a seeded run of kills, partitions, restarts and chain faults', async () => {
    reapStaleRuns(root);
    const { results, summary } = await runChaos({ seed: 7, jobs: 10, minutes: 3, faultRate: 3, drainMs: 6 * 60_000, dir: join(root, String(process.pid)) });
    console.log(JSON.stringify(summary));
    const violations = results.flatMap((r) => r.violations.map(formatViolation));
    expect(violations, violations.join('\n')).toEqual([]);
    // The run tested something: faults were injected and jobs ran, paid and ended.
    expect(Object.values(summary.faultsByKind).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(5);
    expect(summary.chainEvents.Settled ?? 0).toBeGreaterThan(0);
    expect(summary.podSamples).toBeGreaterThan(0);
    expect(summary.drained).toBe(true);
  }, 30 * 60_000);
});
