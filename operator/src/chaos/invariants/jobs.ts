import type { GpuJob, JobAttempt } from '../../api/types.js';
import type { ChaosHistory, JobRecord } from '../history.js';
import type { JobPlan } from '../schedule.js';
import { attemptViolation, attemptWindow, clusterOf, faultsNear, jobOf, jobViolation, type Violation } from './violation.js';

// Promises about jobs (DESIGN §5): none lost, none stuck, each ended as its spec and its faults
// allow; never two epochs running at once beyond the documented grace; a provider or owner is
// blamed only when something happened to it.

/**
 * Why a job may fail, by what its plan asked for. A reason not listed here fails the check; a new
 * rule (another helper's budget or start-timeout reason, say) is one more line.
 */
export const ALLOWED_FAILURES: readonly { reason: RegExp; allowed: (plan: JobPlan, job: GpuJob) => boolean; why: string }[] = [
  { reason: /^ContainerFailed$|^OOMKilled$/, allowed: (p) => p.exitCode !== undefined, why: 'only a job whose pods exit non-zero' },
  { reason: /^DeadlineExceeded$/, allowed: (p) => p.activeDeadlineSeconds !== undefined, why: 'only a job with activeDeadlineSeconds' },
  { reason: /Budget/, allowed: (p) => p.maxTotal !== undefined, why: 'only a job with a budget maxTotal' },
  {
    reason: /^MaxAttemptsReached$/,
    // Every attempt ended by someone other than the user (provider, owner, unattributed).
    allowed: (_p, j) => (j.status?.attempts ?? []).every((a) => a.faultOf !== 'user' && a.outcome !== 'Succeeded'),
    why: 'only a job whose every attempt ended through no fault of its own',
  },
];

const finishedReason = (job: GpuJob) => job.status?.conditions?.find((c) => c.type === 'Finished')?.reason;

export function jobsEndAsAllowed(h: ChaosHistory): Violation[] {
  const out: Violation[] = [];
  const name = 'job-terminal';
  for (const record of h.jobs) {
    const { plan, final } = record;
    if (plan.deleteAfterMs !== undefined && record.deletedAt !== undefined) {
      if (final) out.push(jobViolation(h, name, record, `deleted at ${new Date(record.deletedAt).toISOString()} but still present (finalizers ${JSON.stringify(final.metadata.finalizers ?? [])}, phase ${final.status?.phase})`));
      continue;
    }
    if (!final) {
      out.push(jobViolation(h, name, record, 'lost: submitted, never deleted, and no longer in the hub apiserver'));
      continue;
    }
    const phase = final.status?.phase;
    if (phase !== 'Succeeded' && phase !== 'Failed') {
      out.push(jobViolation(h, name, record, `stuck in phase ${phase ?? '(none)'}: ${final.status?.message ?? ''}`));
      continue;
    }
    const attempts = final.status?.attempts ?? [];
    if (phase === 'Succeeded') {
      if (plan.exitCode !== undefined) out.push(jobViolation(h, name, record, `Succeeded although every pod exits ${plan.exitCode}`));
      const wins = attempts.filter((a) => a.outcome === 'Succeeded');
      if (wins.length !== 1 || attempts.at(-1)?.outcome !== 'Succeeded') {
        out.push(jobViolation(h, name, record, `Succeeded with ${wins.length} succeeded attempts (must be exactly one, the last)`));
      }
      continue;
    }
    const reason = finishedReason(final) ?? '(none)';
    const rule = ALLOWED_FAILURES.find((r) => r.reason.test(reason));
    if (!rule) out.push(jobViolation(h, name, record, `Failed for a reason no rule allows: ${reason} (${final.status?.message ?? ''})`));
    else if (!rule.allowed(plan, final)) out.push(jobViolation(h, name, record, `Failed ${reason}, which is for ${rule.why}; this was a ${plan.kind} job`));
  }
  return out;
}

