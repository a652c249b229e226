// One order for names, the same on every machine: by UTF-16 code unit, as `<` compares strings.
// Not localeCompare, whose order follows the process's locale (two hub replicas could then write
// the same status in different orders) and whose first call maps ICU's collation data into the
// process (about 2.7 MiB of resident memory in node 20, docs/benchmarks.md).

/** -1, 0 or 1 as `a` sorts before, with or after `b`. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
