import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { reuseConnections } from '../runtime/connections.js';
import { startEtcd, type Etcd } from './etcd.js';
import { freePort, onFreshPorts } from './free-port.js';
import { gpuNodes, KWOK_MANAGED_LABEL, type GpuNodeGroup } from './kwok/gpu-nodes.js';
import { kwokAccessYaml, type KwokAccess } from './kwok/access.js';
import { kwokStagesYaml } from './kwok/stages.js';
import { runKubectl, type KubectlResult } from './kubectl.js';
import { createClusterPki, kubeconfigYaml, type ClusterPki } from './pki.js';
import { exitedEarly, startProcess, type ManagedProcess } from './processes.js';
import { startRealNode, type RealNode, type RealNodeSpec } from './real-node/node.js';
import { toolPath } from './tools.js';
import { kubeVersion, mutatingAdmissionPolicyFlags } from './kube-version.js';
import { waitFor } from './wait.js';

export interface ClusterOptions {
  /** Directory for certificates, logs, pid files and the kubeconfig. */
  dir: string;
  /** Fake GPU nodes that kwok manages. */
  gpuNodes?: GpuNodeGroup[];
  /** Share an etcd with other clusters (each cluster gets its own --etcd-prefix). */
  etcd?: Etcd;
  /** Start kube-scheduler (default true). */
  scheduler?: boolean;
  /** Start kube-controller-manager (default true). */
  controllerManager?: boolean;
  /** Start kwok (default true when there are GPU nodes). */
  kwok?: boolean;
  /** Where to write the kubeconfig (default `<dir>/kubeconfig`). */
  kubeconfigPath?: string;
  /**
   * Real nodes (kubelet, containerd, runc) that run real containers beside kwok's fake ones. With
   * any, the apiserver also checks the kubelets' serving certificates against the cluster CA.
   */
  realNodes?: RealNodeSpec[];
  /** More kube-apiserver flags, after the test bed's own (a later flag wins): benches turn profiling on. */
  apiserverArgs?: string[];
  /**
   * Serve MutatingAdmissionPolicy (default true): GA from Kubernetes 1.36, off by default before
   * (kube-version.ts turns it on). The hub chart's policy then puts the GpuJob finalizer on at
   * create. False: a cluster without the API where the version allows (the hub adds it itself).
   */
  mutatingAdmissionPolicy?: boolean;
}

export interface Cluster {
  name: string;
  dir: string;
  server: string;
  kubeconfigPath: string;
  kubeConfig: KubeConfig;
  processes: ManagedProcess[];
  /** Certificates of the control plane (tests issue user certificates from its CA). */
  pki: ClusterPki;
  /** What kwok serves for pods/log, pods/exec and pods/portforward (docs in kwok/access.ts). */
  access: KwokAccess;
  /** Runs the test bed's kubectl against this cluster; never throws on a non-zero exit. */
  kubectl(args: string[], stdin?: string): Promise<KubectlResult>;
  /** Creates more fake GPU nodes and waits until kwok reports them Ready. */
  addGpuNodes(group: GpuNodeGroup): Promise<string[]>;
  /** The real nodes started so far. */
  realNodes: RealNode[];
  /** Starts a real node and waits until it is Ready and advertises its GPUs. */
  addRealNode(spec: RealNodeSpec): Promise<RealNode>;
  /** Stops every process of the cluster (and its etcd when the cluster started it). */
  stop(): Promise<void>;
}

