import type { GpuJob, JobAttempt } from '../../api/types.js';
import type { ChaosHistory, InjectedFault, JobRecord } from '../history.js';

// A broken promise, with what a reader needs to start digging: the job, the attempt and the faults
// injected around it.

export interface Violation {
  invariant: string;
  message: string;
  job?: string;
  attempt?: { epoch: number; provider: string; outcome?: string; faultOf?: string; start?: string; end?: string };
  faults: InjectedFault[];
}

/** Faults near a window: within `slackMs` of it, on the given provider's cluster or on the hub or chain. */
export function faultsNear(history: ChaosHistory, from: number, to: number, cluster?: string, slackMs = 15_000): InjectedFault[] {
  return history.faults.filter((f) => {
    const end = f.endedAt ?? history.endedAt;
    const overlaps = f.startedAt <= to + slackMs && end >= from - slackMs;
    const relevant = f.target === 'hub' || f.target === 'chain' || cluster === undefined || f.target === `provider:${cluster}`;
    return overlaps && relevant;
  });
}

export const clusterOf = (history: ChaosHistory, provider: string): string | undefined => history.providers[provider]?.cluster;

export const jobOf = (record: JobRecord): GpuJob | undefined => record.final ?? record.lastSeen;

export function attemptWindow(history: ChaosHistory, a: JobAttempt): [number, number] {
  const start = a.startTime ? Date.parse(a.startTime) : history.startedAt;
  const end = a.endTime ? Date.parse(a.endTime) : history.endedAt;
  return [start, end];
}

/** A violation about one attempt, with the faults around it. */
export function attemptViolation(history: ChaosHistory, invariant: string, record: JobRecord, a: JobAttempt, message: string): Violation {
  const [from, to] = attemptWindow(history, a);
  return {
    invariant,
    message,
    job: record.plan.name,
    attempt: { epoch: a.epoch, provider: a.provider, outcome: a.outcome, faultOf: a.faultOf, start: a.startTime, end: a.endTime },
    faults: faultsNear(history, from, to, clusterOf(history, a.provider)),
  };
}

/** A violation about a whole job, with the faults during its life. */
export function jobViolation(history: ChaosHistory, invariant: string, record: JobRecord, message: string): Violation {
  const job = jobOf(record);
  const from = job?.metadata.creationTimestamp ? new Date(job.metadata.creationTimestamp).getTime() : history.startedAt + record.plan.atMs;
  const to = job?.status?.completionTime ? Date.parse(job.status.completionTime) : (record.deletedAt ?? history.endedAt);
  return { invariant, message, job: record.plan.name, faults: faultsNear(history, from, to) };
}

export function formatViolation(v: Violation): string {
  const lines = [`✗ ${v.invariant}: ${v.message}`];
  if (v.job) lines.push(`    job ${v.job}`);
  if (v.attempt) {
    const a = v.attempt;
    lines.push(`    attempt ${a.epoch} on ${a.provider}: ${a.outcome ?? '?'} (faultOf ${a.faultOf ?? '-'}) ${a.start ?? '?'} → ${a.end ?? 'open'}`);
  }
  for (const f of v.faults) {
    const span = `${new Date(f.startedAt).toISOString()} for ${((f.endedAt ?? f.startedAt) - f.startedAt) / 1000}s`;
    lines.push(`    fault ${f.kind} on ${f.target}${f.detail ? ` (${f.detail})` : ''} at ${span}`);
  }
  return lines.join('\n');
}
