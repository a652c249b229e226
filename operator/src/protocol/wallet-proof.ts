// Proof that an agent controls its provider wallet (DESIGN.md section 3, Register).
//
// The hub issues a Challenge (random single-use nonce, its own audience string, an expiry); the
// agent signs a canonical text built from the challenge and its wallet with EIP-191 personal_sign;
// the hub rebuilds the same text and recovers the signer. The audience stops a proof made for one
// hub from being replayed at another; the nonce and expiry stop replay at the same hub.
import { randomBytes } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { getAddress, verifyMessage } from 'ethers';
import { EdgeError } from './edge-error.js';
import { forbiddenControlChars, hexNonce, hexSignature } from './patterns.js';

export interface WalletChallenge {
  nonce: string;
  audience: string;
  expiresAtUnixMs: number;
}

export interface WalletProof {
  nonce: string;
  signature: string;
}

/** Anything that can personal_sign, e.g. an ethers Wallet. */
export interface MessageSigner {
  signMessage(message: string): Promise<string>;
}

export type ProofResult = { ok: true; wallet: string } | { ok: false; error: EdgeError };

const maxAudienceChars = 256;

/**
 * The exact text both sides sign and verify. Line-oriented so a wallet UI shows it readably; every
 * field is validated first so no value can inject an extra line.
 */
export function challengeText(challenge: WalletChallenge, wallet: string): string {
  const { audience, nonce, expiresAtUnixMs } = challenge;
  if (audience.length === 0 || audience.length > maxAudienceChars || forbiddenControlChars.test(audience) || audience.includes('\n')) {
    throw new Error('challenge audience must be 1-256 printable characters on one line');
  }
  if (!hexNonce.test(nonce)) throw new Error('challenge nonce must be 32 bytes of lowercase hex');
  if (!Number.isSafeInteger(expiresAtUnixMs) || expiresAtUnixMs <= 0) throw new Error('challenge expiry must be a positive integer');
  return [
    'fedgpu provider registration',
    `Audience: ${audience}`,
    `Wallet: ${getAddress(wallet)}`,
    `Nonce: ${nonce}`,
    `Expires: ${new Date(expiresAtUnixMs).toISOString()}`,
  ].join('\n');
}

/** Agent side: sign the challenge for `wallet` with `signer`. */
export async function signChallenge(signer: MessageSigner, challenge: WalletChallenge, wallet: string): Promise<WalletProof> {
  return { nonce: challenge.nonce, signature: await signer.signMessage(challengeText(challenge, wallet)) };
}

export interface VerifyProofOptions {
  /** Wall-clock now in ms (default Date.now()). */
  now?: number;
  /** When given, the nonce is redeemed here: a second use of the same nonce is refused as a replay. */
  nonces?: NonceBook;
}

/**
 * Hub side: checks that `proof` answers `challenge` (this stream's challenge), is not expired, is
 * not a replay, and was signed by `claimedWallet`. Never throws.
 */
export function verifyProof(
  challenge: WalletChallenge,
  proof: WalletProof,
  claimedWallet: string,
  options: VerifyProofOptions = {},
): ProofResult {
  const now = options.now ?? Date.now();
  const nonces = options.nonces;
  if (proof.nonce !== challenge.nonce) {
    // A nonce this hub already accepted is a replay; anything else just answers another challenge.
    const reason = nonces?.wasRedeemed(proof.nonce, now) ? 'nonce_replayed' : 'nonce_mismatch';
    return refuse(reason, 'proof does not answer this stream\u2019s challenge');
  }
  if (nonces?.wasRedeemed(proof.nonce, now)) return refuse('nonce_replayed', 'nonce was already used');
  if (now > challenge.expiresAtUnixMs) return refuse('challenge_expired', 'challenge expired');
  if (!hexSignature.test(proof.signature)) return refuse('bad_signature', 'signature is malformed');

  let expected: string;
  let recovered: string;
  try {
    expected = getAddress(claimedWallet);
    recovered = verifyMessage(challengeText(challenge, expected), proof.signature);
  } catch {
    return refuse('bad_signature', 'signature does not recover');
  }
  if (recovered !== expected) return refuse('bad_signature', 'signature is not from the claimed wallet');
  // Redeemed only once the signature holds: a junk proof leaves nothing in the book for its TTL (its
  // stream's end discards the nonce), so streams of junk proofs cannot fill it against honest agents.
  if (nonces) {
    const outcome = nonces.redeem(proof.nonce, now);
    if (outcome === 'replayed') return refuse('nonce_replayed', 'nonce was already used');
    if (outcome === 'expired') return refuse('challenge_expired', 'challenge expired');
    if (outcome === 'unknown') return refuse('nonce_unknown', 'nonce was not issued by this hub');
  }
  return { ok: true, wallet: expected };
}

