// A consumer must not be able to make its provider look lost. Log, exec and port-forward bytes share
// the agent's stream with its heartbeats, so on a slow uplink a consumer pulling data holds the
// next heartbeat back; counted only at the heartbeat, that silence turned the provider NotReady
// after providerLostAfter, and its attempts were blamed on it (and slashed). Against a real
// kube-apiserver and real gRPC/mTLS: every message the agent sends counts as hearing from it.
import { join } from 'node:path';
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { Wallet } from 'ethers';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { GpuProvider } from '../../operator/src/api/types.js';
import { TunnelKind, TunnelOpen, type MarketplaceClient } from '../../operator/src/gen/proto/fedgpu/v1/market.js';
import { MarketServer } from '../../operator/src/hub/market/server.js';
import { KubeProviderRegistry } from '../../operator/src/hub/providers/registry.js';
import { KubeProviderStore } from '../../operator/src/hub/providers/store.js';
import { customResourceSource } from '../../operator/src/runtime/informer-sources.js';
import { Informer } from '../../operator/src/runtime/informer.js';
import { gpuProviderClient } from '../../operator/src/runtime/kube.js';
import { silentLogger } from '../../operator/src/runtime/logger.js';
import { runKubectl } from '../../operator/src/testbed/kubectl.js';
import { hubIdentity } from '../../operator/src/testbed/federation.js';
import { repoRoot } from '../../operator/src/testbed/tools.js';
import { waitFor } from '../../operator/src/testbed/wait.js';
import { createCa, issueCert, type CertificateAuthority, type IssuedCertificate } from '../../operator/src/tls/certs.js';
import { RawStream, registerRaw } from '../support/raw-stream.js';

const kubeconfig = inject('kubeconfig');
const silent = pino({ level: 'silent' });
const LOST_AFTER_MS = 3_000;
const HEARTBEAT_MS = 200;

let ca: CertificateAuthority;
let agentCert: IssuedCertificate;
let server: MarketServer;
let registry: KubeProviderRegistry;
let providers: Informer<GpuProvider>;
const clients: MarketplaceClient[] = [];
const lost = new Set<string>();

beforeAll(async () => {
  const crds = join(repoRoot, 'crds');
  expect((await runKubectl(kubeconfig, ['apply', '--server-side', '-f', crds])).code).toBe(0);
  expect((await runKubectl(kubeconfig, ['wait', '--for=condition=Established', '--timeout=60s', '-f', crds])).code).toBe(0);
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const client = gpuProviderClient(kc.makeApiClient(CustomObjectsApi));
  await waitFor('gpuproviders to be served', async () => ((await client.list()) ? true : undefined), { timeoutMs: 30_000 });
  providers = new Informer(customResourceSource(client), { kubeConfig: kc, logger: silentLogger });
  await providers.start();
  ca = await createCa('fedgpu hub CA');
  const hubCert = await issueCert(ca, { commonName: 'fedgpu-hub', dnsNames: ['fedgpu-hub'], usages: ['server'] });
  agentCert = await issueCert(ca, { commonName: 'agent', usages: ['client'] });
  registry = new KubeProviderRegistry({
    store: new KubeProviderStore((await hubIdentity({ kubeconfigPath: kubeconfig })).kubeConfig),
    logger: silent,
    providerLostAfterMs: LOST_AFTER_MS,
    onProviderLost: (name) => void lost.add(name),
  });
  server = new MarketServer({
    tls: { caPem: ca.certPem, certPem: hubCert.certPem, keyPem: hubCert.keyPem },
    registry,
    audience: 'fedgpu-hub.test',
    logger: silent,
    registrationTimeoutMs: 10_000,
  });
  await server.start();
});

afterAll(async () => {
  for (const c of clients) c.close();
  await server?.stop();
  await providers?.stop();
});

const readyOf = (name: string) => providers.get(name)?.status?.conditions?.find((c) => c.type === 'Ready');

interface Agent {
  raw: RawStream;
  name: string;
  heartbeats?: NodeJS.Timeout;
}

