// The hub's edge with its real provider registry, for integration tests against one real
// kube-apiserver: the CRDs applied, a CA and the hub's serving certificate, a shared agent client
// certificate, and a MarketServer whose KubeProviderRegistry writes as the chart's hub identity
// (tests read as admin). Stopped by the test's afterAll.
import { join } from 'node:path';
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { expect } from 'vitest';
import type { GpuProvider } from '../../operator/src/api/types.js';
import type { MarketplaceClient } from '../../operator/src/gen/proto/fedgpu/v1/market.js';
import { MarketServer } from '../../operator/src/hub/market/server.js';
import { KubeProviderRegistry, type ProviderRegistryOptions } from '../../operator/src/hub/providers/registry.js';
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
import { RawStream } from './raw-stream.js';

export interface RegistryHub {
  server: MarketServer;
  registry: KubeProviderRegistry;
  /** The GpuProviders as an informer sees them (admin). */
  providers: Informer<GpuProvider>;
  ca: CertificateAuthority;
  agentCert: IssuedCertificate;
  /** A raw agent stream to the hub, with the shared agent certificate unless told otherwise. */
  raw(cert?: IssuedCertificate | null): RawStream;
  stop(): Promise<void>;
}

/** Applies the CRDs and starts the hub edge over the registry built from `registry` (store and logger are filled in). */
export async function startRegistryHub(kubeconfig: string, registry: Omit<ProviderRegistryOptions, 'store' | 'logger'> = {}): Promise<RegistryHub> {
  const crds = join(repoRoot, 'crds');
  expect((await runKubectl(kubeconfig, ['apply', '--server-side', '-f', crds])).code).toBe(0);
  expect((await runKubectl(kubeconfig, ['wait', '--for=condition=Established', '--timeout=60s', '-f', crds])).code).toBe(0);
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const client = gpuProviderClient(kc.makeApiClient(CustomObjectsApi));
  // The apiserver answers 429 "storage is (re)initializing" for a moment after a CRD changes.
  await waitFor('gpuproviders to be served', async () => ((await client.list()) ? true : undefined), { timeoutMs: 30_000 });
  const providers = new Informer(customResourceSource(client), { kubeConfig: kc, logger: silentLogger });
  await providers.start();
  const ca = await createCa('fedgpu hub CA');
  const hubCert = await issueCert(ca, { commonName: 'fedgpu-hub', dnsNames: ['fedgpu-hub'], usages: ['server'] });
  const agentCert = await issueCert(ca, { commonName: 'agent', usages: ['client'] });
  const silent = pino({ level: 'silent' });
  const kubeRegistry = new KubeProviderRegistry({ store: new KubeProviderStore((await hubIdentity({ kubeconfigPath: kubeconfig })).kubeConfig), logger: silent, ...registry });
  const server = new MarketServer({
    tls: { caPem: ca.certPem, certPem: hubCert.certPem, keyPem: hubCert.keyPem },
    registry: kubeRegistry,
    audience: 'fedgpu-hub.test',
    logger: silent,
    registrationTimeoutMs: 10_000,
  });
  await server.start();
  const clients: MarketplaceClient[] = [];
  return {
    server,
    registry: kubeRegistry,
    providers,
    ca,
    agentCert,
    raw: (cert: IssuedCertificate | null = agentCert) => new RawStream({ port: server.port, caPem: ca.certPem, cert, serverName: 'fedgpu-hub', clients }),
    async stop() {
      for (const c of clients) c.close();
      await server.stop();
      await providers.stop();
    },
  };
}
