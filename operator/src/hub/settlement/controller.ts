import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { encodeBytes32String } from 'ethers';
import type { Logger } from 'pino';
import { JobConditions } from '../../api/constants.js';
import type { AttemptSettlement, GpuJob, GpuJobStatus, GpuProvider, SettlementReceipt } from '../../api/types.js';
import { attemptEscrowId } from '../../chain/attempt-escrow.js';
import { formatCredits } from '../../chain/credits.js';
import { buildUsageReceipt, toSignedReceipt } from '../../chain/receipt.js';
import type { UsageReceipt as ReceiptMessage } from '../../gen/proto/fedgpu/v1/market.js';
import { type Action, done, requeueAfter } from '../../runtime/action.js';
import { removeCondition, setCondition } from '../../runtime/conditions.js';
import { Controller } from '../../runtime/controller.js';
import { coreEventSink, EventRecorder } from '../../runtime/events.js';
import type { Informer } from '../../runtime/informer.js';
import { gpuJobClient, objectKey } from '../../runtime/kube.js';
import { StatusWriter } from '../../runtime/status-writer.js';
import type { AgentLink } from '../jobs/controller.js';
import { PodEventBook } from '../jobs/pod-events.js';
import { SettleBatcher } from './batcher.js';
import { escrowEpochs, isDeleted, isFinished } from './billing.js';
import { settlementControllerMetrics } from '../../metrics/settlement-metrics.js';
import { chainErrorMessage, type ConfirmedTx, isRevert, revertedEscrow, type SettlementChain } from './chain.js';
import { chainRpcFailed, providerSlashed, settlementConfirmed, settlementGaveUp } from './metrics-hooks.js';
import type { EscrowFunding } from './funding.js';
import { type ChainEscrow, planSettlement, type SettlementAction, type SettlementConfig, type SettlementPlan } from './plan.js';
import { checkReceipt } from './receipt-check.js';
import { applyMarketLog, isFinalRecord, summarize } from './records.js';

// The settlement controller: one reconcile per GpuJob, beside the GpuJob controller and never in
// its way (a job can be Succeeded with Settled=False while the chain is away). Each reconcile:
//   1. reads the chain state of every escrow of the job whose record is not final yet,
//   2. records confirmed events the status lacks (sent before a crash, or by the funding check),
//   3. records usage receipts agents sent, and acknowledges them once written,
//   4. plans (planSettlement), writes the Settled condition, sends the actions (settles batched),
//   5. records the confirmed results.
// Every transaction is decided from chain state read in the same reconcile, and keys are
// deterministic per attempt, so a hub killed anywhere never pays twice.

/** What the controller needs of the GpuJob controller: its caches, and a way to wake a job. */
export interface JobSource {
  jobs: Informer<GpuJob>;
  providers: Informer<GpuProvider>;
  /** The cached job with this uid. */
  jobByUid(uid: string): GpuJob | undefined;
  enqueue(key: string): void;
}

export interface SettlementControllerOptions {
  chain: SettlementChain;
  funding: EscrowFunding;
  jobs: JobSource;
  agents: AgentLink;
  kubeConfig: KubeConfig;
  logger: Logger;
  slashAmount: bigint;
  receiptTimeoutMs?: number;
  deletedReceiptWaitMs?: number;
  /** settleBatch gathering: at most this long, or this many receipts. */
  batchWindowMs?: number;
  maxBatch?: number;
  /** Jobs reconciled at once (they mostly wait on the chain). */
  concurrency?: number;
  now?: () => number;
}

const FIELD_MANAGER = 'fedgpu-settlement-controller';
const MAX_ROUNDS = 3;
const UNCONFIRMED_RETRY_MS = 1_000;
/** At most one ReceiptRefused Event per provider and job in this period. */
const REFUSAL_EVENT_PERIOD_MS = 60_000;
/** How soon a finished job whose escrow is still being opened is looked at again. */
const OPENING_RETRY_MS = 1_000;

interface Inboxed {
  provider: string;
  record: SettlementReceipt;
}

