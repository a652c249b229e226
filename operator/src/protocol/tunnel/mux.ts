// Multiplexed tunnel sessions over one agent stream (like konnectivity's, over our gRPC stream).
// One TunnelMux per stream end; the hub opens sessions, the agent accepts them.
//
// What keeps a tunnel from hurting the rest of the stream:
//  - per-session credit (credit.ts): a side never sends more than the peer granted, so a slow
//    reader stalls only its own session and the receiver buffers at most one window per session;
//  - a shared high-water mark on bytes handed to the transport and not yet flushed: tunnel data
//    waits above it, while control messages (heartbeats, assignments, receipts) are written
//    directly and so queue behind at most that many bytes;
//  - data goes out in chunks, round robin between sessions, so one busy session cannot starve another;
//  - a cap on open sessions per stream, and an idle timeout per session, which closes sessions
//    whose ends lost each other; an end that knows its session is wanted (the hub, while the
//    consumer's connection is open) keeps it alive with empty frames on KEEPALIVE_CHANNEL.
// Pure: no I/O besides the injected send and timers, so the tests drive two ends in memory.
import type { TunnelClose, TunnelFrame, TunnelOpen } from '../../gen/proto/fedgpu/v1/market.js';
import { closeErrorText } from './check.js';
import { ReceiveWindow, SendCredit } from './credit.js';

export interface TunnelLimits {
  /** Credit each side grants per session (bytes). */
  windowBytes: number;
  /** Largest data frame (bytes). */
  chunkBytes: number;
  /** Tunnel bytes handed to the transport and not yet flushed, above which tunnel data waits. */
  highWaterBytes: number;
  /** Open sessions per stream. */
  maxSessions: number;
  /** A session with no data either way for this long is closed. */
  idleTimeoutMs: number;
}

export const defaultTunnelLimits: Readonly<TunnelLimits> = Object.freeze({
  windowBytes: 256 * 1024,
  chunkBytes: 32 * 1024,
  highWaterBytes: 512 * 1024,
  maxSessions: 64,
  idleTimeoutMs: 10 * 60_000,
});

export interface TunnelTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface TunnelTransport {
  /** Hands a frame to the stream; `flushed` runs once its bytes left this process's buffers. */
  send(frame: TunnelFrame, flushed: () => void): boolean;
}

export interface TunnelMuxOptions {
  transport: TunnelTransport;
  limits?: Partial<TunnelLimits>;
  timers?: TunnelTimers;
  /** Agent side: a session was opened by the peer. Accept with session.accept(), or close it. */
  onOpen?: (session: TunnelSession, open: TunnelOpen) => void;
}

/**
 * Channel of the keepalive frames (always empty): they reset both ends' idle timers and are never
 * handed to the session's owner; either end may send them (checkTunnelFrame lets an agent's through). An agent older than them ignores an empty frame on a channel its
 * exec, log and port-forward handlers do not use, so it works with them too.
 */
export const KEEPALIVE_CHANNEL = 255;
const EMPTY = Buffer.alloc(0);

export class TunnelClosedError extends Error {
  constructor(readonly close: TunnelClose) {
    super(close.error || 'tunnel session closed');
  }
}

const defaultTimers: TunnelTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

interface PendingWrite {
  channel: number;
  data: Uint8Array;
  offset: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

export class TunnelSession {
  /** Incoming data; the owner calls delivered(n) once it has passed the bytes on. */
  onData: (channel: number, data: Uint8Array) => void = () => {};
  /** The session ended (by either side); called once. */
  onClose: (close: TunnelClose) => void = () => {};

  private sendCredit = new SendCredit(0);
  private readonly receiveWindow: ReceiveWindow;
  private readonly pending: PendingWrite[] = [];
  private closed: TunnelClose | undefined;
  private idleTimer: unknown;
  private keepAliveTimer: unknown;
  private endAfterPending: Partial<TunnelClose> | undefined;
  private openedResolve: (() => void) | undefined;
  private openedReject: ((error: Error) => void) | undefined;
  /** Resolves when the peer accepted the session (hub side), rejects when it refused. */
  readonly opened: Promise<void>;
  /** Resolves once the session ended, whichever side ended it. */
  readonly ended: Promise<TunnelClose>;
  private resolveEnded: ((close: TunnelClose) => void) | undefined;

