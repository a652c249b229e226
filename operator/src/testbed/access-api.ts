// Registers the hub's access API with a test-bed hub apiserver the way the chart does in a real
// cluster: the chart's templates/hub/access.yaml rendered by the real helm (APIService, Service,
// ClusterRoles fedgpu-job-viewer/editor), with the Service pointed at the hub's loopback port.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { issueCert } from '../tls/index.js';
import type { Cluster } from './cluster.js';
import type { HubPki } from './federation.js';
import { toolPath, repoRoot } from './tools.js';
import { waitFor } from './wait.js';

export const ACCESS_NAMESPACE = 'fedgpu-system';

/** A serving certificate for the access API, valid for the name the aggregator verifies. */
export function accessServingCert(pki: HubPki) {
  return issueCert(pki.ca, {
    commonName: 'fedgpu-access',
    dnsNames: [`fedgpu-access.${ACCESS_NAMESPACE}.svc`, 'localhost'],
    ipAddresses: ['127.0.0.1'],
    usages: ['server'],
  });
}

function helmTemplate(caPem: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(toolPath('helm'), [
      'template', 'fedgpu', join(repoRoot, 'charts', 'fedgpu'), '--namespace', ACCESS_NAMESPACE,
      '--set', 'mode=hub', '--set', 'hub.chain.marketAddress=0x0000000000000000000000000000000000000001',
      '--set', 'hub.access.enabled=true', '--set', 'hub.access.testbed.externalName=localhost',
      '--set', `hub.access.testbed.port=${port}`,
      '--set-string', `hub.access.caBundle=${Buffer.from(caPem).toString('base64')}`,
      '--show-only', 'templates/hub/access.yaml',
    ], (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
  });
}

/** Applies the chart's access objects to the hub cluster and waits until the APIService is Available. */
export async function registerAccessApi(hubCluster: Cluster, caPem: string, port: number): Promise<void> {
  await hubCluster.kubectl(['create', 'namespace', ACCESS_NAMESPACE]);
  const applied = await hubCluster.kubectl(['apply', '-f', '-'], await helmTemplate(caPem, port));
  if (applied.code !== 0) throw new Error(`could not register the access API: ${applied.stderr}`);
  await waitFor('APIService v1alpha1.access.fedgpu.io Available', async () => {
    const r = await hubCluster.kubectl(['get', 'apiservice', 'v1alpha1.access.fedgpu.io', '-o', 'jsonpath={.status.conditions[?(@.type=="Available")].status}']);
    return r.stdout === 'True' ? true : undefined;
  }, { timeoutMs: 90_000 });
}
