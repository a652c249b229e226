// The hub's edge in front of the real provider registry: refused agents and garbage on the wire
// must leave every GpuProvider in the apiserver exactly as it was.
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { Wallet } from 'ethers';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AgentMessage, type MarketplaceClient } from '../../operator/src/gen/proto/fedgpu/v1/market.js';
import { MarketServer } from '../../operator/src/hub/market/server.js';
import { KubeProviderRegistry } from '../../operator/src/hub/providers/registry.js';
import { KubeProviderStore } from '../../operator/src/hub/providers/store.js';
import { malformedAgentMessage } from '../../operator/src/protocol/testing/agent-messages.js';
import { SeededRandom } from '../../operator/src/protocol/testing/seeded-random.js';
import { signChallenge } from '../../operator/src/protocol/wallet-proof.js';
import { gpuProviderClient } from '../../operator/src/runtime/kube.js';
import { runKubectl } from '../../operator/src/testbed/kubectl.js';
import { hubIdentity } from '../../operator/src/testbed/federation.js';
import { repoRoot } from '../../operator/src/testbed/tools.js';
import { waitFor } from '../../operator/src/testbed/wait.js';
import { createCa, issueCert, type CertificateAuthority, type IssuedCertificate } from '../../operator/src/tls/certs.js';
import { challengeOf, hello, RawStream, registerRaw } from '../support/raw-stream.js';

const kubeconfig = inject('kubeconfig');
const silent = pino({ level: process.env.DEBUG_HUB ? 'debug' : 'silent' });
let ca: CertificateAuthority;
let agentCert: IssuedCertificate;
let server: MarketServer;
const clients: MarketplaceClient[] = [];

beforeAll(async () => {
  const crds = join(repoRoot, 'crds');
  expect((await runKubectl(kubeconfig, ['apply', '--server-side', '-f', crds])).code).toBe(0);
  expect((await runKubectl(kubeconfig, ['wait', '--for=condition=Established', '--timeout=60s', '-f', crds])).code).toBe(0);
  // The apiserver answers 429 "storage is (re)initializing" for a moment after a CRD changes.
  await waitFor('gpuproviders to be served', async () => ((await providersNow()) ? true : undefined), { timeoutMs: 30_000 });
  ca = await createCa('fedgpu hub CA');
  const hubCert = await issueCert(ca, { commonName: 'fedgpu-hub', dnsNames: ['fedgpu-hub'], usages: ['server'] });
  agentCert = await issueCert(ca, { commonName: 'agent', usages: ['client'] });
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  server = new MarketServer({
    tls: { caPem: ca.certPem, certPem: hubCert.certPem, keyPem: hubCert.keyPem },
    // The registry writes as the chart's hub identity (the test reads as admin).
    registry: new KubeProviderRegistry({ store: new KubeProviderStore((await hubIdentity({ kubeconfigPath: kubeconfig })).kubeConfig), logger: silent }),
    audience: 'fedgpu-hub.test',
    logger: silent,
    registrationTimeoutMs: 10_000,
  });
  await server.start();
});

afterAll(async () => {
  for (const c of clients) c.close();
  await server?.stop();
});

const raw = (cert: IssuedCertificate | null = agentCert) =>
  new RawStream({ port: server.port, caPem: ca.certPem, cert, serverName: 'fedgpu-hub', clients });

/** Every GpuProvider's name, resourceVersion and status: what must not move. */
async function providersNow(): Promise<string> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const list = await gpuProviderClient(kc.makeApiClient(CustomObjectsApi)).list();
  return JSON.stringify(list.items.map((p) => [p.metadata.name, p.metadata.resourceVersion, p.status]).sort());
}

describe('hub edge with the Kubernetes provider registry', () => {
  it('registers a proven wallet as a GpuProvider, and refused agents change nothing', async () => {
    const owner = Wallet.createRandom();
    const registered = raw();
    const { proof, providerName } = await registerRaw(registered, owner);
    expect(providerName).toBe(`gp-${owner.address.toLowerCase().slice(2, 14)}`);
    const before = await providersNow();
    expect(before).toContain(providerName);

    // No client certificate, and a certificate from another CA: refused at the TLS handshake.
    const rogueCa = await createCa('fedgpu hub CA');
    for (const cert of [null, await issueCert(rogueCa, { commonName: 'agent', usages: ['client'] })]) {
      const s = raw(cert);
      hello(s, Wallet.createRandom().address);
      expect((await s.ended).code).toBe(status.UNAVAILABLE);
    }
    // A proof signed by another wallet than the one claimed.
    const forged = raw();
    const challenge = await challengeOf(forged);
    hello(forged, owner.address);
    forged.send({ $case: 'registerProof', value: await signChallenge(Wallet.createRandom(), challenge, owner.address) });
    expect((await forged.ended).code).toBe(status.UNAUTHENTICATED);
    // The owner's own proof, replayed on a new stream.
    const replay = raw();
    await challengeOf(replay);
    hello(replay, owner.address);
    replay.send({ $case: 'registerProof', value: proof });
    expect((await replay.ended).code).toBe(status.UNAUTHENTICATED);
    // A registered stream that reports for another wallet, and one that sends a corrupt inventory.
    registered.send({
      $case: 'usageReceipt',
      value: { jobUid: 'job-1', epoch: 1, gpuSeconds: 10, pricePerGpuHour: '1', amount: '0', signature: `0x${'11'.repeat(65)}`, providerWallet: Wallet.createRandom().address, usageHash: `0x${'00'.repeat(32)}` },
    });
    expect((await registered.ended).code).toBe(status.PERMISSION_DENIED);

    expect(await providersNow()).toBe(before);
  });

  it('survives 1,000 malformed messages without a crash or a GpuProvider change', async () => {
    const before = await providersNow();
    const rng = new SeededRandom(0xfed6);
    let refused = 0;
    for (let lane = 0; lane < 1_000; lane += 20) {
      await Promise.all(Array.from({ length: 20 }, async () => {
        const s = raw();
        await challengeOf(s);
        let bytes: Uint8Array;
        try {
          bytes = AgentMessage.encode(malformedAgentMessage(rng, 0).input as AgentMessage).finish();
        } catch {
          bytes = rng.bytes(rng.int(1, 64));
        }
        s.sendBytes(bytes);
        const ended = await s.ended;
        if (ended.code !== status.OK) refused++;
      }));
    }
    expect(refused).toBe(1_000);
    expect(await providersNow()).toBe(before);
    // Still serving.
    const s = raw();
    const { providerName } = await registerRaw(s, Wallet.createRandom());
    expect(providerName).toMatch(/^gp-[0-9a-f]{12}$/);
    s.end();
  });
});