  constructor(
    readonly id: number,
    private readonly mux: TunnelMux,
    private readonly limits: TunnelLimits,
  ) {
    this.receiveWindow = new ReceiveWindow(limits.windowBytes);
    this.opened = new Promise((resolve, reject) => {
      this.openedResolve = resolve;
      this.openedReject = reject;
    });
    this.opened.catch(() => {});
    this.ended = new Promise((resolve) => (this.resolveEnded = resolve));
    this.touch();
  }

  get isClosed(): boolean {
    return this.closed !== undefined;
  }

  /** Bytes received and not yet delivered. */
  get buffered(): number {
    return this.receiveWindow.buffered;
  }

  /** Agent side: accept the peer's open, granting it a window for its data to us. */
  accept(): void {
    if (this.closed) return;
    this.mux.sendFrame({ sessionId: this.id, frame: { $case: 'opened', value: { initialWindow: this.limits.windowBytes } } });
    this.settleOpened();
  }

  /**
   * Queues `data` on `channel`; resolves once it is all handed to the transport. An empty write
   * sends an empty data frame in order (exec uses it on stdin as end of input).
   */
  write(channel: number, data: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(new TunnelClosedError(this.closed));
    this.touch();
    return new Promise((resolve, reject) => {
      this.pending.push({ channel, data, offset: 0, resolve, reject });
      this.mux.wake(this);
    });
  }

  /**
   * Sends a keepalive at a third of the idle timeout until the session ends, so a quiet session
   * (a followed log between lines, an idle shell, a port-forward waiting for its next request)
   * stays open while its owner holds it. The owner must close the session once it is not wanted
   * (the hub: when the consumer's connection ends, which TCP keepalive finds out when it dies
   * silently). Each beat goes out at once, ahead of data waiting for credit (it needs none, and
   * the receiver drops it), and resets this end's idle timer too.
   */
  keepAlive(): void {
    if (this.closed || this.keepAliveTimer !== undefined) return;
    const every = Math.max(1, Math.floor(this.limits.idleTimeoutMs / 3));
    const beat = () => {
      this.keepAliveTimer = this.mux.timers.setTimeout(() => {
        if (this.closed) return;
        this.touch();
        this.mux.sendFrame({ sessionId: this.id, frame: { $case: 'data', value: { channel: KEEPALIVE_CHANNEL, data: EMPTY } } });
        beat();
      }, every);
    };
    beat();
  }

  /** The owner passed `n` received bytes on: give the credit back to the peer. */
  delivered(n: number): void {
    if (this.closed) return;
    const increment = this.receiveWindow.delivered(n);
    if (increment > 0) this.mux.sendFrame({ sessionId: this.id, frame: { $case: 'window', value: { increment } } });
  }

  /** Ends the session once everything written so far went out (a clean end of a log, say). */
  end(info: Partial<TunnelClose> = {}): void {
    if (this.closed) return;
    if (this.pending.length === 0) this.close(info);
    else this.endAfterPending = info;
  }

  /** Ends the session now, dropping unsent data, and tells the peer (once). */
  close(info: Partial<TunnelClose> = {}): void {
    if (this.closed) return;
    const close: TunnelClose = { error: '', reason: '', hasExitCode: false, exitCode: 0, ...info };
    close.error = closeErrorText(close.error);
    this.mux.sendFrame({ sessionId: this.id, frame: { $case: 'close', value: close } });
    this.finish(close);
  }

  // --- called by the mux -----------------------------------------------------------------------

  /** @internal */
  startWithCredit(credit: number): void {
    this.sendCredit = new SendCredit(credit);
  }

