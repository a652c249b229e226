import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort, onFreshPorts } from './free-port.js';
import { exitedEarly, startProcess, type ManagedProcess } from './processes.js';
import { toolPath } from './tools.js';
import { waitFor } from './wait.js';

// A real Prometheus server for e2e tests (Debian's 2.42 binary, bin/prometheus): on a free
// loopback port, with its TSDB in the test's folder, scraping the given targets, stopped by pid.

export interface PrometheusOptions {
  dir: string;
  /** host:port targets of one scrape job named `job`. */
  targets: string[];
  job?: string;
  ruleFiles?: string[];
  /** Scrape and rule evaluation interval (default 1s). */
  interval?: string;
}

export interface PrometheusAlert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
  value: string;
}

export interface Prometheus {
  url: string;
  process: ManagedProcess;
  /** Instant query; returns the result vector. */
  query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  alerts(): Promise<PrometheusAlert[]>;
  /** Rule groups with the time of their last evaluation (ms since epoch), to wait on evaluations. */
  ruleEvaluations(): Promise<{ name: string; lastEvaluationMs: number }[]>;
  stop(): Promise<void>;
}

export async function startPrometheus(options: PrometheusOptions): Promise<Prometheus> {
  mkdirSync(options.dir, { recursive: true });
  const interval = options.interval ?? '1s';
  const configPath = join(options.dir, 'prometheus.yml');
  writeFileSync(
    configPath,
    stringify({
      global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: interval },
      rule_files: options.ruleFiles ?? [],
      scrape_configs: [{ job_name: options.job ?? 'fedgpu', static_configs: [{ targets: options.targets }] }],
    }),
  );
  const { process, url } = await onFreshPorts(async () => {
    const port = await freePort();
    const started = startProcess({
      name: 'prometheus',
      command: toolPath('prometheus'),
      dir: options.dir,
      args: [
        `--config.file=${configPath}`,
        `--storage.tsdb.path=${join(options.dir, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
    });
    const url = `http://127.0.0.1:${port}`;
    await waitFor('prometheus to be ready', async () => {
      if (!started.running()) throw exitedEarly(started);
      return (await fetch(`${url}/-/ready`)).ok ? true : undefined;
    }, { timeoutMs: 30_000 });
    return { process: started, url };
  });
  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(url + path);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`prometheus ${path}: ${body.error ?? res.status}`);
    return body.data;
  };
  return {
    url,
    process,
    query: async (expr) => (await api<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`)).result,
    alerts: async () => (await api<{ alerts: PrometheusAlert[] }>('/api/v1/alerts')).alerts,
    ruleEvaluations: async () =>
      (await api<{ groups: { name: string; lastEvaluation: string }[] }>('/api/v1/rules')).groups.map((g) => ({ name: g.name, lastEvaluationMs: Date.parse(g.lastEvaluation) })),
    stop: () => process.stop(),
  };
}
