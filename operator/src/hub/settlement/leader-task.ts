import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { GpuJob } from '../../api/types.js';
import type { UsageReceipt as ReceiptMessage } from '../../gen/proto/fedgpu/v1/market.js';
import { type Action, requeueAfter } from '../../runtime/action.js';
import type { AgentLink } from '../jobs/controller.js';
import { ProviderChainStatus, type ChainStatusSink } from '../providers/chain-status.js';
import { ConsumerAccounts } from './accounts.js';
import { enableSettlementPending, observeChainRpcError, setChainConnected, setMinStakeCredits } from '../../metrics/settlement-metrics.js';
import { chainErrorMessage, SettlementChain } from './chain.js';
import { connectWithRetry, isChainConfigError, withTimeout } from './chain-connect.js';
import { EscrowDrift } from './drift.js';
import { DEFAULT_HUB_ID } from '../../chain/tenant.js';
import { EscrowFunding, type FundingCandidate, type FundingVerdict } from './funding.js';
import { type JobSource, SettlementController } from './controller.js';

// On-chain settlement for the hub, wired as one leader task (docs/settlement.md): the funding check
// and escrow opening, the settlement controller, the drift check, and the providers' stake and
// reputation from the chain. Without --chain-rpc none of this exists and jobs run unpaid. A chain that
// does not answer at start-up leaves settlement degraded (retried in the background), never the hub down.

export interface HubSettlementOptions {
  rpcUrl: string;
  marketAddress: string;
  settlerKey: string;
  /** Blocks deep before a transaction's effects are recorded (default 1). */
  confirmations?: number;
  chainId?: number;
  /** The market's deployment block: event scans start here (default 0). */
  fromBlock?: number;
  /** Token units of active stake a provider needs to be Staked (and scheduled). */
  minStake: bigint;
  /** Token units slashed once per provider fault (0: never slash). */
  slashAmount: bigint;
  /** Token units held for a job with neither spec.budget.maxTotal nor activeDeadlineSeconds. */
  defaultHold: bigint;
  /** This hub's id in the tenant keys consumers authorize (default "fedgpu"). */
  hubId?: string;
  /** Seconds an escrow stays open past the job's deadline before it may be released to its consumer (default 7 days). */
  escrowLifetimeSeconds?: number;
  receiptTimeoutMs?: number;
  deletedReceiptWaitMs?: number;
  batchWindowMs?: number;
  maxBatch?: number;
  driftIntervalMs?: number;
  providerStatusIntervalMs?: number;
  pollingIntervalMs?: number;
}

export interface SettlementWiring {
  jobs: JobSource;
  agents: AgentLink;
  kubeConfig: KubeConfig;
  registry: ChainStatusSink;
}

export interface HubSettlementHooks {
  /** The chain came back answering as another chain, market or key: the hub cannot settle (exit). */
  onFatal?: (err: Error) => void;
  /** Settlement went degraded (false: the chain is unreachable) or connected (true). */
  onConnected?: (connected: boolean) => void;
}

interface Parts {
  controller: SettlementController;
  funding: EscrowFunding;
  drift: EscrowDrift;
  providerStatus: ProviderChainStatus;
  accounts: ConsumerAccounts;
}

const MAX_EARLY_RECEIPTS = 10_000;

export class HubSettlement {
  private chainValue?: SettlementChain;
  private slashAmount: bigint;
  private wiring?: SettlementWiring;
  private parts?: Parts;
  /** Receipts agents sent before the chain was reached (agents re-send unacknowledged ones anyway). */
  private early: { provider: string; receipt: ReceiptMessage }[] = [];
  private lastError = 'not tried yet';
  private readonly stopping = new AbortController();
  /** Resolves once the chain is reached and the parts are built; rejects only when stopped or refused. */
  private readonly ready: Promise<void>;
  private markReady!: () => void;
  private markFailed!: (err: unknown) => void;

  private constructor(
    private readonly opts: HubSettlementOptions,
    private readonly logger: Logger,
    private readonly hooks: HubSettlementHooks,
  ) {
    this.slashAmount = opts.slashAmount;
    this.ready = new Promise<void>((resolve, reject) => {
      this.markReady = resolve;
      this.markFailed = reject;
    });
    this.ready.catch(() => undefined);
  }

  /**
   * Reaches the chain once. Refuses (throws) when the chain answers as another chain, market or key;
   * when it does not answer, starts degraded and keeps trying in the background with a capped
   * back-off: jobs wait for their escrows, nothing is settled, and the rest of the hub runs.
   */
  static async start(opts: HubSettlementOptions, logger: Logger, hooks: HubSettlementHooks = {}): Promise<HubSettlement> {
    const settlement = new HubSettlement(opts, logger.child({ controller: 'settlement' }), hooks);
    try {
      await withTimeout(settlement.connectOnce(), 15_000, `the settlement chain at ${opts.rpcUrl}`);
      settlement.connected();
    } catch (err) {
      if (isChainConfigError(err)) throw err;
      settlement.degraded(err);
      void settlement.retry();
    }
    return settlement;
  }

