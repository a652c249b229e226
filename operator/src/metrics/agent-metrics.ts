// The agent's series (docs/metrics.md, "Agent metrics"), for the provider's own monitoring.
import type { V1Pod } from '@kubernetes/client-node';
import type { status } from '@grpc/grpc-js';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { registerBuildInfo } from './build-info.js';
import { AGENT_RECONNECT_REASONS, isOneOf, POD_PHASES } from './labels.js';
import { agentReconnectReason } from './reason-maps.js';

/** What the scrape-time gauges read from the agent. */
export interface AgentSources {
  /** Idle GPUs per product, as the agent reports them to the hub. */
  idleGpus(): ReadonlyMap<string, number>;
  /** Job pods in the job namespace. */
  jobPods(): readonly V1Pod[];
}

export interface AgentMetricsOptions {
  version?: string;
  processMetrics?: boolean;
}

export class AgentMetrics {
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;
  private sources: AgentSources | undefined;
  private readonly connected: Gauge;
  private readonly reconnects: Counter<'reason'>;
  private readonly notRestricted: Counter;

  constructor(options: AgentMetricsOptions = {}) {
    const registers = [this.registry];
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    registerBuildInfo(this.registry, options.version);
    this.connected = new Gauge({ name: 'fedgpu_agent_connected', help: '1 while the stream to the hub is registered.', registers });
    this.reconnects = new Counter({ name: 'fedgpu_agent_reconnects_total', help: 'Stream restarts.', labelNames: ['reason'], registers });
    for (const reason of AGENT_RECONNECT_REASONS) this.reconnects.inc({ reason }, 0);
    this.notRestricted = new Counter({
      name: 'fedgpu_agent_namespace_not_restricted_total',
      help: 'Attempts refused because their tenant namespace does not enforce PodSecurity restricted.',
      registers,
    });
    const sources = () => this.sources;
    new Gauge({
      name: 'fedgpu_agent_gpus_idle',
      help: 'Idle GPUs the agent reports.',
      labelNames: ['product'],
      registers,
      collect() {
        this.reset();
        for (const [product, idle] of sources()?.idleGpus() ?? []) this.set({ product }, idle);
      },
    });
    new Gauge({
      name: 'fedgpu_agent_pods',
      help: 'Job pods in the tenant namespaces by pod phase.',
      labelNames: ['phase'],
      registers,
      collect() {
        const counts = new Map<string, number>(POD_PHASES.map((p) => [p, 0]));
        for (const pod of sources()?.jobPods() ?? []) {
          const phase = pod.status?.phase;
          if (isOneOf(POD_PHASES, phase)) counts.set(phase, (counts.get(phase) ?? 0) + 1);
        }
        for (const [phase, n] of counts) this.set({ phase }, n);
      },
    });
  }

  observeAgent(sources: AgentSources): void {
    this.sources = sources;
  }

  /** The stream registered with the hub. */
  onConnected(): void {
    this.connected.set(1);
  }

  /** The stream ended with `code`; the agent reconnects. */
  onDisconnected(code: status): void {
    this.connected.set(0);
    this.reconnects.inc({ reason: agentReconnectReason(code) });
  }

  /** A tenant namespace does not enforce PodSecurity restricted: its attempt was refused. */
  onNamespaceNotRestricted(): void {
    this.notRestricted.inc();
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
