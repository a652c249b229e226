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
/** A container name (a DNS label), as the apiserver allows it. */
const CONTAINER_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const containerPath = (logPath: string) => logPath.replace(/\.log$/, '.container');

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

  /** Stores the tail of `log` for one replica of an ended attempt, and which container it is of. */
  keep(jobUid: string, epoch: number, replica: number, log: Buffer, container?: string): void {
    const path = this.path(jobUid, epoch, replica);
    if (!path || this.forgotten.has(jobUid)) return;
    const tail = log.byteLength > this.options.maxBytesPerReplica ? log.subarray(log.byteLength - this.options.maxBytesPerReplica) : log;
    if (container !== undefined && CONTAINER_NAME.test(container)) writeFileSync(containerPath(path), container, { mode: 0o600 });
    else rmSync(containerPath(path), { force: true });
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
    for (const f of files.filter((x) => x.path.endsWith('.log'))) {
      if (total <= bytes) break;
      rmSync(f.path, { force: true });
      total -= f.size;
      // A tail and the name of its container go together.
      const sidecar = files.find((x) => x.path === containerPath(f.path));
      if (sidecar) {
        rmSync(sidecar.path, { force: true });
        total -= sidecar.size;
      }
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

  /** The container whose tail is kept (undefined for a tail kept by an agent that did not record it). */
  containerOf(jobUid: string, epoch: number, replica: number): string | undefined {
    const path = this.path(jobUid, epoch, replica);
    if (!path) return undefined;
    try {
      const name = readFileSync(containerPath(path), 'utf8');
      return CONTAINER_NAME.test(name) ? name : undefined;
    } catch {
      return undefined;
    }
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

/** The RFC 3339 time the apiserver puts before each line when asked for timestamps, and a space. */
const STAMPED = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) /;
/** Longer than any stamp and its space (36 characters with nanoseconds and an offset). */
const STAMP_PREFIX_BYTES = 48;
const NEWLINE = Buffer.from('\n');

export interface RetainedView {
  /** < 0: every line. */
  tailLines: number;
  /** 0: no limit; else only lines stamped at most this long before `nowMs`. */
  sinceSeconds: number;
  /** Keep each line's time stamp. */
  timestamps: boolean;
  /** The tail was fetched with stamps (RetainedLogs.containerOf says so); one kept before is served as it is. */
  stamped: boolean;
}

/**
 * A kept tail as `fedgpu logs` asked for it: --since, --timestamps, then --tail, as the apiserver
 * applies them to a live pod's log. Bytes pass through as they are (a log need not be UTF-8). In a
 * stamped tail only the first line, cut by the byte bound, can lack a stamp: its age is unknown,
 * so --since leaves it out.
 */
export function retainedView(log: Buffer, view: RetainedView, nowMs: number): Buffer {
  if (!view.stamped || (view.sinceSeconds <= 0 && view.timestamps)) return tailLines(log, view.tailLines);
  const since = view.sinceSeconds > 0 ? nowMs - view.sinceSeconds * 1000 : undefined;
  const kept: Buffer[] = [];
  for (let start = 0; start < log.byteLength; ) {
    const newline = log.indexOf(0x0a, start);
    const end = newline < 0 ? log.byteLength : newline;
    const line = log.subarray(start, end);
    start = end + 1;
    const stamp = STAMPED.exec(line.subarray(0, STAMP_PREFIX_BYTES).toString('latin1'));
    if (since !== undefined && (!stamp || Date.parse(stamp[1]!) < since)) continue;
    kept.push(stamp && !view.timestamps ? line.subarray(stamp[0].length) : line);
    if (newline >= 0) kept.push(NEWLINE);
  }
  return tailLines(Buffer.concat(kept), view.tailLines);
}
