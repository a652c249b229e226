// Logs outlive the pod: when an attempt ends the agent keeps the last part of each replica's log on
// disk (bounded per replica), so a consumer can still read why attempt 1 failed after the job moved.
// Files expire after the retention time; nothing here trusts the job uid beyond a strict pattern.
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface RetainedLogsOptions {
  dir: string;
  /** Bytes kept per replica (the tail). */
  maxBytesPerReplica: number;
  /**
   * Bytes kept in all, oldest tails dropped first. The chart's agent keeps them on a small emptyDir:
   * one wide gang of chatty, failing replicas would otherwise fill it, and the kubelet evicts the
   * agent (its receipts, and every tenant's attempts, with it). Default: no bound.
   */
  maxTotalBytes?: number;
  retentionMs: number;
  now?: () => number;
}

const safeUid = /^[a-z0-9-]{1,64}$/;

export class RetainedLogs {
  private readonly now: () => number;
  /** Jobs deleted since start (bounded): a tail fetched late for one of them is not written. */
  private readonly forgotten = new Set<string>();

  constructor(private readonly options: RetainedLogsOptions) {
    this.now = options.now ?? Date.now;
    mkdirSync(options.dir, { recursive: true });
  }

  get maxBytes(): number {
    return this.options.maxBytesPerReplica;
  }

  private path(jobUid: string, epoch: number, replica: number): string | undefined {
    if (!safeUid.test(jobUid) || !Number.isSafeInteger(epoch) || !Number.isSafeInteger(replica) || replica < 0) return undefined;
    return join(this.options.dir, `${jobUid}_e${epoch}_r${replica}.log`);
  }

  /** Stores the tail of `log` for one replica of an ended attempt. */
  keep(jobUid: string, epoch: number, replica: number, log: Buffer): void {
    const path = this.path(jobUid, epoch, replica);
    if (!path || this.forgotten.has(jobUid)) return;
    const tail = log.byteLength > this.options.maxBytesPerReplica ? log.subarray(log.byteLength - this.options.maxBytesPerReplica) : log;
    writeFileSync(path, tail, { mode: 0o600 });
    if (this.options.maxTotalBytes !== undefined) this.trimTo(this.options.maxTotalBytes);
  }

  /** Deletes the oldest tails until the rest add up to at most `bytes`. */
  private trimTo(bytes: number): void {
    const files: { path: string; size: number; mtimeMs: number }[] = [];
    for (const name of readdirSync(this.options.dir)) {
      const path = join(this.options.dir, name);
      try {
        const st = statSync(path);
        files.push({ path, size: st.size, mtimeMs: st.mtimeMs });
      } catch {
        // gone already
      }
    }
    let total = files.reduce((sum, f) => sum + f.size, 0);
    files.sort((a, b) => a.mtimeMs - b.mtimeMs || a.path.localeCompare(b.path));
    for (const f of files) {
      if (total <= bytes) break;
      rmSync(f.path, { force: true });
      total -= f.size;
    }
  }

  has(jobUid: string, epoch: number, replica: number): boolean {
    const path = this.path(jobUid, epoch, replica);
    if (!path) return false;
    try {
      return this.now() - statSync(path).mtimeMs <= this.options.retentionMs;
    } catch {
      return false;
    }
  }

  read(jobUid: string, epoch: number, replica: number): Buffer | undefined {
    if (!this.has(jobUid, epoch, replica)) return undefined;
    return readFileSync(this.path(jobUid, epoch, replica) as string);
  }

  /** Forgets every attempt of a job (the job was deleted). */
  forgetJob(jobUid: string): void {
    if (!safeUid.test(jobUid)) return;
    this.forgotten.add(jobUid);
    for (const old of this.forgotten) {
      if (this.forgotten.size <= 4096) break;
      this.forgotten.delete(old);
    }
    for (const name of readdirSync(this.options.dir)) if (name.startsWith(`${jobUid}_`)) rmSync(join(this.options.dir, name), { force: true });
  }

  /** Deletes files past the retention time. */
  sweep(): void {
    for (const name of readdirSync(this.options.dir)) {
      const path = join(this.options.dir, name);
      try {
        if (this.now() - statSync(path).mtimeMs > this.options.retentionMs) rmSync(path, { force: true });
      } catch {
        // gone already
      }
    }
  }
}

/** Keeps the last `lines` lines of text (for --tail on a retained log). */
export function tailLines(log: Buffer, lines: number): Buffer {
  if (lines < 0) return log;
  if (lines === 0) return Buffer.alloc(0);
  let end = log.byteLength;
  if (end > 0 && log[end - 1] === 0x0a) end--;
  let count = 0;
  for (let i = end - 1; i >= 0; i--) {
    if (log[i] === 0x0a && ++count === lines) return log.subarray(i + 1);
  }
  return log;
}