async function connectAgent(): Promise<Agent> {
  const raw = new RawStream({ port: server.port, caPem: ca.certPem, cert: agentCert, serverName: 'fedgpu-hub', clients });
  const { providerName } = await registerRaw(raw, Wallet.createRandom());
  raw.send({ $case: 'inventory', value: { pools: [], unisolatedNamespaces: [] } });
  const agent: Agent = { raw, name: providerName };
  agent.heartbeats = setInterval(() => raw.send({ $case: 'heartbeat', value: { sentAtUnixMs: Date.now(), pongFor: 0, bandwidthProbeResults: [] } }), HEARTBEAT_MS);
  return agent;
}

describe('provider liveness while tunnel data holds heartbeats back', () => {
  it('keeps a provider Ready while its agent streams a consumer its logs without heartbeats, and loses it once nothing arrives', async () => {
    const [streaming, silentAgent, steady] = [await connectAgent(), await connectAgent(), await connectAgent()];
    const agents = [streaming, silentAgent, steady];
    let data: NodeJS.Timeout | undefined;
    // The hub checks heartbeats every second; a check held up for half of providerLostAfter would
    // give everyone a fresh grace (registry.ts), so this one runs on a steady short period.
    const checks = setInterval(() => void registry.checkHeartbeats(), 250);
    try {
      await waitFor('every provider Ready', async () => (agents.every((a) => readyOf(a.name)?.status === 'True') ? true : undefined), { timeoutMs: 30_000 });

      // A consumer follows a log through the hub; the agent answers with data only (its heartbeats
      // stuck behind it on the link, as on a slow uplink).
      const session = server.openTunnel(streaming.name, TunnelOpen.fromPartial({ kind: TunnelKind.TUNNEL_KIND_LOG, jobUid: 'job-uid', epoch: 1, follow: true, tailLines: -1 }));
      expect(session).toBeDefined();
      let received = 0;
      session!.onData = (_channel, bytes) => {
        received += bytes.byteLength;
        session!.delivered(bytes.byteLength);
      };
      const open = await streaming.raw.next('tunnel');
      expect(open.frame?.$case).toBe('open');
      streaming.raw.send({ $case: 'tunnel', value: { sessionId: open.sessionId, frame: { $case: 'opened', value: { initialWindow: 64 * 1024 } } } });
      await session!.opened;
      const line = Buffer.from('step 1000 loss 0.123\n'.repeat(20));
      data = setInterval(() => streaming.raw.send({ $case: 'tunnel', value: { sessionId: open.sessionId, frame: { $case: 'data', value: { channel: 0, data: line } } } }), 250);

      // Both go quiet on heartbeats at the same moment; only one keeps sending anything.
      clearInterval(streaming.heartbeats);
      clearInterval(silentAgent.heartbeats);
      const quietSince = Date.now();

      await waitFor('the silent provider lost', async () => (lost.has(silentAgent.name) ? true : undefined), { timeoutMs: LOST_AFTER_MS + 10_000 });
      expect(Date.now() - quietSince).toBeGreaterThanOrEqual(LOST_AFTER_MS);
      expect(received).toBeGreaterThan(0);
      // Before: lost in the same check (no heartbeat for providerLostAfter), blamed for its attempts.
      expect(lost.has(streaming.name)).toBe(false);
      expect(registry.heartbeatAgeMs(streaming.name)!).toBeLessThan(LOST_AFTER_MS);
      await waitFor('the silent provider NotReady in its status', async () => (readyOf(silentAgent.name)?.status === 'False' ? true : undefined), { timeoutMs: 10_000 });
      expect(readyOf(silentAgent.name)?.reason).toBe('HeartbeatMissed');
      expect(readyOf(streaming.name)?.status).toBe('True');
      expect(lost.has(steady.name)).toBe(false);

      // Once nothing at all arrives, the same provider is lost as any other.
      clearInterval(data);
      await waitFor('the streaming provider lost once its data stops', async () => (lost.has(streaming.name) ? true : undefined), { timeoutMs: LOST_AFTER_MS + 10_000 });
      expect(lost.has(steady.name)).toBe(false);
    } finally {
      clearInterval(checks);
      clearInterval(data);
      for (const a of agents) {
        clearInterval(a.heartbeats);
        a.raw.end();
      }
    }
  });
});
