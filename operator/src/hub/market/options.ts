// Configuration of the marketplace server, with the defaults used in production.
import type { PeerCertificate } from 'node:tls';
import type { status } from '@grpc/grpc-js';
import type { TunnelLimits } from '../../protocol/tunnel/mux.js';
import { pino, type Logger } from 'pino';
import type { RejectReason } from '../../protocol/edge-error.js';
import type { StandbyRefusal } from '../../protocol/leader-redirect.js';
import { defaultMaxAgentMessageBytes, defaultMaxHubMessageBytes } from '../../protocol/framing.js';
import { edgeLimits, type EdgeLimits } from '../../protocol/limits.js';
import type { ProviderRegistry } from './registry.js';

export interface MarketServerTls {
  /** CA that signs agent client certificates (PEM). Clients without one are refused. */
  caPem: string;
  /** The hub's serving certificate and key (PEM). */
  certPem: string;
  keyPem: string;
}

export interface MarketServerClock {
  /** Wall-clock ms, for challenge expiry and timestamps (default Date.now). */
  wallMs(): number;
  /** Monotonic ms, for RTT, bandwidth and rate limits (default performance.now). */
  monotonicMs(): number;
}

export interface MarketServerOptions {
  tls: MarketServerTls;
  registry: ProviderRegistry;
  /** The hub's identity, signed into every registration proof, e.g. `fedgpu-hub.example.org`. */
  audience: string;
  /** Listen address (default 127.0.0.1). */
  host?: string;
  /** Listen port; 0 (the default) picks a free one, reported by MarketServer.port. */
  port?: number;
  logger?: Logger;
  /** Called once per refused stream with the reason and the gRPC status sent (for metrics). */
  onRejection?: (reason: RejectReason, code: status) => void;
  /**
   * HA: asked for every new stream. undefined admits it; a StandbyRefusal ends it with UNAVAILABLE
   * (reason not_leader) and the leader's address in a trailer. Default: admit every stream.
   */
  admission?: () => StandbyRefusal | undefined;
  /**
   * Extra identity check between the proven wallet and the TLS client certificate, e.g. require
   * the certificate's CN to be the wallet. Return false to refuse with PERMISSION_DENIED.
   */
  authorizePeer?: (wallet: string, certificate: PeerCertificate | undefined) => boolean;
  clock?: Partial<MarketServerClock>;
  /** How long a challenge can be answered. */
  challengeTtlMs?: number;
  /** Hello and RegisterProof must both arrive, and register() return, within this. */
  registrationTimeoutMs?: number;
  /** Interval between hub Pings (also how often idleness is checked). */
  pingIntervalMs?: number;
  /** Heartbeat interval the hub asks agents for (sent in Registered). */
  heartbeatIntervalMs?: number;
  /** A registered stream with no message for this long is ended with DEADLINE_EXCEEDED. */
  idleTimeoutMs?: number;
  /**
   * Bytes in the bandwidth probe; 0 disables probing. 64 KiB: each probe's copies and the buffers
   * it grows cost the hub memory per agent (docs/benchmarks.md, issue 15).
   */
  bandwidthProbeBytes?: number;
  /** The probe goes out in messages of at most this many bytes, each within one http2 frame (probe.ts). */
  bandwidthProbePieceBytes?: number;
  probeTimeoutMs?: number;
  /** Weight of the newest RTT sample. */
  rttEwmaAlpha?: number;
  /** Per-stream message budget: a burst of `capacity`, then `refillPerSecond`. */
  rateLimit?: { capacity: number; refillPerSecond: number };
  /**
   * Streams open at once (registered or still proving their wallet). Sized for the 1,000-provider
   * target with room for streams being replaced during reconnects and for the unregistered ones
   * a registration timeout will close.
   */
  maxStreams?: number;
  /** Streams of one client certificate still registering at once (default 64). */
  maxRegisteringPerClient?: number;
  /** Messages of one stream waiting for the registry before the stream is cut off. */
  maxBacklog?: number;
  /** Messages queued towards one agent before it is cut off as a slow consumer. */
  maxQueuedWrites?: number;
  maxAgentMessageBytes?: number;
  maxHubMessageBytes?: number;
  limits?: Partial<EdgeLimits>;
  /** How long stop() waits for streams and registry calls before forcing the server down. */
  shutdownGraceMs?: number;
  /** The settlement chain, sent in Registered so agents sign usage receipts for it. */
  settlementDomain?: { chainId: number; marketAddress: string };
  /** Bounds of consumer access sessions per agent stream (protocol/tunnel/mux.ts). */
  tunnelLimits?: Partial<TunnelLimits>;
}

