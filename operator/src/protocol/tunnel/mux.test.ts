import { describe, expect, it } from 'vitest';
import { TunnelKind, type TunnelClose, type TunnelFrame, type TunnelOpen } from '../../gen/proto/fedgpu/v1/market.js';
import { checkTunnelFrame } from './check.js';
import type { TimerHandle } from '../../runtime/clock.js';
import { FakeClock } from '../../runtime/testing/fake-clock.js';
import { defaultTunnelLimits, KEEPALIVE_CHANNEL, TunnelMux, type TunnelLimits, type TunnelSession, type TunnelTimers } from './mux.js';

const openLog: TunnelOpen = {
  kind: TunnelKind.TUNNEL_KIND_LOG, jobUid: 'u', epoch: 1, replica: 0, container: '', initialWindow: 0,
  follow: false, tailLines: -1, sinceSeconds: 0, timestamps: false, command: [], stdin: false, tty: false, port: 0,
};

// Two ends joined in memory. Frames are delivered when the test calls deliver(); flushes of the
// sender's transport happen at once unless `holdFlush` is set (a transport that does not drain).
function pair(limits: Partial<TunnelLimits> = {}, timers?: TunnelTimers) {
  const toAgent: TunnelFrame[] = [];
  const toHub: TunnelFrame[] = [];
  const held: (() => void)[] = [];
  const state = { holdFlush: false, dataFramesToHub: 0 };
  let onOpen: (s: TunnelSession, o: TunnelOpen) => void = (s) => s.accept();
  const hub = new TunnelMux({
    transport: { send: (f, flushed) => { toAgent.push(f); flushed(); return true; } },
    limits,
    ...(timers ? { timers } : {}),
  });
  const agent = new TunnelMux({
    transport: {
      send: (f, flushed) => {
        toHub.push(f);
        if (f.frame?.$case === 'data') state.dataFramesToHub++;
        if (state.holdFlush) held.push(flushed);
        else flushed();
        return true;
      },
    },
    limits,
    onOpen: (s, o) => onOpen(s, o),
    ...(timers ? { timers } : {}),
  });
  const deliver = () => {
    let moved = true;
    while (moved) {
      moved = false;
      while (toAgent.length) { agent.onFrame(toAgent.shift() as TunnelFrame); moved = true; }
      while (toHub.length) { hub.onFrame(toHub.shift() as TunnelFrame); moved = true; }
    }
  };
  return {
    hub, agent, deliver, state, held, toHub, toAgent,
    setOnOpen: (f: typeof onOpen) => { onOpen = f; },
  };
}