  /** @internal */
  hasSendable(): boolean {
    const head = this.pending[0];
    return !this.closed && head !== undefined && (this.sendCredit.bytes > 0 || head.data.byteLength === 0);
  }

  /** @internal Sends one chunk; true when it sent something. */
  sendChunk(chunkBytes: number): boolean {
    const head = this.pending[0];
    if (!head || this.closed) return false;
    const n = this.sendCredit.take(Math.min(chunkBytes, head.data.byteLength - head.offset));
    if (n === 0 && head.data.byteLength > 0) return false;
    const data = Buffer.from(head.data.buffer, head.data.byteOffset + head.offset, n);
    head.offset += n;
    this.mux.sendFrame({ sessionId: this.id, frame: { $case: 'data', value: { channel: head.channel, data } } }, n);
    if (head.offset >= head.data.byteLength) {
      this.pending.shift();
      head.resolve();
      if (this.pending.length === 0 && this.endAfterPending) this.close(this.endAfterPending);
    }
    return true;
  }

  /** @internal */
  onFrame(frame: NonNullable<TunnelFrame['frame']>): void {
    if (this.closed) return;
    switch (frame.$case) {
      case 'opened':
        this.sendCredit.grant(frame.value.initialWindow);
        this.settleOpened();
        this.mux.wake(this);
        return;
      case 'window':
        this.sendCredit.grant(frame.value.increment);
        this.mux.wake(this);
        return;
      case 'data': {
        const bytes = frame.value.data;
        if (!this.receiveWindow.receive(bytes.byteLength)) {
          this.close({ error: 'peer sent more than its window', reason: 'window_exceeded' });
          return;
        }
        this.touch();
        if (frame.value.channel === KEEPALIVE_CHANNEL && bytes.byteLength === 0) return;
        this.onData(frame.value.channel, bytes);
        return;
      }
      case 'close':
        this.finish(frame.value);
        return;
      case 'open':
        this.close({ error: 'session already open', reason: 'duplicate_session' });
        return;
    }
  }

  /** @internal Ends without telling the peer (it told us, or the stream is gone). */
  finish(close: TunnelClose): void {
    if (this.closed) return;
    this.closed = close;
    this.mux.timers.clearTimeout(this.idleTimer);
    if (this.keepAliveTimer !== undefined) this.mux.timers.clearTimeout(this.keepAliveTimer);
    const error = new TunnelClosedError(close);
    for (const p of this.pending.splice(0)) p.reject(error);
    this.openedReject?.(error);
    this.openedResolve = undefined;
    this.openedReject = undefined;
    this.mux.forget(this);
    this.resolveEnded?.(close);
    try {
      this.onClose(close);
    } catch {
      // the owner's hook must not break the mux
    }
  }

  private settleOpened(): void {
    this.openedResolve?.();
    this.openedResolve = undefined;
    this.openedReject = undefined;
  }

  private touch(): void {
    this.mux.timers.clearTimeout(this.idleTimer);
    this.idleTimer = this.mux.timers.setTimeout(
      () => this.close({ error: `no data for ${this.limits.idleTimeoutMs} ms`, reason: 'idle_timeout' }),
      this.limits.idleTimeoutMs,
    );
  }
}

export class TunnelMux {
  readonly limits: TunnelLimits;
  /** @internal */
  readonly timers: TunnelTimers;
  private readonly sessions = new Map<number, TunnelSession>();
  private readonly ready: TunnelSession[] = [];
  private inTransport = 0;
  private nextId = 1;
  private pumping = false;
  private ended = false;

  constructor(private readonly options: TunnelMuxOptions) {
    this.limits = { ...defaultTunnelLimits, ...options.limits };
    this.timers = options.timers ?? defaultTimers;
  }

  get openSessions(): number {
    return this.sessions.size;
  }