export class SettlementController {
  readonly controller: Controller;
  private readonly statusWriter: StatusWriter<GpuJob>;
  private readonly recorder: EventRecorder;
  private readonly batcher: SettleBatcher<ConfirmedTx>;
  private config: SettlementConfig;
  private readonly now: () => number;
  /** Verified receipts not yet in the job's status, by job uid then epoch. */
  private readonly inbox = new Map<string, Map<number, Inboxed>>();
  /** Receipts that came before the job cache was ready. */
  private early: { provider: string; receipt: ReceiptMessage }[] = [];
  /** Deleted jobs whose escrows are all closed: their finalizer may go. */
  private readonly released = new Set<string>();
  private readonly failures = new Map<string, number>();
  /** Transactions this process sent (to tell a restart's recovery from a stale cache). */
  private readonly sent = new Set<string>();
  private started = false;
  /** Finished jobs the drift check found an escrow open for: their next reconcile reads the chain whatever their status says. */
  private readonly openOnChain = new Set<string>();
  /**
   * ReceiptRefused Events, one per provider and job a minute: each refusal's text differs (the
   * epoch, the GPU time claimed), so the recorder cannot fold them, and a provider could otherwise
   * write an Event per message it sends, on a job of its choosing, for ever.
   */
  private readonly refusalEvents: PodEventBook;

  constructor(private readonly opts: SettlementControllerOptions) {
    const client = gpuJobClient(opts.kubeConfig.makeApiClient(CustomObjectsApi), FIELD_MANAGER);
    this.statusWriter = StatusWriter.forCustomObjects(client, FIELD_MANAGER);
    this.recorder = new EventRecorder({ sink: coreEventSink(opts.kubeConfig.makeApiClient(CoreV1Api)), controller: 'fedgpu.io/settlement-controller', logger: opts.logger });
    this.now = opts.now ?? Date.now;
    this.refusalEvents = new PodEventBook({ burst: 1, refillMs: REFUSAL_EVENT_PERIOD_MS, maxJobs: 4096 }, this.now);
    this.config = {
      receiptTimeoutMs: opts.receiptTimeoutMs ?? 10 * 60_000,
      deletedReceiptWaitMs: opts.deletedReceiptWaitMs ?? 30_000,
      slashAmount: opts.slashAmount,
    };
    this.batcher = new SettleBatcher<ConfirmedTx>({
      send: (items) => opts.chain.send((m) => m.settleBatch(items)),
      culprit: revertedEscrow,
      windowMs: opts.batchWindowMs ?? 200,
      maxItems: opts.maxBatch ?? 50,
    });
    this.controller = new Controller({
      name: 'settlement',
      reconcile: (key) => this.reconcile(key),
      logger: opts.logger,
      concurrency: opts.concurrency ?? 64,
      metrics: settlementControllerMetrics(),
    });
    this.controller.watch(opts.jobs.jobs);
  }

  async start(): Promise<void> {
    // Each leadership starts it (a stand-by builds it long before): agents reconnect to this hub,
    // and resend their receipts, from now on.
    this.config = { ...this.config, listeningSinceMs: this.now() };
    await this.controller.start();
    this.started = true;
    const early = this.early;
    this.early = [];
    for (const { provider, receipt } of early) this.onUsageReceipt(provider, receipt);
  }

  stop(): Promise<void> {
    return this.controller.stop();
  }

  enqueue(key: string): void {
    this.controller.enqueue(key);
  }

  /** The drift check saw an escrow of this finished job open on chain (EscrowDrift's recheckOpen). */
  recheckOpen(key: string): void {
    this.openOnChain.add(key);
    this.controller.enqueue(key);
  }

  /** The GpuJob controller's finalizer asks: are this deleted job's escrows all closed? */
  async release(job: GpuJob): Promise<Action> {
    if (job.metadata.uid && this.released.has(job.metadata.uid)) return done;
    this.controller.enqueue(objectKey(job));
    return requeueAfter(2_000);
  }

