// One agent stream on the hub: challenge, wallet proof, then validated traffic to the registry.
//
// Life of a session, in order:
//   1. send Challenge; start the registration deadline.
//   2. Hello, then RegisterProof: verify the wallet proof, ask the registry for the provider name,
//      bind the stream to that wallet, send Registered.
//   3. registered: Ping every pingIntervalMs (RTT from the pongs), one bandwidth probe (probe.ts),
//      and every agent message validated then handed to the registry in arrival order.
// Any violation ends the stream with a gRPC status, an Error message just before it, a log line and
// one onRejection call. Nothing the peer sends can throw out of here.
import { randomInt } from 'node:crypto';
import { Metadata, status, type ServerDuplexStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { AgentMessage, Heartbeat, Hello, HubMessage, TunnelFrame, TunnelOpen, UsageReceipt } from '../../gen/proto/fedgpu/v1/market.js';
import { EdgeError, type RejectReason } from '../../protocol/edge-error.js';
import { Sequencer, errorCodeFor, hubMessage, type AgentFrame, type HubMessageBody } from '../../protocol/framing.js';
import { TokenBucket } from '../../protocol/rate-limit.js';
import { StreamValidator } from '../../protocol/validate.js';
import { verifyProof, type NonceBook, type WalletChallenge } from '../../protocol/wallet-proof.js';
import { checkTunnelFrame } from '../../protocol/tunnel/check.js';
import { TunnelMux, type TunnelSession } from '../../protocol/tunnel/mux.js';
import { Ewma, probeBandwidthMbps } from './latency.js';
import { ProbeRound } from './probe.js';
import type { ResolvedMarketServerOptions } from './options.js';

export type MarketCall = ServerDuplexStream<AgentFrame, HubMessage>;

/** What a session needs from its server. */
export interface SessionHost {
  readonly options: ResolvedMarketServerOptions;
  readonly nonces: NonceBook;
  /** The session proved `providerName`: make it the provider's live stream, replacing any older one. */
  attach(session: MarketSession): void;
  /** The session ended: forget it, and tell the registry if it was the provider's live stream. */
  detach(session: MarketSession): void;
}

type Phase = 'awaiting_hello' | 'awaiting_proof' | 'registered' | 'ended';

// Ends that are not the peer's fault: logged at info and not counted as rejections.
const lifecycleReasons: ReadonlySet<RejectReason> = new Set(['stream_replaced', 'server_shutdown', 'not_leader']);
const maxOutstandingPings = 16;

let nextSessionId = 1;

/** Messages an agent may send about one assigned attempt beyond its rate limit (see send). */
const REPORTS_PER_ASSIGNMENT = 4;
/** At most this many granted messages held at once (20,000 attempts' worth of reports). */
const MAX_GRANTED_REPORTS = 80_000;
/** Bytes of data for sessions closed meanwhile that cost one token of the stream's rate limit. */
const CLOSED_DATA_BYTES_PER_TOKEN = 64 * 1024;
/** Control frames an agent sends for one session the hub opens: opened (or a refusal's close), a window or two, close. */
const TUNNEL_FRAMES_PER_OPEN = 4;
/** How often at most a stream tells the registry its agent was heard from between heartbeats. */
const HEARD_NOTE_INTERVAL_MS = 1_000;

export class MarketSession {
  readonly id = nextSessionId++;
  private phase: Phase = 'awaiting_hello';
  private providerNameValue: string | undefined;
  private walletValue: string | undefined;
  private hello: Hello | undefined;
  private challenge: WalletChallenge | undefined;
  private readonly sequencer = new Sequencer();
  private readonly validator: StreamValidator;
  private readonly bucket: TokenBucket;
  private readonly log: Logger;
  private readonly options: ResolvedMarketServerOptions;

  // Registry calls run one at a time, in arrival order.
  private queue: Promise<void> = Promise.resolve();
  private backlog = 0;
  /**
   * The inventory waiting in the queue, if any. An inventory is the agent's whole state, so a newer
   * one supersedes it: the older is skipped and stops counting against the backlog. In a burst the
   * registry's GpuProvider writes are slower than the agent's inventories (one per 100 ms), and the
   * backlog filled behind them until the stream was ended (bench/e2e-throughput, issue 15).
   */
  private pendingInventory: { superseded: boolean } | undefined;

  private registrationTimer: NodeJS.Timeout | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private lastActivityMs: number;

  private readonly pingsInFlight = new Map<number, number>();
  private readonly rtt: Ewma;
  private bandwidth: number | undefined;
  private nextProbeId = 1;
  private probe: { round: ProbeRound; waiters: ((mbps: number | undefined) => void)[] } | undefined;
  // Consumer access sessions over this stream (protocol/tunnel/mux.ts).
  private readonly tunnel: TunnelMux;
  private heardNotedMs = -Infinity;
  private tunnelBytesSent = 0;
  private closedDataBytes = 0;
  private clientValue: string | undefined;

  constructor(
    private readonly call: MarketCall,
    private readonly host: SessionHost,
  ) {
    this.options = host.options;
    this.validator = new StreamValidator(this.options.limits);
    this.bucket = new TokenBucket({ ...this.options.rateLimit, now: this.options.clock.monotonicMs });
    this.rtt = new Ewma(this.options.rttEwmaAlpha);
    this.lastActivityMs = this.options.clock.monotonicMs();
    this.log = this.options.logger.child({ stream: this.id, peer: safePeer(call) });
    this.tunnel = new TunnelMux({
      limits: this.options.tunnelLimits,
      transport: {
        send: (frame, flushed) => this.writeTunnel(frame, flushed),
      },
    });
  }

  /** Opens a consumer access session to this agent; undefined when not registered or at the cap. */
  openTunnel(open: TunnelOpen): TunnelSession | undefined {
    if (this.phase !== 'registered') return undefined;
    const session = this.tunnel.open(open);
    // The agent answers each open (opened, or close when it refuses), and closes it in the end: a
    // consumer opening sessions fast must not spend the agent's own message budget and get its
    // stream ended for being rate-limited (every tenant's attempts and sessions with it).
    if (session) this.bucket.grant(TUNNEL_FRAMES_PER_OPEN, this.options.rateLimit.capacity + MAX_GRANTED_REPORTS);
    return session;
  }

  /** Who dials, for per-client bounds: the client certificate's fingerprint (mTLS), else the peer address. */
  get client(): string {
    this.clientValue ??= peerCertificate(this.call)?.fingerprint256 ?? safePeer(this.call).replace(/:\d+$/, '');
    return this.clientValue;
  }

  get providerName(): string | undefined {
    return this.providerNameValue;
  }

  get wallet(): string | undefined {
    return this.walletValue;
  }

  get isRegistered(): boolean {
    return this.phase === 'registered';
  }

  get isEnded(): boolean {
    return this.phase === 'ended';
  }

  /** Latest link measurements. */
  get latency(): { rttMs: number | undefined; bandwidthMbps: number | undefined } {
    return { rttMs: this.rtt.value, bandwidthMbps: this.bandwidth };
  }

  start(): void {
    this.call.on('data', (frame: AgentFrame) => this.onFrame(frame));
    this.call.on('end', () => this.finish());
    this.call.on('cancelled', () => this.finish('agent cancelled the stream'));
    this.call.on('close', () => this.finish());

    const challenge = this.host.nonces.issue(this.options.audience, this.options.clock.wallMs());
    if (!challenge) {
      this.terminate(new EdgeError(status.RESOURCE_EXHAUSTED, 'too_many_challenges', 'too many registrations in flight'));
      return;
    }
    this.challenge = challenge;
    this.registrationTimer = setTimeout(
      () => this.terminate(new EdgeError(status.DEADLINE_EXCEEDED, 'registration_timeout', 'registration did not complete in time')),
      this.options.registrationTimeoutMs,
    );
    this.write({ $case: 'challenge', value: challenge });
  }

  /** Writes one hub message if the stream is registered and healthy. Returns whether it was queued. */
  send(body: HubMessageBody): boolean {
    if (this.phase !== 'registered') return false;
    // Each attempt the hub assigns earns the agent the reports it will send about it (phases,
    // receipts), on top of the stream's own budget: a burst of 500 assignments to one large
    // provider is answered by about 1,000 reports in seconds, and that must not end the stream.
    const assigned = body.$case === 'assign' ? 1 : body.$case === 'resync' || body.$case === 'resyncPart' ? body.value.desired.length : 0;
    if (assigned > 0) this.bucket.grant(assigned * REPORTS_PER_ASSIGNMENT, this.options.rateLimit.capacity + MAX_GRANTED_REPORTS);
    return this.write(body);
  }

  /** Measures bandwidth with a probe round (probe.ts); resolves undefined on timeout or stream end. */
  probeBandwidth(): Promise<number | undefined> {
    if (this.phase !== 'registered' || this.options.bandwidthProbeBytes <= 0) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      if (this.probe) {
        this.probe.waiters.push(resolve);
        return;
      }
      const round = new ProbeRound(this.nextProbeId, this.options.bandwidthProbeBytes, this.options.bandwidthProbePieceBytes, this.options.clock.monotonicMs());
      this.nextProbeId += round.pieceCount;
      this.probe = { round, waiters: [resolve] };
      this.probeTimer = setTimeout(() => this.settleProbe(undefined), this.options.probeTimeoutMs);
      for (const value of round.messages()) this.write({ $case: 'bandwidthProbe', value });
    });
  }

  /** Ends the stream with `error`'s status, after an Error message saying why. Idempotent. */
  terminate(error: EdgeError): void {
    if (this.phase === 'ended') return;
    const lifecycle = lifecycleReasons.has(error.reason);
    if (!lifecycle) this.options.onRejection(error.reason, error.code);
    this.log[lifecycle ? 'info' : 'warn'](
      { reason: error.reason, code: status[error.code], provider: this.providerNameValue, wallet: this.walletValue },
      `ending agent stream: ${error.detail}`,
    );
    this.cleanUp();
    if (this.streamOpen()) {
      try {
        this.call.write(hubMessage(this.sequencer, { $case: 'error', value: { code: errorCodeFor(error.code), reason: error.reason, message: error.detail } }));
        // grpc-js turns an 'error' event on a server stream into the final status, sent after the
        // queued writes (so the agent reads the Error message first).
        this.call.emit('error', { code: error.code, details: `${error.reason}: ${error.detail}`, ...trailersOf(error) });
      } catch (cause) {
        this.log.debug({ err: cause }, 'could not send the final status');
      }
    }
    this.host.detach(this);
  }

  // The agent ended or cancelled the stream, or it closed under us.
  private finish(why?: string): void {
    if (this.phase === 'ended') return;
    this.log.info({ provider: this.providerNameValue }, why ?? 'agent closed the stream');
    this.cleanUp();
    if (this.streamOpen()) {
      try {
        this.call.end();
      } catch {
        // already closing
      }
    }
    this.host.detach(this);
  }

  private cleanUp(): void {
    this.phase = 'ended';
    this.tunnel.end('agent stream ended');
    clearTimeout(this.registrationTimer);
    clearInterval(this.tickTimer);
    this.settleProbe(undefined);
    if (this.challenge) this.host.nonces.discard(this.challenge.nonce);
    this.pingsInFlight.clear();
  }

  private streamOpen(): boolean {
    return !this.call.cancelled && !this.call.destroyed && !this.call.writableEnded;
  }

  private write(body: HubMessageBody): boolean {
    if (!this.streamOpen()) return false;
    if (this.call.writableLength >= this.options.maxQueuedWrites) {
      this.terminate(new EdgeError(status.RESOURCE_EXHAUSTED, 'slow_consumer', 'agent is not reading its stream'));
      return false;
    }
    try {
      this.call.write(hubMessage(this.sequencer, body));
      return true;
    } catch (cause) {
      this.log.debug({ err: cause }, 'write failed');
      return false;
    }
  }

  // Tunnel frames skip the registry queue (they never wait behind an apiserver write) and are
  // bounded by their own credit, not the message rate limit.
  private writeTunnel(frame: TunnelFrame, flushed: () => void): boolean {
    if (this.phase !== 'registered' || !this.streamOpen()) return false;
    // The agent hands credit back with a window frame per half window it delivers: data the hub
    // sends (a consumer's upload) earns the agent those frames, or a fast upload ended its stream.
    if (frame.frame?.$case === 'data') {
      this.tunnelBytesSent += frame.frame.value.data.byteLength;
      const half = Math.max(1, Math.floor(this.tunnel.limits.windowBytes / 2));
      if (this.tunnelBytesSent >= half) {
        this.bucket.grant(Math.floor(this.tunnelBytesSent / half), this.options.rateLimit.capacity + MAX_GRANTED_REPORTS);
        this.tunnelBytesSent %= half;
      }
    }
    try {
      this.call.write(hubMessage(this.sequencer, { $case: 'tunnel', value: frame }), () => flushed());
      return true;
    } catch (cause) {
      this.log.debug({ err: cause }, 'tunnel write failed');
      return false;
    }
  }

  private onTunnelFrame(message: AgentMessage, frame: TunnelFrame): void {
    if (this.phase !== 'registered') {
      this.terminate(new EdgeError(status.UNAUTHENTICATED, 'not_registered', 'stream must register first'));
      return;
    }
    const problem = checkTunnelFrame(frame, this.tunnel.limits);
    if (problem) {
      this.terminate(new EdgeError(status.INVALID_ARGUMENT, 'bad_format', problem));
      return;
    }
    if (!this.validator.advance(message.seq)) {
      this.terminate(new EdgeError(status.INVALID_ARGUMENT, 'bad_seq', 'seq must increase on every message'));
      return;
    }
    // Sessions are the hub's to open: a frame for one it never opened is no agent's business.
    if (!this.tunnel.hasOpened(frame.sessionId)) {
      this.terminate(new EdgeError(status.INVALID_ARGUMENT, 'bad_format', 'tunnel frame for a session the hub never opened'));
      return;
    }
    // Window and close frames are cheap but unbounded by credit: they count against the rate limit
    // (the opened, window and close frames that answer the hub's own opens were granted when it
    // opened them). Data for a session closed meanwhile is what the agent sent before it saw the
    // close (up to a window, often one log line a frame): it counts by the byte, a token per
    // CLOSED_DATA_BYTES_PER_TOKEN, so a flood of it is bounded and an honest Ctrl-C is not.
    let cost = 1;
    if (frame.frame?.$case === 'data') {
      cost = 0;
      if (!this.tunnel.isOpen(frame.sessionId)) {
        this.closedDataBytes += frame.frame.value.data.byteLength;
        cost = Math.floor(this.closedDataBytes / CLOSED_DATA_BYTES_PER_TOKEN);
        this.closedDataBytes %= CLOSED_DATA_BYTES_PER_TOKEN;
      }
    }
    if (cost > 0 && !this.bucket.tryTake(cost)) {
      this.terminate(new EdgeError(status.RESOURCE_EXHAUSTED, 'rate_limited', 'message rate limit exceeded'));
      return;
    }
    this.lastActivityMs = this.options.clock.monotonicMs();
    this.noteHeard();
    this.tunnel.onFrame(frame);
  }

  // --- inbound -------------------------------------------------------------------------------

  private onFrame(frame: AgentFrame): void {
    if (this.phase === 'ended') return;
    if (frame.decoded && frame.message.body?.$case === 'tunnel') {
      this.onTunnelFrame(frame.message, frame.message.body.value);
      return;
    }
    if (!this.bucket.tryTake()) {
      this.terminate(new EdgeError(status.RESOURCE_EXHAUSTED, 'rate_limited', 'message rate limit exceeded'));
      return;
    }
    if (!frame.decoded) {
      this.terminate(new EdgeError(status.INVALID_ARGUMENT, 'undecodable', 'message is not a valid AgentMessage encoding'));
      return;
    }
    const result = this.validator.check(frame.message);
    if (!result.ok) {
      this.terminate(result.error);
      return;
    }
    this.lastActivityMs = this.options.clock.monotonicMs();
    this.noteHeard();
    if (this.backlog >= this.options.maxBacklog) {
      this.terminate(new EdgeError(status.RESOURCE_EXHAUSTED, 'backlog_full', 'too many messages waiting for the registry'));
      return;
    }
    this.backlog++;
    const message = result.message;
    // Superseding keeps the order of everything else: the newer inventory goes to the end.
    const inventory = message.body?.$case === 'inventory' && this.phase === 'registered' ? { superseded: false } : undefined;
    if (inventory) {
      if (this.pendingInventory) {
        this.pendingInventory.superseded = true;
        this.backlog--;
      }
      this.pendingInventory = inventory;
    }
    this.queue = this.queue
      .then(() => {
        if (inventory && this.pendingInventory === inventory) this.pendingInventory = undefined;
        return this.phase === 'ended' || inventory?.superseded ? undefined : this.dispatch(message);
      })
      .catch((error: unknown) => this.onDispatchError(error))
      .finally(() => {
        if (!inventory?.superseded) this.backlog--;
      });
  }

  // Any message proves the agent alive, whatever waits behind it. Tunnel data a consumer pulls over
  // a slow uplink can hold the next heartbeat back past providerLostAfter (and registry writes can
  // hold it in this stream's queue): counted only at the heartbeat, that silence would turn the
  // provider lost and blame it for its attempts, a slash a consumer could cause by reading logs.
  private noteHeard(): void {
    if (this.phase !== 'registered') return;
    const now = this.options.clock.monotonicMs();
    if (now - this.heardNotedMs < HEARD_NOTE_INTERVAL_MS) return;
    this.heardNotedMs = now;
    this.options.registry.onHeard?.(this.providerNameValue as string, new Date(this.options.clock.wallMs()));
  }

  private onDispatchError(error: unknown): void {
    if (error instanceof EdgeError) {
      this.terminate(error);
      return;
    }
    // A registry bug or an apiserver hiccup: the agent did nothing wrong, so keep the stream.
    this.log.error({ err: error, provider: this.providerNameValue }, 'registry call failed');
  }

  private async dispatch(message: AgentMessage): Promise<void> {
    const body = message.body;
    if (!body) return; // unreachable: the validator requires a body
    if (this.phase === 'awaiting_hello') {
      if (body.$case !== 'hello') throw this.outOfOrder(body.$case);
      this.hello = body.value;
      this.phase = 'awaiting_proof';
      return;
    }
    if (this.phase === 'awaiting_proof') {
      if (body.$case !== 'registerProof') throw this.outOfOrder(body.$case);
      await this.register(body.value);
      return;
    }
    const providerName = this.providerNameValue as string;
    const registry = this.options.registry;
    switch (body.$case) {
      case 'hello':
        throw this.claimsOtherWallet(body.value.walletAddress)
          ? new EdgeError(status.PERMISSION_DENIED, 'wallet_mismatch', 'stream is bound to another wallet')
          : new EdgeError(status.FAILED_PRECONDITION, 'already_registered', 'stream is already registered');
      case 'registerProof':
        throw new EdgeError(status.FAILED_PRECONDITION, 'already_registered', 'stream is already registered');
      case 'inventory':
        await registry.onInventory(providerName, body.value);
        return;
      case 'heartbeat':
        await registry.onHeartbeat(providerName, this.observeHeartbeat(body.value));
        return;
      case 'attemptStatus':
        await registry.onAttemptStatus(providerName, body.value);
        return;
      case 'usageReceipt':
        this.checkReceiptWallet(body.value);
        await registry.onUsageReceipt(providerName, body.value);
        return;
      case 'bandwidthProbeData':
        this.onProbeAnswer(body.value.probeId, body.value.payload, body.value.payloadSha256);
        return;
      case 'podEvents':
        await registry.onPodEvents?.(providerName, body.value);
        return;
    }
  }

  private outOfOrder(kind: string): EdgeError {
    return kind === 'hello' || kind === 'registerProof'
      ? new EdgeError(status.INVALID_ARGUMENT, 'unexpected_message', 'registration messages out of order')
      : new EdgeError(status.UNAUTHENTICATED, 'not_registered', 'stream must register first');
  }

  // --- registration --------------------------------------------------------------------------

  private async register(proof: { nonce: string; signature: string }): Promise<void> {
    const hello = this.hello;
    const challenge = this.challenge;
    if (!hello || !challenge) throw new EdgeError(status.INVALID_ARGUMENT, 'unexpected_message', 'proof before hello');
    const verdict = verifyProof(challenge, proof, hello.walletAddress, { now: this.options.clock.wallMs(), nonces: this.host.nonces });
    if (!verdict.ok) throw verdict.error;
    const wallet = verdict.wallet;
    if (this.options.authorizePeer && !this.options.authorizePeer(wallet, peerCertificate(this.call))) {
      throw new EdgeError(status.PERMISSION_DENIED, 'certificate_mismatch', 'client certificate does not belong to this wallet');
    }

    let providerName: string;
    try {
      providerName = await this.options.registry.register(wallet, {
        walletAddress: wallet,
        agentVersion: hello.agentVersion,
        ...(hello.profile ? { profile: hello.profile } : {}),
        protocolVersion: hello.protocolVersion,
        peer: safePeer(this.call),
      });
    } catch (error) {
      if (error instanceof EdgeError) throw error;
      this.log.error({ err: error, wallet }, 'registry refused to register the provider');
      throw new EdgeError(status.UNAVAILABLE, 'internal', 'hub could not register the provider; retry later');
    }
    if (typeof providerName !== 'string' || providerName.length === 0) {
      throw new EdgeError(status.UNAVAILABLE, 'internal', 'hub could not name the provider; retry later');
    }
    if (this.phase === 'ended') {
      // The stream died while the registry worked: keep the registry's view balanced.
      await this.options.registry.onDisconnect(providerName);
      return;
    }

    clearTimeout(this.registrationTimer);
    this.walletValue = wallet;
    this.providerNameValue = providerName;
    this.phase = 'registered';
    this.host.attach(this);
    this.log.info({ provider: providerName, wallet, agentVersion: hello.agentVersion }, 'agent registered');
    const chain = this.options.settlementDomain;
    this.write({
      $case: 'registered',
      value: {
        providerName,
        heartbeatIntervalMs: this.options.heartbeatIntervalMs,
        chainId: chain?.chainId ?? 0,
        marketAddress: chain?.marketAddress ?? '',
        probeDigestAccepted: true,
      },
    });
    this.startLinkMonitoring();
  }

  private claimsOtherWallet(claimed: string): boolean {
    return claimed.toLowerCase() !== this.walletValue?.toLowerCase();
  }

  private checkReceiptWallet(receipt: UsageReceipt): void {
    if (this.claimsOtherWallet(receipt.providerWallet)) {
      throw new EdgeError(status.PERMISSION_DENIED, 'wallet_mismatch', 'usage receipt names another wallet');
    }
  }

  // --- link monitoring -----------------------------------------------------------------------

  private startLinkMonitoring(): void {
    this.lastActivityMs = this.options.clock.monotonicMs();
    this.tick();
    this.tickTimer = setInterval(() => this.tick(), this.options.pingIntervalMs);
    if (this.options.bandwidthProbeBytes > 0) void this.probeBandwidth();
  }

  // Sends a Ping and ends a stream that has gone quiet.
  private tick(): void {
    if (this.phase !== 'registered') return;
    const now = this.options.clock.monotonicMs();
    if (now - this.lastActivityMs > this.options.idleTimeoutMs) {
      this.terminate(new EdgeError(status.DEADLINE_EXCEEDED, 'heartbeat_timeout', 'no message from the agent in time'));
      return;
    }
    // Unpredictable: an agent that could guess the next id could answer a ping before it was sent
    // and look a few ms away from anywhere (the latency score, maxLatencyMs, the bandwidth estimate).
    let id = randomInt(1, 2 ** 48);
    while (this.pingsInFlight.has(id)) id = randomInt(1, 2 ** 48);
    this.pingsInFlight.set(id, now);
    // Oldest first in a Map: drop pings that were never answered.
    for (const oldest of this.pingsInFlight.keys()) {
      if (this.pingsInFlight.size <= maxOutstandingPings) break;
      this.pingsInFlight.delete(oldest);
    }
    this.write({ $case: 'ping', value: { id, sentAtUnixMs: Math.floor(this.options.clock.wallMs()) } });
  }

  private observeHeartbeat(heartbeat: Heartbeat): { rttMs: number | undefined; bandwidthMbps: number | undefined; at: Date } {
    if (heartbeat.pongFor !== 0) {
      const sentAt = this.pingsInFlight.get(heartbeat.pongFor);
      if (sentAt !== undefined) {
        this.pingsInFlight.delete(heartbeat.pongFor);
        this.rtt.update(this.options.clock.monotonicMs() - sentAt);
      }
    }
    return { rttMs: this.rtt.value, bandwidthMbps: this.bandwidth, at: new Date(this.options.clock.wallMs()) };
  }

  private onProbeAnswer(probeId: number, payload: Uint8Array, digest: Uint8Array): void {
    const round = this.probe?.round;
    if (!round?.covers(probeId)) {
      // A late answer to a probe that already timed out is harmless; one never sent is not.
      if (probeId < this.nextProbeId) return;
      throw new EdgeError(status.INVALID_ARGUMENT, 'unexpected_probe', 'answer to a probe that was never sent');
    }
    const answer = round.answer(probeId, payload, digest);
    if (answer === 'mismatch') throw new EdgeError(status.INVALID_ARGUMENT, 'probe_mismatch', 'probe answer differs from the probe (bytes or SHA-256)');
    if (answer !== 'complete') return;
    const elapsedMs = this.options.clock.monotonicMs() - round.sentAtMs;
    const mbps = probeBandwidthMbps(round.bytes, elapsedMs, this.rtt.value);
    if (mbps !== undefined) this.bandwidth = mbps;
    this.log.debug({ provider: this.providerNameValue, elapsedMs, mbps }, 'bandwidth probe answered');
    this.settleProbe(mbps);
  }

  private settleProbe(mbps: number | undefined): void {
    clearTimeout(this.probeTimer);
    const probe = this.probe;
    this.probe = undefined;
    for (const resolve of probe?.waiters ?? []) resolve(mbps);
  }
}

function safePeer(call: MarketCall): string {
  try {
    return call.getPeer();
  } catch {
    return 'unknown';
  }
}

function peerCertificate(call: MarketCall) {
  try {
    return call.getAuthContext().sslPeerCertificate;
  } catch {
    return undefined;
  }
}

function trailersOf(error: EdgeError): { metadata?: Metadata } {
  if (!error.trailers) return {};
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(error.trailers)) metadata.set(key, value);
  return { metadata };
}