  /**
   * Whether `id` names a session this end opened or accepted at some point: open now, or below the
   * next id it would open (one closed while the peer's frames were in flight). Hub side only: its
   * ids are the only ones.
   */
  hasOpened(id: number): boolean {
    return this.sessions.has(id) || (Number.isSafeInteger(id) && id >= 1 && id < this.nextId);
  }

  /** Whether `id` names a session open now. */
  isOpen(id: number): boolean {
    return this.sessions.has(id);
  }

  /** Tunnel bytes handed to the transport and not yet flushed. */
  get transportBytes(): number {
    return this.inTransport;
  }

  /** Hub side: opens a session; wait on session.opened before relying on it. Undefined at the cap. */
  open(open: TunnelOpen): TunnelSession | undefined {
    if (this.ended || this.sessions.size >= this.limits.maxSessions) return undefined;
    const session = new TunnelSession(this.nextId++, this, this.limits);
    this.sessions.set(session.id, session);
    this.sendFrame({ sessionId: session.id, frame: { $case: 'open', value: { ...open, initialWindow: this.limits.windowBytes } } });
    return session;
  }

  /** Feeds one frame from the peer. */
  onFrame(frame: TunnelFrame): void {
    if (this.ended || !frame.frame) return;
    const session = this.sessions.get(frame.sessionId);
    if (frame.frame.$case === 'open') {
      if (session) {
        session.onFrame(frame.frame);
        return;
      }
      this.accept(frame.sessionId, frame.frame.value);
      return;
    }
    // Frames for sessions already gone (closed on our side while theirs were in flight) are normal.
    session?.onFrame(frame.frame);
  }

  /** The stream ended: every session ends with `reason`. */
  end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    for (const session of [...this.sessions.values()]) session.finish({ error: `stream ended: ${reason}`, reason: 'stream_ended', hasExitCode: false, exitCode: 0 });
  }

  /** @internal */
  sendFrame(frame: TunnelFrame, dataBytes = 0): void {
    if (this.ended) return;
    this.inTransport += dataBytes;
    const flushed = () => {
      this.inTransport -= dataBytes;
      if (dataBytes > 0) this.pump();
    };
    if (!this.options.transport.send(frame, flushed)) flushed();
  }

  /** @internal */
  wake(session: TunnelSession): void {
    if (!this.ready.includes(session)) this.ready.push(session);
    this.pump();
  }

  /** @internal */
  forget(session: TunnelSession): void {
    this.sessions.delete(session.id);
    const i = this.ready.indexOf(session);
    if (i >= 0) this.ready.splice(i, 1);
  }

  private accept(id: number, open: TunnelOpen): void {
    // Ids are the hub's; the agent only checks they are sane and the cap holds.
    const refuse = (error: string, reason: string) =>
      this.sendFrame({ sessionId: id, frame: { $case: 'close', value: { error: closeErrorText(error), reason, hasExitCode: false, exitCode: 0 } } });
    if (!Number.isSafeInteger(id) || id < 1) return refuse('session id must be >= 1', 'bad_session_id');
    if (this.sessions.size >= this.limits.maxSessions) return refuse(`at most ${this.limits.maxSessions} sessions per agent`, 'too_many_sessions');
    const session = new TunnelSession(id, this, this.limits);
    session.startWithCredit(Math.min(open.initialWindow, this.limits.windowBytes * 4));
    this.sessions.set(id, session);
    if (!this.options.onOpen) {
      session.close({ error: 'this end accepts no sessions', reason: 'not_supported' });
      return;
    }
    try {
      this.options.onOpen(session, open);
    } catch (error) {
      session.close({ error: String(error), reason: 'internal' });
    }
  }

  // Round robin: one chunk per ready session per turn, while the transport is below high water.
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.ready.length > 0 && this.inTransport < this.limits.highWaterBytes) {
        const session = this.ready.shift() as TunnelSession;
        if (!session.hasSendable()) continue;
        session.sendChunk(this.limits.chunkBytes);
        if (session.hasSendable()) this.ready.push(session);
      }
    } finally {
      this.pumping = false;
    }
  }
}
