import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import {
  hubPki,
  installCrds,
  providerClient,
  readyStatus,
  startAgent,
  startHubProcess,
  type AgentHandle,
  type HubProcess,
} from '../../operator/src/testbed/federation.js';
import { reapPidDir } from '../../operator/src/testbed/processes.js';
import { startPrometheus, type Prometheus } from '../../operator/src/testbed/prometheus.js';
import { startTestbed, type Testbed } from '../../operator/src/testbed/testbed.js';
import { repoRoot } from '../../operator/src/testbed/tools.js';
import { waitFor } from '../../operator/src/testbed/wait.js';

// The metrics contract end to end: a real Prometheus scrapes a real hub (the fedgpu CLI, as a
// process) every second and evaluates the shipped alert rules; an agent is killed and ProviderDown
// must fire. The rules are deploy/prometheus/fedgpu-alerts.yaml with every `for:` shortened from
// minutes to as many seconds (5m → 5s) in a generated copy, so the test runs in seconds; the
// expressions are the shipped ones, untouched.

const H100 = 'NVIDIA-H100-80GB-HBM3';
const LOST_AFTER_S = 4;
const PROVIDER_DOWN_FOR_S = 5; // ProviderDown's `for: 5m`, shortened
const root = join(repoRoot, '.testbed', 'e2e-prometheus');

let testbed: Testbed;
let hub: HubProcess;
let agent: AgentHandle;
let prometheus: Prometheus;
let provider: string;

/** The shipped rules with each `for: Nm` turned into `for: Ns`. */
function shortenedRules(dest: string): string {
  const rules = parse(readFileSync(join(repoRoot, 'deploy', 'prometheus', 'fedgpu-alerts.yaml'), 'utf8')) as {
    groups: { rules: { for?: string }[] }[];
  };
  for (const group of rules.groups) {
    for (const rule of group.rules) {
      if (rule.for) rule.for = rule.for.replace(/^(\d+)m$/, '$1s');
    }
  }
  writeFileSync(dest, stringify(rules));
  return dest;
}

beforeAll(async () => {
  reapPidDir(root);
  const dir = join(root, String(process.pid));
  testbed = await startTestbed(join(dir, 'clusters'), [
    { name: 'hub', scheduler: false },
    { name: 'dc', gpuNodes: [{ prefix: 'h100', count: 1, gpusPerNode: 8, product: H100, memoryMiB: 81559 }] },
  ]);
  await installCrds(testbed.cluster('hub'));
  const pki = await hubPki(join(dir, 'pki'));
  hub = await startHubProcess(testbed.cluster('hub'), pki, join(dir, 'hub'), ['--provider-lost-after', `${LOST_AFTER_S}s`]);
  agent = await startAgent('dc', testbed.cluster('dc'), pki, hub.grpcAddress, { pricePerGpuHour: { [H100]: '2.40' } });
  prometheus = await startPrometheus({
    dir: join(dir, 'prometheus'),
    job: 'fedgpu-hub',
    targets: [`127.0.0.1:${hub.metricsPort}`],
    ruleFiles: [shortenedRules(join(dir, 'fedgpu-alerts.test-copy.yaml'))],
  });
  const gp = await waitFor('the provider Ready', async () => {
    const p = await providerClient(testbed.cluster('hub')).byWallet(agent.wallet.address);
    return readyStatus(p)?.status === 'True' ? p : undefined;
  }, { timeoutMs: 60_000 });
  provider = gp.metadata.name!;
});

afterAll(async () => {
  await agent?.process.stop();
  await prometheus?.stop();
  await hub?.process.stop();
  await testbed?.stop();
});

const value = async (expr: string) => {
  const result = await prometheus.query(expr);
  return result.length === 1 ? Number(result[0]!.value[1]) : undefined;
};