  /** An agent sent a usage receipt: check it, then record it through the job's reconcile. */
  onUsageReceipt(provider: string, receipt: ReceiptMessage): void {
    const job = this.opts.jobs.jobByUid(receipt.jobUid);
    if (!job) {
      if (!this.started) {
        if (this.early.length < 10_000) this.early.push({ provider, receipt });
        return;
      }
      this.ack(provider, receipt.jobUid, receipt.epoch, false, 'no such job on this hub');
      return;
    }
    const wallet = this.opts.jobs.providers.get(provider)?.spec.wallet;
    if (!wallet) return this.ack(provider, receipt.jobUid, receipt.epoch, false, `unknown provider ${provider}`);
    const verdict = checkReceipt({ job, providerName: provider, providerWallet: wallet, receipt, domain: this.opts.chain.domain, now: this.now() });
    const log = this.opts.logger.child({ job: objectKey(job), epoch: receipt.epoch, provider });
    switch (verdict.kind) {
      case 'duplicate':
        this.ack(provider, receipt.jobUid, receipt.epoch, true, '');
        return;
      case 'refuse':
        log.warn({ reason: verdict.reason }, 'usage receipt refused');
        settlementGaveUp('bad_receipt');
        this.ack(provider, receipt.jobUid, receipt.epoch, false, verdict.reason);
        if (this.refusalEvents.admit(`${provider}/${receipt.jobUid}`)) {
          void this.recorder.warning(job, 'ReceiptRefused', `usage receipt from ${provider} for attempt ${receipt.epoch} refused: ${verdict.reason}`);
        }
        return;
      case 'accept': {
        const box = this.inbox.get(receipt.jobUid) ?? new Map<number, Inboxed>();
        box.set(verdict.epoch, { provider, record: verdict.record });
        this.inbox.set(receipt.jobUid, box);
        this.controller.enqueue(objectKey(job));
      }
    }
  }

  private ack(provider: string, jobUid: string, epoch: number, accepted: boolean, reason: string): void {
    this.opts.agents.send(provider, { seq: 0, body: { $case: 'receiptAck', value: { jobUid, epoch, accepted, reason } } });
  }

  // ------------------------------------------------------------------------------ reconcile

  private async reconcile(key: string): Promise<Action> {
    let job = this.opts.jobs.jobs.get(key);
    if (!job?.metadata.uid) {
      this.openOnChain.delete(key); // gone: the drift check refunds its escrows as orphans
      return done;
    }
    const uid = job.metadata.uid;
    const over = isFinished(job) || isDeleted(job);
    // An escrow this hub is still opening for the job (the job ended while its openEscrow was in
    // flight) reads as None until it is mined: closing the job's books now would leave it open till
    // it expires, the consumer's hold and the provider's bond locked for a week. Wait for it.
    if (over && escrowEpochs(job).some((epoch) => this.opts.funding.isOpening(attemptEscrowId(uid, epoch)))) return requeueAfter(OPENING_RETRY_MS);
    // A finished job whose Settled condition is True was verified closed; nothing opens escrows for
    // it again. Unless the drift check saw one of its escrows open on chain since: an openEscrow the
    // hub stopped waiting for (a timeout, a restart) can be mined after the books were closed, and
    // would hold the consumer's funds and the provider's bond until it expired.
    if (over && !this.inbox.has(uid) && settledTrue(job) && !this.openOnChain.has(key)) return this.closed(job);

    try {
      // 1-2. Chain state, and the confirmed events the records lack.
      const chain = await this.readChain(job);
      let records = await this.recover(job, chain.state);
      const lagging = unconfirmedEpochs(chain.state, records);
      const consumer = job.status?.settlement?.consumer ?? chain.consumer;
      // 3. Receipts waiting to be recorded.
      const box = this.inbox.get(uid);
      const acks: { provider: string; epoch: number }[] = [];
      for (const [epoch, item] of box ?? []) {
        const record = records.find((r) => r.epoch === epoch);
        if (!record?.receipt) records = withReceipt(records, epoch, item.record);
        acks.push({ provider: item.provider, epoch });
      }
      // 4-5. Plan, act, record; again while acting changed something (bounded).
      let plan = awaitConfirmations(planSettlement(withRecords(job, consumer, records), chain.state, this.now(), this.config), lagging);
      let failure: string | undefined;
      for (let round = 0; round < MAX_ROUNDS; round++) {
        const written = await this.write(job, consumer, records, plan, failure);
        if (written === 'conflict') return requeueAfter(500);
        if (written === 'gone') return done;
        job = written;
        for (const a of acks.splice(0)) {
          this.ack(a.provider, uid, a.epoch, true, '');
          box?.delete(a.epoch);
        }
        if (box?.size === 0) this.inbox.delete(uid);
        if (plan.actions.length === 0 || failure) break;
        const outcome = await this.act(job, plan.actions, chain.state, records);
        records = outcome.records;
        failure = outcome.failure;
        plan = planSettlement(withRecords(job, consumer, records), chain.state, this.now(), this.config);
      }
      if (failure) return requeueAfter(this.backoff(key));
      this.failures.delete(key);
      this.openOnChain.delete(key);
      if (plan.closed) return this.closed(job);
      if (lagging.length) return requeueAfter(UNCONFIRMED_RETRY_MS);
      return plan.requeueAfterMs !== undefined ? requeueAfter(plan.requeueAfterMs) : done;
    } catch (err) {
      // The chain (or the apiserver) is away: say so on the job, retry with backoff.
      const message = `settlement failed: ${chainErrorMessage(err)}; retrying`;
      this.opts.logger.warn({ job: key, err: chainErrorMessage(err) }, 'settlement reconcile failed');
      chainRpcFailed(err);
      await this.writeFailure(job, message).catch(() => undefined);
      return requeueAfter(this.backoff(key));
    }
  }