  /** Whether the chain has been reached (false: settlement is degraded, retrying). */
  get isConnected(): boolean {
    return this.chainValue !== undefined;
  }

  /** Why the chain is not reached (while degraded). */
  get degradedBecause(): string | undefined {
    return this.chainValue ? undefined : this.lastError;
  }

  /** The chain id agents sign receipts for: configured (--chain-id), or as the chain answered. */
  get chainId(): number | undefined {
    return this.chainValue?.chainId ?? this.opts.chainId;
  }

  /** What agents sign receipts for (sent in Registered); undefined until the chain id is known. */
  get domainInfo(): { chainId: number; marketAddress: string } | undefined {
    const chainId = this.chainId;
    return chainId === undefined ? undefined : { chainId, marketAddress: this.opts.marketAddress };
  }

  /** Resolves once the chain id agents sign for is known (configured, or the chain answered). */
  async domainKnown(): Promise<void> {
    if (this.chainId === undefined) await this.ready;
  }

  /** Keeps the parts that need the hub's caches and agent link; they are built once the chain is reached. */
  attach(wiring: SettlementWiring): void {
    this.wiring = wiring;
    if (this.chainValue) this.build(this.chainValue);
  }

  /** GpuJobControllerOptions.fundingCheck: why the job must wait before it is placed on `candidate`, if it must. */
  fundingCheck(job: GpuJob, candidate?: FundingCandidate): Promise<FundingVerdict> {
    if (!this.chainValue) return Promise.resolve({ wait: `waiting for the settlement chain: ${this.lastError}` });
    return this.parts ? this.parts.funding.check(job, candidate) : Promise.resolve({ wait: 'waiting for the settlement controller to start' });
  }

  /** The GpuJob finalizer waits on this: done once every escrow of the deleted job is closed. */
  release(job: GpuJob): Promise<Action> {
    // Without the chain nobody can tell whether the job's escrows are closed: keep the finalizer.
    if (!this.parts) return Promise.resolve(requeueAfter(5_000));
    return this.parts.controller.release(job);
  }

  onUsageReceipt(provider: string, receipt: ReceiptMessage): void {
    if (this.parts) return this.parts.controller.onUsageReceipt(provider, receipt);
    if (this.early.length < MAX_EARLY_RECEIPTS) this.early.push({ provider, receipt });
  }

