// HA hub (docs/ha.md): replicas campaign for a coordination.k8s.io Lease. The holder runs the
// controllers and serves agents, and publishes its marketplace address on the Lease so stand-bys
// can redirect agents to it.
import { CoordinationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { StandbyRefusal } from '../protocol/leader-redirect.js';
import { LeaderElector } from '../runtime/leader-election.js';

/** Lease annotation: host:port where the current leader serves agent streams. */
export const GRPC_ADDRESS_ANNOTATION = 'fedgpu.io/grpc-address';

export interface HubLeaderElection {
  namespace: string;
  /** Lease name, one per hub deployment. */
  name: string;
  /** Unique per replica; default hostname_pid. */
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

export interface HubLeadershipOptions {
  kubeConfig: KubeConfig;
  election: HubLeaderElection;
  /** Where this replica serves agents, as they can reach it (published while leading). */
  grpcAddress: string;
  logger: Logger;
  /** Runs while leading; must return once `signal` aborts (awaited before the Lease is released). */
  lead(signal: AbortSignal): Promise<void>;
  onStoppedLeading(): void;
}

export const defaultIdentity = () => `${hostname()}_${process.pid}`;

const isRoutable = (address: string) => !/^(0\.0\.0\.0|\[?::\]?):\d+$/.test(address);

export class HubLeadership {
  readonly identity: string;
  private readonly elector: LeaderElector;

  constructor(private readonly opts: HubLeadershipOptions) {
    const e = opts.election;
    this.identity = e.identity ?? defaultIdentity();
    this.elector = new LeaderElector({
      coordination: opts.kubeConfig.makeApiClient(CoordinationV1Api),
      namespace: e.namespace,
      name: e.name,
      identity: this.identity,
      ...(e.leaseDurationMs !== undefined ? { leaseDurationMs: e.leaseDurationMs } : {}),
      ...(e.renewDeadlineMs !== undefined ? { renewDeadlineMs: e.renewDeadlineMs } : {}),
      ...(e.retryPeriodMs !== undefined ? { retryPeriodMs: e.retryPeriodMs } : {}),
      // A wildcard listen address (0.0.0.0:8443 without --advertise-address or $POD_IP) names no
      // one: publish it empty (which also clears a predecessor's) rather than send agents to
      // their own loopback.
      annotations: { [GRPC_ADDRESS_ANNOTATION]: isRoutable(opts.grpcAddress) ? opts.grpcAddress : '' },
      logger: opts.logger,
      onStartedLeading: (signal) => opts.lead(signal),
      onStoppedLeading: () => opts.onStoppedLeading(),
      onNewLeader: (leader) => opts.logger.info({ leader, me: this.identity }, 'hub leader observed'),
    });
  }

  start(): void {
    this.elector.start();
  }

  isLeader(): boolean {
    return this.elector.isLeader();
  }

  /** The live leader's identity, when there is one that is not us. */
  otherLeader(): string | undefined {
    return this.elector.isHeldByOther() ? this.elector.leader() : undefined;
  }

  /** For a refused agent: the live leader's address, when there is one that is not us. */
  standbyRefusal(): StandbyRefusal {
    if (!this.elector.isHeldByOther()) return {};
    const address = this.elector.leaderAnnotations()[GRPC_ADDRESS_ANNOTATION];
    return address ? { leaderAddress: address } : {};
  }

  /** Stops campaigning; ends the leader's work, then releases the Lease for a quick successor. */
  stop(): Promise<void> {
    return this.elector.stop({ release: true });
  }
}
