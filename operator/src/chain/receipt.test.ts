import { Signature, Wallet, keccak256, toUtf8Bytes, zeroPadValue } from 'ethers';
import { describe, expect, it } from 'vitest';
import {
  buildUsageReceipt,
  marketDomain,
  recoverReceiptSigner,
  signUsageReceipt,
  toSignedReceipt,
  usageAmount,
  usageReceiptDigest,
  type UsageReceipt,
} from './receipt.js';

const provider = new Wallet(keccak256(toUtf8Bytes('receipt-test-provider')));
const other = new Wallet(keccak256(toUtf8Bytes('receipt-test-other')));
const market = '0x5FbDB2315678afecb367f032d93F642f64180aa3';
const domain = marketDomain(31337n, market);

function receipt(overrides: Partial<UsageReceipt> = {}): UsageReceipt {
  return {
    ...buildUsageReceipt({
      jobId: keccak256(toUtf8Bytes('job-1')),
      epoch: 2,
      gpuSeconds: 7_200,
      pricePerGpuHour: '2.5',
      provider: provider.address,
      usageHash: keccak256(toUtf8Bytes('usage record')),
    }),
    ...overrides,
  };
}

describe('usageAmount', () => {
  it.each([
    [3600n, '1', 10n ** 18n],
    [7200n, '2.5', 5n * 10n ** 18n],
    [1n, '3.6', 10n ** 15n],
    [0n, '100', 0n],
    [90n, '0.000000000000000001', 0n], // 90 / 3600 of one unit rounds down to zero
    [3601n, '0.000000000000003600', 3601n],
    [1_000_000n, '0.000000000000000007', 1944n], // floor(7_000_000 / 3600) = 1944.44…
  ])('%s GPU-seconds at %s credits/GPU-hour cost %s units', (seconds, price, units) => {
    expect(usageAmount(seconds, price)).toBe(units);
  });

  it('accepts whole numbers of seconds only', () => {
    expect(usageAmount(3600, '1')).toBe(10n ** 18n);
    expect(() => usageAmount(1.5, '1')).toThrow(RangeError);
    expect(() => usageAmount(-1n, '1')).toThrow(RangeError);
    expect(() => usageAmount(2n ** 64n, '1')).toThrow(RangeError);
  });

  it('rejects prices that are not exact decimals', () => {
    expect(() => usageAmount(1n, '1e3')).toThrow(RangeError);
    expect(() => usageAmount(1n, '-2')).toThrow(RangeError);
  });
});

describe('buildUsageReceipt', () => {
  it('derives the amount and price in token units', () => {
    const r = receipt();
    expect(r.pricePerGpuHour).toBe(2_500_000_000_000_000_000n);
    expect(r.amount).toBe(5_000_000_000_000_000_000n);
    expect(r.gpuSeconds).toBe(7_200n);
  });

  it('refuses an epoch outside uint32', () => {
    const base = { jobId: zeroPadValue('0x01', 32), gpuSeconds: 1, pricePerGpuHour: '1', provider: provider.address, usageHash: zeroPadValue('0x02', 32) };
    expect(() => buildUsageReceipt({ ...base, epoch: -1 })).toThrow(RangeError);
    expect(() => buildUsageReceipt({ ...base, epoch: 2 ** 32 })).toThrow(RangeError);
    expect(() => buildUsageReceipt({ ...base, epoch: 1.5 })).toThrow(RangeError);
  });
});

describe('signUsageReceipt / recoverReceiptSigner', () => {
  it('recovers the provider that signed', async () => {
    const r = receipt();
    const sig = await signUsageReceipt(provider, domain, r);
    expect(recoverReceiptSigner(domain, r, sig)).toBe(provider.address);
  });

  it('recovers someone else when any signed field changes', async () => {
    const r = receipt();
    const sig = await signUsageReceipt(provider, domain, r);
    const tampered: UsageReceipt[] = [
      { ...r, amount: r.amount + 1n },
      { ...r, epoch: r.epoch + 1 },
      { ...r, gpuSeconds: r.gpuSeconds + 1n },
      { ...r, pricePerGpuHour: r.pricePerGpuHour + 1n },
      { ...r, jobId: keccak256(toUtf8Bytes('job-2')) },
      { ...r, usageHash: keccak256(toUtf8Bytes('another record')) },
      { ...r, provider: other.address },
    ];
    for (const t of tampered) expect(recoverReceiptSigner(domain, t, sig)).not.toBe(provider.address);
  });

  it('does not verify under another chain or market', async () => {
    const r = receipt();
    const sig = await signUsageReceipt(provider, domain, r);
    expect(recoverReceiptSigner(marketDomain(1n, market), r, sig)).not.toBe(provider.address);
    expect(recoverReceiptSigner(marketDomain(31337n, other.address), r, sig)).not.toBe(provider.address);
  });

  it('signs the digest usageReceiptDigest computes', async () => {
    const r = receipt();
    const sig = await signUsageReceipt(provider, domain, r);
    expect(provider.signingKey.sign(usageReceiptDigest(domain, r)).serialized).toBe(sig);
  });
});

describe('toSignedReceipt', () => {
  it('splits the signature into v, r, s that rebuild it', async () => {
    const r = receipt();
    const sig = await signUsageReceipt(provider, domain, r);
    const signed = toSignedReceipt(r, sig);
    expect([27, 28]).toContain(signed.v);
    expect(Signature.from({ r: signed.r, s: signed.s, v: signed.v }).serialized).toBe(sig);
    expect(signed.receipt).toBe(r);
  });
});
