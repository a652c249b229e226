// Attempts the agent ended by an owner reclaim (a cordon, a lending window closed) and reported
// Reclaimed. The report may be lost on its way (the stream breaks, the leader dies before writing
// it), and the hub then still lists the attempt: in its next Resync or Assign. Re-running it would
// be work the attempt's signed receipt does not cover; refusing it as a new assignment ("pool not
// offered now") reads to the hub as a reclaim without notice, the provider's fault. So the agent
// remembers what it reported, says it again when the hub lists the attempt (a reconnect's Resync
// does, under the report budget the Resync grants), and keeps the attempt off its cluster.
// Forgotten once a Resync no longer lists it, or the hub cancels it. In memory only: an agent
// restart forgets them (as it forgets unacknowledged receipts). Pure, bounded.

import type { Assign, AttemptStatus } from '../gen/proto/fedgpu/v1/market.js';

const keyOf = (jobUid: string, epoch: number) => `${jobUid}/${epoch}`;

export class ReclaimedAttempts {
  private readonly reported = new Map<string, AttemptStatus>();

  constructor(private readonly max = 4096) {}

  /** The Reclaimed report of `status`'s attempt went out (it may not have arrived). */
  record(status: AttemptStatus): void {
    const key = keyOf(status.jobUid, status.epoch);
    this.reported.delete(key);
    this.reported.set(key, status);
    for (const oldest of this.reported.keys()) {
      if (this.reported.size <= this.max) break;
      this.reported.delete(oldest);
    }
  }

  /** The hub cancelled (fenced) the attempt: it has moved on. */
  forget(jobUid: string, epoch: number): void {
    this.reported.delete(keyOf(jobUid, epoch));
  }

  has(jobUid: string, epoch: number): boolean {
    return this.reported.has(keyOf(jobUid, epoch));
  }

  /** The Reclaimed report sent for the attempt, if it was reclaimed here. */
  reportOf(jobUid: string, epoch: number): AttemptStatus | undefined {
    return this.reported.get(keyOf(jobUid, epoch));
  }

  /**
   * A Resync: the attempts to run (the reclaimed ones left out), and the reports of the reclaimed
   * ones the hub still lists (to send again). Reclaimed attempts it no longer lists are forgotten:
   * the hub has taken the report.
   */
  resync(desired: readonly Assign[]): { run: Assign[]; resend: AttemptStatus[] } {
    const wanted = new Set(desired.map((a) => keyOf(a.jobUid, a.epoch)));
    for (const key of [...this.reported.keys()]) if (!wanted.has(key)) this.reported.delete(key);
    const resend: AttemptStatus[] = [];
    const run = desired.filter((a) => {
      const report = this.reported.get(keyOf(a.jobUid, a.epoch));
      if (report) resend.push(report);
      return !report;
    });
    return { run, resend };
  }
}