describe('TunnelMux', () => {
  it('cuts a close error to what the hub accepts: a consumer-chosen text never ends the agent\'s stream', async () => {
    const t = pair();
    // What the agent says when a consumer asks for a container its 16 long-named ones do not include.
    const long = `replica 0 has no container "${'x'.repeat(63)}" (it has\n${Array.from({ length: 16 }, (_, i) => `${'c'.repeat(60)}${i}`).join(', ')})`;
    t.setOnOpen((s) => s.close({ reason: 'not_attempt_pod', error: long }));
    const session = t.hub.open(openLog) as TunnelSession;
    // The Open reaches the agent; what the agent answers is looked at before the hub gets it.
    while (t.toAgent.length) t.agent.onFrame(t.toAgent.shift() as TunnelFrame);
    const closes = t.toHub.filter((f) => f.frame?.$case === 'close');
    t.deliver();
    expect(long.length).toBeGreaterThan(1024);
    expect(closes).toHaveLength(1);
    expect(checkTunnelFrame(closes[0]!, defaultTunnelLimits)).toBeUndefined();
    await expect(session.opened).rejects.toThrow(/no container/);
  });

  it('carries a large stream intact and never past the granted window', async () => {
    const t = pair({ windowBytes: 64 * 1024, chunkBytes: 8 * 1024 });
    let agentSide: TunnelSession | undefined;
    t.setOnOpen((s) => { agentSide = s; s.accept(); });
    const session = t.hub.open(openLog) as TunnelSession;
    const received: Buffer[] = [];
    session.onData = (_channel, data) => received.push(Buffer.from(data));
    t.deliver();
    await session.opened;
    const payload = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
    const written = agentSide!.write(0, payload);
    // The reader delivers nothing yet: the agent may send exactly one window and then waits.
    t.deliver();
    expect(received.reduce((n, b) => n + b.length, 0)).toBe(64 * 1024);
    expect(session.buffered).toBe(64 * 1024);
    // Now the reader keeps up.
    session.onData = (_channel, data) => { received.push(Buffer.from(data)); session.delivered(data.byteLength); };
    session.delivered(64 * 1024);
    for (let i = 0; i < 100 && received.reduce((n, b) => n + b.length, 0) < payload.length; i++) t.deliver();
    await written;
    expect(Buffer.concat(received).equals(payload)).toBe(true);
  });

  it('keeps tunnel bytes in the transport under the high-water mark when it does not drain', async () => {
    const t = pair({ windowBytes: 1024 * 1024, chunkBytes: 16 * 1024, highWaterBytes: 64 * 1024 });
    let agentSide: TunnelSession | undefined;
    t.setOnOpen((s) => { agentSide = s; s.accept(); });
    const session = t.hub.open(openLog) as TunnelSession;
    t.deliver();
    await session.opened;
    t.state.holdFlush = true;
    void agentSide!.write(0, Buffer.alloc(512 * 1024));
    expect(t.agent.transportBytes).toBeLessThanOrEqual(64 * 1024);
    expect(t.state.dataFramesToHub).toBe(4);
    // The transport drains: more goes out.
    for (const f of t.held.splice(0)) f();
    expect(t.state.dataFramesToHub).toBe(8);
  });

  it('shares the transport round robin between busy sessions', async () => {
    const t = pair({ windowBytes: 1024 * 1024, chunkBytes: 1024, highWaterBytes: 4096 });
    const agentSessions: TunnelSession[] = [];
    t.setOnOpen((s) => { agentSessions.push(s); s.accept(); });
    const a = t.hub.open(openLog) as TunnelSession;
    const b = t.hub.open(openLog) as TunnelSession;
    t.deliver();
    await Promise.all([a.opened, b.opened]);
    t.state.holdFlush = true;
    void agentSessions[0]!.write(0, Buffer.alloc(64 * 1024));
    void agentSessions[1]!.write(0, Buffer.alloc(64 * 1024));
    // The first session filled the transport on its own; from now on, as it drains, turns alternate.
    t.toHub.splice(0);
    for (let i = 0; i < 8; i++) t.held.shift()?.();
    const order = t.toHub.filter((f) => f.frame?.$case === 'data').map((f) => f.sessionId);
    expect(order).toHaveLength(8);
    expect(order.filter((id) => id === a.id)).toHaveLength(4);
    expect(order.filter((id) => id === b.id)).toHaveLength(4);
  });

  it('closes a session whose peer sends past its window, and leaves the others alone', async () => {
    const t = pair({ windowBytes: 1024 });
    const bystander = t.hub.open(openLog) as TunnelSession;
    const victim = t.hub.open(openLog) as TunnelSession;
    t.deliver();
    await victim.opened;
    let closed: TunnelClose | undefined;
    victim.onClose = (c) => { closed = c; };
    // A hostile agent ignores its credit.
    t.hub.onFrame({ sessionId: victim.id, frame: { $case: 'data', value: { channel: 0, data: Buffer.alloc(2048) } } });
    expect(closed?.reason).toBe('window_exceeded');
    expect(bystander.isClosed).toBe(false);
    expect(t.hub.openSessions).toBe(1);
  });

  it('caps sessions per stream on both ends', () => {
    const t = pair({ maxSessions: 2 });
    expect(t.hub.open(openLog)).toBeDefined();
    expect(t.hub.open(openLog)).toBeDefined();
    expect(t.hub.open(openLog)).toBeUndefined();
    t.deliver();
    // A hub that ignores the cap is refused by the agent.
    t.agent.onFrame({ sessionId: 99, frame: { $case: 'open', value: openLog } });
    const refusal = t.toHub.find((f) => f.sessionId === 99);
    expect(refusal?.frame?.$case === 'close' && refusal.frame.value.reason).toBe('too_many_sessions');
  });

  it('refuses a session the agent rejects, and the hub sees why', async () => {
    const t = pair();
    t.setOnOpen((s) => s.close({ error: 'pod is not part of an attempt this agent runs', reason: 'not_attempt_pod' }));
    const session = t.hub.open(openLog) as TunnelSession;
    t.deliver();
    await expect(session.opened).rejects.toThrow('not part of an attempt');
    expect(t.hub.openSessions).toBe(0);
    expect(t.agent.openSessions).toBe(0);
  });

  it('closes idle sessions', () => {
    const pendingTimers = new Map<number, () => void>();
    let nextTimer = 1;
    const timers: TunnelTimers = {
      setTimeout: (cb) => { const id = nextTimer++; pendingTimers.set(id, cb); return id; },
      clearTimeout: (id) => { pendingTimers.delete(id as number); },
    };
    const t = pair({ idleTimeoutMs: 1000 }, timers);
    const session = t.hub.open(openLog) as TunnelSession;
    t.deliver();
    let closed: TunnelClose | undefined;
    session.onClose = (c) => { closed = c; };
    for (const cb of [...pendingTimers.values()]) cb();
    t.deliver();
    expect(closed?.reason).toBe('idle_timeout');
    expect(t.agent.openSessions).toBe(0);
  });

  it('keeps a session its owner holds open past the idle timeout on both ends; keepalives never reach the owners', async () => {
    const clock = new FakeClock();
    const timers: TunnelTimers = { setTimeout: (cb, ms) => clock.setTimer(cb, ms), clearTimeout: (h) => clock.clearTimer(h as TimerHandle) };
    const t = pair({ idleTimeoutMs: 1000 }, timers);
    const agentSides: TunnelSession[] = [];
    const agentGot: number[] = [];
    t.setOnOpen((s) => {
      agentSides.push(s);
      s.onData = (channel) => agentGot.push(channel);
      s.accept();
    });
    const kept = t.hub.open(openLog) as TunnelSession;
    const quiet = t.hub.open(openLog) as TunnelSession;
    t.deliver();
    await Promise.all([kept.opened, quiet.opened]);
    kept.keepAlive();
    kept.keepAlive(); // idempotent: one keepalive timer
    const hubGot: number[] = [];
    kept.onData = (channel) => hubGot.push(channel);
    const sentBefore = t.state.dataFramesToHub;
    // Five idle timeouts, in steps, delivering frames between them as a stream would.
    for (let i = 0; i < 50; i++) {
      clock.advance(100);
      await Promise.resolve();
      t.deliver();
    }
    expect(quiet.isClosed).toBe(true); // the one nobody keeps alive is closed as idle
    expect(kept.isClosed).toBe(false);
    expect(agentSides[0]!.isClosed).toBe(false); // the agent's idle timer is reset by the hub's keepalives
    expect(agentGot).toEqual([]);
    expect(t.state.dataFramesToHub).toBe(sentBefore); // the agent sends nothing to keep it
    // Data still flows, and the keepalives stop with the session.
    await agentSides[0]!.write(0, Buffer.from('late line'));
    t.deliver();
    expect(hubGot).toEqual([0]);
    kept.close();
    t.deliver();
    expect(agentSides[0]!.isClosed).toBe(true);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('a keepalive goes out ahead of data stalled for credit, and an empty frame on channel 0 (end of stdin) still reaches the owner', async () => {
    const clock = new FakeClock();
    const timers: TunnelTimers = { setTimeout: (cb, ms) => clock.setTimer(cb, ms), clearTimeout: (h) => clock.clearTimer(h as TimerHandle) };
    const t = pair({ idleTimeoutMs: 1000, windowBytes: 1024 }, timers);
    const agentGot: [number, number][] = [];
    let agentSide: TunnelSession | undefined;
    t.setOnOpen((s) => {
      agentSide = s;
      s.onData = (channel, data) => agentGot.push([channel, data.byteLength]); // never delivered(): no credit comes back
      s.accept();
    });
    const session = t.hub.open(openLog) as TunnelSession;
    t.deliver();
    await session.opened;
    session.keepAlive();
    void session.write(0, Buffer.alloc(4096)).catch(() => {}); // more than the window: the rest waits
    t.deliver();
    for (let i = 0; i < 50; i++) {
      clock.advance(100);
      await Promise.resolve();
      t.deliver();
    }
    expect(agentSide!.isClosed).toBe(false);
    expect(agentGot.reduce((n, [, bytes]) => n + bytes, 0)).toBe(1024);
    void session.write(0, Buffer.alloc(0)).catch(() => {});
    session.close();
    t.deliver();
    expect(agentGot.every(([channel]) => channel === 0)).toBe(true);
    // The agent's own check lets a keepalive through, and nothing else on that channel.
    expect(checkTunnelFrame({ sessionId: 1, frame: { $case: 'data', value: { channel: KEEPALIVE_CHANNEL, data: Buffer.alloc(0) } } }, defaultTunnelLimits)).toBeUndefined();
    expect(checkTunnelFrame({ sessionId: 1, frame: { $case: 'data', value: { channel: KEEPALIVE_CHANNEL, data: Buffer.from('x') } } }, defaultTunnelLimits)).toBe('tunnel keepalive frame with data');
  });

  it('passes an empty frame on channel 0 to the owner while keepalives run', async () => {
    const t = pair();
    const got: [number, number][] = [];
    t.setOnOpen((s) => {
      s.onData = (channel, data) => got.push([channel, data.byteLength]);
      s.accept();
    });
    const session = t.hub.open(openLog) as TunnelSession;
    t.deliver();
    await session.opened;
    session.keepAlive();
    await session.write(0, Buffer.alloc(0));
    t.deliver();
    expect(got).toEqual([[0, 0]]);
    session.close();
  });

  it('rejects pending writes when the stream ends', async () => {
    const t = pair({ windowBytes: 1024 });
    let agentSide: TunnelSession | undefined;
    t.setOnOpen((s) => { agentSide = s; s.accept(); });
    const session = t.hub.open(openLog) as TunnelSession;
    t.deliver();
    await session.opened;
    const write = agentSide!.write(0, Buffer.alloc(4096));
    t.agent.end('hub went away');
    await expect(write).rejects.toThrow('stream ended');
    expect(t.agent.open(openLog)).toBeUndefined();
  });
});