function refuse(reason: 'nonce_mismatch' | 'nonce_replayed' | 'nonce_unknown' | 'challenge_expired' | 'bad_signature', detail: string): ProofResult {
  return { ok: false, error: new EdgeError(status.UNAUTHENTICATED, reason, detail) };
}

export type RedeemOutcome = 'ok' | 'unknown' | 'expired' | 'replayed';

export interface NonceBookOptions {
  /** How long a challenge stays answerable. */
  ttlMs: number;
  /** Bound on remembered nonces (issued + redeemed, until they expire). */
  maxEntries?: number;
  /** Source of 32 random bytes (tests may make nonces predictable). */
  randomBytes?: (n: number) => Uint8Array;
}

/**
 * Issues single-use nonces and remembers them until they expire. Memory is bounded: expired
 * entries are swept on every issue, and issuing fails (returns undefined) when the book is full.
 */
export class NonceBook {
  private readonly issued = new Map<string, number>();
  private readonly redeemed = new Map<string, number>();
  private readonly maxEntries: number;
  private readonly random: (n: number) => Uint8Array;

  constructor(private readonly options: NonceBookOptions) {
    if (!(options.ttlMs > 0)) throw new Error('NonceBook ttlMs must be positive');
    this.maxEntries = options.maxEntries ?? 100_000;
    this.random = options.randomBytes ?? ((n) => randomBytes(n));
  }

  /** A fresh challenge for `audience`, or undefined when too many are outstanding. */
  issue(audience: string, now = Date.now()): WalletChallenge | undefined {
    this.sweep(now);
    if (this.issued.size + this.redeemed.size >= this.maxEntries) return undefined;
    const nonce = Buffer.from(this.random(32)).toString('hex');
    if (!hexNonce.test(nonce) || this.issued.has(nonce) || this.redeemed.has(nonce)) return undefined;
    const expiresAtUnixMs = now + this.options.ttlMs;
    this.issued.set(nonce, expiresAtUnixMs);
    return { nonce, audience, expiresAtUnixMs };
  }

  /** Marks `nonce` used. Only the first redeem of an unexpired issued nonce returns 'ok'. */
  redeem(nonce: string, now = Date.now()): RedeemOutcome {
    if (this.wasRedeemed(nonce, now)) return 'replayed';
    const expiresAt = this.issued.get(nonce);
    if (expiresAt === undefined) return 'unknown';
    this.issued.delete(nonce);
    // Remember it until it would have expired anyway, so a replay is named as one.
    this.redeemed.set(nonce, expiresAt);
    return now > expiresAt ? 'expired' : 'ok';
  }

  wasRedeemed(nonce: string, now = Date.now()): boolean {
    const expiresAt = this.redeemed.get(nonce);
    return expiresAt !== undefined && now <= expiresAt;
  }

  /** Forgets an unanswered nonce (its stream ended). */
  discard(nonce: string): void {
    this.issued.delete(nonce);
  }

  get size(): number {
    return this.issued.size + this.redeemed.size;
  }

  // Maps iterate in insertion order and every entry lives the same ttl, so expired entries sit at
  // the front: stop at the first live one. Amortised O(1) per issue.
  private sweep(now: number): void {
    for (const map of [this.issued, this.redeemed]) {
      for (const [nonce, expiresAt] of map) {
        if (now <= expiresAt) break;
        map.delete(nonce);
      }
    }
  }
}
