import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { issue, type ClusterPki } from '../pki.js';
import { startProcess, type ManagedProcess } from '../processes.js';
import { toolPath } from '../tools.js';

// A real kubelet for one test-bed node, on loopback. What it needs on this kind of machine is
// configuration, not hacks (docs/real-node.md): cgroupfs driver and a cgroupRoot of its own (cgroup
// v1 works; the kubelet only warns that v1 is in maintenance), swap tolerated but never used by
// pods, eviction thresholds low enough that a shared disk never evicts test pods, no image GC (the
// images were imported, they cannot be pulled again), pod logs under the node directory.

export interface KubeletOptions {
  nodeName: string;
  dir: string;
  server: string;
  pki: ClusterPki;
  runtimeSocket: string;
  /** --root-dir: short, since the kubelet binds unix sockets under it. */
  rootDir: string;
  cgroupRoot: string;
  /** The node IP, where the kubelet serves (the pod bridge's address: not loopback, never routed). */
  address: string;
  port: number;
  healthzPort: number;
  labels: Record<string, string>;
}

export interface KubeletFiles {
  config: string;
  kubeconfig: string;
}

/** Serving certificate for 127.0.0.1 and the node name, and a client identity system:node:<name>. */
function kubeletCertificates(o: KubeletOptions): { serving: string; client: string } {
  const serving = `kubelet-${o.nodeName}`;
  issue(o.pki.dir, serving, `/CN=${o.nodeName}`, [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    `subjectAltName=IP:${o.address},IP:127.0.0.1,DNS:${o.nodeName},DNS:localhost`,
  ]);
  const client = `kubelet-client-${o.nodeName}`;
  issue(o.pki.dir, client, `/O=system:nodes/CN=system:node:${o.nodeName}`, [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=clientAuth',
  ]);
  return { serving: join(o.pki.dir, serving), client: join(o.pki.dir, client) };
}

export function writeKubeletFiles(o: KubeletOptions): KubeletFiles {
  mkdirSync(o.dir, { recursive: true });
  const certs = kubeletCertificates(o);
  const b64 = (f: string) => readFileSync(f).toString('base64');
  const kubeconfig = join(o.dir, 'kubelet.kubeconfig');
  writeFileSync(kubeconfig, stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'testbed', cluster: { server: o.server, 'certificate-authority-data': b64(o.pki.caCert) } }],
    users: [{ name: o.nodeName, user: { 'client-certificate-data': b64(`${certs.client}.crt`), 'client-key-data': b64(`${certs.client}.key`) } }],
    contexts: [{ name: 'testbed', context: { cluster: 'testbed', user: o.nodeName } }],
    'current-context': 'testbed',
  }), { mode: 0o600 });
  const config = join(o.dir, 'kubelet.yaml');
  writeFileSync(config, stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: o.address,
    port: o.port,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: o.healthzPort,
    tlsCertFile: `${certs.serving}.crt`,
    tlsPrivateKeyFile: `${certs.serving}.key`,
    // The apiserver reaches logs, exec and port-forward with a certificate of the cluster CA; the
    // kubelet asks the apiserver whether that identity may (nodes/proxy and friends).
    authentication: { anonymous: { enabled: false }, webhook: { enabled: false }, x509: { clientCAFile: o.pki.caCert } },
    authorization: { mode: 'Webhook' },
    containerRuntimeEndpoint: `unix://${o.runtimeSocket}`,
    cgroupDriver: 'cgroupfs',
    cgroupRoot: o.cgroupRoot,
    cgroupsPerQOS: true,
    enforceNodeAllocatable: ['pods'],
    // Swap may be on elsewhere; pods never get any (NoSwap), so limits stay what they say.
    failSwapOn: false,
    memorySwap: { swapBehavior: 'NoSwap' },
    evictionHard: { 'memory.available': '64Mi', 'nodefs.available': '1%', 'nodefs.inodesFree': '1%', 'imagefs.available': '1%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    podLogsDir: join(o.dir, 'pod-logs'),
    resolvConf: '',
    maxPods: 32,
    podPidsLimit: 1024,
    // Host-wide kernel settings are the machine owner's, not a test's.
    protectKernelDefaults: false,
    serializeImagePulls: false,
    nodeStatusUpdateFrequency: '5s',
    nodeStatusReportFrequency: '30s',
    syncFrequency: '10s',
    volumeStatsAggPeriod: '0s',
  }));
  return { config, kubeconfig };
}

export function startKubelet(o: KubeletOptions, files: KubeletFiles): ManagedProcess {
  const labels = Object.entries(o.labels).map(([k, v]) => `${k}=${v}`).join(',');
  return startProcess({
    name: 'kubelet',
    command: toolPath('kubelet'),
    dir: o.dir,
    args: [
      `--config=${files.config}`,
      `--kubeconfig=${files.kubeconfig}`,
      `--root-dir=${o.rootDir}`,
      `--hostname-override=${o.nodeName}`,
      `--node-ip=${o.address}`,
      `--node-labels=${labels}`,
      '--v=1',
    ],
  });
}
