// An in-memory ProviderRegistry that records every call: the test double for the server, and a
// reference for what the Kubernetes-backed registry must do.
import { status } from '@grpc/grpc-js';
import type { AttemptStatus, Inventory, UsageReceipt } from '../../gen/proto/fedgpu/v1/market.js';
import { EdgeError } from '../../protocol/edge-error.js';
import type { HeartbeatObservation, ProviderInfo, ProviderRegistry } from './registry.js';

export type RegistryEvent =
  | { type: 'register'; wallet: string; providerName: string; info: ProviderInfo }
  | { type: 'inventory'; providerName: string; inventory: Inventory }
  | { type: 'heartbeat'; providerName: string; observation: HeartbeatObservation }
  | { type: 'attemptStatus'; providerName: string; status: AttemptStatus }
  | { type: 'usageReceipt'; providerName: string; receipt: UsageReceipt }
  | { type: 'disconnect'; providerName: string };

export class InMemoryProviderRegistry implements ProviderRegistry {
  /** Every call in order. Bounded so a long test cannot grow it without limit. */
  readonly events: RegistryEvent[] = [];
  readonly inventories = new Map<string, Inventory>();
  readonly lastHeartbeat = new Map<string, HeartbeatObservation>();
  /** Wallets (checksummed) that register() refuses. */
  readonly refusedWallets = new Set<string>();

  constructor(private readonly maxEvents = 100_000) {}

  /** Deterministic provider name from the wallet, as the real registry would derive it. */
  static providerNameFor(wallet: string): string {
    return `provider-${wallet.slice(2, 12).toLowerCase()}`;
  }

  register(wallet: string, info: ProviderInfo): string {
    if (this.refusedWallets.has(wallet)) throw new EdgeError(status.PERMISSION_DENIED, 'registration_refused', 'wallet is not allowed');
    const providerName = InMemoryProviderRegistry.providerNameFor(wallet);
    this.record({ type: 'register', wallet, providerName, info });
    return providerName;
  }

  onInventory(providerName: string, inventory: Inventory): void {
    this.inventories.set(providerName, inventory);
    this.record({ type: 'inventory', providerName, inventory });
  }

  onHeartbeat(providerName: string, observation: HeartbeatObservation): void {
    this.lastHeartbeat.set(providerName, observation);
    this.record({ type: 'heartbeat', providerName, observation });
  }

  onAttemptStatus(providerName: string, attemptStatus: AttemptStatus): void {
    this.record({ type: 'attemptStatus', providerName, status: attemptStatus });
  }

  onUsageReceipt(providerName: string, receipt: UsageReceipt): void {
    this.record({ type: 'usageReceipt', providerName, receipt });
  }

  onDisconnect(providerName: string): void {
    this.record({ type: 'disconnect', providerName });
  }

  count(type: RegistryEvent['type'], providerName?: string): number {
    return this.events.filter((e) => e.type === type && (providerName === undefined || e.providerName === providerName)).length;
  }

  /** Calls that change provider state (everything but register and disconnect). */
  mutations(): number {
    return this.events.filter((e) => e.type !== 'register' && e.type !== 'disconnect').length;
  }

  private record(event: RegistryEvent): void {
    if (this.events.length >= this.maxEvents) this.events.shift();
    this.events.push(event);
  }
}
