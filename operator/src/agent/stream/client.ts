// The agent's end of the marketplace stream (DESIGN.md section 3). Dials out to the hub over mutual
// TLS, proves the provider wallet, keeps the stream alive with heartbeats, and reconnects with
// jittered exponential backoff for as long as it is open. Every (re)connect calls onConnected so
// the agent resends its full state: the protocol is level-triggered, nothing is replayed.
import { credentials, Metadata, status, type ChannelOptions, type ClientDuplexStream } from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import {
  MarketplaceClient,
  type AgentMessage,
  type AttemptStatus,
  type BandwidthProbeResult,
  type Challenge,
  type HubMessage,
  type Inventory,
  type Registered,
  type UsageReceipt,
  type ProviderProfile,
} from '../../gen/proto/fedgpu/v1/market.js';
import { Sequencer, agentMessage, defaultMaxHubMessageBytes, protocolVersion, type AgentMessageBody } from '../../protocol/framing.js';
import { defaultEdgeLimits } from '../../protocol/limits.js';
import { hexNonce } from '../../protocol/patterns.js';
import { signChallenge, type MessageSigner } from '../../protocol/wallet-proof.js';
import { LEADER_ADDRESS_TRAILER, validLeaderAddress } from '../../protocol/leader-redirect.js';
import { TunnelMux, type TunnelLimits, type TunnelSession } from '../../protocol/tunnel/mux.js';
import type { TunnelOpen } from '../../gen/proto/fedgpu/v1/market.js';
import { HubAddresses } from './hub-addresses.js';
import { probeAnswer } from './probe-answer.js';
import { backoffDelay, defaultBackoff, type BackoffOptions } from '../../protocol/reconnect.js';

export interface StreamClientTls {
  /** CA that signed the hub's serving certificate. */
  caPem: string;
  /** This agent's client certificate and key, issued by the hub's CA. */
  certPem: string;
  keyPem: string;
  /** Name to verify the hub certificate against when dialling an address it does not list. */
  serverName?: string;
}

/** Timer functions, injectable so tests can drive time. */
export interface StreamClientTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface DisconnectInfo {
  code: status;
  details: string;
  /** The hub's reason from its Error message, when it sent one (e.g. `nonce_replayed`). */
  hubReason?: string;
  /** Delay before the next attempt. */
  retryInMs: number;
}

export interface StreamClientOptions {
  /** host:port of the hub's marketplace endpoint; several, comma-separated, for HA hubs (docs/ha.md). */
  address: string;
  tls: StreamClientTls;
  /** The provider wallet: its address is the identity, signMessage answers the challenge. */
  wallet: MessageSigner & { readonly address: string };
  agentVersion: string;
  /**
   * Test bed only: answer pings this much later, to emulate a provider far from the hub when every
   * cluster runs on one machine (like netem delay on a real link). 0 in production.
   */
  simulatedLatencyMs?: number;
  /** The owner's declaration sent in Hello (region, display name, availability). */
  profile?: ProviderProfile;
  /** When set, a challenge naming another audience is not signed (the hub is not ours). */
  expectedAudience?: string;
  /** Periodic heartbeat interval; default: what the hub asks for in Registered. */
  heartbeatIntervalMs?: number;
  /** A connection that is not registered within this is abandoned and retried. */
  registrationTimeoutMs?: number;
  backoff?: Partial<BackoffOptions>;
  /** Uniform [0, 1) source for backoff jitter. */
  random?: () => number;
  timers?: StreamClientTimers;
  /** Wall-clock ms for heartbeat timestamps. */
  now?: () => number;
  logger?: Logger;
  /** After every successful registration: resend the full inventory and attempt statuses here. */
  onConnected?: (info: ConnectedInfo) => void | Promise<void>;
  onDisconnected?: (info: DisconnectInfo) => void;
  /** Assign, Cancel and Resync from the hub. */
  onHubMessage?: (message: HubMessage) => void | Promise<void>;
  /** The hub opened a consumer access session: accept it (session.accept()) and serve it, or close it. */
  onTunnelOpen?: (session: TunnelSession, open: TunnelOpen) => void;
  tunnelLimits?: Partial<TunnelLimits>;
  /** Extra gRPC channel options (tests). */
  channelOptions?: ChannelOptions;
}

export interface ConnectedInfo {
  providerName: string;
  /** The hub's settlement chain, when it has one: usage receipts are signed for this domain. */
  settlement?: { chainId: number; marketAddress: string };
}

