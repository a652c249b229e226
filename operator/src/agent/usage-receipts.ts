import { defaultEdgeLimits } from '../protocol/limits.js';
import { keccak256, toUtf8Bytes, type TypedDataDomain, type Wallet } from 'ethers';
import type { Logger } from 'pino';
import { attemptEscrowId } from '../chain/attempt-escrow.js';
import { formatCredits } from '../chain/credits.js';
import { buildUsageReceipt, marketDomain, signUsageReceipt } from '../chain/receipt.js';
import type { UsageReceipt as ReceiptMessage } from '../gen/proto/fedgpu/v1/market.js';

// The agent's usage receipts: when an attempt it ran ends, the provider wallet signs its final
// usage (EIP-712, the receipt GpuMarket checks on chain) once, and the agent keeps sending it, after
// every reconnect and now and then, until the hub acknowledges it (recorded or refused for good).
// Idempotent end to end: the same attempt always yields the same signed receipt.

export interface AttemptUsage {
  jobUid: string;
  epoch: number;
  /** Measured GPU-seconds (fractional); the receipt bills whole seconds, rounded down. */
  gpuSeconds: number;
  /** The price agreed in the Assign (credits per GPU-hour). */
  pricePerGpuHour: string;
  /** Why the attempt ended, for the detailed usage record the receipt hashes. */
  ended: string;
}

interface Entry {
  usage: AttemptUsage;
  message?: ReceiptMessage;
  /** The domain `message` was signed for. */
  signedFor?: string;
}

const MAX_PENDING = 10_000;

export class UsageReceiptBook {
  private readonly pending = new Map<string, Entry>();
  private readonly acknowledged = new Set<string>();
  private domain: TypedDataDomain | undefined;
  /** The connected hub settles nothing: keep no receipts. */
  private chainless = false;

  constructor(
    private readonly wallet: Pick<Wallet, 'address' | 'signTypedData'>,
    private readonly logger: Logger,
  ) {}

  /** The hub's settlement chain (from Registered); undefined: the hub settles nothing. */
  setChain(chain: { chainId: number; marketAddress: string } | undefined): void {
    this.domain = chain ? marketDomain(chain.chainId, chain.marketAddress) : undefined;
    this.chainless = chain === undefined;
    if (this.chainless) this.pending.clear();
  }

  /** Notes an attempt's final usage; the first call for an attempt wins (its end is final). */
  record(usage: AttemptUsage): void {
    const key = keyOf(usage.jobUid, usage.epoch);
    if (this.chainless || this.pending.has(key) || this.acknowledged.has(key)) return;
    if (this.pending.size >= MAX_PENDING) {
      const oldest = this.pending.keys().next().value;
      if (oldest !== undefined) this.pending.delete(oldest);
    }
    this.pending.set(key, { usage });
  }

  has(jobUid: string, epoch: number): boolean {
    const key = keyOf(jobUid, epoch);
    return this.pending.has(key) || this.acknowledged.has(key);
  }

  /** The hub recorded or refused it: stop sending. */
  acknowledge(jobUid: string, epoch: number, accepted: boolean, reason: string): void {
    const key = keyOf(jobUid, epoch);
    if (!this.pending.delete(key)) return;
    this.acknowledged.add(key);
    if (this.acknowledged.size > MAX_PENDING) this.acknowledged.delete(this.acknowledged.values().next().value!);
    if (!accepted) this.logger.warn({ job: jobUid, epoch, reason }, 'the hub refused a usage receipt');
  }

  /** Signs what is unsigned and sends every unacknowledged receipt; returns how many were sent. */
  async sendAll(send: (receipt: ReceiptMessage) => boolean): Promise<number> {
    const domain = this.domain;
    if (!domain) return 0;
    const domainKey = JSON.stringify(domain);
    let sent = 0;
    for (const entry of [...this.pending.values()]) {
      if (entry.signedFor !== domainKey) {
        entry.message = await this.sign(entry.usage, domain);
        entry.signedFor = domainKey;
      }
      if (entry.message && send(entry.message)) sent++;
    }
    return sent;
  }

  get size(): number {
    return this.pending.size;
  }

  private async sign(usage: AttemptUsage, domain: TypedDataDomain): Promise<ReceiptMessage> {
    // Within the hub's bound, whatever a pod's times say (a receipt the hub refuses ends the stream).
    const gpuSeconds = Math.min(Math.max(0, Math.floor(usage.gpuSeconds)), defaultEdgeLimits.maxGpuSeconds);
    const usageHash = keccak256(toUtf8Bytes(JSON.stringify({ jobUid: usage.jobUid, epoch: usage.epoch, gpuSeconds: usage.gpuSeconds, ended: usage.ended })));
    const receipt = buildUsageReceipt({
      jobId: attemptEscrowId(usage.jobUid, usage.epoch),
      epoch: usage.epoch,
      gpuSeconds,
      pricePerGpuHour: usage.pricePerGpuHour,
      provider: this.wallet.address,
      usageHash,
    });
    return {
      jobUid: usage.jobUid,
      epoch: usage.epoch,
      gpuSeconds,
      pricePerGpuHour: usage.pricePerGpuHour,
      amount: formatCredits(receipt.amount),
      signature: await signUsageReceipt(this.wallet, domain, receipt),
      providerWallet: this.wallet.address,
      usageHash,
    };
  }
}

const keyOf = (jobUid: string, epoch: number) => `${jobUid}/${epoch}`;
