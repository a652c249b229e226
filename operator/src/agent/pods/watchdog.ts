import type { V1Pod } from '@kubernetes/client-node';
import { budgetSpent } from '../../core/budget.js';

// What the agent decides about a running attempt beyond its pods' own phases: whether its escrow is
// spent (stop it, the consumer's side), and whether someone other than the agent removed its pods
// (the provider's side: only the provider's admins can). No I/O: the agent feeds it the pods of one
// attempt from its cache on every publish.

export interface BudgetStop {
  /** Measured GPU-seconds when the stop began, and when (ms). */
  gpuSeconds: number;
  atMs: number;
}

/** GPU-seconds at which the agent starts stopping: the covered amount less the checkpoint grace, so the escrow pays for the checkpoint too. */
export function budgetStopThreshold(coveredGpuSeconds: number, gpus: number, gracePeriodSeconds: number): number {
  return Math.max(0, coveredGpuSeconds - gpus * gracePeriodSeconds);
}

/** Whether to begin stopping an attempt that measured `gpuSeconds` so far (never when no limit was given). */
export function shouldStopForBudget(gpuSeconds: number, coveredGpuSeconds: number, gpus: number, gracePeriodSeconds: number): boolean {
  if (!coveredGpuSeconds) return false;
  return budgetSpent(gpuSeconds, Math.max(1e-9, budgetStopThreshold(coveredGpuSeconds, gpus, gracePeriodSeconds)));
}

/** Final usage of a budget-stopped attempt: what ran until the pods were gone, never more than covered. */
export function budgetStoppedUsage(stop: BudgetStop, gpus: number, nowMs: number, coveredGpuSeconds: number): number {
  const ran = stop.gpuSeconds + (gpus * Math.max(0, nowMs - stop.atMs)) / 1000;
  return Math.round(Math.min(ran, coveredGpuSeconds) * 1000) / 1000;
}

/** The signed and reported usage never exceeds what the escrow covers (0: no limit). */
export function capToCovered(gpuSeconds: number, coveredGpuSeconds: number): number {
  return coveredGpuSeconds > 0 ? Math.min(gpuSeconds, coveredGpuSeconds) : gpuSeconds;
}

/**
 * Remembers the pods of each attempt it has seen; reports the ones that vanished or are being
 * deleted while the agent itself was not stopping the attempt. A pod that finished (Succeeded or
 * Failed) and was cleaned up later is not counted: its end was already reported.
 */
export class PodDeletionWatch {
  private readonly seen = new Map<string, Map<string, string>>();

  /** Names of pods removed by someone else; `stopping`: the agent is deleting them itself. */
  removedByOthers(key: string, pods: readonly V1Pod[], stopping: boolean): string[] {
    const known = this.seen.get(key) ?? new Map<string, string>();
    this.seen.set(key, known);
    const present = new Set<string>();
    const removed: string[] = [];
    for (const pod of pods) {
      const name = pod.metadata?.name;
      if (!name) continue;
      present.add(name);
      const phase = pod.status?.phase ?? 'Pending';
      known.set(name, phase);
      if (!stopping && pod.metadata?.deletionTimestamp && !isFinal(phase)) removed.push(name);
    }
    if (stopping) return [];
    for (const [name, phase] of known) if (!present.has(name) && !isFinal(phase)) removed.push(name);
    return removed.sort();
  }

  forget(key: string): void {
    this.seen.delete(key);
  }
}

const isFinal = (phase: string) => phase === 'Succeeded' || phase === 'Failed';