  private closed(job: GpuJob): Action {
    const uid = job.metadata.uid!;
    this.opts.funding.forget(uid, escrowEpochs(job));
    if (isDeleted(job) && !this.released.has(uid)) {
      this.released.add(uid);
      if (this.released.size > 10_000) this.released.delete(this.released.values().next().value!); // long gone by now
      this.inbox.delete(uid);
      this.opts.jobs.enqueue(objectKey(job)); // the GpuJob controller may now remove its finalizer
    }
    return done;
  }

  private backoff(key: string): number {
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    return Math.min(30_000, 500 * 2 ** Math.min(n, 6));
  }

  /** Step 1: escrow state and slash marks of every escrow whose record is not final. */
  private async readChain(job: GpuJob): Promise<{ state: Map<number, ChainEscrow>; consumer?: string }> {
    const uid = job.metadata.uid!;
    const records = job.status?.settlement?.attempts ?? [];
    const state = new Map<number, ChainEscrow>();
    let consumer: string | undefined;
    await Promise.all(
      escrowEpochs(job).map(async (epoch) => {
        const record = records.find((r) => r.epoch === epoch);
        const needsSlash = this.needsSlash(job, epoch);
        if (isFinalRecord(record, needsSlash)) {
          state.set(epoch, { state: record!.state!, amount: 0n, slashed: needsSlash });
          return;
        }
        const id = attemptEscrowId(uid, epoch);
        const [escrow, slashed] = await Promise.all([this.opts.chain.escrow(id), needsSlash ? this.opts.chain.isSlashed(id, epoch) : Promise.resolve(false)]);
        // An escrow at this job's id that another live settler opened is not this job's: GpuMarket
        // refuses this hub's refund or settle of it, and recording it would hold the job (and its
        // finalizer) on a close that never comes. After a rotation of this hub's key, the old
        // key's escrows (revoked) are the job's and are closed as usual.
        if (escrow.state !== 'None' && !(await this.opts.chain.mayClose(escrow.opener))) {
          this.opts.logger.warn({ job: objectKey(job), epoch, escrowId: id, opener: escrow.opener }, "an escrow at this job's id was opened by another settler; ignored");
          state.set(epoch, { state: 'None', amount: 0n, slashed: false });
          return;
        }
        if (escrow.state !== 'None') consumer ??= escrow.consumer;
        // Opened by this hub's old key (revoked): closed here, never slashed (only its opener may).
        const own = escrow.state === 'None' || this.opts.chain.isOwnKey(escrow.opener);
        if (needsSlash && !own && !slashed) this.opts.logger.warn({ job: objectKey(job), epoch, opener: escrow.opener }, "a provider fault on an escrow another key opened is not slashed: only its opener may");
        state.set(epoch, { state: escrow.state, amount: escrow.amount, slashed, ...(own ? {} : { slashable: false }), ...(escrow.state !== 'None' ? { provider: escrow.provider } : {}) });
      }),
    );
    return { state, ...(consumer ? { consumer } : {}) };
  }

