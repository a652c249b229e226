import { ProviderConditions } from '../../api/constants.js';
import type { GpuProviderStatus, ProviderPool } from '../../api/types.js';
import type { Inventory } from '../../gen/proto/fedgpu/v1/market.js';
import { compareStrings } from '../../core/order.js';
import type { ConditionUpdate } from '../../runtime/conditions.js';

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
      ...(p.cpuMilliPerGpu && p.memoryMibPerGpu ? { cpuMilliPerGpu: p.cpuMilliPerGpu, memoryMiBPerGpu: p.memoryMibPerGpu } : {}),
      offered: p.offered,
      ...(p.egress?.mode ? { egress: { mode: p.egress.mode as 'dns', ...(p.egress.destinations.length ? { destinations: p.egress.destinations.map((d) => ({ cidr: d.cidr, ...(d.ports.length ? { ports: d.ports } : {}) })) } : {}) } } : {}),
      ...(p.access ? { access: { exec: p.access.exec, portForward: p.access.portForward } } : {}),
      idleByNode: p.nodes
        .map((n) => ({ name: n.name, idle: p.offered ? n.idleGpus : 0 }))
        .sort((a, b) => b.idle - a.idle || compareStrings(a.name, b.name)),
    };
    const reason = NOT_OFFERED[p.notOfferedReason];
    if (!p.offered && reason) pool.notOfferedReason = reason;
    return pool;
  });
  const idleGpus = pools.reduce((n, p) => n + (p.idle ?? 0), 0);
  const totalGpus = pools.reduce((n, p) => n + (p.total ?? 0), 0);
  return { pools, idleGpus, totalGpus, gpus: `${idleGpus}/${totalGpus}` };
}

/**
 * A GpuProvider name from its wallet: stable, DNS-1123, and readable in `kubectl get gp` (the first
 * 12 hex digits); `whole`: every digit, for a wallet whose short name another wallet holds.
 */
export function providerNameForWallet(wallet: string, whole = false): string {
  const hex = wallet.toLowerCase().replace(/^0x/, '');
  return `gp-${whole ? hex : hex.slice(0, 12)}`;
}

/** How many refused namespaces the condition message names (the rest are counted). */
const NAMED_NAMESPACES = 3;

/**
 * TenantIsolation from an agent's inventory: False (NamespaceNotRestricted) while the agent refuses
 * job pods in a tenant namespace that lost PodSecurity restricted, naming it and why.
 */
export function tenantIsolationCondition(inventory: Pick<Inventory, 'unisolatedNamespaces'>): ConditionUpdate {
  const refused = inventory.unisolatedNamespaces ?? [];
  if (refused.length === 0) {
    return { type: ProviderConditions.TenantIsolation, status: 'True', reason: 'NamespacesRestricted', message: 'the agent runs job pods only in tenant namespaces that enforce PodSecurity restricted' };
  }
  const named = refused.slice(0, NAMED_NAMESPACES).map((r) => `${r.namespace}: ${r.reason}`).join('; ');
  const more = refused.length > NAMED_NAMESPACES ? `; and ${refused.length - NAMED_NAMESPACES} more` : '';
  return {
    type: ProviderConditions.TenantIsolation,
    status: 'False',
    reason: 'NamespaceNotRestricted',
    message: `the agent refuses job pods in ${refused.length} tenant namespace(s) until PodSecurity restricted is enforced again: ${named}${more}`,
  };
}
