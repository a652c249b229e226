// docs/metrics.md is the contract: every metric it names must be exported by the binary it lists,
// with the labels it lists, and nothing fedgpu_* may be exported that it does not name.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../testbed/tools.js';
import { AgentMetrics } from './agent-metrics.js';
import { HubMetrics } from './hub-metrics.js';
import { metricNames, parseExposition } from './testing/exposition.js';
import { job, provider, ready } from './testing/fixtures.js';

interface Documented {
  type: string;
  labels: string[];
}

/** The metric tables of one section ("## Hub metrics" or "## Agent metrics") of docs/metrics.md. */
function documented(section: string): Map<string, Documented> {
  const doc = readFileSync(join(repoRoot, 'docs', 'metrics.md'), 'utf8');
  const start = doc.indexOf(`## ${section}`);
  const end = doc.indexOf('\n## ', start + 1);
  const rows = new Map<string, Documented>();
  for (const m of doc.slice(start, end === -1 ? undefined : end).matchAll(/^\| `(fedgpu_[a-z_]+)` \| (\w+) \| ([^|]*) \|/gm)) {
    const labels = [...(m[3] as string).matchAll(/`(\w+)`/g)].map((l) => l[1] as string);
    rows.set(m[1] as string, { type: m[2] as string, labels });
  }
  return rows;
}

function exported(text: string): Map<string, Documented> {
  const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)/gm)].map((m) => [m[1] as string, m[2] as string]));
  const labels = new Map<string, Set<string>>();
  for (const s of parseExposition(text)) {
    const base = [...types.keys()].find((n) => s.name === n || s.name === `${n}_bucket` || s.name === `${n}_sum` || s.name === `${n}_count`);
    if (!base) continue;
    const set = labels.get(base) ?? new Set();
    for (const l of Object.keys(s.labels)) if (l !== 'le') set.add(l);
    labels.set(base, set);
  }
  return new Map(
    [...types].filter(([n]) => n.startsWith('fedgpu_')).map(([n, type]) => [n, { type, labels: [...(labels.get(n) ?? [])].sort() }]),
  );
}

describe('docs/metrics.md', () => {
  it('names exactly the hub series, with their types and labels', async () => {
    const m = new HubMetrics({ processMetrics: false });
    // A populated market, so that every labelled series has a sample to read its labels from.
    m.observeMarket({
      providers: () => [
        provider('gp-a', {
          conditions: [ready('True')],
          lastHeartbeatTime: new Date().toISOString(),
          reputation: { score: 0.9 },
          stake: { amount: '1' },
          latency: { rttMs: 1 },
          pools: [{ gpuProduct: 'p', total: 1, idle: 1 }],
        }),
      ],
      jobs: () => [job('j')],
    });
    m.setLeader(true);
    m.observeSettlementConfirmed({ provider: 'gp-a', gpuProduct: 'p', gpuSeconds: 1, paidCredits: 1, durationSeconds: 1 });
    m.setChainConnected(true); // a hub that settles
    m.setAccessEndpointPublished(true); // a hub with the access endpoint (--access-service)
    m.observeIdleCollection({ outcome: 'compacted', pauseMs: 250, freedBytes: 2 ** 20 });
    const docs = documented('Hub metrics');
    const got = exported(await m.text());
    expect([...got.keys()].sort()).toEqual([...docs.keys()].sort());
    for (const [name, doc] of docs) {
      expect(got.get(name), name).toEqual({ type: doc.type, labels: [...doc.labels].sort() });
    }
  });

  it('names exactly the agent series, with their types and labels', async () => {
    const m = new AgentMetrics({ processMetrics: false });
    m.observeAgent({ idleGpus: () => new Map([['p', 1]]), jobPods: () => [] });
    const docs = documented('Agent metrics');
    const got = exported(await m.text());
    expect([...got.keys()].sort()).toEqual([...docs.keys()].sort());
    for (const [name, doc] of docs) expect(got.get(name), name).toEqual({ type: doc.type, labels: [...doc.labels].sort() });
    expect(metricNames(await m.text()).has('fedgpu_agent_connected')).toBe(true);
  });
});
