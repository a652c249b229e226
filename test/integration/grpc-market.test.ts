// The marketplace stream over real gRPC and real mutual TLS on loopback: registration, the refusals
// of DESIGN.md section 8, fuzzed input on the wire, reconnects and link measurements. No cluster.
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { status } from '@grpc/grpc-js';
import { Wallet } from 'ethers';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StreamClient, type DisconnectInfo, type StreamClientOptions, type StreamClientTimers } from '../../operator/src/agent/stream/client.js';
import { AgentMessage, TunnelKind, TunnelOpen, type HubMessage, type MarketplaceClient, type Inventory } from '../../operator/src/gen/proto/fedgpu/v1/market.js';
import { InMemoryProviderRegistry } from '../../operator/src/hub/market/memory-registry.js';
import { MarketServer, type MarketServerOptions } from '../../operator/src/hub/market/server.js';
import { certificateNamesWallet } from '../../operator/src/hub/hub.js';
import type { RejectReason } from '../../operator/src/protocol/edge-error.js';
import { decodeAgentFrame } from '../../operator/src/protocol/framing.js';
import { malformedAgentMessage, validAgentMessage } from '../../operator/src/protocol/testing/agent-messages.js';
import { SeededRandom } from '../../operator/src/protocol/testing/seeded-random.js';
import { validateAgentMessage } from '../../operator/src/protocol/validate.js';
import { signChallenge } from '../../operator/src/protocol/wallet-proof.js';
import { challengeOf, hello, RawStream, registerRaw, type AnyWallet } from '../support/raw-stream.js';
import { createCa, issueCert, type CertificateAuthority, type IssuedCertificate } from '../../operator/src/tls/certs.js';

const audience = 'fedgpu-hub.test';
const silent = pino({ level: 'silent' });


interface Pki {
  ca: CertificateAuthority;
  hub: IssuedCertificate;
  agent: IssuedCertificate;
  rogueCa: CertificateAuthority;
  rogueAgent: IssuedCertificate;
}

let pki: Pki;
const servers: MarketServer[] = [];
const clients: StreamClient[] = [];
const rawClients: MarketplaceClient[] = [];

