// The human explanation of an Unschedulable result, in the style of kube-scheduler's
// "0/5 nodes are available: …": one reason per provider, grouped, most common first. Groups stay
// short on a big market: differing values collapse to a range ("rtt 120-180ms > 50ms").

import { RANK, type Rejection, type RejectReason } from './filter.js';
import type { PreparedJob } from './job.js';
import { formatMoney, parseMoney } from './money.js';
import type { Unschedulable } from './types.js';

/** Build reasons (counts by reason) and the message, e.g. "0/5 providers fit: 2 insufficient idle …". */
export function explainUnschedulable(providerCount: number, rejections: readonly Rejection[], job: PreparedJob): Unschedulable {
  const reasons: Record<string, number> = {};
  const groups = new Map<string, { reason: RejectReason; product: string | undefined; items: Rejection[] }>();
  for (const r of rejections) {
    reasons[r.reason] = (reasons[r.reason] ?? 0) + 1;
    // Product-specific reasons are reported per product; the others per reason.
    const product = PER_PRODUCT.has(r.reason) ? r.gpuProduct : undefined;
    const key = `${r.reason}\u0000${product ?? ''}`;
    const group = groups.get(key);
    if (group) group.items.push(r);
    else groups.set(key, { reason: r.reason, product, items: [r] });
  }
  const parts = [...groups.values()]
    .sort(
      (a, b) =>
        b.items.length - a.items.length || RANK[a.reason] - RANK[b.reason] || (a.product ?? '').localeCompare(b.product ?? ''),
    )
    .map((g) => `${g.items.length} ${describe(g.reason, g.product, g.items, job)}`);
  const detail = parts.length > 0 ? parts.join(', ') : 'no providers in the market';
  return { kind: 'unschedulable', reasons, message: `0/${providerCount} providers fit: ${detail}` };
}

/** The result for a malformed job. */
export function invalidRequest(message: string): Unschedulable {
  return { kind: 'unschedulable', reasons: { InvalidRequest: 1 }, message: `invalid job: ${message}` };
}

const PER_PRODUCT = new Set<RejectReason>(['InsufficientIdle', 'InsufficientMemory', 'DriverTooOld']);

function describe(reason: RejectReason, product: string | undefined, items: readonly Rejection[], job: PreparedJob): string {
  const values = items.map((r) => r.value);
  switch (reason) {
    case 'NoMatchingProduct':
      return job.products.length > 0 ? `no ${job.products.join('/')} pool` : 'no GPU pool';
    case 'InsufficientMemory':
      return `${product} memory ${range(values, (v) => `${v}`)}GiB < ${job.minMemoryGiB}GiB`;
    case 'DriverTooOld':
      return `${product} cuda driver ${range(values, (v) => `${v}`)} < ${job.minCudaDriverMajor}`;
    case 'InsufficientIdle':
      return `insufficient idle ${product}${job.sameNode ? ' on one node' : ''}`;
    case 'InvalidPrice':
      return 'invalid price';
    case 'PriceAboveBudget':
      return `price ${moneyRange(values)} > ${money(job.maxPrice)}`;
    case 'TotalAboveBudget':
      return `estimated total ${moneyRange(values)} > ${money(job.maxTotal)}`;
    case 'RegionNotAllowed':
      return `region ${distinct(values).join('/')} not in ${[...(job.regions ?? [])].join(',')}`;
    case 'MissingAuditedAttribute':
      return `not audited ${distinct(values).join('/')}`;
    case 'RttTooHigh':
      return `rtt ${range(values, (v) => `${Math.round(Number(v))}`)}ms > ${job.maxLatencyMs}ms`;
    case 'ReputationTooLow':
      return `reputation ${range(values, (v) => twoDecimalsDown(Number(v)))} < ${(job.minReputation ?? 0).toFixed(2)}`;
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

// "0.41", or "0.30-0.41" when the group's values differ (formatted values compared).
function range(values: readonly (number | string | undefined)[], format: (v: number | string) => string): string {
  const present = values.filter((v): v is number | string => v !== undefined);
  const numbers = present.map(Number).filter(Number.isFinite);
  if (numbers.length === 0) return '?';
  const lo = format(Math.min(...numbers));
  const hi = format(Math.max(...numbers));
  return lo === hi ? lo : `${lo}-${hi}`;
}

function moneyRange(values: readonly (number | string | undefined)[]): string {
  const amounts = values.filter((v): v is string => typeof v === 'string').map((v) => parseMoney(v));
  if (amounts.length === 0) return '?';
  const lo = amounts.reduce((a, b) => (b < a ? b : a));
  const hi = amounts.reduce((a, b) => (b > a ? b : a));
  return lo === hi ? money(lo) : `${money(lo)}-${money(hi)}`;
}

function money(amount: bigint | undefined): string {
  return amount === undefined ? '?' : formatMoney(amount, { minFractionDigits: 2 });
}

function distinct(values: readonly (number | string | undefined)[]): string[] {
  return [...new Set(values.filter((v) => v !== undefined).map(String))].sort();
}

// Round down so a score just under the minimum never prints as equal to it ("0.59 < 0.60").
function twoDecimalsDown(v: number): string {
  return (Math.floor(v * 100 + 1e-9) / 100).toFixed(2);
}
