import type { GpuJob, JobAttempt } from '../../api/types.js';

// Fencing, decided without I/O (DESIGN §5): an agent's report counts only for the job's current,
// live attempt on that agent's provider. Anything else comes from a zombie (an attempt the hub
// ended, an older epoch, a job that is gone) and gets a Cancel, so its pods are deleted. The
// resync path is the level-triggered twin: after a reconnect an agent is told the full set it
// should run, and deletes everything else.

export type ReportVerdict =
  /** The report belongs to the live attempt: the controller records it. */
  | { kind: 'accept' }
  /** A late duplicate from the attempt that already succeeded: nothing to do, nothing to cancel. */
  | { kind: 'ignore' }
  /** A zombie: the agent is told to cancel (job uid, epoch). */
  | { kind: 'fence'; why: 'unknown_job' | 'stale_epoch' | 'other_provider' | 'ended_attempt' };

export function currentAttempt(job: GpuJob): JobAttempt | undefined {
  return job.status?.attempts?.find((a) => a.epoch === job.status?.currentEpoch);
}

/** What to do with an agent's report for (job, epoch), given the job as the hub last saw it. */
export function judgeReport(job: GpuJob | undefined, provider: string, epoch: number): ReportVerdict {
  if (!job) return { kind: 'fence', why: 'unknown_job' };
  const current = currentAttempt(job);
  if (!current || epoch !== current.epoch) return { kind: 'fence', why: 'stale_epoch' };
  if (current.provider !== provider) return { kind: 'fence', why: 'other_provider' };
  if (!current.endTime) return { kind: 'accept' };
  return current.outcome === 'Succeeded' ? { kind: 'ignore' } : { kind: 'fence', why: 'ended_attempt' };
}

/** The attempts a provider's agent should run now: the live current attempt of each job not being deleted. */
export function desiredAttempts(jobs: readonly GpuJob[], provider: string): { job: GpuJob; attempt: JobAttempt }[] {
  const desired: { job: GpuJob; attempt: JobAttempt }[] = [];
  for (const job of jobs) {
    const attempt = currentAttempt(job);
    if (attempt && !attempt.endTime && attempt.provider === provider && !job.metadata.deletionTimestamp) desired.push({ job, attempt });
  }
  return desired;
}
