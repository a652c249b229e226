import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PatchStrategy, setHeaderOptions, type CoreV1Api, type V1Node } from '@kubernetes/client-node';
import {
  GFD_COUNT_LABEL,
  GFD_CUDA_DRIVER_MAJOR_LABEL,
  GFD_MEMORY_LABEL,
  GFD_PRODUCT_LABEL,
  GPU_RESOURCE,
} from '../../api/constants.js';
import { freePort } from '../free-port.js';
import type { ClusterPki } from '../pki.js';
import { exitedEarly, type ManagedProcess } from '../processes.js';
import { waitFor } from '../wait.js';
import { createCgroupRoot } from './cgroups.js';
import { createBridge, freePodSubnet, gatewayOf, writePodNetwork } from './cni.js';
import { importImages, startContainerd } from './containerd.js';
import { imageArchives, pauseImage } from './images.js';
import { startKubelet, writeKubeletFiles } from './kubelet.js';
import { cleanUpRealNode, writeRecord, type RealNodeRecord } from './leftovers.js';

// A real node beside kwok's fake ones: kubelet + containerd + runc + CNI, running real containers.
// It is a GPU node without a GPU: `nvidia.com/gpu` is advertised through the node's status capacity
// (how Kubernetes documents advertising an extended resource) and GFD's labels are set by the
// kubelet, so kube-scheduler and the agent treat it as a GPU node; no container sees a device.

/** Marks nodes that run real containers (kwok never manages them: it only takes KWOK_MANAGED_LABEL). */
export const REAL_NODE_LABEL = 'fedgpu.io/real-node';

export interface RealNodeSpec {
  name: string;
  /** nvidia.com/gpu advertised in the node's capacity (0: leave it to a device plugin). */
  gpus: number;
  /** GFD product label, e.g. NVIDIA-GeForce-RTX-4090. */
  product: string;
  memoryMiB: number;
  cudaDriverMajor?: number;
  labels?: Record<string, string>;
}

export interface RealNode {
  name: string;
  dir: string;
  processes: ManagedProcess[];
  stop(): Promise<void>;
}

export interface RealNodeCluster {
  name: string;
  dir: string;
  server: string;
  pki: ClusterPki;
  core: CoreV1Api;
}

export async function startRealNode(cluster: RealNodeCluster, spec: RealNodeSpec): Promise<RealNode> {
  const dir = join(cluster.dir, 'nodes', spec.name);
  mkdirSync(dir, { recursive: true });
  // Short names derived from the node's folder: unique per run, within the kernel's limits
  // (15 bytes for an interface, 107 for a socket path).
  const id = createHash('sha256').update(dir).digest('hex').slice(0, 10);
  // The kubelet's root-dir holds sockets too (pod-resources, device-plugins), so it lives there.
  const shortDir = join('/run/fedgpu-node', id);
  const record: RealNodeRecord = {
    dir,
    shortDir,
    socket: join(shortDir, 'containerd.sock'),
    cgroupName: `fedgpu-${id}`,
    bridge: `fg${id}`,
  };
  writeRecord(record);
  const processes: ManagedProcess[] = [];
  const stop = async () => {
    // Kubelet first, so it restarts nothing while containerd and the containers go.
    for (const p of [...processes].reverse()) await p.stop();
    const left = cleanUpRealNode(record);
    if (left.length) console.warn(`real node ${spec.name}: ${left.join('; ')}`);
  };
  try {
    const network = writePodNetwork(join(dir, 'cni'), `fedgpu-${id}`, record.bridge, freePodSubnet(parseInt(id.slice(0, 2), 16)));
    createBridge(record.bridge, network.subnet);
    const containerd = await startContainerd({ dir: join(dir, 'containerd'), socketDir: shortDir, sandboxImage: pauseImage(), cniConfDir: network.confDir });
    processes.push(containerd.process);
    await importImages(containerd, imageArchives());

    const kubeletOpts = {
      nodeName: spec.name,
      dir: join(dir, 'kubelet'),
      server: cluster.server,
      pki: cluster.pki,
      runtimeSocket: containerd.socket,
      rootDir: join(shortDir, 'kubelet'),
      address: gatewayOf(network.subnet),
      cgroupRoot: createCgroupRoot(record.cgroupName),
      port: await freePort(),
      healthzPort: await freePort(),
      labels: {
        [REAL_NODE_LABEL]: 'true',
        [GFD_PRODUCT_LABEL]: spec.product,
        [GFD_MEMORY_LABEL]: String(spec.memoryMiB),
        [GFD_COUNT_LABEL]: String(spec.gpus),
        [GFD_CUDA_DRIVER_MAJOR_LABEL]: String(spec.cudaDriverMajor ?? 580),
        ...spec.labels,
      },
    };
    const kubelet = startKubelet(kubeletOpts, writeKubeletFiles(kubeletOpts));
    processes.push(kubelet);
    await waitFor(`real node ${spec.name} Ready`, async () => {
      if (!kubelet.running()) throw exitedEarly(kubelet);
      const node = await cluster.core.readNode({ name: spec.name });
      return isReady(node) ? true : undefined;
    }, { timeoutMs: 120_000, intervalMs: 500 });
    // With a real GPU and NVIDIA's device plugin the kubelet advertises it itself: gpus 0 skips this.
    if (spec.gpus > 0) await advertiseGpus(cluster.core, spec.name, spec.gpus);
    return { name: spec.name, dir, processes, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

const isReady = (node: V1Node) => node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

/**
 * Adds `nvidia.com/gpu` to the node's status capacity (a JSON patch on the status subresource);
 * the kubelet derives allocatable from capacity at its next status update, which we wait for.
 */
async function advertiseGpus(core: CoreV1Api, name: string, gpus: number): Promise<void> {
  const path = `/status/capacity/${GPU_RESOURCE.replace('/', '~1')}`;
  await core.patchNodeStatus(
    { name, body: [{ op: 'add', path, value: String(gpus) }] },
    setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
  );
  await waitFor(`${name} to advertise ${gpus} ${GPU_RESOURCE}`, async () => {
    const node = await core.readNode({ name });
    return node.status?.allocatable?.[GPU_RESOURCE] === String(gpus) ? true : undefined;
  }, { timeoutMs: 60_000, intervalMs: 500 });
}
