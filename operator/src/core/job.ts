// A JobRequest validated and parsed once per schedule() call: money to bigint, GiB to MiB, lists to
// sets. The hot loop then compares numbers only.

import { type Money, tryParseMoney } from './money.js';
import type { SchedulerConfig } from './scheduler-config.js';
import type { JobRequest } from './types.js';

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
  maxTotal: Money | undefined;
  deadlineSeconds: number | undefined;
  regions: ReadonlySet<string> | undefined;
  maxLatencyMs: number | undefined;
  minReputation: number | undefined;
  audited: AuditRequirement[];
  sameNode: boolean;
  dataSizeGiB: number;
  dataSourceRegion: string | undefined;
  exclude: ReadonlySet<string>;
}

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
  const regions = job.placement?.regions ?? [];
  return {
    replicas,
    gpusPerReplica,
    gpus: replicas * gpusPerReplica,
    products: [...new Set(job.gpu?.products ?? [])],
    minMemoryGiB,
    minMemoryMiB: Math.ceil(minMemoryGiB * 1024 * (1 - config.memoryTolerance)),
    minCudaDriverMajor: job.gpu?.minCudaDriverMajor ?? 0,
    maxPrice,
    maxTotal,
    deadlineSeconds: deadline,
    regions: regions.length > 0 ? new Set(regions) : undefined,
    maxLatencyMs: job.placement?.maxLatencyMs,
    minReputation: job.placement?.minReputation,
    audited: (job.placement?.requireAudited ?? []).map(parseAuditRequirement),
    sameNode: job.placement?.sameNode ?? false,
    dataSizeGiB: Math.max(0, job.data?.sizeGiB ?? 0),
    dataSourceRegion: job.data?.sourceRegion,
    exclude: new Set(job.excludeProviders ?? []),
  };
}

/** "soc2" → any audited value; "tier=3" → exactly that value. */
export function parseAuditRequirement(text: string): AuditRequirement {
  const eq = text.indexOf('=');
  return eq < 0 ? { name: text, value: undefined, text } : { name: text.slice(0, eq), value: text.slice(eq + 1), text };
}
