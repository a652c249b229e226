// The owner's choice of consumer access per pool (chart values provider.settings.access, and
// accessByProduct per GPU product). Logs are always allowed; exec and port-forward default to allowed.
// The agent reports it in its inventory (the market shows it, the scheduler places jobs needing it
// only where allowed) and enforces it itself on every session: a hub cannot override the owner.

import type { PoolAccess } from '../../core/types.js';

export type AccessSwitches = { exec?: boolean; portForward?: boolean };

export interface AccessSettings {
  /** For every pool. */
  access?: AccessSwitches;
  /** Per GPU product (the pool), field by field over `access`. */
  accessByProduct?: Record<string, AccessSwitches>;
}

/** What the owner allows for the pool of `gpuProduct` ('' or unknown: the all-pool setting). */
export function poolAccess(settings: AccessSettings, gpuProduct: string | undefined): PoolAccess {
  const own = gpuProduct && Object.hasOwn(settings.accessByProduct ?? {}, gpuProduct) ? settings.accessByProduct![gpuProduct] : undefined;
  return {
    exec: own?.exec ?? settings.access?.exec ?? true,
    portForward: own?.portForward ?? settings.access?.portForward ?? true,
  };
}

/** The first malformed access setting, naming the field, or undefined (read once at agent start). */
export function accessSettingsError(settings: Record<string, unknown>): string | undefined {
  const check = (value: unknown, path: string): string | undefined => {
    if (value === undefined) return undefined;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return `${path} must be a map with exec and portForward (true or false)`;
    for (const [key, v] of Object.entries(value)) {
      if (key !== 'exec' && key !== 'portForward') return `${path}.${key} is not a setting (only exec and portForward)`;
      if (typeof v !== 'boolean') return `${path}.${key} must be true or false, got ${JSON.stringify(v)}`;
    }
    return undefined;
  };
  const all = check(settings.access, 'access');
  if (all) return all;
  const byProduct = settings.accessByProduct;
  if (byProduct === undefined) return undefined;
  if (byProduct === null || typeof byProduct !== 'object' || Array.isArray(byProduct)) return 'accessByProduct must be a map of GPU product to {exec, portForward}';
  for (const [product, value] of Object.entries(byProduct)) {
    const bad = check(value, `accessByProduct.${product}`);
    if (bad) return bad;
  }
  return undefined;
}

/** The ACCESS column of `fedgpu market`: logs, then each verb the pool allows. */
export function describeAccess(access: Partial<PoolAccess> | undefined): string {
  return ['logs', ...(access?.exec !== false ? ['exec'] : []), ...(access?.portForward !== false ? ['port-forward'] : [])].join(',');
}