export type ResolvedMarketServerOptions = Required<
  Omit<MarketServerOptions, 'authorizePeer' | 'onRejection' | 'admission' | 'clock' | 'limits' | 'rateLimit' | 'settlementDomain'>
> & {
  authorizePeer: MarketServerOptions['authorizePeer'];
  onRejection: NonNullable<MarketServerOptions['onRejection']>;
  admission: NonNullable<MarketServerOptions['admission']>;
  clock: MarketServerClock;
  limits: Readonly<EdgeLimits>;
  rateLimit: { capacity: number; refillPerSecond: number };
  settlementDomain: MarketServerOptions['settlementDomain'];
};

export function resolveMarketServerOptions(options: MarketServerOptions): ResolvedMarketServerOptions {
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 5_000;
  const resolved: ResolvedMarketServerOptions = {
    tls: options.tls,
    registry: options.registry,
    audience: options.audience,
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 0,
    logger: options.logger ?? pino({ name: 'market-server' }),
    onRejection: options.onRejection ?? (() => {}),
    admission: options.admission ?? (() => undefined),
    authorizePeer: options.authorizePeer,
    clock: {
      wallMs: options.clock?.wallMs ?? (() => Date.now()),
      monotonicMs: options.clock?.monotonicMs ?? (() => performance.now()),
    },
    challengeTtlMs: options.challengeTtlMs ?? 30_000,
    registrationTimeoutMs: options.registrationTimeoutMs ?? 15_000,
    pingIntervalMs: options.pingIntervalMs ?? 5_000,
    heartbeatIntervalMs,
    idleTimeoutMs: options.idleTimeoutMs ?? heartbeatIntervalMs * 6,
    bandwidthProbeBytes: options.bandwidthProbeBytes ?? 64 * 1024,
    bandwidthProbePieceBytes: options.bandwidthProbePieceBytes ?? 16_000,
    probeTimeoutMs: options.probeTimeoutMs ?? 30_000,
    rttEwmaAlpha: options.rttEwmaAlpha ?? 0.3,
    rateLimit: options.rateLimit ?? { capacity: 200, refillPerSecond: 50 },
    maxStreams: options.maxStreams ?? 2_000,
    maxRegisteringPerClient: options.maxRegisteringPerClient ?? 64,
    maxBacklog: options.maxBacklog ?? 256,
    maxQueuedWrites: options.maxQueuedWrites ?? 1_024,
    maxAgentMessageBytes: options.maxAgentMessageBytes ?? defaultMaxAgentMessageBytes,
    maxHubMessageBytes: options.maxHubMessageBytes ?? defaultMaxHubMessageBytes,
    limits: edgeLimits(options.limits),
    shutdownGraceMs: options.shutdownGraceMs ?? 5_000,
    settlementDomain: options.settlementDomain,
    tunnelLimits: options.tunnelLimits ?? {},
  };
  if (resolved.bandwidthProbeBytes > resolved.limits.maxProbePayloadBytes) {
    throw new Error('bandwidthProbeBytes exceeds the probe payload limit agents are held to');
  }
  if (!Number.isInteger(resolved.bandwidthProbePieceBytes) || !(resolved.bandwidthProbePieceBytes > 0) || resolved.bandwidthProbePieceBytes > resolved.limits.maxProbePayloadBytes) {
    throw new Error('bandwidthProbePieceBytes must be a positive whole number within the probe payload limit agents are held to');
  }
  if (resolved.audience.length === 0 || /[\r\n]/.test(resolved.audience)) throw new Error('audience must be a non-empty single line');
  for (const key of ['challengeTtlMs', 'registrationTimeoutMs', 'pingIntervalMs', 'heartbeatIntervalMs', 'idleTimeoutMs', 'probeTimeoutMs'] as const) {
    if (!(resolved[key] > 0) || !Number.isFinite(resolved[key])) throw new Error(`${key} must be a positive number`);
  }
  return resolved;
}
