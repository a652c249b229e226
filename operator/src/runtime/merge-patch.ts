// JSON values and RFC 7386 merge patches between them: deep equality with JSON semantics (keys
// whose value is undefined do not exist) and the smallest merge patch that turns one into another.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The JSON form of `value`: drops undefined, turns Dates into strings, as the wire would. */
export function toJson(value: unknown): Json {
  return value === undefined ? null : (JSON.parse(JSON.stringify(value)) as Json);
}

function isObject(v: Json | undefined): v is { [key: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function jsonEqual(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => k in b && jsonEqual(a[k], b[k]));
  }
  return false;
}

/**
 * The merge patch that turns `from` into `to` (both objects): changed keys recurse, removed keys
 * become null, arrays are replaced whole (merge patch cannot address list items). Returns
 * undefined when nothing differs.
 */
export function mergePatchBetween(
  from: { [key: string]: Json } | undefined,
  to: { [key: string]: Json },
): { [key: string]: Json } | undefined {
  const patch: { [key: string]: Json } = {};
  const old = from ?? {};
  for (const [key, value] of Object.entries(to)) {
    const before = old[key];
    if (jsonEqual(before, value)) continue;
    // A null in a merge patch means "delete", so a null in `to` can only be expressed that way.
    if (isObject(value) && isObject(before)) patch[key] = mergePatchBetween(before, value) ?? {};
    else patch[key] = value;
  }
  for (const key of Object.keys(old)) if (!(key in to)) patch[key] = null;
  return Object.keys(patch).length > 0 ? patch : undefined;
}
