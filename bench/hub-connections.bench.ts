// Issue 15: the hub's native memory per agent connection. The marketplace server alone (compiled,
// as the image runs it, with the chart's NODE_OPTIONS and an in-memory registry) in a child
// process; N agents register over mutual TLS with wallet proofs, answer pings and the bandwidth
// probe, and heartbeat. Prints the server's memory by kind (bench/support.ts memoryMap) with no
// agents, with N, and after a full GC: the glibc brk heap is where TLS and http2 sessions, and the
// buffers of the bandwidth probe, live; freed, it is not handed back.
// Run: tsx bench/hub-connections.bench.ts [agents=300] [probeBytes=65536] [probePieceBytes=16000]
//   (the hub's defaults; the chart's NODE_OPTIONS and GLIBC_TUNABLES for the hub are applied;
//   EXTRA_NODE_FLAGS='--max-semi-space-size=16' adds V8 flags; GLIBC_TUNABLES in the environment wins.)
//   BENCH_HUB_LD_PRELOAD and BENCH_HUB_MALLOC_CONF: another allocator in the server alone (jemalloc).
//   BENCH_HUB_TLS_TICKETS=0: the server sends no TLS 1.3 session tickets (an OpenSSL config file
//   through OPENSSL_CONF); EXTRA_NODE_FLAGS=--tls-max-v1.2 caps it at TLS 1.2.
//   BENCH_PROBE_ECHO=1: agents echo each probe piece whole (agents before the digest) instead of
//   answering with its SHA-256 as the real agent does.
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as connectTls } from 'node:tls';
import { pathToFileURL } from 'node:url';
import { credentials } from '@grpc/grpc-js';
import { Wallet } from 'ethers';
import { AgentMessage, HubMessage, MarketplaceClient, MarketplaceService } from '../operator/src/gen/proto/fedgpu/v1/market.js';
import { signChallenge } from '../operator/src/protocol/wallet-proof.js';
import { hubPki } from '../operator/src/testbed/federation.js';
import { repoRoot } from '../operator/src/testbed/tools.js';
import { issueCert } from '../operator/src/tls/certs.js';
import { chartGlibcTunables, chartNodeFlags, hubAllocatorEnv, transpileOperator, liveHeap, loadLine, machineLine, mapLimit, memoryMap, memoryMapLine, benchProbeAnswer, benchProbeAnswerKind, section, sleep, figure } from './support.js';

const AGENTS = Math.max(1, Number(process.argv[2] ?? 0) || 300);
const PROBE_BYTES = Math.max(0, Number(process.argv[3] ?? 65_536));
const PROBE_PIECE_BYTES = Math.max(1, Number(process.argv[4] ?? 16_000));