  /** The leader task: waits for the chain (degraded meanwhile), then runs until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const aborted = new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
    if (await Promise.race([this.ready.then(() => false, () => true), aborted.then(() => true)])) return;
    if (!this.parts || !this.chainValue) throw new Error('HubSettlement.attach must run before run');
    const { controller, drift, providerStatus, accounts } = this.parts;
    const chain = this.chainValue;
    await chain.waitForSettlerIdle().catch((err: unknown) => this.logger.warn({ err: chainErrorMessage(err) }, 'could not check for pending settler transactions'));
    await accounts.namespaces.start();
    await controller.start();
    for (const { provider, receipt } of this.early.splice(0)) controller.onUsageReceipt(provider, receipt);
    setMinStakeCredits(Number(this.opts.minStake) / 1e18);
    enableSettlementPending();
    const loops = [
      every(this.opts.driftIntervalMs ?? 30_000, () => drift.check().then((r) => r.orphansRefunded.length && this.logger.warn(r, 'drift check refunded orphaned escrows'))),
      every(this.opts.providerStatusIntervalMs ?? 10_000, () => providerStatus.refresh()),
    ].map((loop) => loop(signal, this.logger));
    await Promise.all(loops);
    await controller.stop();
    await accounts.namespaces.stop();
  }

  close(): void {
    this.stopping.abort(new Error('the hub is stopping'));
    this.chainValue?.close();
  }

  private async connectOnce(): Promise<void> {
    const opts = this.opts;
    const chain = await SettlementChain.connect({
      rpcUrl: opts.rpcUrl,
      marketAddress: opts.marketAddress,
      settlerKey: opts.settlerKey,
      confirmations: opts.confirmations ?? 1,
      ...(opts.chainId !== undefined ? { chainId: opts.chainId } : {}),
      ...(opts.fromBlock !== undefined ? { fromBlock: opts.fromBlock } : {}),
      ...(opts.pollingIntervalMs !== undefined ? { pollingIntervalMs: opts.pollingIntervalMs } : {}),
      logger: this.logger,
    });
    try {
      // A slash above the market's bond would revert: slash what the market allows, and say so.
      const bond = await chain.slashBond();
      this.slashAmount = opts.slashAmount > bond ? bond : opts.slashAmount;
      if (this.slashAmount !== opts.slashAmount) this.logger.warn({ configured: opts.slashAmount.toString(), slashBond: bond.toString() }, "the slash amount exceeds the market's slashBond; slashing the bond instead");
    } catch (err) {
      chain.close();
      throw err;
    }
    // Stopped meanwhile, or a try that outlived its timeout already connected: keep one connection.
    if (this.stopping.signal.aborted || this.chainValue) return chain.close();
    this.chainValue = chain;
    this.logger.info({ chainId: chain.chainId, market: opts.marketAddress, settler: chain.settler.wallet.address, hubId: opts.hubId ?? DEFAULT_HUB_ID }, 'settling on chain');
  }

  private connected(): void {
    if (!this.chainValue) return;
    setChainConnected(true);
    this.hooks.onConnected?.(true);
    if (this.wiring) this.build(this.chainValue);
    this.markReady();
  }

  private degraded(err: unknown): void {
    this.lastError = chainErrorMessage(err);
    setChainConnected(false);
    this.hooks.onConnected?.(false);
    this.logger.warn(
      { rpcUrl: this.opts.rpcUrl, err: this.lastError, chainId: this.opts.chainId ?? 'unknown until the chain answers' },
      'settlement DEGRADED: the chain does not answer; starting anyway and retrying (jobs wait for their escrows, nothing is settled meanwhile)',
    );
  }

  private async retry(): Promise<void> {
    try {
      await connectWithRetry(() => this.connectOnce(), this.stopping.signal, {
        onRetry: (err, failures, nextInMs) => {
          this.lastError = chainErrorMessage(err);
          observeChainRpcError('connection');
          this.logger.warn({ err: this.lastError, failures, nextInMs }, 'settlement degraded: the chain still does not answer');
        },
      });
      this.logger.info('settlement chain reached: settlement resumes');
      this.connected();
    } catch (err) {
      this.markFailed(err);
      if (this.stopping.signal.aborted) return;
      const error = err instanceof Error ? err : new Error(String(err));
      this.logger.error({ err: error.message }, 'the settlement chain answered, but not as configured: refusing to settle');
      this.hooks.onFatal?.(error);
    }
  }

  private build(chain: SettlementChain): void {
    if (this.parts || !this.wiring) return;
    const { jobs, kubeConfig } = this.wiring;
    const logger = this.logger;
    const accounts = new ConsumerAccounts(kubeConfig, logger);
    let controller: SettlementController | undefined;
    const funding = new EscrowFunding({
      chain,
      defaultHold: this.opts.defaultHold,
      consumerOf: (job) => accounts.consumerOf(job.metadata.namespace),
      confirmNamespace: (namespace, uid) => accounts.stillTheSame(namespace, uid),
      hubId: this.opts.hubId ?? DEFAULT_HUB_ID,
      escrowLifetimeSeconds: this.opts.escrowLifetimeSeconds ?? 7 * 24 * 3600,
      walletOf: (provider) => jobs.providers.get(provider)?.spec.wallet,
      wake: (job) => {
        const key = `${job.metadata.namespace}/${job.metadata.name}`;
        jobs.enqueue(key);
        controller?.enqueue(key);
      },
      logger,
    });
    controller = new SettlementController({
      chain,
      funding,
      jobs,
      agents: this.wiring.agents,
      kubeConfig,
      logger,
      slashAmount: this.slashAmount,
      ...pick(this.opts, ['receiptTimeoutMs', 'deletedReceiptWaitMs', 'batchWindowMs', 'maxBatch']),
    });
    const target = controller;
    const drift = new EscrowDrift({ chain, jobs, enqueue: (key) => target.enqueue(key), recheckOpen: (key) => target.recheckOpen(key), logger });
    const providerStatus = new ProviderChainStatus({ chain, providers: () => jobs.providers.list(), sink: this.wiring.registry, minStake: this.opts.minStake, logger });
    this.parts = { controller, funding, drift, providerStatus, accounts };
  }
}

/** Runs `task` now and then every `ms` until the signal aborts; a failure waits for the next round. */
function every(ms: number, task: () => Promise<unknown>) {
  return async (signal: AbortSignal, logger: Logger): Promise<void> => {
    while (!signal.aborted) {
      await task().catch((err: unknown) => logger.warn({ err: chainErrorMessage(err) }, 'periodic settlement task failed; retrying next round'));
      await new Promise<void>((resolve) => {
        const wake = () => (clearTimeout(timer), resolve());
        const timer = setTimeout(() => (signal.removeEventListener('abort', wake), resolve()), ms);
        signal.addEventListener('abort', wake, { once: true });
      });
    }
  };
}

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
