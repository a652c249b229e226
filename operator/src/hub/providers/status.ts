import type { GpuProviderStatus, ProviderPool } from '../../api/types.js';
import type { Inventory } from '../../gen/proto/fedgpu/v1/market.js';

// Pure translations from what an agent reports to GpuProvider status fields.

const NOT_OFFERED: Record<number, string> = {
  1: 'PriceBelowBreakEven',
  2: 'OutsideAvailabilityWindow',
  3: 'OwnerReserved',
  4: 'NoIdleGpus',
  5: 'DisabledByOwner',
};

/** status.pools and the idle/total roll-ups from an agent's inventory. */
export function poolsStatus(inventory: Inventory): Pick<GpuProviderStatus, 'pools' | 'idleGpus' | 'totalGpus' | 'gpus'> {
  const pools: ProviderPool[] = inventory.pools.map((p) => {
    const pool: ProviderPool = {
      gpuProduct: p.gpuProduct,
      memoryMiB: p.memoryMib,
      cudaDriverMajor: p.cudaDriverMajor,
      nodes: p.nodes.length,
      total: p.total,
      allocatable: p.allocatable,
      idle: p.offered ? p.idle : 0,
      pricePerGpuHour: p.pricePerGpuHour,
      breakEvenPricePerGpuHour: p.breakEvenPricePerGpuHour,
      ...(p.runtimeClassName ? { runtimeClassName: p.runtimeClassName } : {}),
      offered: p.offered,
      ...(p.egress?.mode ? { egress: { mode: p.egress.mode as 'dns', ...(p.egress.destinations.length ? { destinations: p.egress.destinations.map((d) => ({ cidr: d.cidr, ...(d.ports.length ? { ports: d.ports } : {}) })) } : {}) } } : {}),
      ...(p.access ? { access: { exec: p.access.exec, portForward: p.access.portForward } } : {}),
      idleByNode: p.nodes
        .map((n) => ({ name: n.name, idle: p.offered ? n.idleGpus : 0 }))
        .sort((a, b) => b.idle - a.idle || a.name.localeCompare(b.name)),
    };
    const reason = NOT_OFFERED[p.notOfferedReason];
    if (!p.offered && reason) pool.notOfferedReason = reason;
    return pool;
  });
  const idleGpus = pools.reduce((n, p) => n + (p.idle ?? 0), 0);
  const totalGpus = pools.reduce((n, p) => n + (p.total ?? 0), 0);
  return { pools, idleGpus, totalGpus, gpus: `${idleGpus}/${totalGpus}` };
}

/** A GpuProvider name from its wallet: stable, DNS-1123, and readable in `kubectl get gp`. */
export function providerNameForWallet(wallet: string): string {
  return `gp-${wallet.toLowerCase().replace(/^0x/, '').slice(0, 12)}`;
}
