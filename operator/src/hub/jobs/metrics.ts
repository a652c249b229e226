// What the GpuJob controller tells its metrics (the hub wires these to HubMetrics; tests to spies).
// Kept apart from the reconciler so that it only calls three hooks at the points they describe.
import type { GpuJob, JobAttempt } from '../../api/types.js';
import type { ScheduleResult } from '../../core/types.js';
import type { HubMetrics } from '../../metrics/hub-metrics.js';
import type { ControllerMetrics } from '../../runtime/controller.js';

export interface GpuJobMetrics {
  /** Reconcile hooks for the runtime Controller (controller="gpujob"). */
  controller?: ControllerMetrics;
  /** One schedule() call, its result and how long it took. */
  scheduled?(result: ScheduleResult, seconds: number): void;
  /** An attempt ended; called once, after the status that ends it was written. */
  attemptEnded?(attempt: JobAttempt): void;
  /** An agent's attempt report was fenced: no such job, or not its current epoch. */
  reportFenced?(reason: 'unknown_job' | 'stale_epoch'): void;
  /** The controller wrote its finalizer onto a job (no admission policy had put it on at create). */
  finalizerAdded?(): void;
}

/** Runs schedule() and reports it; a throwing hook never fails the reconcile. */
export function timedSchedule(metrics: GpuJobMetrics | undefined, run: () => ScheduleResult): ScheduleResult {
  const started = performance.now();
  const result = run();
  try {
    metrics?.scheduled?.(result, (performance.now() - started) / 1000);
  } catch {
    // metrics are best effort
  }
  return result;
}

/** Attempts that have an end time in `after` but did not in `before` (by epoch). */
export function endedAttempts(before: GpuJob, after: GpuJob): JobAttempt[] {
  const open = new Set((before.status?.attempts ?? []).filter((a) => !a.endTime).map((a) => a.epoch));
  return (after.status?.attempts ?? []).filter((a) => a.endTime && open.has(a.epoch));
}

/** The GpuJob controller's hooks onto the hub's metrics. */
export function gpuJobMetricsOf(metrics: HubMetrics): GpuJobMetrics {
  return {
    controller: metrics.controllerMetrics,
    scheduled: (result, seconds) => metrics.observeSchedule(result, seconds),
    attemptEnded: (attempt) => metrics.observeAttemptEnded(attempt.provider, attempt.faultOf),
    reportFenced: (reason) => metrics.observeFencedReport(reason),
    finalizerAdded: () => metrics.observeFinalizerAdded(),
  };
}