beforeAll(async () => {
  const ca = await createCa('fedgpu hub CA');
  const rogueCa = await createCa('fedgpu hub CA'); // same name, different key
  pki = {
    ca,
    rogueCa,
    // No IP SAN on purpose: agents dial 127.0.0.1 and verify the name `fedgpu-hub` (serverName override).
    hub: await issueCert(ca, { commonName: 'fedgpu-hub', dnsNames: ['fedgpu-hub'], usages: ['server'] }),
    agent: await issueCert(ca, { commonName: 'agent', usages: ['client'] }),
    rogueAgent: await issueCert(rogueCa, { commonName: 'agent', usages: ['client'] }),
  };
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  for (const raw of rawClients.splice(0)) raw.close();
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

interface Hub {
  server: MarketServer;
  registry: InMemoryProviderRegistry;
  port: number;
  rejections: RejectReason[];
}

async function startHub(overrides: Partial<MarketServerOptions> = {}): Promise<Hub> {
  const registry = new InMemoryProviderRegistry();
  const rejections: RejectReason[] = [];
  const server = new MarketServer({
    tls: { caPem: pki.ca.certPem, certPem: pki.hub.certPem, keyPem: pki.hub.keyPem },
    registry,
    audience,
    logger: silent,
    onRejection: (reason) => rejections.push(reason),
    pingIntervalMs: 100,
    heartbeatIntervalMs: 200,
    shutdownGraceMs: 1_000,
    ...overrides,
  });
  servers.push(server);
  const port = await server.start();
  return { server, registry: (overrides.registry as InMemoryProviderRegistry | undefined) ?? registry, port, rejections };
}

function startClient(port: number, wallet: AnyWallet, overrides: Partial<StreamClientOptions> = {}): StreamClient {
  const client = new StreamClient({
    address: `127.0.0.1:${port}`,
    tls: { caPem: pki.ca.certPem, certPem: pki.agent.certPem, keyPem: pki.agent.keyPem, serverName: 'fedgpu-hub' },
    wallet,
    agentVersion: '0.1.0-test',
    expectedAudience: audience,
    backoff: { initialMs: 50, maxMs: 400 },
    logger: silent,
    ...overrides,
  });
  clients.push(client);
  client.start();
  return client;
}

/** A raw stream to `port` with the agent's certificate (or `cert`, or none with null). */
const rawStream = (port: number, cert: IssuedCertificate | null = pki.agent) =>
  new RawStream({ port, caPem: pki.ca.certPem, cert, serverName: 'fedgpu-hub', clients: rawClients });

async function eventually(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function sampleInventory(tag: number): Inventory {
  return {
    pools: [
      {
        gpuProduct: 'NVIDIA-H100-80GB-HBM3',
        memoryMib: 81_920,
        cudaDriverMajor: 12,
        nodes: [{ name: `gpu-node-${tag}`, totalGpus: 8, idleGpus: 6, ready: true, cordoned: false }],
        total: 8,
        allocatable: 8,
        idle: 6,
        pricePerGpuHour: '2.45',
        breakEvenPricePerGpuHour: '0.61',
        offered: true,
        notOfferedReason: 0,
        runtimeClassName: '', cpuMilliPerGpu: 0, memoryMibPerGpu: 0,
      },
    ],
    unisolatedNamespaces: [],
  };
}

describe('marketplace stream over mTLS', () => {
  it('registers an agent with a valid wallet proof and carries its inventory and hub pushes', async () => {
    const hub = await startHub();
    const wallet = Wallet.createRandom();
    const pushed: HubMessage[] = [];
    const client = startClient(hub.port, wallet, {
      onConnected: () => {
        client.sendInventory(sampleInventory(1));
      },
      onHubMessage: (message) => {
        pushed.push(message);
      },
    });
    const name = InMemoryProviderRegistry.providerNameFor(wallet.address);
    await eventually(() => hub.registry.inventories.has(name), 'inventory');

    const registration = hub.registry.events.find((e) => e.type === 'register');
    expect(registration).toMatchObject({ wallet: wallet.address, providerName: name, info: { agentVersion: '0.1.0-test', protocolVersion: 1 } });
    expect(hub.registry.inventories.get(name)).toEqual(sampleInventory(1));
    expect(hub.server.connectedProviders()).toEqual([name]);
    expect(client.connected).toBe(true);
    expect(client.providerName).toBe(name);

    const assign: HubMessage = {
      seq: 0,
      body: {
        $case: 'assign',
        value: {
          jobUid: '0b7c3c1e-2c1a-4c7e-9d54-5b6f0e1b2a3c',
          epoch: 1,
          namespace: 'fedgpu-jobs',
          podTemplates: [Buffer.from(JSON.stringify({ spec: { containers: [{ name: 'train', image: 'busybox' }] } }))],
          nodeNames: ['gpu-node-1'],
          gpusPerReplica: 2,
          checkpointDir: 's3://ckpt/job',
          gracePeriodSeconds: 30,
          secrets: [],
          secretsWithheld: false,
          env: [{ name: 'FEDGPU_EPOCH', value: '1' }],
          pricePerGpuHour: '2.45',
          coveredGpuSeconds: 3600,
        },
      },
    };
    expect(hub.server.send(name, assign)).toBe(true);
    expect(hub.server.send(name, { seq: 0, body: { $case: 'ping', value: { id: 1, sentAtUnixMs: 0 } } })).toBe(false);
    expect(hub.server.send('provider-unknown', assign)).toBe(false);
    await eventually(() => pushed.length === 1, 'assign at the agent');
    expect(pushed[0]?.body).toEqual(assign.body);

    expect(client.sendAttemptStatus({ jobUid: '0b7c3c1e-2c1a-4c7e-9d54-5b6f0e1b2a3c', epoch: 1, phase: 2, gpuSeconds: 12.5, exitCode: 0, reason: '', message: '', podStates: [] })).toBe(true);
    await eventually(() => hub.registry.count('attemptStatus', name) === 1, 'attempt status');
    expect(hub.rejections).toEqual([]);
  });

  it('refuses an agent with no client certificate at the TLS handshake', async () => {
    const hub = await startHub();
    const raw = rawStream(hub.port, null);
    hello(raw, Wallet.createRandom().address);
    const ended = await raw.ended;
    expect(ended.code).toBe(status.UNAVAILABLE);
    expect(raw.received).toEqual([]);
    expect(hub.registry.events).toEqual([]);
  });

  it('refuses a client certificate from another CA', async () => {
    const hub = await startHub();
    const raw = rawStream(hub.port, pki.rogueAgent);
    hello(raw, Wallet.createRandom().address);
    const ended = await raw.ended;
    expect(ended.code).toBe(status.UNAVAILABLE);
    expect(raw.received).toEqual([]);
    expect(hub.registry.events).toEqual([]);
  });

  it('refuses a proof signed by another wallet', async () => {
    const hub = await startHub();
    const wallet = Wallet.createRandom();
    const impostor = Wallet.createRandom();
    const raw = rawStream(hub.port);
    const challenge = await challengeOf(raw);
    hello(raw, wallet.address);
    raw.send({ $case: 'registerProof', value: await signChallenge(impostor, challenge, wallet.address) });
    const ended = await raw.ended;
    expect(ended.code).toBe(status.UNAUTHENTICATED);
    expect(raw.hubReason()).toBe('bad_signature');
    expect(hub.rejections).toEqual(['bad_signature']);
    expect(hub.registry.events).toEqual([]);
  });

  it('refuses a replayed nonce', async () => {
    const hub = await startHub();
    const wallet = Wallet.createRandom();
    const first = rawStream(hub.port);
    const { proof } = await registerRaw(first, wallet);
    first.end();
    await first.ended;

    const second = rawStream(hub.port);
    await challengeOf(second);
    hello(second, wallet.address);
    second.send({ $case: 'registerProof', value: proof });
    expect((await second.ended).code).toBe(status.UNAUTHENTICATED);
    expect(second.hubReason()).toBe('nonce_replayed');
    expect(hub.registry.count('register')).toBe(1);
  });

  it('refuses an expired challenge', async () => {
    // The hub's wall clock, moved past the challenge's life once it is signed (no sleep).
    let skewMs = 0;
    const hub = await startHub({ challengeTtlMs: 150, clock: { wallMs: () => Date.now() + skewMs } });
    const wallet = Wallet.createRandom();
    const raw = rawStream(hub.port);
    const challenge = await challengeOf(raw);
    hello(raw, wallet.address);
    const proof = await signChallenge(wallet, challenge, wallet.address);
    skewMs = 151;
    raw.send({ $case: 'registerProof', value: proof });
    expect((await raw.ended).code).toBe(status.UNAUTHENTICATED);
    expect(raw.hubReason()).toBe('challenge_expired');
    expect(hub.registry.events).toEqual([]);
  });

  it('ends a stream that does not register in time', async () => {
    const hub = await startHub({ registrationTimeoutMs: 200 });
    const raw = rawStream(hub.port);
    await challengeOf(raw);
    expect((await raw.ended).code).toBe(status.DEADLINE_EXCEEDED);
    expect(raw.hubReason()).toBe('registration_timeout');
  });

  it('refuses traffic before registration', async () => {
    const hub = await startHub();
    const raw = rawStream(hub.port);
    await challengeOf(raw);
    raw.send(validAgentMessage(new SeededRandom(9), 1, 'inventory').body as NonNullable<AgentMessage['body']>);
    expect((await raw.ended).code).toBe(status.UNAUTHENTICATED);
    expect(raw.hubReason()).toBe('not_registered');
    expect(hub.registry.events).toEqual([]);
  });

  it('refuses a claim for another wallet after registration', async () => {
    const hub = await startHub();
    const wallet = Wallet.createRandom();
    const other = Wallet.createRandom();

    const viaHello = rawStream(hub.port);
    await registerRaw(viaHello, wallet);
    hello(viaHello, other.address);
    expect((await viaHello.ended).code).toBe(status.PERMISSION_DENIED);
    expect(viaHello.hubReason()).toBe('wallet_mismatch');

    const viaReceipt = rawStream(hub.port);
    await registerRaw(viaReceipt, wallet);
    viaReceipt.send({
      $case: 'usageReceipt',
      value: {
        jobUid: '0b7c3c1e-2c1a-4c7e-9d54-5b6f0e1b2a3c',
        epoch: 1,
        gpuSeconds: 3600,
        pricePerGpuHour: '2.45',
        amount: '2.45',
        signature: `0x${'11'.repeat(65)}`,
        providerWallet: other.address,
        usageHash: `0x${'22'.repeat(32)}`,
      },
    });
    expect((await viaReceipt.ended).code).toBe(status.PERMISSION_DENIED);
    expect(viaReceipt.hubReason()).toBe('wallet_mismatch');
    expect(hub.registry.mutations()).toBe(0);
    expect(hub.rejections).toEqual(['wallet_mismatch', 'wallet_mismatch']);
  });

  it('rate-limits a flooding agent', async () => {
    const hub = await startHub({ rateLimit: { capacity: 20, refillPerSecond: 1 } });
    const raw = rawStream(hub.port);
    await registerRaw(raw, Wallet.createRandom());
    for (let i = 0; i < 100; i++) raw.send({ $case: 'heartbeat', value: { sentAtUnixMs: Date.now(), pongFor: 0, bandwidthProbeResults: [] } });
    expect((await raw.ended).code).toBe(status.RESOURCE_EXHAUSTED);
    expect(raw.hubReason()).toBe('rate_limited');
  });

  it('lets a newer inventory supersede one still waiting for a slow registry, keeping the order of the rest', async () => {
    // The registry writes each inventory to the apiserver; in a burst that is slower than the
    // agent sends them. Waiting inventories used to fill the backlog until the stream was ended.
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    class SlowRegistry extends InMemoryProviderRegistry {
      override async onInventory(providerName: string, inventory: Inventory): Promise<void> {
        await gate;
        super.onInventory(providerName, inventory);
      }
    }
    const registry = new SlowRegistry();
    const hub = await startHub({ registry, maxBacklog: 8 });
    const raw = rawStream(hub.port);
    const { providerName } = await registerRaw(raw, Wallet.createRandom());
    const rng = new SeededRandom(15);
    const inventories: Inventory[] = [];
    const report = (i: number) => raw.send({ $case: 'attemptStatus', value: { jobUid: `job-${i}`, epoch: 1, phase: 2, gpuSeconds: 0, exitCode: 0, reason: '', message: '', podStates: [] } });
    for (let i = 0; i < 60; i++) {
      const body = validAgentMessage(rng, 1, 'inventory').body as { $case: 'inventory'; value: Inventory };
      inventories.push(body.value);
      raw.send(body);
      if (i % 20 === 19) report(i);
    }
    // Every message reaches the hub while the registry is still held up by the first inventory:
    // wait for three more of the hub's pings (every 100 ms) before letting it go.
    const pings = () => raw.received.filter((m) => m.body?.$case === 'ping').length;
    const before = pings();
    await eventually(() => pings() >= before + 3, 'three pings');
    release();
    await eventually(() => registry.count('attemptStatus', providerName) === 3, 'the three reports');
    expect(hub.rejections).toEqual([]);
    expect(registry.inventories.get(providerName)).toEqual(inventories.at(-1));
    // The first inventory (held up), the report after inventory 19, the one after 39, then the
    // latest inventory (59: the ones between were superseded) and the report sent after it.
    const order = registry.events.filter((e) => e.type === 'inventory' || e.type === 'attemptStatus');
    expect(order.map((e) => e.type)).toEqual(['inventory', 'attemptStatus', 'attemptStatus', 'inventory', 'attemptStatus']);
    expect(order.map((e) => (e.type === 'attemptStatus' ? e.status.jobUid : ''))).toEqual(['', 'job-19', 'job-39', '', 'job-59']);
  });

  it('lets an agent answer a burst of assignments beyond its rate limit, and no more than that', async () => {
    const hub = await startHub({ rateLimit: { capacity: 20, refillPerSecond: 1 } });
    const raw = rawStream(hub.port);
    const { providerName } = await registerRaw(raw, Wallet.createRandom());
    const assigned = 50;
    for (let i = 0; i < assigned; i++) {
      const assign: HubMessage = {
        seq: 0,
        body: { $case: 'assign', value: { jobUid: `job-${i}`, epoch: 1, namespace: 'team', podTemplates: [], nodeNames: [], gpusPerReplica: 1, checkpointDir: '', gracePeriodSeconds: 30, secrets: [], secretsWithheld: false, env: [], pricePerGpuHour: '1', coveredGpuSeconds: 60 } },
      };
      expect(hub.server.send(providerName, assign)).toBe(true);
    }
    // Three reports per assigned attempt (Pending, Running, Succeeded): 150 messages, far above
    // the plain budget of 20, within what the assignments granted.
    const report = (i: number, phase: number) =>
      raw.send({ $case: 'attemptStatus', value: { jobUid: `job-${i}`, epoch: 1, phase, gpuSeconds: 0, exitCode: 0, reason: '', message: '', podStates: [] } });
    for (const phase of [1, 2, 3]) for (let i = 0; i < assigned; i++) report(i, phase);
    await eventually(() => hub.registry.count('attemptStatus', providerName) === assigned * 3, 'every report accepted');
    expect(hub.rejections).toEqual([]);
    // The grant is for the assigned work only: a flood past it still ends the stream.
    for (let i = 0; i < 200; i++) report(i % assigned, 2);
    expect((await raw.ended).code).toBe(status.RESOURCE_EXHAUSTED);
    expect(raw.hubReason()).toBe('rate_limited');
  });

  it('survives 1,000+ malformed messages on real streams without crashing or touching the registry', async () => {
    const hub = await startHub({ registrationTimeoutMs: 10_000 });
    const rng = new SeededRandom(0x6d6b74);
    const lanes = 8;
    const wallets = Array.from({ length: lanes }, () => Wallet.createRandom());
    const target = 1_050;
    let sent = 0;
    const codes = new Map<status, number>();
    const expectedCodes = new Set([status.INVALID_ARGUMENT, status.FAILED_PRECONDITION, status.UNAUTHENTICATED, status.PERMISSION_DENIED]);

    // A frame that the validator rejects for a stream whose last seq is `lastSeq`.
    const garbageFrame = (lastSeq: number): Uint8Array => {
      for (let tries = 0; tries < 100; tries++) {
        let bytes: Uint8Array;
        const roll = rng.next();
        if (roll < 0.5) {
          try {
            bytes = AgentMessage.encode(malformedAgentMessage(rng, lastSeq).input as AgentMessage).finish();
          } catch {
            continue; // not encodable: the wire cannot carry it
          }
        } else if (roll < 0.75) {
          bytes = rng.bytes(rng.int(0, 200));
        } else {
          const valid = AgentMessage.encode(validAgentMessage(rng, lastSeq + 1)).finish();
          bytes = valid.slice(0, rng.int(0, valid.length));
          for (let flips = rng.int(1, 4); flips > 0 && bytes.length > 0; flips--) bytes[rng.int(0, bytes.length - 1)] = rng.int(0, 255);
        }
        const frame = decodeAgentFrame(bytes);
        // Only real garbage counts: a mutation that happened to survive encoding is skipped.
        if (!frame.decoded || !validateAgentMessage(frame.message, lastSeq).ok) return bytes;
      }
      throw new Error('generator produced no garbage in 100 tries');
    };

    const lane = async (index: number) => {
      const wallet = wallets[index] as AnyWallet;
      while (sent < target) {
        sent++;
        const raw = rawStream(hub.port);
        const afterRegistration = rng.chance(0.5);
        if (afterRegistration) await registerRaw(raw, wallet);
        else await raw.next('challenge');
        raw.sendBytes(garbageFrame(afterRegistration ? raw.lastSeq : 0));
        const ended = await raw.ended;
        codes.set(ended.code, (codes.get(ended.code) ?? 0) + 1);
        expect(expectedCodes.has(ended.code), `status ${status[ended.code]} ${ended.details}`).toBe(true);
      }
    };
    await Promise.all(Array.from({ length: lanes }, (_, i) => lane(i)));

    expect(sent).toBeGreaterThanOrEqual(1_000);
    expect(hub.rejections.length).toBe(sent);
    expect(hub.registry.mutations()).toBe(0);
    expect(codes.get(status.INVALID_ARGUMENT) ?? 0).toBeGreaterThan(0);

    // Still serving: a well-behaved agent registers and reports.
    const good = Wallet.createRandom();
    startClient(hub.port, good, { onConnected: () => void clients.at(-1)?.sendInventory(sampleInventory(7)) });
    await eventually(() => hub.registry.inventories.has(InMemoryProviderRegistry.providerNameFor(good.address)), 'good agent inventory');
  });

  it('reconnects after a hub restart and resends its inventory', async () => {
    const first = await startHub();
    const port = first.port;
    const wallet = Wallet.createRandom();
    const name = InMemoryProviderRegistry.providerNameFor(wallet.address);
    const disconnects: DisconnectInfo[] = [];
    let connects = 0;
    const client = startClient(port, wallet, {
      onConnected: () => {
        connects++;
        client.sendInventory(sampleInventory(connects));
      },
      onDisconnected: (info) => disconnects.push(info),
    });
    await eventually(() => first.registry.inventories.has(name), 'first inventory');

    await first.server.stop();
    await eventually(() => disconnects.length > 0, 'client noticed the hub went away');
    expect(client.connected).toBe(false);
    expect(disconnects[0]?.code).toBe(status.UNAVAILABLE);
    expect(first.registry.count('disconnect', name)).toBe(1);

    const second = await startHub({ port });
    await eventually(() => second.registry.inventories.has(name), 'inventory after reconnect', 15_000);
    expect(second.registry.inventories.get(name)).toEqual(sampleInventory(connects));
    expect(connects).toBeGreaterThanOrEqual(2);
    expect(client.connected).toBe(true);

    await client.close();
    await eventually(() => second.registry.count('disconnect', name) === 1, 'disconnect after close');
    expect(client.connected).toBe(false);
  });

  it('credits no RTT to an agent that answers pings before they are sent (the ids are not guessable)', async () => {
    // The attack: sequential ids let an agent send "pong for id+1" every few ms; the first to arrive
    // after that ping went out read as a few ms, wherever the agent is (latency score, maxLatencyMs).
    const hub = await startHub({ pingIntervalMs: 50 });
    const raw = rawStream(hub.port);
    const { providerName } = await registerRaw(raw, Wallet.createRandom());
    const pingIds = () => raw.received.flatMap((m) => (m.body?.$case === 'ping' ? [m.body.value.id] : []));
    await eventually(() => pingIds().length >= 2, 'two pings');
    const guesses = setInterval(() => {
      const last = Math.max(...pingIds());
      for (let d = 1; d <= 3; d++) raw.send({ $case: 'heartbeat', value: { sentAtUnixMs: Date.now(), pongFor: last + d, bandwidthProbeResults: [] } });
    }, 10);
    try {
      const seen = pingIds().length;
      await eventually(() => pingIds().length >= seen + 10, 'ten more pings while guessing');
    } finally {
      clearInterval(guesses);
    }
    expect(hub.registry.lastHeartbeat.get(providerName)?.rttMs).toBeUndefined();
    const ids = pingIds();
    expect(ids.slice(1).filter((id, i) => id === ids[i]! + 1)).toEqual([]);
  });

  it('bounds the streams one client certificate keeps registering, so others still register', async () => {
    // The attack: with one valid certificate, hold streams open that never register (or answer
    // with junk), up to the hub's stream cap, and no other provider can reconnect.
    const hub = await startHub({ maxStreams: 20, maxRegisteringPerClient: 4, registrationTimeoutMs: 60_000 });
    const squatters = Array.from({ length: 8 }, () => rawStream(hub.port));
    await eventually(() => squatters.filter((r) => r.received.some((m) => m.body?.$case === 'challenge')).length === 4 && squatters.filter((r) => r.hubReason()).length === 4, 'four challenged, four refused');
    expect(squatters.map((r) => r.hubReason()).filter(Boolean)).toEqual(['too_many_streams', 'too_many_streams', 'too_many_streams', 'too_many_streams']);
    // Another provider's certificate still gets in.
    const other = await issueCert(pki.ca, { commonName: 'other-agent', usages: ['client'] });
    const honest = rawStream(hub.port, other);
    const { providerName } = await registerRaw(honest, Wallet.createRandom());
    expect(providerName).toBeTruthy();
  });

  it('ends a stream that sends tunnel frames for a session the hub never opened', async () => {
    const hub = await startHub();
    const raw = rawStream(hub.port);
    await registerRaw(raw, Wallet.createRandom());
    raw.send({ $case: 'tunnel', value: { sessionId: 7, frame: { $case: 'data', value: { channel: 0, data: Buffer.alloc(32 * 1024) } } } });
    expect((await raw.ended).code).toBe(status.INVALID_ARGUMENT);
    expect(raw.hubReason()).toBe('bad_format');
  });

  it('lets the agent answer every session a consumer opens without spending its own message budget', async () => {
    // The attack: a consumer asks for logs of a replica that does not exist, 60 times a second; each
    // refusal is a close frame from the agent, and past its budget the stream (every tenant's) ended.
    const hub = await startHub({ rateLimit: { capacity: 20, refillPerSecond: 1 } });
    const raw = rawStream(hub.port);
    const { providerName } = await registerRaw(raw, Wallet.createRandom());
    for (let i = 0; i < 100; i++) {
      const session = hub.server.openTunnel(providerName, TunnelOpen.fromPartial({ kind: TunnelKind.TUNNEL_KIND_LOG, jobUid: 'j', epoch: 1, replica: 4095, tailLines: -1 }));
      expect(session).toBeDefined();
      await eventually(() => raw.received.filter((m) => m.body?.$case === 'tunnel').length > i, `open ${i}`);
      const open = raw.received.filter((m) => m.body?.$case === 'tunnel').at(-1)!.body as { value: { sessionId: number } };
      raw.send({ $case: 'tunnel', value: { sessionId: open.value.sessionId, frame: { $case: 'close', value: { error: 'no such replica', reason: 'not_attempt_pod', hasExitCode: false, exitCode: 0 } } } });
      await eventually(() => session!.isClosed, `close ${i}`);
    }
    expect(raw.hubReason()).toBeUndefined();
    expect(hub.rejections).toEqual([]);
  });

  it('takes the line-by-line log data an agent sent before it saw the hub close the session, and ends a stream that keeps sending past a window of it', async () => {
    const hub = await startHub({ rateLimit: { capacity: 20, refillPerSecond: 1 } });
    const raw = rawStream(hub.port);
    const { providerName } = await registerRaw(raw, Wallet.createRandom());
    const session = hub.server.openTunnel(providerName, TunnelOpen.fromPartial({ kind: TunnelKind.TUNNEL_KIND_LOG, jobUid: 'j', epoch: 1, follow: true, tailLines: -1 }))!;
    await eventually(() => raw.received.some((m) => m.body?.$case === 'tunnel'), 'the open');
    const id = (raw.received.find((m) => m.body?.$case === 'tunnel')!.body as { value: { sessionId: number } }).value.sessionId;
    raw.send({ $case: 'tunnel', value: { sessionId: id, frame: { $case: 'opened', value: { initialWindow: 256 * 1024 } } } });
    await session.opened;
    session.close({ error: '', reason: '' }); // the consumer pressed Ctrl-C
    // What was in flight: 2,000 log lines of 40 bytes, a frame each (80 KB: two tokens' worth).
    const line = Buffer.from('step 1000 loss 0.123 lr 0.0003 gpu 98%\n');
    for (let i = 0; i < 2_000; i++) raw.send({ $case: 'tunnel', value: { sessionId: id, frame: { $case: 'data', value: { channel: 0, data: line } } } });
    raw.send({ $case: 'heartbeat', value: { sentAtUnixMs: Date.now(), pongFor: 0, bandwidthProbeResults: [] } });
    await eventually(() => (hub.registry.lastHeartbeat.get(providerName) !== undefined), 'the heartbeat after it');
    expect(raw.hubReason()).toBeUndefined();
    // Far past any window: megabytes of data for a closed session end the stream.
    const chunk = Buffer.alloc(32 * 1024);
    for (let i = 0; i < 200; i++) raw.send({ $case: 'tunnel', value: { sessionId: id, frame: { $case: 'data', value: { channel: 0, data: chunk } } } });
    expect((await raw.ended).code).toBe(status.RESOURCE_EXHAUSTED);
    expect(raw.hubReason()).toBe('rate_limited');
  });

  it('with certificates bound to wallets (the hub default), refuses a wallet its client certificate does not name', async () => {
    // The attack: one certificate registers any number of wallets, each a GpuProvider, metric
    // series and stream budget of its own (and Ready identities that shift the mass-silence count).
    const hub = await startHub({ authorizePeer: certificateNamesWallet });
    const owner = Wallet.createRandom();
    const cert = await issueCert(pki.ca, { commonName: owner.address, usages: ['client'] });
    const other = rawStream(hub.port, cert);
    const challenge = await challengeOf(other);
    const stranger = Wallet.createRandom();
    hello(other, stranger.address);
    other.send({ $case: 'registerProof', value: await signChallenge(stranger, challenge, stranger.address) });
    expect((await other.ended).code).toBe(status.PERMISSION_DENIED);
    expect(other.hubReason()).toBe('certificate_mismatch');
    const own = rawStream(hub.port, cert);
    const { providerName } = await registerRaw(own, owner);
    expect(providerName).toBeTruthy();
  });

  it('measures RTT and bandwidth from pings and the probe', async () => {
    const hub = await startHub({ bandwidthProbeBytes: 256 * 1024 });
    const wallet = Wallet.createRandom();
    const name = InMemoryProviderRegistry.providerNameFor(wallet.address);
    startClient(hub.port, wallet);
    await eventually(() => {
      const last = hub.registry.lastHeartbeat.get(name);
      return (last?.rttMs ?? 0) > 0 && (last?.bandwidthMbps ?? 0) > 0;
    }, 'rtt and bandwidth in a heartbeat');
    const latency = hub.server.providerLatency(name);
    expect(latency?.rttMs).toBeGreaterThan(0);
    expect(latency?.rttMs).toBeLessThan(1_000);
    expect(latency?.bandwidthMbps).toBeGreaterThan(0);
    const again = await hub.server.probeBandwidth(name);
    expect(again).toBeGreaterThan(0);
  });

  it('sends the probe in pieces of fresh random bytes and measures only once every piece is answered with its SHA-256', async () => {
    // The hub's monotonic clock moves only when the test says, so the bandwidth is exact: no pong
    // is answered (no RTT), and the round takes the 320 ms set below.
    let nowMs = 1_000;
    const hub = await startHub({
      bandwidthProbeBytes: 40_000,
      bandwidthProbePieceBytes: 16_000,
      pingIntervalMs: 60_000,
      heartbeatIntervalMs: 10_000,
      clock: { monotonicMs: () => nowMs },
    });
    const probesOf = async (raw: RawStream) => {
      await eventually(() => raw.received.filter((m) => m.body?.$case === 'bandwidthProbe').length >= 3, 'three probe pieces');
      return raw.received.flatMap((m) => (m.body?.$case === 'bandwidthProbe' ? [m.body.value] : []));
    };
    const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest();
    const answer = (raw: RawStream, probeId: number, digest: Uint8Array) =>
      raw.send({ $case: 'bandwidthProbeData', value: { probeId, payload: Buffer.alloc(0), payloadSha256: Buffer.from(digest) } });
    const echo = (raw: RawStream, probeId: number, payload: Uint8Array) =>
      raw.send({ $case: 'bandwidthProbeData', value: { probeId, payload: Buffer.from(payload), payloadSha256: Buffer.alloc(0) } });

    const honest = rawStream(hub.port);
    const { providerName } = await registerRaw(honest, Wallet.createRandom());
    const registered = honest.received.find((m) => m.body?.$case === 'registered')?.body;
    expect(registered?.$case === 'registered' && registered.value.probeDigestAccepted).toBe(true);
    const pieces = await probesOf(honest);
    expect(pieces.map((p) => p.payload.byteLength)).toEqual([16_000, 16_000, 8_000]);
    expect(pieces.map((p) => p.id)).toEqual([pieces[0]!.id, pieces[0]!.id + 1, pieces[0]!.id + 2]);
    answer(honest, pieces[0]!.id, sha256(pieces[0]!.payload));
    echo(honest, pieces[1]!.id, pieces[1]!.payload); // an agent from before the digest echoes; still accepted
    answer(honest, pieces[1]!.id, sha256(pieces[1]!.payload)); // a repeat does not stand in for the missing piece
    // Wait for the repeat to be handled (a heartbeat behind it is answered in order), then check.
    honest.send({ $case: 'heartbeat', value: { sentAtUnixMs: Date.now(), pongFor: 0, bandwidthProbeResults: [] } });
    await eventually(() => hub.registry.count('heartbeat', providerName) >= 1, 'the heartbeat after the answers');
    expect(hub.server.providerLatency(providerName)?.bandwidthMbps).toBeUndefined();
    nowMs += 320;
    answer(honest, pieces[2]!.id, sha256(pieces[2]!.payload));
    await eventually(() => (hub.server.providerLatency(providerName)?.bandwidthMbps ?? 0) > 0, 'bandwidth after the last piece');
    // 40,000 bytes to the agent in 320 ms is 1 Mbit/s: every piece counts once, the echoed one too
    // (its way back overlaps the sending; counting it twice would flatter echoing agents).
    expect(hub.server.providerLatency(providerName)?.bandwidthMbps).toBeCloseTo(1, 9);

    // Another agent gets other bytes, and a digest that is not of its piece ends its stream: here
    // the digest of its next piece, which it could only have by receiving that piece first.
    const forger = rawStream(hub.port);
    await registerRaw(forger, Wallet.createRandom());
    const theirs = await probesOf(forger);
    expect(Buffer.from(theirs[0]!.payload).equals(Buffer.from(pieces[0]!.payload))).toBe(false);
    answer(forger, theirs[0]!.id, sha256(theirs[1]!.payload));
    expect((await forger.ended).code).toBe(status.INVALID_ARGUMENT);
    expect(forger.hubReason()).toBe('probe_mismatch');

    // Nor does the digest of the honest agent's piece (what a colluder could pass on) count.
    const copier = rawStream(hub.port);
    await registerRaw(copier, Wallet.createRandom());
    const copied = await probesOf(copier);
    answer(copier, copied[0]!.id, sha256(pieces[0]!.payload));
    expect((await copier.ended).code).toBe(status.INVALID_ARGUMENT);
    expect(copier.hubReason()).toBe('probe_mismatch');

    // An answer to a piece never sent is refused too.
    const early = rawStream(hub.port);
    await registerRaw(early, Wallet.createRandom());
    const own = await probesOf(early);
    answer(early, own[2]!.id + 1, sha256(own[0]!.payload));
    expect((await early.ended).code).toBe(status.INVALID_ARGUMENT);
    expect(early.hubReason()).toBe('unexpected_probe');

    // Bytes and digest both, or a digest that is not 32 bytes, is a malformed message.
    for (const value of [
      { payload: Buffer.from(own[0]!.payload), payloadSha256: sha256(own[0]!.payload) },
      { payload: Buffer.alloc(0), payloadSha256: sha256(own[0]!.payload).subarray(0, 31) },
    ]) {
      const malformed = rawStream(hub.port);
      await registerRaw(malformed, Wallet.createRandom());
      const mine = await probesOf(malformed);
      malformed.send({ $case: 'bandwidthProbeData', value: { probeId: mine[0]!.id, ...value } });
      expect((await malformed.ended).code).toBe(status.INVALID_ARGUMENT);
    }
    expect(hub.rejections.slice(0, 3)).toEqual(['probe_mismatch', 'probe_mismatch', 'unexpected_probe']);
    expect(hub.rejections.slice(3)).toEqual(['inconsistent', 'bad_format']);
  });

  it('lets a new stream for the same wallet replace the old one', async () => {
    const hub = await startHub();
    const wallet = Wallet.createRandom();
    const old = rawStream(hub.port);
    const { providerName } = await registerRaw(old, wallet);
    const replacement = rawStream(hub.port);
    await registerRaw(replacement, wallet);

    expect((await old.ended).code).toBe(status.ABORTED);
    expect(old.hubReason()).toBe('stream_replaced');
    expect(hub.server.connectedProviders()).toEqual([providerName]);
    // Replacement is not a disconnect: the provider never went away.
    expect(hub.registry.count('disconnect')).toBe(0);
    expect(hub.rejections).toEqual([]);

    expect(hub.server.send(providerName, { seq: 0, body: { $case: 'cancel', value: { jobUid: 'abc', epoch: 3, reason: 'Preempted', gracePeriodSeconds: 10 } } })).toBe(true);
    const cancel = await replacement.next('cancel');
    expect(cancel).toMatchObject({ jobUid: 'abc', epoch: 3 });

    replacement.end();
    await replacement.ended;
    await eventually(() => hub.registry.count('disconnect', providerName) === 1, 'disconnect of the live stream');
    expect(hub.server.connectedProviders()).toEqual([]);
  });
  it('backs off exponentially against an unreachable hub, and close() cancels the pending retry', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const address = probe.address();
        probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    const delays: number[] = [];
    const pending = new Set<NodeJS.Timeout>();
    const timers: StreamClientTimers = {
      setTimeout: (callback, ms) => {
        delays.push(ms);
        const handle = setTimeout(() => {
          pending.delete(handle);
          callback();
        }, ms);
        pending.add(handle);
        return handle;
      },
      clearTimeout: (handle) => {
        clearTimeout(handle as NodeJS.Timeout);
        pending.delete(handle as NodeJS.Timeout);
      },
    };
    const disconnects: DisconnectInfo[] = [];
    const client = startClient(port, Wallet.createRandom(), {
      timers,
      random: () => 0, // no jitter: the delays are the exponential ceiling
      backoff: { initialMs: 20, maxMs: 80, multiplier: 2, jitter: 0.5 },
      registrationTimeoutMs: 5_000,
      onDisconnected: (info) => disconnects.push(info),
    });
    await eventually(() => disconnects.length >= 5, 'five failed attempts');
    expect(disconnects.slice(0, 5).map((d) => d.retryInMs)).toEqual([20, 40, 80, 80, 80]);
    expect(disconnects.every((d) => d.code === status.UNAVAILABLE)).toBe(true);
    expect(delays.filter((ms) => ms !== 5_000).slice(0, 5)).toEqual([20, 40, 80, 80, 80]);

    await client.close();
    expect(pending.size).toBe(0);
    const attempts = disconnects.length;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(disconnects.length).toBe(attempts);
    expect(client.connected).toBe(false);
  });
});