/** Attempt bookkeeping in the final status: unique increasing epochs, at most one live, the current one. */
export function attemptsWellFormed(h: ChaosHistory): Violation[] {
  const out: Violation[] = [];
  for (const record of h.jobs) {
    const job = jobOf(record);
    const attempts = job?.status?.attempts ?? [];
    const epochs = attempts.map((a) => a.epoch);
    if (epochs.some((e, i) => i > 0 && e <= epochs[i - 1]!)) out.push(jobViolation(h, 'one-live-epoch', record, `epochs not strictly increasing: ${epochs.join(',')}`));
    const live = attempts.filter((a) => !a.endTime);
    if (live.length > 1) out.push(jobViolation(h, 'one-live-epoch', record, `${live.length} attempts live at once in status: epochs ${live.map((a) => a.epoch).join(',')}`));
    if (live.length === 1 && live[0]!.epoch !== job?.status?.currentEpoch) out.push(attemptViolation(h, 'one-live-epoch', record, live[0]!, `a live attempt that is not the current epoch ${job?.status?.currentEpoch}`));
    const phase = job?.status?.phase;
    if ((phase === 'Succeeded' || phase === 'Failed') && live.length) out.push(attemptViolation(h, 'one-live-epoch', record, live[0]!, `job ${phase} with an attempt still live`));
  }
  return out;
}

/**
 * Pods of two epochs of one job seen running at the same instant. Allowed only while the older
 * epoch's provider was cut off by a fault (a zombie the hub cannot reach) or within the grace after
 * the hub ended that attempt or the fault ended (Cancel delivery and pod deletion).
 */
export function noTwoEpochsAtOnce(h: ChaosHistory): Violation[] {
  const out: Violation[] = [];
  const byUid = new Map(h.jobs.map((r) => [r.uid ?? jobOf(r)?.metadata.uid, r] as const));
  const instants = new Map<string, Map<number, Set<number>>>(); // uid → at → epochs
  for (const s of h.pods) {
    const perJob = instants.get(s.jobUid) ?? new Map<number, Set<number>>();
    instants.set(s.jobUid, perJob);
    const epochs = perJob.get(s.at) ?? new Set<number>();
    perJob.set(s.at, epochs);
    epochs.add(s.epoch);
  }
  const reported = new Set<string>();
  for (const [uid, perJob] of instants) {
    const record = byUid.get(uid);
    if (!record) continue;
    const attempts = jobOf(record)?.status?.attempts ?? [];
    for (const [at, epochs] of [...perJob].sort((a, b) => a[0] - b[0])) {
      if (epochs.size < 2) continue;
      const newest = Math.max(...epochs);
      for (const epoch of epochs) {
        if (epoch === newest || reported.has(`${uid}:${epoch}`)) continue;
        const old = attempts.find((a) => a.epoch === epoch);
        if (old && excused(h, old, at)) continue;
        reported.add(`${uid}:${epoch}`);
        const message = `epoch ${epoch} still running at ${new Date(at).toISOString()} alongside epoch ${newest}, beyond the ${h.graceMs} ms grace`;
        out.push(old ? attemptViolation(h, 'one-live-epoch', record, old, message) : jobViolation(h, 'one-live-epoch', record, `${message} (epoch ${epoch} is not in status)`));
      }
    }
  }
  return out;
}

function excused(h: ChaosHistory, old: JobAttempt, at: number): boolean {
  if (!old.endTime) return false; // two live epochs: never excused
  if (at <= Date.parse(old.endTime) + h.graceMs) return true;
  // The old provider was unreachable (or only just came back): the zombie is deleted on reconnect.
  const cluster = clusterOf(h, old.provider);
  return faultsNear(h, at - h.graceMs, at, cluster, 0).some((f) => f.target === `provider:${cluster}`);
}

/** A provider (or owner) is blamed for an attempt only when a fault struck that provider around it. */
export function blameHasACause(h: ChaosHistory): Violation[] {
  const out: Violation[] = [];
  for (const record of h.jobs) {
    for (const a of jobOf(record)?.status?.attempts ?? []) {
      if (a.faultOf !== 'provider' && a.faultOf !== 'owner-reclaim') continue;
      const [from, to] = attemptWindow(h, a);
      const cluster = clusterOf(h, a.provider);
      const causes = faultsNear(h, from, to, cluster, h.graceMs).filter((f) => f.target === `provider:${cluster}`);
      if (!causes.length) out.push(attemptViolation(h, 'blame-has-a-cause', record, a, `attempt blamed on ${a.faultOf} (${a.reason}) with no fault injected on ${cluster ?? a.provider}`));
    }
  }
  return out;
}