describe('Prometheus scraping the hub', () => {
  it('sees the contract series with their labels, and no alert fires while all is well', async () => {
    await waitFor('the provider Ready in Prometheus', async () => ((await value(`fedgpu_provider_ready{provider="${provider}"}`)) === 1 ? true : undefined), {
      timeoutMs: 30_000,
    });
    expect(await value('up{job="fedgpu-hub"}')).toBe(1);
    expect(await value('fedgpu_hub_leader')).toBe(1);
    expect(await value(`fedgpu_provider_gpus_idle{provider="${provider}",product="${H100}"}`)).toBe(8);
    expect(await value(`fedgpu_provider_heartbeat_age_seconds{provider="${provider}"}`)).toBeLessThan(5);
    expect(await value('fedgpu_marketplace_streams')).toBe(1);
    expect((await prometheus.query('fedgpu_jobs')).map((r) => r.metric.phase).sort()).toEqual(['Failed', 'Pending', 'Running', 'Scheduled', 'Succeeded']);
    expect(await value('fedgpu_build_info')).toBe(1);
    expect(await value('process_resident_memory_bytes')).toBeGreaterThan(0);
    // Give the rules a few evaluations: HubNoLeader in particular must stay quiet. Waits for every
    // rule group to have been evaluated twice after this point (evaluations, not wall time, are
    // what a loaded machine delays).
    const since = Date.now();
    await waitFor('two rule evaluations', async () => {
      const groups = await prometheus.ruleEvaluations();
      return groups.length > 0 && groups.every((g) => g.lastEvaluationMs >= since + 1_000) ? true : undefined;
    }, { timeoutMs: 60_000 });
    expect(await prometheus.alerts()).toEqual([]);
  });

  it('fires ProviderDown within its `for` after providerLostAfter when the agent dies', async () => {
    await agent.process.stop(1); // SIGTERM, then SIGKILL after 1 ms: an abrupt loss
    const killedAt = Date.now();
    const alert = await waitFor('ProviderDown firing', async () => {
      const found = (await prometheus.alerts()).find((a) => a.labels.alertname === 'ProviderDown' && a.labels.provider === provider);
      return found?.state === 'firing' ? found : undefined;
    }, { timeoutMs: (LOST_AFTER_S + PROVIDER_DOWN_FOR_S) * 1000 + 30_000, intervalMs: 250 });
    const firedAfterMs = Date.now() - killedAt;
    const pendingAfterMs = Date.parse(alert.activeAt) - killedAt;
    console.log(
      `ProviderDown: pending ${(pendingAfterMs / 1000).toFixed(1)} s after the kill (providerLostAfter ${LOST_AFTER_S} s), ` +
        `firing ${(firedAfterMs / 1000).toFixed(1)} s after the kill (test for: ${PROVIDER_DOWN_FOR_S} s)`,
    );
    expect(alert.labels).toMatchObject({ alertname: 'ProviderDown', severity: 'warning', provider });
    // Correctness windows, not performance: never before the provider is declared lost plus the
    // `for`, and within providerLostAfter + for + scrape/evaluation slack (a few 1 s intervals).
    expect(firedAfterMs).toBeGreaterThanOrEqual((LOST_AFTER_S + PROVIDER_DOWN_FOR_S) * 1000 - 1_000);
    expect(firedAfterMs).toBeLessThanOrEqual((LOST_AFTER_S + PROVIDER_DOWN_FOR_S) * 1000 + 10_000);
    expect(readyStatus(await providerClient(testbed.cluster('hub')).byWallet(agent.wallet.address))).toMatchObject({ status: 'False', reason: 'HeartbeatMissed' });
    expect(await value('fedgpu_marketplace_streams')).toBe(0);
  });

  it('resolves ProviderDown once the agent is back', async () => {
    await agent.restart();
    await waitFor('ProviderDown resolved', async () =>
      (await prometheus.alerts()).some((a) => a.labels.alertname === 'ProviderDown') ? undefined : true,
    { timeoutMs: 60_000 });
    expect(await value(`fedgpu_provider_ready{provider="${provider}"}`)).toBe(1);
  });
});