  /** Step 2: where the chain is ahead of the record, record the escrow's confirmed events. */
  private async recover(job: GpuJob, state: Map<number, ChainEscrow>): Promise<AttemptSettlement[]> {
    let records = [...(job.status?.settlement?.attempts ?? [])];
    for (const [epoch, escrow] of state) {
      const record = records.find((r) => r.epoch === epoch);
      const behind =
        (escrow.state !== 'None' && !record?.escrowTxHash) ||
        ((escrow.state === 'Settled' || escrow.state === 'Refunded') && record?.state !== escrow.state) ||
        (escrow.slashed && !record?.slashTxHash);
      if (!behind) continue;
      const escrowId = attemptEscrowId(job.metadata.uid!, epoch);
      const logs = await this.opts.chain.escrowHistory(escrowId, record?.escrowBlock ?? this.opts.chain.fromBlock);
      for (const log of logs) records = applyMarketLog(records, epoch, log);
      // A close or slash this process did not send: an earlier hub sent it and died before recording it.
      const closes = logs.filter((l) => l.name !== 'EscrowOpened' && !this.sent.has(l.txHash));
      if (closes.length) this.opts.logger.info({ job: objectKey(job), epoch, events: closes.map((l) => l.name), tx: closes.at(-1)!.txHash }, 'recorded from chain events');
    }
    return records;
  }

  private needsSlash(job: GpuJob, epoch: number): boolean {
    const a = job.status?.attempts?.find((x) => x.epoch === epoch);
    return this.config.slashAmount > 0n && a?.endTime !== undefined && a.faultOf === 'provider';
  }

  /** Step 4: send the actions (settles through the batcher), record what was confirmed. */
  private async act(job: GpuJob, actions: SettlementAction[], state: Map<number, ChainEscrow>, records: AttemptSettlement[]): Promise<{ records: AttemptSettlement[]; failure?: string }> {
    const uid = job.metadata.uid!;
    // Slashes first, then the rest: a slash that fails (an RPC error) while its escrow's refund lands
    // would meet a refunded escrow when retried, where the consumer gets nothing of it (GpuMarket
    // pays compensation only out of an open escrow). A close of an escrow whose slash failed waits
    // for the next round, unless the chain refused the slash itself.
    const slashes = actions.filter((a) => a.kind === 'slash');
    const slashResults = await Promise.allSettled(slashes.map((a) => this.send(job, a, state)));
    // (A slash the contract refuses for good does not hold the close: it would never come.)
    const unslashed = new Set(slashes.filter((_, i) => {
      const r = slashResults[i]!;
      return r.status === 'rejected' && !isRevert(r.reason);
    }).map((a) => a.epoch));
    const rest = actions.filter((a) => a.kind !== 'slash' && !unslashed.has(a.epoch));
    const restResults = await Promise.allSettled(rest.map((a) => this.send(job, a, state)));
    actions = [...slashes, ...rest];
    const results = [...slashResults, ...restResults];
    let failure: string | undefined;
    results.forEach((result, i) => {
      const action = actions[i]!;
      if (result.status === 'rejected') {
        const message = `${action.kind} of attempt ${action.epoch} failed: ${chainErrorMessage(result.reason)}`;
        failure = failure ? `${failure}; ${message}` : message;
        this.opts.logger.warn({ job: objectKey(job), action: action.kind, epoch: action.epoch, err: chainErrorMessage(result.reason) }, 'settlement transaction failed');
        if (isRevert(result.reason)) settlementGaveUp('reverted');
        else chainRpcFailed(result.reason);
        return;
      }
      if (typeof result.value === 'string') {
        failure = failure ? `${failure}; ${result.value}` : result.value;
        return;
      }
      this.sent.add(result.value.txHash);
      if (this.sent.size > 10_000) this.sent.delete(this.sent.values().next().value!);
      const escrowId = attemptEscrowId(uid, action.epoch).toLowerCase();
      for (const log of result.value.logs) {
        const forJob = String(log.args.jobId ?? '').toLowerCase() === escrowId;
        if (forJob) records = applyMarketLog(records, action.epoch, log);
      }
      const current = state.get(action.epoch) ?? { state: 'None', amount: 0n, slashed: false };
      if (action.kind === 'settle') state.set(action.epoch, { ...current, state: 'Settled' });
      if (action.kind === 'refund') state.set(action.epoch, { ...current, state: 'Refunded' });
      if (action.kind === 'slash') state.set(action.epoch, { ...current, slashed: true });
      if (action.kind === 'reopen') state.set(action.epoch, { ...current, state: 'Open', amount: 0n });
      this.announce(job, action, result.value);
    });
    return { records, ...(failure ? { failure } : {}) };
  }

