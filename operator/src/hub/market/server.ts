// The hub's marketplace endpoint: a grpc-js server over mutual TLS where provider agents keep one
// long-lived Connect stream each (DESIGN.md section 3). It owns the streams; what they mean for
// GpuProviders is the injected ProviderRegistry's business.
import { Server, ServerCredentials, status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { HubMessage, TunnelOpen } from '../../gen/proto/fedgpu/v1/market.js';
import type { TunnelSession } from '../../protocol/tunnel/mux.js';
import { EdgeError } from '../../protocol/edge-error.js';
import { LEADER_ADDRESS_TRAILER } from '../../protocol/leader-redirect.js';
import { tolerantMarketplaceService } from '../../protocol/framing.js';
import { NonceBook } from '../../protocol/wallet-proof.js';
import { resolveMarketServerOptions, type MarketServerOptions, type ResolvedMarketServerOptions } from './options.js';
import { MarketSession, type MarketCall, type SessionHost } from './session.js';

export type { MarketServerOptions } from './options.js';
export type { HeartbeatObservation, ProviderInfo, ProviderRegistry } from './registry.js';

/** Hub messages the rest of the hub may push; the session owns the others. */
const pushableKinds: ReadonlySet<string> = new Set(['assign', 'cancel', 'resync', 'resyncPart', 'receiptAck']);

export class MarketServer implements SessionHost {
  readonly options: ResolvedMarketServerOptions;
  readonly nonces: NonceBook;
  private readonly log: Logger;
  private readonly server: Server;
  private readonly sessions = new Set<MarketSession>();
  private readonly live = new Map<string, MarketSession>();
  private readonly pendingRegistryCalls = new Set<Promise<unknown>>();
  private boundPort: number | undefined;
  private stopping: Promise<void> | undefined;

  constructor(options: MarketServerOptions) {
    this.options = resolveMarketServerOptions(options);
    this.log = this.options.logger;
    this.nonces = new NonceBook({ ttlMs: this.options.challengeTtlMs, maxEntries: this.options.maxStreams * 4 });
    this.server = new Server({
      'grpc.max_receive_message_length': this.options.maxAgentMessageBytes,
      'grpc.max_send_message_length': this.options.maxHubMessageBytes,
      // Find dead TCP connections even when the agent is silent.
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.http2.min_ping_interval_without_data_ms': 10_000,
      'grpc.keepalive_permit_without_calls': 1,
      // An agent needs one stream; a few more leave room for a replacement during a reconnect.
      'grpc.max_concurrent_streams': 16,
    });
    this.server.addService(tolerantMarketplaceService, { connect: (call: MarketCall) => this.accept(call) });
  }

  /** Binds and starts serving; resolves with the port (the chosen one when port was 0). */
  async start(): Promise<number> {
    if (this.boundPort !== undefined) return this.boundPort;
    const { tls, host, port } = this.options;
    const credentials = ServerCredentials.createSsl(
      Buffer.from(tls.caPem),
      [{ cert_chain: Buffer.from(tls.certPem), private_key: Buffer.from(tls.keyPem) }],
      true, // require and verify a client certificate signed by caPem
    );
    this.boundPort = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(`${host}:${port}`, credentials, (error, boundPort) => (error ? reject(error) : resolve(boundPort)));
    });
    this.log.info({ host, port: this.boundPort, audience: this.options.audience }, 'marketplace server listening');
    return this.boundPort;
  }

  /** The bound port; throws before start(). */
  get port(): number {
    if (this.boundPort === undefined) throw new Error('MarketServer not started');
    return this.boundPort;
  }

  /**
   * Pushes an Assign, Cancel or Resync to the provider's live stream (the seq is the stream's own).
   * Returns false when the provider is not connected or the message kind is not pushable.
   */
  send(providerName: string, message: HubMessage): boolean {
    const body = message.body;
    if (!body || !pushableKinds.has(body.$case)) return false;
    return this.live.get(providerName)?.send(body) ?? false;
  }

  /**
   * Opens a consumer access session (logs, exec, port-forward) to the provider's agent over its
   * live stream. Undefined when the provider is not connected or its stream is at the session cap.
   */
  openTunnel(providerName: string, open: TunnelOpen): TunnelSession | undefined {
    return this.live.get(providerName)?.openTunnel(open);
  }

  /** Providers with a live, registered stream. */
  connectedProviders(): string[] {
    return [...this.live.keys()].sort();
  }

  /** Latest hub-side link measurements for a connected provider. */
  providerLatency(providerName: string): { rttMs: number | undefined; bandwidthMbps: number | undefined } | undefined {
    return this.live.get(providerName)?.latency;
  }

  /** Runs a bandwidth probe now (on demand); undefined when not connected or on timeout. */
  probeBandwidth(providerName: string): Promise<number | undefined> {
    return this.live.get(providerName)?.probeBandwidth() ?? Promise.resolve(undefined);
  }

  /** Ends every stream with UNAVAILABLE, waits (bounded) for registry calls, and shuts down. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  // --- SessionHost ---------------------------------------------------------------------------

  attach(session: MarketSession): void {
    const name = session.providerName;
    if (name === undefined) return;
    const previous = this.live.get(name);
    this.live.set(name, session);
    if (previous && previous !== session) {
      previous.terminate(new EdgeError(status.ABORTED, 'stream_replaced', 'a newer stream for this provider registered'));
    }
  }

  detach(session: MarketSession): void {
    this.sessions.delete(session);
    const name = session.providerName;
    if (name === undefined || this.live.get(name) !== session) return;
    this.live.delete(name);
    this.track(
      Promise.resolve()
        .then(() => this.options.registry.onDisconnect(name))
        .catch((error: unknown) => this.log.error({ err: error, provider: name }, 'registry onDisconnect failed')),
    );
  }

  // --- internals -----------------------------------------------------------------------------

  private accept(call: MarketCall): void {
    try {
      const session = new MarketSession(call, this);
      if (this.stopping) {
        session.terminate(new EdgeError(status.UNAVAILABLE, 'server_shutdown', 'hub is shutting down'));
        return;
      }
      const standby = this.options.admission();
      if (standby) {
        const trailers = standby.leaderAddress ? { [LEADER_ADDRESS_TRAILER]: standby.leaderAddress } : undefined;
        session.terminate(new EdgeError(status.UNAVAILABLE, 'not_leader', 'this hub replica is a stand-by; connect to the leader', trailers));
        return;
      }
      if (this.sessions.size >= this.options.maxStreams) {
        session.terminate(new EdgeError(status.RESOURCE_EXHAUSTED, 'too_many_streams', 'hub has too many agent streams'));
        return;
      }
      // One client certificate holding many streams that never register would take the whole
      // stream cap (and the challenge book) from every other provider: bounded per certificate.
      const client = session.client;
      let registering = 0;
      for (const s of this.sessions) if (!s.isRegistered && !s.isEnded && s.client === client) registering++;
      if (registering >= this.options.maxRegisteringPerClient) {
        session.terminate(new EdgeError(status.RESOURCE_EXHAUSTED, 'too_many_streams', 'too many streams of this client certificate are still registering'));
        return;
      }
      this.sessions.add(session);
      session.start();
    } catch (error) {
      // Never let one stream take the hub down.
      this.log.error({ err: error }, 'could not start an agent session');
      try {
        call.emit('error', { code: status.INTERNAL, details: 'internal: could not start session' });
      } catch {
        // nothing more to do
      }
    }
  }

  private track(promise: Promise<unknown>): void {
    this.pendingRegistryCalls.add(promise);
    void promise.finally(() => this.pendingRegistryCalls.delete(promise));
  }

  private async shutdown(): Promise<void> {
    const shutdownError = new EdgeError(status.UNAVAILABLE, 'server_shutdown', 'hub is shutting down');
    for (const session of [...this.sessions]) session.terminate(shutdownError);
    const grace = this.options.shutdownGraceMs;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), grace);
    });
    try {
      await Promise.race([Promise.allSettled([...this.pendingRegistryCalls]), deadline]);
      const drained = await Promise.race([
        new Promise<'drained'>((resolve) => this.server.tryShutdown(() => resolve('drained'))),
        deadline,
      ]);
      if (drained === 'timeout') {
        this.log.warn({ graceMs: grace }, 'forcing marketplace server shutdown');
        this.server.forceShutdown();
      }
    } finally {
      clearTimeout(timer);
    }
    this.log.info('marketplace server stopped');
  }
}

/** Creates and starts a MarketServer. */
export async function startMarketServer(options: MarketServerOptions): Promise<MarketServer> {
  const server = new MarketServer(options);
  await server.start();
  return server;
}
