import { status } from '@grpc/grpc-js';
import { Wallet } from 'ethers';
import { describe, expect, it } from 'vitest';
import { NonceBook, challengeText, signChallenge, verifyProof, type WalletChallenge } from './wallet-proof.js';

const audience = 'fedgpu-hub.test';
const t0 = 1_750_000_000_000;
const wallet = new Wallet('0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d');
const otherWallet = new Wallet('0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a');

function newBook(): NonceBook {
  return new NonceBook({ ttlMs: 30_000 });
}

describe('challengeText', () => {
  it('names the audience, wallet, nonce and expiry, one per line', async () => {
    const challenge = newBook().issue(audience, t0) as WalletChallenge;
    const text = challengeText(challenge, wallet.address.toLowerCase());
    expect(text.split('\n')).toEqual([
      'fedgpu provider registration',
      `Audience: ${audience}`,
      `Wallet: ${wallet.address}`,
      `Nonce: ${challenge.nonce}`,
      `Expires: ${new Date(t0 + 30_000).toISOString()}`,
    ]);
  });

  it('refuses an audience that would inject a line', () => {
    const challenge = { nonce: 'a'.repeat(64), audience: 'hub\nWallet: 0x0', expiresAtUnixMs: t0 };
    expect(() => challengeText(challenge, wallet.address)).toThrow(/audience/);
  });
});

describe('verifyProof', () => {
  it('accepts a fresh proof from the claimed wallet once', async () => {
    const book = newBook();
    const challenge = book.issue(audience, t0) as WalletChallenge;
    const proof = await signChallenge(wallet, challenge, wallet.address);
    expect(verifyProof(challenge, proof, wallet.address.toLowerCase(), { now: t0 + 1000, nonces: book })).toEqual({ ok: true, wallet: wallet.address });
    // The same proof again is a replay.
    expect(verifyProof(challenge, proof, wallet.address, { now: t0 + 2000, nonces: book })).toMatchObject({
      ok: false,
      error: { code: status.UNAUTHENTICATED, reason: 'nonce_replayed' },
    });
  });

  it('names a replay on a new challenge as a replay', async () => {
    const book = newBook();
    const first = book.issue(audience, t0) as WalletChallenge;
    const proof = await signChallenge(wallet, first, wallet.address);
    expect(verifyProof(first, proof, wallet.address, { now: t0, nonces: book }).ok).toBe(true);
    const second = book.issue(audience, t0 + 10) as WalletChallenge;
    expect(verifyProof(second, proof, wallet.address, { now: t0 + 20, nonces: book })).toMatchObject({ ok: false, error: { reason: 'nonce_replayed' } });
  });

  it('refuses a proof for another challenge, an expired challenge, a wrong signer and a bad signature', async () => {
    const book = newBook();
    const challenge = book.issue(audience, t0) as WalletChallenge;
    const other = book.issue(audience, t0) as WalletChallenge;
    const proof = await signChallenge(wallet, challenge, wallet.address);

    expect(verifyProof(other, proof, wallet.address, { now: t0, nonces: book })).toMatchObject({ ok: false, error: { reason: 'nonce_mismatch' } });
    expect(verifyProof(challenge, proof, wallet.address, { now: t0 + 30_001 })).toMatchObject({ ok: false, error: { reason: 'challenge_expired' } });

    const byOther = await signChallenge(otherWallet, challenge, wallet.address);
    expect(verifyProof(challenge, byOther, wallet.address, { now: t0 })).toMatchObject({ ok: false, error: { reason: 'bad_signature' } });
    // Signed honestly by the other wallet but claimed for ours: the recovered address differs.
    const honestOther = await signChallenge(otherWallet, challenge, otherWallet.address);
    expect(verifyProof(challenge, honestOther, wallet.address, { now: t0 })).toMatchObject({ ok: false, error: { reason: 'bad_signature' } });

    for (const signature of ['0x', `0x${'00'.repeat(65)}`, `0x${'zz'.repeat(65)}`, proof.signature.slice(0, -2)]) {
      expect(verifyProof(challenge, { nonce: challenge.nonce, signature }, wallet.address, { now: t0 })).toMatchObject({ ok: false, error: { reason: 'bad_signature' } });
    }
    expect(verifyProof(challenge, proof, 'not-an-address', { now: t0 })).toMatchObject({ ok: false, error: { reason: 'bad_signature' } });
  });

  it('refuses a proof made for another hub (audience is signed)', async () => {
    const challenge = newBook().issue(audience, t0) as WalletChallenge;
    const forElsewhere = await signChallenge(wallet, { ...challenge, audience: 'evil-hub' }, wallet.address);
    expect(verifyProof(challenge, forElsewhere, wallet.address, { now: t0 })).toMatchObject({ ok: false, error: { reason: 'bad_signature' } });
  });

  it('refuses an expired nonce when redeeming', async () => {
    const book = newBook();
    const challenge = book.issue(audience, t0) as WalletChallenge;
    const proof = await signChallenge(wallet, challenge, wallet.address);
    expect(verifyProof(challenge, proof, wallet.address, { now: t0 + 31_000, nonces: book })).toMatchObject({ ok: false, error: { reason: 'challenge_expired' } });
  });
});

