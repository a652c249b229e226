// What this hub replica does, leader or stand-by (docs/ha.md).
//  - Every replica: the marketplace server (a stand-by refuses agents, naming the leader), warm
//    GpuJob/GpuProvider caches (readiness, quick takeover), metrics.
//  - The leader only: the GpuJob controller, the heartbeat check, leader tasks (settlement), and
//    serving agent streams. Without leader election the replica leads from the start.
// A replica that loses the Lease while running stops its leader work and reports it (the CLI exits
// so that a fresh process re-lists and campaigns again, as controller-runtime does).
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { HubMetrics } from '../metrics/hub-metrics.js';
import type { StandbyRefusal } from '../protocol/leader-redirect.js';
import type { GpuJobController } from './jobs/controller.js';
import { type HubLeaderElection, HubLeadership } from './leadership.js';
import type { KubeProviderRegistry } from './providers/registry.js';

/** Work that runs only while this replica leads, e.g. settlement; must end when `signal` aborts. */
export type LeaderTask = (signal: AbortSignal) => Promise<void> | void;

export interface HubRolesOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  jobs: GpuJobController;
  registry: KubeProviderRegistry;
  metrics?: HubMetrics;
  leaderElection?: HubLeaderElection;
  leaderTasks?: readonly LeaderTask[];
  /** The replica lost the Lease while running (not on stop). */
  onLostLeadership?: () => void;
  heartbeatCheckIntervalMs?: number;
}

interface LeaderWork {
  heartbeats: NodeJS.Timeout;
  tasks: AbortController;
  running: Promise<unknown>;
}

export class HubRoles {
  private serving = false;
  private stopping = false;
  private leadership: HubLeadership | undefined;
  private work: LeaderWork | undefined;

  constructor(private readonly opts: HubRolesOptions) {}

  /** Warms the caches, then leads at once (no election) or starts campaigning. */
  async start(grpcAddress: string): Promise<void> {
    const { jobs } = this.opts;
    await Promise.all([jobs.jobs.start(), jobs.providers.start()]);
    const election = this.opts.leaderElection;
    if (!election) {
      await this.takeOver();
      return;
    }
    this.opts.metrics?.setLeader(false);
    this.leadership = new HubLeadership({
      kubeConfig: this.opts.kubeConfig,
      election,
      grpcAddress,
      logger: this.opts.logger,
      lead: (signal) => this.lead(signal),
      onStoppedLeading: () => this.onStoppedLeading(),
    });
    this.leadership.start();
  }

  /** undefined: serve this agent; otherwise refuse it and name the leader (when known). */
  admission(): StandbyRefusal | undefined {
    if (this.serving) return undefined;
    return this.leadership?.standbyRefusal() ?? {};
  }

  /**
   * Why this replica does not serve consumer access now (a stand-by: the agents' streams, and so
   * the tunnels, are on the leader), naming the leader when one is known; undefined when leading.
   */
  standbyMessage(): string | undefined {
    if (this.serving) return undefined;
    const me = this.leadership?.identity;
    const leader = this.leadership?.otherLeader();
    const self = me ? `this hub replica (${me}) is a stand-by` : 'this hub replica is not serving yet';
    return leader
      ? `${self}; the leader is ${leader}, which holds the agents' streams: retry (the access API is served by the leader)`
      : `${self} and no leader is elected right now: retry shortly`;
  }

  get isLeader(): boolean {
    return this.serving;
  }

  get identity(): string | undefined {
    return this.leadership?.identity;
  }

  /** First step of a graceful stop: refuse new agent streams. */
  stopServing(): void {
    this.stopping = true;
    this.serving = false;
  }

  /** Ends the leader work (in-flight reconciles finish) and releases the Lease. */
  async stop(): Promise<void> {
    this.stopServing();
    if (this.leadership) await this.leadership.stop();
    else await this.handBack();
    await this.opts.jobs.stop(); // a stand-by's warm caches
  }

  private async lead(signal: AbortSignal): Promise<void> {
    const started = Date.now();
    await this.takeOver();
    this.opts.logger.info({ identity: this.leadership?.identity, takeOverMs: Date.now() - started }, 'leading: controllers started, serving agents');
    await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
    await this.handBack();
  }

  private async takeOver(): Promise<void> {
    const { jobs, registry, metrics, logger } = this.opts;
    // Providers the old leader saw Ready get a full providerLostAfter from now to reconnect: the
    // failover itself must never count as a provider loss (it would reschedule every job).
    registry.adoptProviders(jobs.providers.list());
    await jobs.start();
    const tasks = new AbortController();
    const running = Promise.allSettled(
      (this.opts.leaderTasks ?? []).map((task) =>
        Promise.resolve()
          .then(() => task(tasks.signal))
          .catch((err: unknown) => logger.error({ err }, 'leader task failed')),
      ),
    );
    let checking = false;
    const heartbeats = setInterval(() => {
      if (checking) return;
      checking = true;
      registry
        .checkHeartbeats()
        .catch((err: unknown) => logger.error({ err }, 'heartbeat check failed'))
        .finally(() => (checking = false));
    }, this.opts.heartbeatCheckIntervalMs ?? 1_000);
    this.work = { heartbeats, tasks, running };
    metrics?.setLeader(true);
    if (!this.stopping) this.serving = true;
  }

  private async handBack(): Promise<void> {
    this.serving = false;
    this.opts.metrics?.setLeader(false);
    const work = this.work;
    this.work = undefined;
    if (work) {
      clearInterval(work.heartbeats);
      work.tasks.abort();
      await work.running;
    }
    await this.opts.jobs.stop();
  }

  private onStoppedLeading(): void {
    if (this.stopping) return;
    this.opts.logger.error({ identity: this.leadership?.identity }, 'lost the leader Lease; stopping leader work');
    // Leader work cannot restart in this process (controllers are single-use): stop campaigning.
    void this.leadership?.stop();
    this.opts.onLostLeadership?.();
  }
}
