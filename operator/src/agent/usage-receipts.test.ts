import { Wallet } from 'ethers';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { attemptEscrowId } from '../chain/attempt-escrow.js';
import { buildUsageReceipt, marketDomain, recoverReceiptSigner } from '../chain/receipt.js';
import type { UsageReceipt } from '../gen/proto/fedgpu/v1/market.js';
import { UsageReceiptBook } from './usage-receipts.js';

const wallet = new Wallet('0x' + '42'.repeat(32));
const chain = { chainId: 31337, marketAddress: '0x' + 'cd'.repeat(20) };
const usage = { jobUid: 'uid-1', epoch: 2, gpuSeconds: 61.9, pricePerGpuHour: '3.6', ended: 'Succeeded' };

describe('UsageReceiptBook', () => {
  it('signs the whole GPU-seconds of an attempt for the hub\'s market, verifiable as the provider', async () => {
    const book = new UsageReceiptBook(wallet, pino({ level: 'silent' }));
    book.record(usage);
    const sent: UsageReceipt[] = [];
    expect(await book.sendAll((r) => (sent.push(r), true))).toBe(0); // no chain known yet
    book.setChain(chain);
    expect(await book.sendAll((r) => (sent.push(r), true))).toBe(1);
    const [msg] = sent;
    expect(msg).toMatchObject({ jobUid: 'uid-1', epoch: 2, gpuSeconds: 61, pricePerGpuHour: '3.6', amount: '0.061', providerWallet: wallet.address });
    const receipt = buildUsageReceipt({ jobId: attemptEscrowId('uid-1', 2), epoch: 2, gpuSeconds: 61, pricePerGpuHour: '3.6', provider: wallet.address, usageHash: msg!.usageHash });
    expect(recoverReceiptSigner(marketDomain(chain.chainId, chain.marketAddress), receipt, msg!.signature)).toBe(wallet.address);
  });

  it('resends until acknowledged, the same receipt each time, and records an attempt once', async () => {
    const book = new UsageReceiptBook(wallet, pino({ level: 'silent' }));
    book.setChain(chain);
    book.record(usage);
    book.record({ ...usage, gpuSeconds: 99 }); // a later report of the same attempt changes nothing
    const sent: UsageReceipt[] = [];
    await book.sendAll((r) => (sent.push(r), true));
    await book.sendAll((r) => (sent.push(r), true));
    expect(sent).toHaveLength(2);
    expect(sent[0]).toEqual(sent[1]);
    book.acknowledge('uid-1', 2, true, '');
    expect(await book.sendAll(() => true)).toBe(0);
    book.record(usage);
    expect(book.size).toBe(0);
  });
});

describe('UsageReceiptBook with a hub that settles nothing', () => {
  it('keeps no receipts', async () => {
    const book = new UsageReceiptBook(wallet, pino({ level: 'silent' }));
    book.setChain(undefined);
    book.record(usage);
    expect(book.size).toBe(0);
    expect(await book.sendAll(() => true)).toBe(0);
  });
});