describe('verifyProof against a full book', () => {
  it('keeps nothing for a junk proof once its stream discards the nonce, so junk cannot fill the book against honest agents', async () => {
    // The attack: with any client certificate, open streams and answer each challenge with a junk
    // signature; each redeemed nonce stayed for its TTL, and at the cap no honest agent got a challenge.
    const book = new NonceBook({ ttlMs: 30_000, maxEntries: 4 });
    for (let i = 0; i < 20; i++) {
      const challenge = book.issue(audience, t0) as WalletChallenge;
      expect(challenge).toBeDefined();
      const junk = { nonce: challenge.nonce, signature: '0x' + '11'.repeat(65) };
      expect(verifyProof(challenge, junk, wallet.address, { now: t0, nonces: book }).ok).toBe(false);
      book.discard(challenge.nonce); // the refused stream ends
    }
    const honest = book.issue(audience, t0) as WalletChallenge;
    const proof = await signChallenge(wallet, honest, wallet.address);
    expect(verifyProof(honest, proof, wallet.address, { now: t0, nonces: book })).toMatchObject({ ok: true });
    // A good proof is still redeemed: the same answer again is a replay.
    expect(verifyProof(honest, proof, wallet.address, { now: t0, nonces: book })).toMatchObject({ ok: false, error: { reason: 'nonce_replayed' } });
  });
});

describe('NonceBook', () => {
  it('issues distinct 32-byte hex nonces and forgets them after expiry', () => {
    const book = new NonceBook({ ttlMs: 100, maxEntries: 3 });
    const a = book.issue(audience, t0);
    const b = book.issue(audience, t0 + 1);
    const c = book.issue(audience, t0 + 2);
    expect(new Set([a?.nonce, b?.nonce, c?.nonce]).size).toBe(3);
    expect(a?.nonce).toMatch(/^[0-9a-f]{64}$/);
    // Full: no fourth until the first ones expire.
    expect(book.issue(audience, t0 + 3)).toBeUndefined();
    expect(book.issue(audience, t0 + 101)).toBeDefined();
    expect(book.size).toBeLessThanOrEqual(3);
  });

  it('redeems once; unknown, replayed and expired nonces are named', () => {
    const book = new NonceBook({ ttlMs: 100 });
    const challenge = book.issue(audience, t0) as WalletChallenge;
    expect(book.redeem('f'.repeat(64), t0)).toBe('unknown');
    expect(book.redeem(challenge.nonce, t0 + 50)).toBe('ok');
    expect(book.redeem(challenge.nonce, t0 + 60)).toBe('replayed');
    const late = book.issue(audience, t0) as WalletChallenge;
    expect(book.redeem(late.nonce, t0 + 101)).toBe('expired');
    const dropped = book.issue(audience, t0) as WalletChallenge;
    book.discard(dropped.nonce);
    expect(book.redeem(dropped.nonce, t0)).toBe('unknown');
  });
});
