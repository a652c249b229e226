// The hub's edge in front of the real provider registry: refused agents and garbage on the wire
// must leave every GpuProvider in the apiserver exactly as it was.
import { status } from '@grpc/grpc-js';
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { Wallet } from 'ethers';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AgentMessage } from '../../operator/src/gen/proto/fedgpu/v1/market.js';
import { malformedAgentMessage } from '../../operator/src/protocol/testing/agent-messages.js';
import { SeededRandom } from '../../operator/src/protocol/testing/seeded-random.js';
import { signChallenge } from '../../operator/src/protocol/wallet-proof.js';
import { gpuProviderClient } from '../../operator/src/runtime/kube.js';
import { createCa, issueCert, type IssuedCertificate } from '../../operator/src/tls/certs.js';
import { challengeOf, hello, registerRaw } from '../support/raw-stream.js';
import { startRegistryHub, type RegistryHub } from '../support/registry-hub.js';

const kubeconfig = inject('kubeconfig');
let hub: RegistryHub;

beforeAll(async () => {
  hub = await startRegistryHub(kubeconfig);
});

afterAll(async () => {
  await hub?.stop();
});

const raw = (cert?: IssuedCertificate | null) => hub.raw(cert);

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
