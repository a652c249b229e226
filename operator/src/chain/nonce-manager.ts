import {
  AbstractSigner,
  isError,
  type Provider,
  type TransactionRequest,
  type TransactionResponse,
  type TypedDataDomain,
  type TypedDataField,
  type Wallet,
} from 'ethers';

const MAX_ATTEMPTS = 2;

function isNonceTaken(err: unknown): boolean {
  return isError(err, 'NONCE_EXPIRED') || isError(err, 'REPLACEMENT_UNDERPRICED');
}

/**
 * The single nonce source for the hub's settler key. Every transaction goes through one queue:
 * nonces are handed out in order with no gaps while sends succeed, and any failed send makes the
 * next one re-read the pending nonce from the chain (a tx that was broadcast before the error is
 * then counted; one that was not is not skipped over). A send the chain refuses because its nonce
 * is already taken is retried once with a fresh one.
 *
 * It is an ethers Signer, so contracts use it directly: `market.connect(nonceManager).settle(...)`.
 * A `nonce` set by a caller is ignored: two nonce sources for one key is the bug this prevents.
 */
export class SettlerNonceManager extends AbstractSigner {
  readonly wallet: Wallet;
  #nextNonce: number | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(wallet: Wallet) {
    super(wallet.provider);
    this.wallet = wallet;
  }

  override getAddress(): Promise<string> {
    return Promise.resolve(this.wallet.address);
  }

  override connect(provider: Provider | null): SettlerNonceManager {
    return new SettlerNonceManager(this.wallet.connect(provider));
  }

  /** The nonce the next send will use, when known locally (undefined means: re-read from chain). */
  get nextNonce(): number | undefined {
    return this.#nextNonce;
  }

  /** Forgets the local nonce; the next send reads it from the chain (e.g. after an external send). */
  resync(): void {
    this.#nextNonce = undefined;
  }

  override sendTransaction(tx: TransactionRequest): Promise<TransactionResponse> {
    return this.#serialize(async () => {
      for (let attempt = 1; ; attempt++) {
        const nonce = this.#nextNonce ?? (await this.wallet.getNonce('pending'));
        try {
          const response = await this.wallet.sendTransaction({ ...tx, nonce });
          this.#nextNonce = nonce + 1;
          return response;
        } catch (err) {
          this.#nextNonce = undefined;
          // The chain refused the nonce as taken (someone else sent from this key): this
          // transaction was certainly not accepted, so one resend with a fresh nonce is safe.
          if (attempt >= MAX_ATTEMPTS || !isNonceTaken(err)) throw err;
        }
      }
    });
  }

  override signTransaction(tx: TransactionRequest): Promise<string> {
    return this.wallet.signTransaction(tx);
  }

  override signMessage(message: string | Uint8Array): Promise<string> {
    return this.wallet.signMessage(message);
  }

  override signTypedData(
    domain: TypedDataDomain,
    types: Record<string, TypedDataField[]>,
    value: Record<string, unknown>,
  ): Promise<string> {
    return this.wallet.signTypedData(domain, types, value);
  }

  /** Runs `task` after every earlier one has finished, whatever their outcome. */
  #serialize<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task);
    this.#queue = run.catch(() => undefined); // the queue itself never rejects
    return run;
  }
}
