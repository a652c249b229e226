// A JobRequest validated and parsed once per schedule() call: money to bigint, GiB to MiB, lists to
// sets. The hot loop then compares numbers only.

import { type Money, moneyToNumber, tryParseMoney } from './money.js';
import type { SchedulerConfig } from './scheduling/config.js';
import type { HostResources, JobRequest } from './types.js';
import { invalidEgress, type EgressProfile } from './egress.js';

export interface AuditRequirement {
  name: string;
  /** undefined: any audited value will do. */
  value: string | undefined;
  /** As the job wrote it ("tier=3"), for messages. */
  text: string;
}

export interface PreparedJob {
  replicas: number;
  gpusPerReplica: number;
  /** replicas × gpusPerReplica. */
  gpus: number;
  /** Distinct products in the order given; empty accepts any. */
  products: string[];
  /** As requested, for messages. */
  minMemoryGiB: number;
  /** minMemoryGiB in MiB, less the configured tolerance (what pools are compared against). */
  minMemoryMiB: number;
  minCudaDriverMajor: number;
  maxPrice: Money | undefined;
  /** maxPrice as a float, for the fast pre-check in filter.ts (0 when absent). */
  maxPriceNumber: number;
  maxTotal: Money | undefined;
  /**
   * Highest price per GPU-hour whose estimated total (price × GPUs × deadline / 3600, rounded up)
   * stays within maxTotal: floor(maxTotal × 3600 / (GPUs × deadline)). One bigint compare per pool.
   */
  maxPriceForTotal: Money | undefined;
  maxPriceForTotalNumber: number;
  deadlineSeconds: number | undefined;
  regions: ReadonlySet<string> | undefined;
  maxLatencyMs: number | undefined;
  minReputation: number | undefined;
  audited: AuditRequirement[];
  sameNode: boolean;
  /** RuntimeClass the pool must run job pods under, when the job requires one. */
  runtimeClassName: string | undefined;
  dataSizeGiB: number;
  dataSourceRegion: string | undefined;
  /** Empty set shared when the job excludes nobody. */
  exclude: ReadonlySet<string>;
  /** Needed egress beyond the gang; undefined when nothing (or `none`) is needed. */
  egress: EgressProfile | undefined;
  /** The job needs exec / port-forward through the tunnel (spec.access). */
  needsExec: boolean;
  needsPortForward: boolean;
  /** CPU and memory one replica asks; undefined when it asks none (any pool's share does). */
  hostPerReplica: HostResources | undefined;
}

const NOBODY: ReadonlySet<string> = new Set();

/** Validate and parse a job; returns a message instead when the request is malformed. */
export function prepareJob(job: JobRequest, config: SchedulerConfig): PreparedJob | { invalid: string } {
  const { replicas, gpusPerReplica } = job;
  if (!Number.isInteger(replicas) || replicas < 1) return { invalid: `replicas must be a positive integer, got ${replicas}` };
  if (!Number.isInteger(gpusPerReplica) || gpusPerReplica < 1) {
    return { invalid: `gpusPerReplica must be a positive integer, got ${gpusPerReplica}` };
  }
  const maxPriceText = job.budget?.maxPricePerGpuHour;
  const maxPrice = maxPriceText === undefined ? undefined : tryParseMoney(maxPriceText);
  if (maxPriceText !== undefined && maxPrice === undefined) {
    return { invalid: `budget.maxPricePerGpuHour ${JSON.stringify(maxPriceText)} is not a decimal amount` };
  }
  const maxTotalText = job.budget?.maxTotal;
  const maxTotal = maxTotalText === undefined ? undefined : tryParseMoney(maxTotalText);
  if (maxTotalText !== undefined && maxTotal === undefined) {
    return { invalid: `budget.maxTotal ${JSON.stringify(maxTotalText)} is not a decimal amount` };
  }
  const deadline = job.activeDeadlineSeconds;
  if (deadline !== undefined && !(Number.isInteger(deadline) && deadline > 0)) {
    return { invalid: `activeDeadlineSeconds must be a positive integer, got ${deadline}` };
  }
  const minMemoryGiB = job.gpu?.minMemoryGiB ?? 0;
  const maxPriceForTotal =
    maxTotal === undefined || deadline === undefined
      ? undefined
      : (maxTotal * 3600n) / BigInt(replicas * gpusPerReplica * deadline);
  if (job.hostProblems?.length) return { invalid: job.hostProblems.join('; ') };
  const regions = job.placement?.regions ?? [];
  const egress = job.network?.egress;
  const badEgress = egress === undefined ? undefined : invalidEgress(egress, 'network.egress');
  if (badEgress !== undefined) return { invalid: badEgress };
  return {
    replicas,
    gpusPerReplica,
    gpus: replicas * gpusPerReplica,
    products: distinct(job.gpu?.products),
    minMemoryGiB,
    minMemoryMiB: Math.ceil(minMemoryGiB * 1024 * (1 - config.memoryTolerance)),
    minCudaDriverMajor: job.gpu?.minCudaDriverMajor ?? 0,
    maxPrice,
    maxTotal,
    maxPriceNumber: maxPrice === undefined ? 0 : moneyToNumber(maxPrice),
    maxPriceForTotal,
    maxPriceForTotalNumber: maxPriceForTotal === undefined ? 0 : moneyToNumber(maxPriceForTotal),
    deadlineSeconds: deadline,
    regions: regions.length > 0 ? new Set(regions) : undefined,
    maxLatencyMs: job.placement?.maxLatencyMs,
    minReputation: job.placement?.minReputation,
    audited: job.placement?.requireAudited?.length ? job.placement.requireAudited.map(parseAuditRequirement) : [],
    sameNode: job.placement?.sameNode ?? false,
    runtimeClassName: job.placement?.runtimeClassName || undefined,
    dataSizeGiB: Math.max(0, job.data?.sizeGiB ?? 0),
    dataSourceRegion: job.data?.sourceRegion,
    exclude: job.excludeProviders?.length ? new Set(job.excludeProviders) : NOBODY,
    egress: egress === undefined || egress.mode === 'none' ? undefined : egress,
    needsExec: job.access?.exec === true,
    needsPortForward: job.access?.portForward === true,
    hostPerReplica: job.hostPerReplica && (job.hostPerReplica.cpuMilli > 0 || job.hostPerReplica.memoryMiB > 0) ? job.hostPerReplica : undefined,
  };
}

function distinct(items: readonly string[] | undefined): string[] {
  if (items === undefined || items.length === 0) return [];
  if (items.length === 1) return [items[0] as string];
  return [...new Set(items)];
}

/** "soc2" → any audited value; "tier=3" → exactly that value. */
export function parseAuditRequirement(text: string): AuditRequirement {
  const eq = text.indexOf('=');
  return eq < 0 ? { name: text, value: undefined, text } : { name: text.slice(0, eq), value: text.slice(eq + 1), text };
}
