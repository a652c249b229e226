import { Wallet, keccak256, makeError, toUtf8Bytes, type TransactionRequest, type TransactionResponse } from 'ethers';
import { describe, expect, it } from 'vitest';
import { SettlerNonceManager } from './nonce-manager.js';

/** A wallet whose chain is a counter: records the nonce of every send, fails on request. */
class FakeWallet extends Wallet {
  chainNonce = 5;
  sent: number[] = [];
  inFlight = 0;
  maxInFlight = 0;
  failNext: 'before-broadcast' | 'after-broadcast' | undefined;

  override async getNonce(): Promise<number> {
    return this.chainNonce;
  }

  override async sendTransaction(tx: TransactionRequest): Promise<TransactionResponse> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((resolve) => setTimeout(resolve, 2));
      const nonce = Number(tx.nonce);
      const failure = this.failNext;
      this.failNext = undefined;
      if (failure === 'before-broadcast') throw new Error('estimateGas: execution reverted');
      if (nonce < this.chainNonce) throw makeError('nonce has already been used', 'NONCE_EXPIRED');
      if (nonce > this.chainNonce) throw new Error(`nonce gap: ${nonce} but chain expects ${this.chainNonce}`);
      this.chainNonce++;
      this.sent.push(nonce);
      if (failure === 'after-broadcast') throw new Error('socket hang up');
      return { nonce } as unknown as TransactionResponse;
    } finally {
      this.inFlight--;
    }
  }
}

function manager(): { wallet: FakeWallet; nonces: SettlerNonceManager } {
  const wallet = new FakeWallet(keccak256(toUtf8Bytes('nonce-manager-test')));
  return { wallet, nonces: new SettlerNonceManager(wallet) };
}

describe('SettlerNonceManager', () => {
  it('hands out consecutive nonces to concurrent sends, one send at a time', async () => {
    const { wallet, nonces } = manager();
    const responses = await Promise.all(Array.from({ length: 20 }, () => nonces.sendTransaction({ to: wallet.address })));
    expect(responses.map((r) => r.nonce)).toEqual(Array.from({ length: 20 }, (_, i) => 5 + i));
    expect(wallet.sent).toEqual(Array.from({ length: 20 }, (_, i) => 5 + i));
    expect(wallet.maxInFlight).toBe(1);
    expect(nonces.nextNonce).toBe(25);
  });

  it('overrides a nonce the caller set', async () => {
    const { wallet, nonces } = manager();
    await nonces.sendTransaction({ to: wallet.address, nonce: 999 });
    expect(wallet.sent).toEqual([5]);
  });

  it('reuses the nonce of a send that failed before broadcast', async () => {
    const { wallet, nonces } = manager();
    await nonces.sendTransaction({ to: wallet.address });
    wallet.failNext = 'before-broadcast';
    await expect(nonces.sendTransaction({ to: wallet.address })).rejects.toThrow(/reverted/);
    expect(nonces.nextNonce).toBeUndefined();
    await nonces.sendTransaction({ to: wallet.address });
    expect(wallet.sent).toEqual([5, 6]);
  });

  it('re-syncs past a send that reached the chain before failing', async () => {
    const { wallet, nonces } = manager();
    wallet.failNext = 'after-broadcast';
    await expect(nonces.sendTransaction({ to: wallet.address })).rejects.toThrow(/hang up/);
    await nonces.sendTransaction({ to: wallet.address });
    expect(wallet.sent).toEqual([5, 6]);
  });

  it('keeps serving sends queued behind a failing one', async () => {
    const { wallet, nonces } = manager();
    wallet.failNext = 'before-broadcast';
    const results = await Promise.allSettled([
      nonces.sendTransaction({ to: wallet.address }),
      nonces.sendTransaction({ to: wallet.address }),
      nonces.sendTransaction({ to: wallet.address }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'fulfilled']);
    expect(wallet.sent).toEqual([5, 6]);
  });

  it('resends once with a fresh nonce when the chain says its nonce is taken', async () => {
    const { wallet, nonces } = manager();
    await nonces.sendTransaction({ to: wallet.address });
    wallet.chainNonce = 40; // e.g. an operator sent from the same key by hand
    const response = await nonces.sendTransaction({ to: wallet.address });
    expect(response.nonce).toBe(40);
    expect(wallet.sent).toEqual([5, 40]);
  });

  it('gives up after the one resend', async () => {
    const { wallet, nonces } = manager();
    let calls = 0;
    wallet.getNonce = async () => {
      calls++;
      return 0; // a node that keeps answering a stale nonce
    };
    await expect(nonces.sendTransaction({ to: wallet.address })).rejects.toThrow(/already been used/);
    expect(calls).toBe(2);
    expect(wallet.sent).toEqual([]);
  });

  it('picks up nonces used outside it after resync()', async () => {
    const { wallet, nonces } = manager();
    await nonces.sendTransaction({ to: wallet.address });
    wallet.chainNonce = 40;
    nonces.resync();
    expect(nonces.nextNonce).toBeUndefined();
    await nonces.sendTransaction({ to: wallet.address });
    expect(wallet.sent).toEqual([5, 40]);
  });

  it('signs like the wallet it wraps', async () => {
    const { wallet, nonces } = manager();
    expect(await nonces.getAddress()).toBe(wallet.address);
    expect(await nonces.signMessage('hello')).toBe(await wallet.signMessage('hello'));
  });
});
