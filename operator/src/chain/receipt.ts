import { Signature, TypedDataEncoder, verifyTypedData, type Signer, type TypedDataDomain } from 'ethers';
import { parseCredits } from './credits.js';

// The usage receipt a provider's agent signs when an attempt ends, and the hub submits to
// GpuMarket.settle/settleBatch. The layout must match GpuMarket.UsageReceipt field for field:
// the contract recomputes this EIP-712 digest and checks the signer with ecrecover.

export const MARKET_DOMAIN_NAME = 'fedgpu GpuMarket';
export const MARKET_DOMAIN_VERSION = '1';
const SECONDS_PER_HOUR = 3600n;
const MAX_UINT32 = 2 ** 32 - 1;
const MAX_UINT64 = 2n ** 64n - 1n;

export const USAGE_RECEIPT_TYPES = {
  UsageReceipt: [
    { name: 'jobId', type: 'bytes32' },
    { name: 'epoch', type: 'uint32' },
    { name: 'gpuSeconds', type: 'uint64' },
    { name: 'pricePerGpuHour', type: 'uint256' },
    { name: 'amount', type: 'uint256' },
    { name: 'provider', type: 'address' },
    { name: 'usageHash', type: 'bytes32' },
  ],
};

export interface UsageReceipt {
  /** bytes32 key of the job's escrow (see jobIdOf). */
  jobId: string;
  /** The attempt's fencing epoch. */
  epoch: number;
  gpuSeconds: bigint;
  /** Token units (18 decimals) per GPU-hour. */
  pricePerGpuHour: bigint;
  /** Token units charged: always usageAmount(gpuSeconds, price). */
  amount: bigint;
  /** The provider wallet: the signer and the payee. */
  provider: string;
  /** bytes32 hash of the agent's detailed usage record. */
  usageHash: string;
}

/** A receipt with its signature split the way GpuMarket.settleBatch takes it. */
export interface SignedReceipt {
  receipt: UsageReceipt;
  v: number;
  r: string;
  s: string;
}

/** The EIP-712 domain of one GpuMarket deployment: receipts never replay across chains or markets. */
export function marketDomain(chainId: bigint | number, marketAddress: string): TypedDataDomain {
  return { name: MARKET_DOMAIN_NAME, version: MARKET_DOMAIN_VERSION, chainId, verifyingContract: marketAddress };
}

/**
 * Token units owed for `gpuSeconds` at `pricePerGpuHour` credits (a decimal string): exactly
 * floor(gpuSeconds × price / 3600), the same rounding the contract enforces.
 */
export function usageAmount(gpuSeconds: bigint | number, pricePerGpuHour: string): bigint {
  return (toGpuSeconds(gpuSeconds) * parseCredits(pricePerGpuHour)) / SECONDS_PER_HOUR;
}

export interface ReceiptInput {
  jobId: string;
  epoch: number;
  gpuSeconds: bigint | number;
  /** Credits per GPU-hour as a decimal string, e.g. "2.75". */
  pricePerGpuHour: string;
  provider: string;
  usageHash: string;
}

/** Builds a receipt whose amount is derived from the usage, so the two can never disagree. */
export function buildUsageReceipt(input: ReceiptInput): UsageReceipt {
  if (!Number.isInteger(input.epoch) || input.epoch < 0 || input.epoch > MAX_UINT32) {
    throw new RangeError(`epoch ${input.epoch} is not a uint32`);
  }
  const gpuSeconds = toGpuSeconds(input.gpuSeconds);
  return {
    jobId: input.jobId,
    epoch: input.epoch,
    gpuSeconds,
    pricePerGpuHour: parseCredits(input.pricePerGpuHour),
    amount: usageAmount(gpuSeconds, input.pricePerGpuHour),
    provider: input.provider,
    usageHash: input.usageHash,
  };
}

/** The provider signs its receipt (EIP-712 typed data); returns the 65-byte r‖s‖v signature. */
export function signUsageReceipt(
  wallet: Pick<Signer, 'signTypedData'>,
  domain: TypedDataDomain,
  receipt: UsageReceipt,
): Promise<string> {
  return wallet.signTypedData(domain, USAGE_RECEIPT_TYPES, receipt);
}

/** The address that signed `receipt` (for the hub to check before it submits anything). */
export function recoverReceiptSigner(domain: TypedDataDomain, receipt: UsageReceipt, signature: string): string {
  return verifyTypedData(domain, USAGE_RECEIPT_TYPES, receipt, signature);
}

/** The digest the provider signs; equals GpuMarket.receiptDigest(receipt) on the same domain. */
export function usageReceiptDigest(domain: TypedDataDomain, receipt: UsageReceipt): string {
  return TypedDataEncoder.hash(domain, USAGE_RECEIPT_TYPES, receipt);
}

/** Splits a signature into the (v, r, s) form settleBatch takes; ethers normalises s to the low half. */
export function toSignedReceipt(receipt: UsageReceipt, signature: string): SignedReceipt {
  const sig = Signature.from(signature);
  return { receipt, v: sig.v, r: sig.r, s: sig.s };
}

function toGpuSeconds(value: bigint | number): bigint {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw new RangeError(`gpuSeconds ${value} is not a whole number`);
  }
  const seconds = BigInt(value);
  if (seconds < 0n || seconds > MAX_UINT64) throw new RangeError(`gpuSeconds ${seconds} is not a uint64`);
  return seconds;
}
