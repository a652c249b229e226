// The human explanation of an Unschedulable result, in the style of kube-scheduler's
// "0/5 nodes are available: …": one reason per provider, grouped, most common first. Groups stay
// short on a big market: differing values collapse to a range ("rtt 120-180ms > 50ms").

import { describeHost, RANK, type Rejection, type RejectReason } from './filter.js';
import type { PreparedJob } from '../job.js';
import { formatMoney } from '../money.js';
import type { Unschedulable } from '../types.js';

/** Build reasons (counts by reason) and the message, e.g. "0/5 providers fit: 2 insufficient idle …". */
export function explainUnschedulable(providerCount: number, rejections: readonly Rejection[], job: PreparedJob): Unschedulable {
  // Groups by reason rank; product-specific reasons are split further by product.
  const byRank: (Map<string, Group> | undefined)[] = [];
  const groups: Group[] = [];
  for (let i = 0; i < rejections.length; i++) {
    const r = rejections[i] as Rejection;
    const rank = RANK[r.reason];
    const product = rank >= RANK.InsufficientMemory && rank <= RANK.InsufficientIdle ? (r.gpuProduct ?? '') : '';
    let byProduct = byRank[rank];
    if (byProduct === undefined) byRank[rank] = byProduct = new Map();
    let group = byProduct.get(product);
    if (group === undefined) {
      group = newGroup(r.reason, product);
      byProduct.set(product, group);
      groups.push(group);
    }
    addValue(group, r.value);
  }
  const reasons: Record<string, number> = {};
  for (const g of groups) reasons[g.reason] = (reasons[g.reason] ?? 0) + g.count;
  groups.sort(byCountThenCheckOrder);
  const parts: string[] = [];
  for (const g of groups) parts.push(`${g.count} ${describe(g, job)}`);
  const detail = parts.length > 0 ? parts.join(', ') : 'no providers in the market';
  return { kind: 'unschedulable', reasons, message: `0/${providerCount} providers fit: ${detail}` };
}

// One line of the message: how many providers failed a reason, and the range of what they offered.
interface Group {
  reason: RejectReason;
  rank: number;
  product: string;
  count: number;
  minNumber: number;
  maxNumber: number;
  minMoney: bigint | undefined;
  maxMoney: bigint | undefined;
  texts: Set<string> | undefined;
}

function newGroup(reason: RejectReason, product: string): Group {
  return {
    reason,
    rank: RANK[reason],
    product,
    count: 0,
    minNumber: Number.POSITIVE_INFINITY,
    maxNumber: Number.NEGATIVE_INFINITY,
    minMoney: undefined,
    maxMoney: undefined,
    texts: undefined,
  };
}

function addValue(group: Group, value: Rejection['value']): void {
  group.count += 1;
  if (typeof value === 'number') {
    if (value < group.minNumber) group.minNumber = value;
    if (value > group.maxNumber) group.maxNumber = value;
  } else if (typeof value === 'bigint') {
    if (group.minMoney === undefined || value < group.minMoney) group.minMoney = value;
    if (group.maxMoney === undefined || value > group.maxMoney) group.maxMoney = value;
  } else if (typeof value === 'string') {
    (group.texts ??= new Set()).add(value);
  }
}

function byCountThenCheckOrder(a: Group, b: Group): number {
  return b.count - a.count || a.rank - b.rank || (a.product < b.product ? -1 : a.product > b.product ? 1 : 0);
}

/** The result for a malformed job. */
export function invalidRequest(message: string): Unschedulable {
  return { kind: 'unschedulable', reasons: { InvalidRequest: 1 }, message: `invalid job: ${message}` };
}

function describe(g: Group, job: PreparedJob): string {
  switch (g.reason) {
    case 'NoMatchingProduct':
      return job.products.length > 0 ? `no ${job.products.join('/')} pool` : 'no GPU pool';
    case 'InsufficientMemory':
      return `${g.product} memory ${numberRange(g, String)}GiB < ${job.minMemoryGiB}GiB`;
    case 'DriverTooOld':
      return `${g.product} cuda driver ${numberRange(g, String)} < ${job.minCudaDriverMajor}`;
    case 'RuntimeClassMismatch':
      return `${g.product} runtime class ${texts(g)} != ${job.runtimeClassName}`;
    case 'InsufficientCpuMemory':
      return `${g.product} gives at most ${describeHost(mostHost(g))} per replica < ${describeHost(job.hostPerReplica!)} asked`;
    case 'InsufficientIdle':
      return `insufficient idle ${g.product}${job.sameNode ? ' on one node' : ''}`;
    case 'InvalidPrice':
      return 'invalid price';
    case 'PriceAboveBudget':
      return `price ${moneyRange(g)} > ${money(job.maxPrice)}`;
    case 'TotalAboveBudget':
      return `estimated total ${moneyRange(g)} > ${money(job.maxTotal)}`;
    case 'EgressNotOffered':
      return `egress ${texts(g)} not offered`;
    case 'AccessNotOffered':
      // Values are the denied verbs per provider ("exec+port-forward"); the group names their union.
      return `${[...new Set([...(g.texts ?? [])].flatMap((t) => t.split('+')))].sort().join('/')} not allowed by the owner`;
    case 'RegionNotAllowed':
      return `region ${texts(g)} not in ${[...(job.regions ?? [])].join(',')}`;
    case 'MissingAuditedAttribute':
      return `not audited ${texts(g)}`;
    case 'RttTooHigh':
      return `rtt ${numberRange(g, formatMs)}ms > ${job.maxLatencyMs}ms`;
    case 'ReputationTooLow':
      return `reputation ${numberRange(g, twoDecimalsDown)} < ${(job.minReputation ?? 0).toFixed(2)}`;
    case 'NotStaked':
      return 'not staked';
    case 'NotReady':
      return 'not ready';
    case 'OutsideAvailabilityWindow':
      return 'outside availability window';
    case 'Excluded':
      return 'failed this job before';
  }
}

// "0.41", or "0.30-0.41" when the group's values differ once formatted.
function numberRange(g: Group, format: (v: number) => string): string {
  if (g.minNumber > g.maxNumber) return '?';
  const lo = format(g.minNumber);
  const hi = format(g.maxNumber);
  return lo === hi ? lo : `${lo}-${hi}`;
}

function moneyRange(g: Group): string {
  if (g.minMoney === undefined || g.maxMoney === undefined) return '?';
  const lo = money(g.minMoney);
  const hi = money(g.maxMoney);
  return lo === hi ? lo : `${lo}-${hi}`;
}

function money(amount: bigint | undefined): string {
  return amount === undefined ? '?' : formatMoney(amount, { minFractionDigits: 2 });
}

function texts(g: Group): string {
  return [...(g.texts ?? [])].sort().join('/');
}

function formatMs(v: number): string {
  return String(Math.round(v));
}

// Round down so a score just under the minimum never prints as equal to it ("0.59 < 0.60").
function twoDecimalsDown(v: number): string {
  return (Math.floor(v * 100 + 1e-9) / 100).toFixed(2);
}

// The most CPU and the most memory a replica gets in any of the group's pools ("cpuMilli/memoryMiB" values).
function mostHost(g: Group): { cpuMilli: number; memoryMiB: number } {
  let cpuMilli = 0;
  let memoryMiB = 0;
  for (const t of g.texts ?? []) {
    const [cpu, memory] = t.split('/').map(Number);
    cpuMilli = Math.max(cpuMilli, cpu ?? 0);
    memoryMiB = Math.max(memoryMiB, memory ?? 0);
  }
  return { cpuMilli, memoryMiB };
}
