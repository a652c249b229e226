// What the marketplace server needs from the rest of the hub. The production implementation writes
// GpuProvider objects through the Kubernetes API; tests use the in-memory one beside this file.
//
// Calls for one stream are serialised in arrival order. A method may be async; the server waits
// for it before handing the same stream's next message over.
//
// Errors: throw an EdgeError to end the stream with that status (e.g. PERMISSION_DENIED,
// 'registration_refused' from register for a banned wallet). Any other error from register ends the
// stream with UNAVAILABLE (the agent retries with backoff); from the other methods it is logged
// and the stream carries on.
import type { AttemptStatus, Inventory, PodEvents, ProviderProfile, UsageReceipt } from '../../gen/proto/fedgpu/v1/market.js';

export interface ProviderInfo {
  /** EIP-55 checksummed wallet, proven by the registration signature. */
  walletAddress: string;
  agentVersion: string;
  protocolVersion: number;
  /** gRPC peer address, for diagnostics. */
  peer: string;
  /** The owner's declaration (region, display name, availability), when the agent sent one. */
  profile?: ProviderProfile;
}

export interface HeartbeatObservation {
  /** Hub-measured round-trip time, EWMA over Ping/Pong pairs; undefined until the first pong. */
  rttMs: number | undefined;
  /** Hub-measured bandwidth from the last bandwidth probe; undefined until one completes. */
  bandwidthMbps: number | undefined;
  /** Hub wall-clock time the heartbeat arrived. */
  at: Date;
}

export interface ProviderRegistry {
  /** A proven wallet connected: return the name of its GpuProvider (created if need be). */
  register(wallet: string, info: ProviderInfo): Promise<string> | string;
  /** The provider's full, validated inventory; replaces the previous one. */
  onInventory(providerName: string, inventory: Inventory): Promise<void> | void;
  onHeartbeat(providerName: string, observation: HeartbeatObservation): Promise<void> | void;
  /**
   * A message of any kind arrived from the agent (tunnel data included), called on arrival, before
   * it waits in the stream's queue, at most about once a second. The agent is alive even while its
   * heartbeat is held up behind those bytes on a slow uplink: synchronous, and no status write.
   */
  onHeard?(providerName: string, at: Date): void;
  /** Validated, but not fenced: the registry compares epoch with the job's current attempt. */
  onAttemptStatus(providerName: string, status: AttemptStatus): Promise<void> | void;
  /** Validated and bound to the stream's wallet; its signature is checked by the settlement path. */
  onUsageReceipt(providerName: string, receipt: UsageReceipt): Promise<void> | void;
  /** Validated, not fenced: provider Events about an attempt's pods (untrusted text). */
  onPodEvents?(providerName: string, events: PodEvents): Promise<void> | void;
  /** The provider's live stream ended (not called when a newer stream replaced it). */
  onDisconnect(providerName: string): Promise<void> | void;
}
