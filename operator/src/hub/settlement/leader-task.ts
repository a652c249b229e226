import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { GpuJob } from '../../api/types.js';
import type { UsageReceipt as ReceiptMessage } from '../../gen/proto/fedgpu/v1/market.js';
import { type Action, done } from '../../runtime/action.js';
import type { AgentLink } from '../jobs/controller.js';
import { ProviderChainStatus, type ChainStatusSink } from '../providers/chain-status.js';
import { ConsumerAccounts } from './accounts.js';
import { enableSettlementPending, setMinStakeCredits } from '../../metrics/settlement-metrics.js';
import { chainErrorMessage, SettlementChain } from './chain.js';
import { EscrowDrift } from './drift.js';
import { DEFAULT_HUB_ID } from '../../chain/tenant.js';
import { EscrowFunding, type FundingCandidate, type FundingVerdict } from './funding.js';
import { type JobSource, SettlementController } from './controller.js';

// On-chain settlement for the hub, wired as one leader task (docs/settlement.md): the funding check
// and escrow opening, the settlement controller, the drift check, and the providers' stake and
// reputation from the chain. Without --chain-rpc none of this exists and jobs run unpaid.

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
  /** Seconds an escrow stays open past the job's deadline before its consumer may reclaim it (default 7 days). */
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

export class HubSettlement {
  private controller?: SettlementController;
  private funding?: EscrowFunding;
  private drift?: EscrowDrift;
  private providerStatus?: ProviderChainStatus;
  private accounts?: ConsumerAccounts;

  private constructor(
    readonly chain: SettlementChain,
    private readonly opts: HubSettlementOptions,
    private readonly logger: Logger,
  ) {}

  /** Connects to the chain (fails fast when the endpoint, the market or the settler role is wrong). */
  static async connect(opts: HubSettlementOptions, logger: Logger): Promise<HubSettlement> {
    const chain = await SettlementChain.connect({
      rpcUrl: opts.rpcUrl,
      marketAddress: opts.marketAddress,
      settlerKey: opts.settlerKey,
      confirmations: opts.confirmations ?? 1,
      ...(opts.chainId !== undefined ? { chainId: opts.chainId } : {}),
      ...(opts.fromBlock !== undefined ? { fromBlock: opts.fromBlock } : {}),
      ...(opts.pollingIntervalMs !== undefined ? { pollingIntervalMs: opts.pollingIntervalMs } : {}),
      logger,
    });
    // A slash above the market's bond would revert: slash what the market allows, and say so.
    const bond = await chain.slashBond();
    const slashAmount = opts.slashAmount > bond ? bond : opts.slashAmount;
    if (slashAmount !== opts.slashAmount) logger.warn({ configured: opts.slashAmount.toString(), slashBond: bond.toString() }, 'the slash amount exceeds the market\'s slashBond; slashing the bond instead');
    logger.info({ chainId: chain.chainId, market: opts.marketAddress, settler: chain.settler.wallet.address, hubId: opts.hubId ?? DEFAULT_HUB_ID }, 'settling on chain');
    return new HubSettlement(chain, { ...opts, slashAmount }, logger.child({ controller: 'settlement' }));
  }

  /** What agents sign receipts for (sent in Registered). */
  get domainInfo(): { chainId: number; marketAddress: string } {
    return { chainId: this.chain.chainId, marketAddress: this.opts.marketAddress };
  }

  /** Builds the parts that need the hub's caches and agent link (they exist after connect). */
  attach(wiring: SettlementWiring): void {
    const { jobs, kubeConfig } = wiring;
    const logger = this.logger;
    this.accounts = new ConsumerAccounts(kubeConfig, logger);
    const accounts = this.accounts;
    let controller: SettlementController | undefined;
    this.funding = new EscrowFunding({
      chain: this.chain,
      defaultHold: this.opts.defaultHold,
      consumerOf: (job) => accounts.consumerOf(job.metadata.namespace),
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
      chain: this.chain,
      funding: this.funding,
      jobs,
      agents: wiring.agents,
      kubeConfig,
      logger,
      slashAmount: this.opts.slashAmount,
      ...pick(this.opts, ['receiptTimeoutMs', 'deletedReceiptWaitMs', 'batchWindowMs', 'maxBatch']),
    });
    this.controller = controller;
    this.drift = new EscrowDrift({ chain: this.chain, jobs, enqueue: (key) => controller.enqueue(key), logger });
    this.providerStatus = new ProviderChainStatus({ chain: this.chain, providers: () => jobs.providers.list(), sink: wiring.registry, minStake: this.opts.minStake, logger });
  }

  /** GpuJobControllerOptions.fundingCheck: why the job must wait before it is placed on `candidate`, if it must. */
  fundingCheck(job: GpuJob, candidate?: FundingCandidate): Promise<FundingVerdict> {
    return this.funding ? this.funding.check(job, candidate) : Promise.resolve({ wait: 'waiting for the settlement controller to start' });
  }

  /** The GpuJob finalizer waits on this: done once every escrow of the deleted job is closed. */
  release(job: GpuJob): Promise<Action> {
    return this.controller ? this.controller.release(job) : Promise.resolve(done);
  }

  onUsageReceipt(provider: string, receipt: ReceiptMessage): void {
    this.controller?.onUsageReceipt(provider, receipt);
  }

  /** The leader task: runs until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const { controller, drift, providerStatus, accounts } = this;
    if (!controller || !drift || !providerStatus || !accounts) throw new Error('HubSettlement.attach must run before run');
    await this.chain.waitForSettlerIdle().catch((err: unknown) => this.logger.warn({ err: chainErrorMessage(err) }, 'could not check for pending settler transactions'));
    await accounts.namespaces.start();
    await controller.start();
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
    this.chain.close();
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
