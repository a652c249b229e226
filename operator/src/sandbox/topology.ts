import { HDNodeWallet, Mnemonic, Wallet } from 'ethers';
import type { ProviderSettings } from '../agent/inventory.js';
import type { GpuNodeGroup } from '../testbed/kwok/gpu-nodes.js';
import type { RealNodeSpec } from '../testbed/real-node/node.js';
import type { EgressProfile } from '../core/egress.js';

// The sandbox federation: a hub and three provider clusters of very different character, so the
// scheduler has real choices to make (price, reputation, latency, availability).

export interface SandboxProvider {
  cluster: string;
  displayName: string;
  region: string;
  gpuNodes: GpuNodeGroup[];
  /** Real nodes (kubelet, containerd, runc) that run the jobs placed there as real containers. */
  realNodes?: RealNodeSpec[];
  /** Price per GPU-hour per product, in credits. */
  prices: Record<string, string>;
  /** Emulated network distance to the hub (everything runs on loopback here). */
  latency: string;
  /** Daily lending window (UTC), when the owner lends only part of the day. */
  window?: { start: string; end: string };
  /** What job pods may reach (absent: cluster DNS only). */
  egress?: EgressProfile;
}

export const HUB_CLUSTER = 'hub';
/** The provider whose agent the demo kills mid-run. */
export const VICTIM_CLUSTER = 'mining-farm';
/** Short enough that the demo's failover shows within a minute. */
export const SANDBOX_PROVIDER_LOST_AFTER = '8s';
/** The provider with a real node, and the GPU product only that node has. */
export const REAL_NODE_CLUSTER = 'homelab';
export const REAL_NODE_PRODUCT = 'NVIDIA-GeForce-RTX-4070-Ti';

export const sandboxProviders: SandboxProvider[] = [
  {
    cluster: 'datacenter',
    displayName: 'Datacenter, 4 × 8 H100',
    region: 'eu-west',
    gpuNodes: [
      { prefix: 'dc-h100', count: 4, gpusPerNode: 8, product: 'NVIDIA-H100-80GB-HBM3', memoryMiB: 81559, cudaDriverMajor: 580, taint: true },
    ],
    prices: { 'NVIDIA-H100-80GB-HBM3': '2.40' },
    latency: '8ms',
    // The one provider whose jobs may download models and datasets (examples/gpujob-internet.yaml).
    egress: { mode: 'internet' },
  },
  {
    cluster: 'mining-farm',
    displayName: 'Ex-mining farm, 6 × 6 RTX 3090',
    region: 'eu-central',
    gpuNodes: [
      { prefix: 'farm-3090', count: 6, gpusPerNode: 6, product: 'NVIDIA-GeForce-RTX-3090', memoryMiB: 24576, cudaDriverMajor: 580 },
    ],
    prices: { 'NVIDIA-GeForce-RTX-3090': '0.35' },
    latency: '25ms',
  },
  {
    cluster: 'gamer',
    displayName: "Gamer's rig, 1 × RTX 4090 at night",
    region: 'eu-west',
    gpuNodes: [
      { prefix: 'rig-4090', count: 1, gpusPerNode: 1, product: 'NVIDIA-GeForce-RTX-4090', memoryMiB: 24564, cudaDriverMajor: 580 },
    ],
    prices: { 'NVIDIA-GeForce-RTX-4090': '0.45' },
    latency: '70ms',
    window: { start: '22:00', end: '08:00' },
  },
  {
    cluster: REAL_NODE_CLUSTER,
    displayName: 'Homelab, 1 × RTX 4070 Ti, any hour (a real node: kubelet, containerd, runc)',
    region: 'eu-west',
    gpuNodes: [],
    realNodes: [{ name: 'homelab-4070ti', gpus: 1, product: REAL_NODE_PRODUCT, memoryMiB: 12282, cudaDriverMajor: 580 }],
    prices: { [REAL_NODE_PRODUCT]: '0.30' },
    latency: '15ms',
  },
];

/** anvil's well-known development mnemonic: account 0 deploys, 1-3 and 6 are the providers, 4 the consumer, 5 the hub's settler. */
export const SANDBOX_MNEMONIC = 'test test test test test test test test test test test junk';

/** Wallet index of the i-th provider: 1-3, then after the consumer (4) and the settler (5). */
export function providerWalletIndex(i: number): number {
  return i < 3 ? i + 1 : i + 3;
}

export function sandboxWallet(index: number): Wallet {
  const node = HDNodeWallet.fromMnemonic(Mnemonic.fromPhrase(SANDBOX_MNEMONIC), `m/44'/60'/0'/0/${index}`);
  return new Wallet(node.privateKey);
}

/** What each provider's owner would put in the chart's values. */
export function providerSettings(p: SandboxProvider): ProviderSettings {
  return {
    displayName: p.displayName,
    region: p.region,
    pricePerGpuHour: p.prices,
    electricity: { pricePerKWh: '0.25', pue: 1.3, wearPerGpuHour: '0.02' },
    ...(p.window ? { availability: { windows: [p.window] } } : {}),
    ...(p.egress ? { egress: p.egress } : {}),
  };
}