interface Connection {
  address: string;
  client: MarketplaceClient;
  call: ClientDuplexStream<AgentMessage, HubMessage>;
  sequencer: Sequencer;
  registered: boolean;
  hubReason: string | undefined;
  registrationTimer: unknown;
  heartbeatTimer: unknown;
  heartbeatIntervalMs: number;
  probeResults: BandwidthProbeResult[];
  /** Registered.probeDigestAccepted: answer probe pieces with their SHA-256, not an echo. */
  hubTakesProbeDigest: boolean;
  tunnel: TunnelMux;
}

const defaultTimers: StreamClientTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export class StreamClient {
  private readonly log: Logger;
  private readonly timers: StreamClientTimers;
  private readonly now: () => number;
  private readonly backoff: BackoffOptions;
  private connection: Connection | undefined;
  private reconnectTimer: unknown;
  private failures = 0;
  private started = false;
  private closed = false;
  private providerNameValue: string | undefined;
  private readonly addresses: HubAddresses;
  private redirectsInARow = 0;

  constructor(private readonly options: StreamClientOptions) {
    this.log = options.logger ?? pino({ name: 'stream-client' });
    this.timers = options.timers ?? defaultTimers;
    this.now = options.now ?? (() => Date.now());
    this.backoff = { ...defaultBackoff, ...options.backoff };
    this.addresses = new HubAddresses(options.address);
  }

  /** Starts connecting; reconnects on its own until close(). */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.connect();
  }

  /** True while a registered stream is open. */
  get connected(): boolean {
    return this.connection?.registered === true;
  }

  /** The hub's name for this provider, once registered. */
  get providerName(): string | undefined {
    return this.providerNameValue;
  }

  /** Sends the full inventory. False when not connected (onConnected will ask again). */
  sendInventory(inventory: Inventory): boolean {
    return this.sendRegistered({ $case: 'inventory', value: inventory });
  }

  sendAttemptStatus(attemptStatus: AttemptStatus): boolean {
    return this.sendRegistered({ $case: 'attemptStatus', value: attemptStatus });
  }

  sendUsageReceipt(receipt: UsageReceipt): boolean {
    return this.sendRegistered({ $case: 'usageReceipt', value: receipt });
  }

  sendPodEvents(events: import('../../gen/proto/fedgpu/v1/market.js').PodEvents): boolean {
    return this.sendRegistered({ $case: 'podEvents', value: events });
  }

  /** Stops reconnecting, ends the stream and clears every timer. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const connection = this.connection;
    this.connection = undefined;
    if (connection) this.teardown(connection);
  }

  // --- connection lifecycle ------------------------------------------------------------------

  private connect(): void {
    this.reconnectTimer = undefined;
    if (this.closed) return;
    const { tls } = this.options;
    const channelOptions: ChannelOptions = {
      // A fresh channel per attempt, with no subchannel shared with earlier attempts, so grpc-js's
      // own reconnect backoff never stacks on ours.
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_receive_message_length': defaultMaxHubMessageBytes,
      'grpc.keepalive_time_ms': 20_000,
      'grpc.keepalive_timeout_ms': 10_000,
      ...(tls.serverName ? { 'grpc.ssl_target_name_override': tls.serverName, 'grpc.default_authority': tls.serverName } : {}),
      ...this.options.channelOptions,
    };
    let connection: Connection;
    try {
      const channelCredentials = credentials.createSsl(Buffer.from(tls.caPem), Buffer.from(tls.keyPem), Buffer.from(tls.certPem));
      const address = this.addresses.current;
      const client = new MarketplaceClient(address, channelCredentials, channelOptions);
      connection = {
        address,
        client,
        call: client.connect(),
        sequencer: new Sequencer(),
        registered: false,
        hubReason: undefined,
        registrationTimer: undefined,
        heartbeatTimer: undefined,
        heartbeatIntervalMs: 0,
        probeResults: [],
        hubTakesProbeDigest: false,
        tunnel: undefined as unknown as TunnelMux,
      };
      const conn = connection;
      connection.tunnel = new TunnelMux({
        limits: this.options.tunnelLimits ?? {},
        transport: { send: (frame, flushed) => this.writeTunnel(conn, frame, flushed) },
        onOpen: (session, open) => {
          if (!this.options.onTunnelOpen) {
            session.close({ error: 'this agent serves no consumer access', reason: 'not_supported' });
            return;
          }
          this.options.onTunnelOpen(session, open);
        },
      });
    } catch (error) {
      this.log.error({ err: error }, 'could not create the hub connection');
      this.scheduleReconnect({ code: status.INTERNAL, details: 'could not create the connection' });
      return;
    }
    this.connection = connection;
    const { call } = connection;
    call.on('data', (message: HubMessage) => this.onMessage(connection, message));
    call.on('status', (s: { code: status; details: string; metadata?: Metadata }) => this.onEnded(connection, s.code, s.details, s.metadata));
    call.on('error', (error: { code?: status; details?: string; message?: string; metadata?: Metadata }) =>
      this.onEnded(connection, error.code ?? status.UNAVAILABLE, error.details ?? error.message ?? 'stream error', error.metadata),
    );
    connection.registrationTimer = this.timers.setTimeout(() => {
      this.log.warn('hub did not complete registration in time');
      this.onEnded(connection, status.DEADLINE_EXCEEDED, 'registration timed out');
    }, this.options.registrationTimeoutMs ?? 15_000);
    this.write(connection, {
      $case: 'hello',
      value: { walletAddress: this.options.wallet.address, agentVersion: this.options.agentVersion, protocolVersion, profile: this.options.profile },
    });
  }

  private onEnded(connection: Connection, code: status, details: string, trailers?: Metadata): void {
    if (this.connection !== connection) return; // stale event from an abandoned connection
    this.connection = undefined;
    const leaderAddress = trailers instanceof Metadata ? validLeaderAddress(trailers.get(LEADER_ADDRESS_TRAILER)[0]) : undefined;
    const move = this.addresses.afterEnd({ address: connection.address, code, registered: connection.registered, leaderAddress });
    // HA: trying another replica, or the leader a stand-by named, is not yet a failed round: go
    // soon. Redirects are quick only twice in a row, so stand-bys with stale views cannot make
    // the agent spin; the backoff still grows once per round.
    const quick = move === 'next' || (move === 'redirect' && this.redirectsInARow++ < 2);
    this.teardown(connection);
    if (connection.registered) this.failures = 0;
    this.scheduleReconnect({ code, details, ...(connection.hubReason ? { hubReason: connection.hubReason } : {}) }, quick);
  }

  private scheduleReconnect(info: Omit<DisconnectInfo, 'retryInMs'>, quick = false): void {
    if (this.closed) return;
    const retryInMs = backoffDelay(quick ? 0 : this.failures, this.backoff, this.options.random);
    if (!quick) this.failures++;
    this.log.info({ code: status[info.code], details: info.details, hubReason: info.hubReason, retryInMs, hub: this.addresses.current }, 'hub stream ended; reconnecting');
    this.safely(() => this.options.onDisconnected?.({ ...info, retryInMs }));
    this.reconnectTimer = this.timers.setTimeout(() => this.connect(), retryInMs);
  }

  private teardown(connection: Connection): void {
    this.timers.clearTimeout(connection.registrationTimer);
    this.timers.clearTimeout(connection.heartbeatTimer);
    connection.registered = false;
    connection.tunnel.end('hub stream ended');
    try {
      connection.call.cancel();
    } catch {
      // already finished
    }
    connection.client.close();
  }

  // --- inbound -------------------------------------------------------------------------------

  private onMessage(connection: Connection, message: HubMessage): void {
    if (this.connection !== connection) return;
    const body = message.body;
    if (!body) return;
    switch (body.$case) {
      case 'challenge':
        void this.answerChallenge(connection, body.value);
        return;
      case 'registered':
        this.onRegistered(connection, body.value);
        return;
      case 'ping': {
        const pong = () =>
          this.write(connection, { $case: 'heartbeat', value: { sentAtUnixMs: Math.floor(this.now()), pongFor: body.value.id, bandwidthProbeResults: [] } });
        const delay = this.options.simulatedLatencyMs ?? 0;
        if (delay > 0) this.timers.setTimeout(pong, delay);
        else pong();
        return;
      }
      case 'bandwidthProbe': {
        const started = performance.now();
        this.write(connection, { $case: 'bandwidthProbeData', value: probeAnswer(body.value, connection.hubTakesProbeDigest) });
        connection.probeResults.push({ probeId: body.value.id, bytes: body.value.payload.byteLength, elapsedMs: Math.round(performance.now() - started) });
        connection.probeResults.splice(0, Math.max(0, connection.probeResults.length - defaultEdgeLimits.maxProbeResults));
        return;
      }
      case 'error':
        connection.hubReason = body.value.reason;
        this.log.warn({ reason: body.value.reason, message: body.value.message }, 'hub refused the stream');
        return;
      case 'tunnel':
        if (connection.registered) connection.tunnel.onFrame(body.value);
        return;
      case 'assign':
      case 'cancel':
      case 'resync':
      case 'resyncPart':
      case 'receiptAck':
        if (!connection.registered) return;
        this.safely(() => this.options.onHubMessage?.(message));
        return;
    }
  }

  private async answerChallenge(connection: Connection, challenge: Challenge): Promise<void> {
    const expected = this.options.expectedAudience;
    if (expected !== undefined && challenge.audience !== expected) {
      this.log.error({ audience: challenge.audience.slice(0, 256), expected }, 'hub presented another audience; not signing');
      this.onEnded(connection, status.UNAUTHENTICATED, 'hub audience mismatch');
      return;
    }
    if (!hexNonce.test(challenge.nonce)) {
      this.onEnded(connection, status.UNAUTHENTICATED, 'malformed challenge');
      return;
    }
    try {
      const proof = await signChallenge(this.options.wallet, challenge, this.options.wallet.address);
      if (this.connection !== connection) return;
      this.write(connection, { $case: 'registerProof', value: proof });
    } catch (error) {
      this.log.error({ err: error }, 'could not sign the hub challenge');
      this.onEnded(connection, status.UNAUTHENTICATED, 'could not sign the challenge');
    }
  }

  private onRegistered(connection: Connection, registered: Registered): void {
    const { providerName, heartbeatIntervalMs: hubHeartbeatMs } = registered;
    if (connection.registered) return;
    this.timers.clearTimeout(connection.registrationTimer);
    connection.registered = true;
    connection.hubTakesProbeDigest = registered.probeDigestAccepted;
    connection.heartbeatIntervalMs = this.options.heartbeatIntervalMs ?? (hubHeartbeatMs > 0 ? hubHeartbeatMs : 5_000);
    this.providerNameValue = providerName;
    this.failures = 0;
    this.redirectsInARow = 0;
    this.log.info({ providerName }, 'registered with the hub');
    this.scheduleHeartbeat(connection);
    const settlement = registered.marketAddress ? { chainId: registered.chainId, marketAddress: registered.marketAddress } : undefined;
    this.safely(() => this.options.onConnected?.({ providerName, ...(settlement ? { settlement } : {}) }));
  }

  private scheduleHeartbeat(connection: Connection): void {
    connection.heartbeatTimer = this.timers.setTimeout(() => {
      if (this.connection !== connection || !connection.registered) return;
      const results = connection.probeResults.splice(0);
      this.write(connection, { $case: 'heartbeat', value: { sentAtUnixMs: Math.floor(this.now()), pongFor: 0, bandwidthProbeResults: results } });
      this.scheduleHeartbeat(connection);
    }, connection.heartbeatIntervalMs);
  }

  // --- outbound ------------------------------------------------------------------------------

  private sendRegistered(body: AgentMessageBody): boolean {
    const connection = this.connection;
    if (!connection?.registered) return false;
    return this.write(connection, body);
  }

  private write(connection: Connection, body: AgentMessageBody): boolean {
    try {
      connection.call.write(agentMessage(connection.sequencer, body));
      return true;
    } catch (error) {
      this.log.debug({ err: error }, 'write to hub failed');
      return false;
    }
  }

  // Tunnel data shares the stream with heartbeats; the mux keeps what it hands over here bounded.
  private writeTunnel(connection: Connection, frame: import('../../gen/proto/fedgpu/v1/market.js').TunnelFrame, flushed: () => void): boolean {
    if (this.connection !== connection || !connection.registered) return false;
    try {
      connection.call.write(agentMessage(connection.sequencer, { $case: 'tunnel', value: frame }), () => flushed());
      return true;
    } catch (error) {
      this.log.debug({ err: error }, 'tunnel write to hub failed');
      return false;
    }
  }

  // Hooks belong to the caller; their failures are logged, never allowed to break the stream.
  private safely(hook: () => void | Promise<void> | undefined): void {
    try {
      const result = hook();
      if (result instanceof Promise) result.catch((error: unknown) => this.log.error({ err: error }, 'stream client hook failed'));
    } catch (error) {
      this.log.error({ err: error }, 'stream client hook failed');
    }
  }
}