console.log('== hub native memory per agent connection (issue 15)');
console.log(machineLine());
const mainJs = transpileOperator();
const dist = join(mainJs, '..', '..');
const dir = join(repoRoot, '.testbed', 'bench-hub-connections', String(process.pid));
mkdirSync(dir, { recursive: true });
const pki = await hubPki(dir);
writeFileSync(join(dir, 'server.crt'), pki.server.certPem);
writeFileSync(join(dir, 'server.key'), pki.server.keyPem, { mode: 0o600 });
const client = await issueCert(pki.ca, { commonName: 'bench-agents', usages: ['client'] });
const server = `
import { readFileSync } from 'node:fs';
import { MarketServer } from ${JSON.stringify(pathToFileURL(join(dist, 'hub', 'market', 'server.js')).href)};
import { InMemoryProviderRegistry } from ${JSON.stringify(pathToFileURL(join(dist, 'hub', 'market', 'memory-registry.js')).href)};
const dir = ${JSON.stringify(dir)};
const server = new MarketServer({
  tls: { caPem: readFileSync(dir + '/ca.crt', 'utf8'), certPem: readFileSync(dir + '/server.crt', 'utf8'), keyPem: readFileSync(dir + '/server.key', 'utf8') },
  registry: new InMemoryProviderRegistry(1000), audience: 'fedgpu-hub', bandwidthProbeBytes: ${PROBE_BYTES}, bandwidthProbePieceBytes: ${PROBE_PIECE_BYTES}, maxStreams: ${AGENTS + 100},
  logger: (await import('pino')).pino({ level: 'warn' }),
});
console.log(JSON.stringify({ port: await server.start() }));
setInterval(() => {}, 60_000);`;
const logPath = join(dir, 'server.log');
// OpenSSL's system defaults for the server alone: no session tickets after the handshake.
const noTickets = process.env.BENCH_HUB_TLS_TICKETS === '0';
if (noTickets) {
  writeFileSync(join(dir, 'openssl.cnf'), ['nodejs_conf = fedgpu_tls', '[fedgpu_tls]', 'ssl_conf = ssl_section', '[ssl_section]', 'system_default = tls_defaults', '[tls_defaults]', 'Options = -SessionTicket', 'NumTickets = 0', ''].join('\n'));
}
const tunables = chartGlibcTunables('hub');
const flags = [...chartNodeFlags('hub'), ...(process.env.EXTRA_NODE_FLAGS?.split(' ').filter(Boolean) ?? [])];
console.log(`server                 MarketServer + in-memory registry, compiled; node ${flags.join(' ')}; probe ${PROBE_BYTES} bytes in pieces of ${PROBE_PIECE_BYTES}${tunables ? `; GLIBC_TUNABLES=${tunables}` : ''}${noTickets ? '; no TLS session tickets' : ''}; agents answer the probe ${benchProbeAnswerKind}`);
// cwd inside the repository, so the child resolves pino and grpc-js from its node_modules.
const logFd = openSync(logPath, 'w');
const child = spawn(process.execPath, [...flags, '--inspect=127.0.0.1:0', '--input-type=module', '-e', server], { cwd: repoRoot, env: { ...process.env, ...hubAllocatorEnv(tunables), ...(noTickets ? { OPENSSL_CONF: join(dir, 'openssl.cnf') } : {}) }, stdio: ['ignore', logFd, logFd] });
const agentTimers: NodeJS.Timeout[] = [];
try {
  let port = 0;
  for (let i = 0; i < 150 && !port; i++) {
    await sleep(200);
    port = Number(/\{"port":(\d+)\}/.exec(readFileSync(logPath, 'utf8'))?.[1] ?? 0);
  }
  if (!port) throw new Error(`the server did not start; see ${logPath}`);
  await sleep(1_000);
  // What the server sends after a handshake, seen from one client: the tickets the knob turns off.
  const tickets = await new Promise<number>((resolve) => {
    let count = 0;
    const socket = connectTls({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.ca.certPem, cert: client.certPem, key: client.keyPem, ALPNProtocols: ['h2'] });
    const done = () => (socket.destroy(), resolve(count));
    const giveUp = setTimeout(done, 10_000);
    socket.on('session', () => count++);
    socket.on('error', () => (clearTimeout(giveUp), done()));
    socket.on('secureConnect', () => (clearTimeout(giveUp), setTimeout(done, 500)));
  });
  figure('TLS session tickets per connection', String(tickets));
  section('memory of the server process');
  figure('no agents', memoryMapLine((await memoryMap(child.pid!, logPath))!));
  const creds = () => credentials.createSsl(Buffer.from(pki.ca.certPem), Buffer.from(client.keyPem), Buffer.from(client.certPem));
  await mapLimit(Array.from({ length: AGENTS }, (_, i) => i), 16, async () => {
    const wallet = Wallet.createRandom();
    const c = new MarketplaceClient(`127.0.0.1:${port}`, creds(), { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' });
    const call = c.makeBidiStreamRequest(MarketplaceService.connect.path, (b: Uint8Array) => Buffer.from(b), (b: Buffer) => HubMessage.decode(b));
    let seq = 0;
    const send = (body: NonNullable<AgentMessage['body']>) => call.write(AgentMessage.encode({ seq: ++seq, body }).finish());
    call.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no Registered in 60 s')), 60_000);
      call.on('data', (m: HubMessage) => {
        const b = m.body;
        if (b?.$case === 'challenge') {
          send({ $case: 'hello', value: { walletAddress: wallet.address, agentVersion: 'bench', protocolVersion: 1 } });
          void signChallenge(wallet, { nonce: b.value.nonce, audience: b.value.audience, expiresAtUnixMs: b.value.expiresAtUnixMs }, wallet.address).then((p) => send({ $case: 'registerProof', value: p }));
        } else if (b?.$case === 'registered') {
          clearTimeout(timer);
          agentTimers.push(setInterval(() => send({ $case: 'heartbeat', value: { sentAtUnixMs: Date.now(), pongFor: 0, bandwidthProbeResults: [] } }), b.value.heartbeatIntervalMs || 5_000));
          resolve();
        } else if (b?.$case === 'ping') send({ $case: 'heartbeat', value: { sentAtUnixMs: Date.now(), pongFor: b.value.id, bandwidthProbeResults: [] } });
        else if (b?.$case === 'bandwidthProbe') send({ $case: 'bandwidthProbeData', value: benchProbeAnswer(b.value) });
      });
    });
  });
  await sleep(15_000);
  figure(`${AGENTS} agents, 15 s after the last`, memoryMapLine((await memoryMap(child.pid!, logPath))!));
  await liveHeap(logPath);
  await sleep(2_000);
  figure('  after a full GC', memoryMapLine((await memoryMap(child.pid!, logPath))!));
} catch (err) {
  console.log(`bench stopped early: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  for (const t of agentTimers) clearInterval(t);
  child.kill();
}
console.log(`\n(total ${process.uptime().toFixed(0)} s; ${loadLine()})`);
process.exit(0);
