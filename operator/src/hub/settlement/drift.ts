import type { Logger } from 'pino';
import type { GpuJob } from '../../api/types.js';
import { attemptEscrowId } from '../../chain/attempt-escrow.js';
import { MarketTopics, parseMarketLogs, queryLogs } from '../../chain/market-events.js';
import { objectKey } from '../../runtime/kube.js';
import { escrowEpochs, isDeleted, isFinished } from './billing.js';
import { chainErrorMessage, type SettlementChain } from './chain.js';
import type { JobSource } from './controller.js';

// Chain ↔ cluster drift (DESIGN §5), checked periodically: the escrows open on chain (EscrowOpened
// without a Settled or Refunded, read incrementally from the event log) against the live GpuJobs.
//  - open for a finished or deleted job: that job's reconcile settles or refunds it;
//  - open for no job at all (its GpuJob is gone): refunded here to the consumer;
//  - a running job is reconciled too, and its reconcile re-opens a missing escrow (and says so).
// Only escrows this hub's own key opened are refunded as orphans. Another settler's are its own
// (GpuMarket refuses this hub while that key holds the role); once that key is revoked GpuMarket
// would let this hub close them, but they may be another hub's escrows under running attempts, so
// they are left to their consumers' reclaim after expiry (docs/settlement.md).

export interface DriftReport {
  openOnChain: number;
  orphansRefunded: string[];
  jobsRechecked: number;
}

export interface EscrowDriftOptions {
  chain: SettlementChain;
  jobs: JobSource;
  /** Reconcile this job's settlement now. */
  enqueue: (key: string) => void;
  /**
   * A finished or deleted job with an escrow still open on chain: reconcile it in full, whatever
   * its Settled condition says (an openEscrow mined after the job's books were closed). Default: enqueue.
   */
  recheckOpen?: (key: string) => void;
  logger: Logger;
}

export class EscrowDrift {
  /** Escrows open on chain as of `scannedTo`, by key (lower case). */
  private readonly open = new Map<string, { consumer: string; opener: string; block: number }>();
  private scannedTo: number;

  constructor(private readonly opts: EscrowDriftOptions) {
    this.scannedTo = opts.chain.fromBlock - 1;
  }

  async check(): Promise<DriftReport> {
    await this.scan();
    const jobs = this.opts.jobs.jobs.list();
    const owner = new Map<string, GpuJob>();
    for (const job of jobs) {
      if (!job.metadata.uid) continue;
      for (const epoch of escrowEpochs(job)) owner.set(attemptEscrowId(job.metadata.uid, epoch).toLowerCase(), job);
    }
    const report: DriftReport = { openOnChain: this.open.size, orphansRefunded: [], jobsRechecked: 0 };
    const recheck = new Set<string>();
    const openForOver = new Set<string>();
    for (const [escrowId, entry] of this.open) {
      const job = owner.get(escrowId);
      if (job) {
        // Only this hub's own escrows force a full reconcile: another settler's are that key's to
        // close, and re-reading them every pass would cost chain reads for nothing.
        if (isFinished(job) || isDeleted(job)) (this.opts.chain.isOwnKey(entry.opener) ? openForOver : recheck).add(objectKey(job));
        continue;
      }
      if (!this.opts.chain.isOwnKey(entry.opener)) continue;
      if (await this.refundOrphan(escrowId)) report.orphansRefunded.push(escrowId);
    }
    for (const job of jobs) {
      const live = job.status?.attempts?.some((a) => a.epoch === job.status?.currentEpoch && !a.endTime);
      if (live && !isFinished(job) && !isDeleted(job)) recheck.add(objectKey(job));
    }
    for (const key of recheck) if (!openForOver.has(key)) this.opts.enqueue(key);
    for (const key of openForOver) (this.opts.recheckOpen ?? this.opts.enqueue)(key);
    report.jobsRechecked = new Set([...recheck, ...openForOver]).size;
    return report;
  }

  /** Reads EscrowOpened/Settled/Refunded events since the last scan (confirmed blocks only). */
  private async scan(): Promise<void> {
    const { chain } = this.opts;
    const to = await chain.confirmedBlock();
    if (to <= this.scannedTo) return;
    const logs = parseMarketLogs(
      await queryLogs(chain.provider, { address: chain.marketAddress, topics: [[MarketTopics.EscrowOpened, MarketTopics.Settled, MarketTopics.Refunded]], fromBlock: this.scannedTo + 1, toBlock: to }),
      chain.marketAddress,
    );
    for (const log of logs) {
      const id = String(log.args.jobId).toLowerCase();
      if (log.name === 'EscrowOpened') this.open.set(id, { consumer: String(log.args.consumer), opener: String(log.args.settler), block: log.block });
      else this.open.delete(id);
    }
    this.scannedTo = to;
  }

  private async refundOrphan(escrowId: string): Promise<boolean> {
    const { chain, logger } = this.opts;
    try {
      const escrow = await chain.escrow(escrowId);
      if (escrow.state !== 'Open') {
        this.open.delete(escrowId);
        return false;
      }
      const tx = await chain.send((m) => m.refund(escrowId));
      this.open.delete(escrowId);
      logger.warn({ escrowId, consumer: escrow.consumer, tx: tx.txHash }, 'refunded an escrow that no GpuJob owns');
      return true;
    } catch (err) {
      logger.warn({ escrowId, err: chainErrorMessage(err) }, 'could not refund an orphaned escrow; the next drift check retries');
      return false;
    }
  }
}
