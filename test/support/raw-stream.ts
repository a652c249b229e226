// A hand-driven agent stream for tests of the hub's edge: sends any bytes (garbage included),
// collects every hub message and the final gRPC status.
import { credentials, type ChannelCredentials, type ClientDuplexStream, type status } from '@grpc/grpc-js';
import type { HDNodeWallet, Wallet } from 'ethers';
import { AgentMessage, HubMessage, MarketplaceClient, MarketplaceService } from '../../operator/src/gen/proto/fedgpu/v1/market.js';
import { signChallenge, type WalletChallenge, type WalletProof } from '../../operator/src/protocol/wallet-proof.js';
import type { IssuedCertificate } from '../../operator/src/tls/certs.js';

export type AnyWallet = Wallet | HDNodeWallet;
type HubBody = NonNullable<HubMessage['body']>;
type HubBodyValue<K extends HubBody['$case']> = Extract<HubBody, { $case: K }>['value'];

export interface RawStreamOptions {
  port: number;
  caPem: string;
  /** null dials without a client certificate. */
  cert: IssuedCertificate | null;
  /** Name to verify in the hub's certificate. */
  serverName: string;
  /** Collects clients so a test can close them. */
  clients?: MarketplaceClient[];
}

export function agentCredentials(caPem: string, cert: IssuedCertificate | null): ChannelCredentials {
  return cert
    ? credentials.createSsl(Buffer.from(caPem), Buffer.from(cert.keyPem), Buffer.from(cert.certPem))
    : credentials.createSsl(Buffer.from(caPem));
}

/** A hand-driven stream: sends any bytes, collects every hub message and the final status. */
export class RawStream {
  readonly received: HubMessage[] = [];
  readonly ended: Promise<{ code: status; details: string }>;
  private readonly call: ClientDuplexStream<Uint8Array, HubMessage>;
  private seq = 0;
  private waiters: (() => void)[] = [];

  constructor(opts: RawStreamOptions) {
    const client = new MarketplaceClient(`127.0.0.1:${opts.port}`, agentCredentials(opts.caPem, opts.cert), {
      'grpc.ssl_target_name_override': opts.serverName,
      'grpc.default_authority': opts.serverName,
    });
    opts.clients?.push(client);
    this.call = client.makeBidiStreamRequest(
      MarketplaceService.connect.path,
      (bytes: Uint8Array) => Buffer.from(bytes),
      (bytes: Buffer) => HubMessage.decode(bytes),
    );
    this.call.on('data', (message: HubMessage) => {
      this.received.push(message);
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.ended = new Promise((resolve) => {
      this.call.on('status', (s) => resolve({ code: s.code, details: s.details }));
      this.call.on('error', () => {}); // the status above carries it
    });
  }

  sendBytes(bytes: Uint8Array): void {
    this.call.write(bytes);
  }

  send(body: NonNullable<AgentMessage['body']>, seq = ++this.seq): void {
    this.seq = Math.max(this.seq, seq);
    this.sendBytes(AgentMessage.encode({ seq, body }).finish());
  }

  get lastSeq(): number {
    return this.seq;
  }

  async next<K extends HubBody['$case']>(kind: K, timeoutMs = 5_000): Promise<HubBodyValue<K>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.find((m) => m.body?.$case === kind);
      if (found) return (found.body as Extract<HubBody, { $case: K }>).value as HubBodyValue<K>;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${kind} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  hubReason(): string | undefined {
    const error = this.received.find((m) => m.body?.$case === 'error');
    return error?.body?.$case === 'error' ? error.body.value.reason : undefined;
  }

  end(): void {
    this.call.end();
  }

  cancel(): void {
    this.call.cancel();
  }
}

export async function challengeOf(raw: RawStream): Promise<WalletChallenge> {
  const challenge = await raw.next('challenge');
  return { nonce: challenge.nonce, audience: challenge.audience, expiresAtUnixMs: challenge.expiresAtUnixMs };
}

export function hello(raw: RawStream, wallet: string): void {
  raw.send({ $case: 'hello', value: { walletAddress: wallet, agentVersion: '0.1.0', protocolVersion: 1 } });
}

/** Registers `wallet` on a raw stream; returns the proof it used. */
export async function registerRaw(raw: RawStream, wallet: AnyWallet): Promise<{ proof: WalletProof; providerName: string }> {
  const challenge = await challengeOf(raw);
  hello(raw, wallet.address);
  const proof = await signChallenge(wallet, challenge, wallet.address);
  raw.send({ $case: 'registerProof', value: proof });
  const registered = await raw.next('registered');
  return { proof, providerName: registered.providerName };
}