/** Starts one real Kubernetes control plane on loopback and waits until it serves. */
export async function startCluster(name: string, opts: ClusterOptions): Promise<Cluster> {
  mkdirSync(opts.dir, { recursive: true });
  const ownEtcd = opts.etcd === undefined;
  const etcd = opts.etcd ?? (await startEtcd(join(opts.dir, 'etcd')));
  const processes: ManagedProcess[] = [];
  const realNodes: RealNode[] = [];
  const stopAll = async () => {
    // Real nodes first: their kubelets would otherwise keep restarting containers meanwhile.
    await Promise.all(realNodes.map((n) => n.stop()));
    await Promise.all(processes.map((p) => p.stop()));
    if (ownEtcd) await etcd.stop();
  };
  try {
    const pki = createClusterPki(join(opts.dir, 'pki'));
    const policyApi = opts.mutatingAdmissionPolicy === false ? [] : mutatingAdmissionPolicyFlags(kubeVersion());
    const server = await onFreshPorts(async () => {
      const port = await freePort();
      const apiserver = startApiserver(name, opts.dir, port, etcd.url, pki, (opts.realNodes ?? []).length > 0, [...policyApi, ...opts.apiserverArgs ?? []]);
      const url = `https://127.0.0.1:${port}`;
      try {
        await waitReadyz(url, pki, apiserver);
      } catch (err) {
        await apiserver.stop();
        throw err;
      }
      // Only the apiserver that came up is listed: chaos and benches look it up by name.
      processes.push(apiserver);
      return url;
    });

    const kubeconfigPath = opts.kubeconfigPath ?? join(opts.dir, 'kubeconfig');
    writeFileSync(kubeconfigPath, kubeconfigYaml(name, server, pki), { mode: 0o600 });
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(kubeconfigPath);
    reuseConnections(kubeConfig);

    if (opts.scheduler !== false) processes.push(startScheduler(opts.dir, kubeconfigPath));
    if (opts.controllerManager !== false) processes.push(startControllerManager(opts.dir, kubeconfigPath, pki));
    const groups = opts.gpuNodes ?? [];
    const access: KwokAccess = { logFile: join(opts.dir, 'pod.log'), execDir: join(opts.dir, 'exec'), forwardPort: await freePort() };
    mkdirSync(access.execDir, { recursive: true });
    writeFileSync(access.logFile, '');
    if (opts.kwok ?? groups.length > 0) processes.push(await startKwok(opts.dir, kubeconfigPath, pki, access));

    const core = kubeConfig.makeApiClient(CoreV1Api);
    const cluster: Cluster = {
      name,
      dir: opts.dir,
      server,
      kubeconfigPath,
      kubeConfig,
      processes,
      pki,
      access,
      kubectl: (args, stdin) => runKubectl(kubeconfigPath, args, stdin),
      addGpuNodes: (group) => createReadyNodes(core, group),
      realNodes,
      async addRealNode(spec) {
        const node = await startRealNode({ name, dir: opts.dir, server, pki, core }, spec);
        realNodes.push(node);
        return node;
      },
      stop: stopAll,
    };
    for (const group of groups) await cluster.addGpuNodes(group);
    for (const spec of opts.realNodes ?? []) await cluster.addRealNode(spec);
    if (opts.controllerManager !== false) {
      // Pods need the namespace's default ServiceAccount, which the controller-manager creates.
      await waitFor('the default ServiceAccount', async () =>
        (await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' })) ? true : undefined,
        { timeoutMs: 60_000 },
      );
    }
    return cluster;
  } catch (err) {
    await stopAll();
    throw err;
  }
}

function startApiserver(name: string, dir: string, port: number, etcdUrl: string, pki: ClusterPki, verifyKubelets: boolean, extraArgs: string[]): ManagedProcess {
  return startProcess({
    name: 'kube-apiserver',
    command: toolPath('kube-apiserver'),
    dir,
    args: [
      `--etcd-servers=${etcdUrl}`,
      `--etcd-prefix=/fedgpu-testbed/${name}-${port}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${port}`,
      `--tls-cert-file=${pki.serverCert}`,
      `--tls-private-key-file=${pki.serverKey}`,
      `--client-ca-file=${pki.caCert}`,
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-account-key-file=${pki.serviceAccountPub}`,
      `--service-account-signing-key-file=${pki.serviceAccountKey}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      // Node: real kubelets (system:node:<name>) may touch their own node and its pods only.
      '--authorization-mode=Node,RBAC',
      // Logs, exec and port-forward reach a kubelet with the admin identity; a real kubelet's
      // serving certificate is checked against the CA (kwok's is not one of ours).
      `--kubelet-client-certificate=${pki.adminCert}`,
      `--kubelet-client-key=${pki.adminKey}`,
      // A real node's hostname is its node name, which nothing resolves; its InternalIP is 127.0.0.1.
      '--kubelet-preferred-address-types=InternalIP,Hostname',
      ...(verifyKubelets ? [`--kubelet-certificate-authority=${pki.caCert}`] : []),
      // Aggregation (the hub serves gpujobs/log, /exec, /portforward as an aggregated API), and the
      // client identity for kubelet calls (kwok answers them for its pods).
      `--requestheader-client-ca-file=${pki.frontProxyCaCert}`,
      '--requestheader-allowed-names=front-proxy-client',
      '--requestheader-username-headers=X-Remote-User',
      '--requestheader-group-headers=X-Remote-Group',
      '--requestheader-extra-headers-prefix=X-Remote-Extra-',
      `--proxy-client-cert-file=${pki.frontProxyClientCert}`,
      `--proxy-client-key-file=${pki.frontProxyClientKey}`,
      // Fewer moving parts on a 2-core machine; none of these change API semantics we test.
      '--enable-priority-and-fairness=false',
      '--profiling=false',
      '--endpoint-reconciler-type=none',
      `--cert-dir=${join(dir, 'pki')}`,
      '--v=1',
      ...extraArgs,
    ],
  });
}

function startScheduler(dir: string, kubeconfig: string): ManagedProcess {
  return startProcess({
    name: 'kube-scheduler',
    command: toolPath('kube-scheduler'),
    dir,
    args: [`--kubeconfig=${kubeconfig}`, '--leader-elect=false', '--bind-address=127.0.0.1', '--secure-port=0', '--v=1'],
  });
}

function startControllerManager(dir: string, kubeconfig: string, pki: ClusterPki): ManagedProcess {
  return startProcess({
    name: 'kube-controller-manager',
    command: toolPath('kube-controller-manager'),
    dir,
    args: [
      `--kubeconfig=${kubeconfig}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      '--secure-port=0',
      `--service-account-private-key-file=${pki.serviceAccountKey}`,
      `--root-ca-file=${pki.caCert}`,
      '--use-service-account-credentials=false',
      '--controllers=*,-nodeipam,-bootstrapsigner,-tokencleaner,-csrsigning,-csrapproving,-csrcleaner',
      '--v=1',
    ],
  });
}

async function startKwok(dir: string, kubeconfig: string, pki: ClusterPki, access: KwokAccess): Promise<ManagedProcess> {
  const config = join(dir, 'kwok-stages.yaml');
  writeFileSync(config, `${kwokStagesYaml()}---\n${kwokAccessYaml(access)}`);
  // The kubelet port of every kwok node: the apiserver dials it (TLS) for logs, exec, port-forward.
  const kubeletPort = await freePort();
  return restartedOnCrash(() => startProcess({
    name: 'kwok',
    command: toolPath('kwok'),
    dir,
    args: [
      `--kubeconfig=${kubeconfig}`,
      `--config=${config}`,
      '--manage-all-nodes=false',
      `--manage-nodes-with-label-selector=${KWOK_MANAGED_LABEL}=true`,
      `--server-address=127.0.0.1:${kubeletPort}`,
      `--node-port=${kubeletPort}`,
      `--tls-cert-file=${pki.serverCert}`,
      `--tls-private-key-file=${pki.serverKey}`,
      '--node-ip=127.0.0.1',
      '--cidr=10.244.0.0/16',
    ],
  }), KWOK_RESTARTS);
}

/** How often kwok may be restarted after it dies on its own, per cluster. */
const KWOK_RESTARTS = 3;

/**
 * kwok v0.8.0 can die at start-up on a race of its own ("fatal error: concurrent map writes" while
 * its stages build their CEL environments). It keeps no state (everything is in the apiserver), so
 * it is started again, a bounded number of times; stop() ends whichever process runs then.
 */
function restartedOnCrash(start: () => ManagedProcess, restarts: number): ManagedProcess {
  let current = start();
  let stopping = false;
  let left = restarts;
  const watch = (p: ManagedProcess) => {
    void p.exited.then(() => {
      if (stopping || left <= 0) return;
      left--;
      current = start();
      watch(current);
    });
  };
  watch(current);
  return {
    name: current.name,
    logPath: current.logPath,
    get pid() {
      return current.pid;
    },
    get exited() {
      return current.exited;
    },
    running: () => current.running(),
    async stop(timeoutMs?: number) {
      stopping = true;
      await current.stop(timeoutMs);
    },
  };
}

async function createReadyNodes(core: CoreV1Api, group: GpuNodeGroup): Promise<string[]> {
  const nodes = gpuNodes(group);
  for (const node of nodes) await core.createNode({ body: node });
  const names = nodes.map((n) => n.metadata?.name ?? '');
  await waitFor(
    `${names.length} ${group.product} nodes Ready`,
    async () => {
      const list = await core.listNode({ labelSelector: `${KWOK_MANAGED_LABEL}=true` });
      const ready = new Set(
        list.items
          .filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
          .map((n) => n.metadata?.name),
      );
      return names.every((n) => ready.has(n)) ? true : undefined;
    },
    { timeoutMs: 60_000 },
  );
  return names;
}

function waitReadyz(server: string, pki: ClusterPki, apiserver: ManagedProcess): Promise<true> {
  const tls = { ca: readFileSync(pki.caCert), cert: readFileSync(pki.adminCert), key: readFileSync(pki.adminKey) };
  return waitFor(
    'kube-apiserver /readyz',
    () => {
      if (!apiserver.running()) throw exitedEarly(apiserver);
      return new Promise<true | undefined>((resolve, reject) => {
        const req = request(`${server}/readyz`, { ...tls, timeout: 5_000 }, (res) => {
          res.resume();
          resolve(res.statusCode === 200 ? true : undefined);
        });
        req.on('timeout', () => req.destroy(new Error('readyz timed out')));
        req.on('error', reject);
        req.end();
      });
    },
    { timeoutMs: 120_000, intervalMs: 250 },
  );
}