  private async send(job: GpuJob, action: SettlementAction, state: ReadonlyMap<number, ChainEscrow>): Promise<ConfirmedTx | string> {
    const escrowId = attemptEscrowId(job.metadata.uid!, action.epoch);
    const chain = this.opts.chain;
    switch (action.kind) {
      case 'settle': {
        const attempt = job.status?.attempts?.find((a) => a.epoch === action.epoch);
        const receipt = buildUsageReceipt({
          jobId: escrowId,
          epoch: action.epoch,
          gpuSeconds: action.receipt.gpuSeconds,
          pricePerGpuHour: attempt?.pricePerGpuHour ?? '0',
          provider: action.receipt.wallet,
          usageHash: action.receipt.usageHash,
        });
        return (await this.batcher.settle(toSignedReceipt(receipt, action.receipt.signature))).result;
      }
      case 'refund':
        return chain.send((m) => m.refund(escrowId));
      case 'slash': {
        // The wallet the escrow pays, from its terms on the chain: a GpuProvider deleted since (an
        // operator cleaning up a dead provider) must not hold the slash, and with it the refund and
        // the job's finalizer, for ever.
        const wallet = state.get(action.epoch)?.provider ?? this.opts.jobs.providers.get(action.provider)?.spec.wallet;
        if (!wallet) return `cannot slash ${action.provider}: its GpuProvider is gone and the escrow names no provider`;
        return chain.send((m) => m.slash(wallet, this.config.slashAmount, escrowId, action.epoch, encodeBytes32String(action.reason.slice(0, 31))));
      }
      case 'reopen':
        return this.opts.funding.reopen(job, action.epoch);
    }
  }

  private announce(job: GpuJob, action: SettlementAction, tx: ConfirmedTx): void {
    const log = this.opts.logger.child({ job: objectKey(job), epoch: action.epoch, tx: tx.txHash, block: tx.block });
    switch (action.kind) {
      case 'settle':
        log.info({ paid: action.receipt.amount, provider: action.provider, gasUsed: tx.gasUsed.toString() }, 'attempt settled');
        settlementConfirmed(job, action, this.now());
        void this.recorder.normal(job, 'EscrowSettled', `attempt ${action.epoch}: paid ${action.receipt.amount} credits to ${action.provider} (tx ${tx.txHash})`);
        break;
      case 'refund':
        log.info({ why: action.why }, 'escrow refunded');
        if (action.why.includes('gave up')) settlementGaveUp('timeout');
        void this.recorder.normal(job, 'EscrowRefunded', `attempt ${action.epoch}: escrow refunded to the consumer: ${action.why} (tx ${tx.txHash})`);
        break;
      case 'slash':
        log.warn({ provider: action.provider }, 'provider slashed');
        const taken = BigInt(tx.logs.find((l) => l.name === 'Slashed')?.args.amount ?? 0n);
        providerSlashed(action.provider, taken);
        void this.recorder.warning(job, 'ProviderSlashed', `attempt ${action.epoch}: slashed ${formatCredits(taken)} of ${formatCredits(this.config.slashAmount)} credits asked from ${action.provider} (${action.reason}) (tx ${tx.txHash})`);
        break;
      case 'reopen':
        void this.recorder.warning(job, 'EscrowReopened', `attempt ${action.epoch} ran without an open escrow; re-opened it (tx ${tx.txHash})`);
        break;
    }
  }

  // -------------------------------------------------------------------------------- status

  private async write(job: GpuJob, consumer: string | undefined, records: AttemptSettlement[], plan: SettlementPlan, failure?: string): Promise<GpuJob | 'conflict' | 'gone'> {
    const status: GpuJobStatus = structuredClone(job.status ?? {});
    if (records.length || consumer) status.settlement = { ...status.settlement, ...summarize(consumer, records) };
    const condition = failure
      ? { status: 'False' as const, reason: 'SettlementFailed', message: `${failure}; retrying` }
      : plan.condition;
    if (condition) {
      status.conditions = setCondition(status.conditions, { type: JobConditions.Settled, ...condition, observedGeneration: job.metadata.generation }, new Date(this.now())).conditions;
    } else if (status.conditions?.some((c) => c.type === JobConditions.Settled && c.reason === 'SettlementFailed')) {
      status.conditions = removeCondition(status.conditions, JobConditions.Settled).conditions; // recovered, nothing to say yet
    }
    const written = await this.statusWriter.write(job, status);
    if (written.outcome === 'conflict') return 'conflict';
    if (written.outcome === 'gone') return 'gone';
    return written.outcome === 'written' ? written.object : job;
  }

  private async writeFailure(job: GpuJob, message: string): Promise<void> {
    const status: GpuJobStatus = structuredClone(job.status ?? {});
    status.conditions = setCondition(status.conditions, { type: JobConditions.Settled, status: 'False', reason: 'SettlementFailed', message, observedGeneration: job.metadata.generation }, new Date(this.now())).conditions;
    await this.statusWriter.write(job, status);
  }
}

const settledTrue = (job: GpuJob) => job.status?.conditions?.some((c) => c.type === JobConditions.Settled && c.status === 'True') ?? false;

/** Escrows the chain shows closed (or slashed) whose events are not `confirmations` deep yet. */
function unconfirmedEpochs(state: ReadonlyMap<number, ChainEscrow>, records: readonly AttemptSettlement[]): number[] {
  const out: number[] = [];
  for (const [epoch, escrow] of state) {
    const record = records.find((r) => r.epoch === epoch);
    const closed = escrow.state === 'Settled' || escrow.state === 'Refunded';
    if ((closed && record?.state !== escrow.state) || (escrow.slashed && !record?.slashTxHash) || (escrow.state === 'Open' && !record?.escrowTxHash)) out.push(epoch);
  }
  return out;
}

/** Nothing is final while events it rests on are not confirmed: the plan stays pending. */
function awaitConfirmations(plan: SettlementPlan, lagging: readonly number[]): SettlementPlan {
  if (lagging.length === 0) return plan;
  const message = `waiting for confirmations of attempt ${lagging.join(', ')}`;
  return { ...plan, closed: false, condition: plan.condition?.status === 'True' || !plan.condition ? { status: 'False', reason: 'SettlementPending', message } : plan.condition };
}

function withRecords(job: GpuJob, consumer: string | undefined, records: AttemptSettlement[]): GpuJob {
  return { ...job, status: { ...job.status, settlement: { ...job.status?.settlement, ...summarize(consumer, records) } } };
}

function withReceipt(records: AttemptSettlement[], epoch: number, receipt: SettlementReceipt): AttemptSettlement[] {
  const out = records.map((r) => (r.epoch === epoch ? { ...r, receipt } : r));
  if (!out.some((r) => r.epoch === epoch)) out.push({ epoch, receipt });
  return out.sort((a, b) => a.epoch - b.epoch);
}
