// One copy of each short string value in the informer caches. JSON.parse makes a new string for
// every value it reads, so 10,000 cached GpuJobs held 33,000 copies of "NVIDIA-H100-80GB-HBM3",
// 10,000 of each condition reason and message the hub writes, and one of its provider's name per
// job: half of the cached strings' bytes were copies (docs/benchmarks.md, "One copy of each
// cached string"). Keys need nothing: V8 already keeps one copy of each property name.
//
// The table is bounded: at `maxEntries` it starts again empty, so strings seen once cannot make it
// grow without end; the strings that repeat are back in it after the next few objects. Values of
// the keys every object has its own of (uid, resourceVersion) are not even looked up.

/** Property names whose values are unique to one object (version): never worth a table slot. */
const UNIQUE_VALUE_KEYS = new Set(['uid', 'resourceVersion']);

export interface InternStats {
  /** Strings replaced by the copy already held. */
  hits: number;
  /** Strings the table did not hold yet (now it does). */
  misses: number;
  /** Times the table was emptied at its bound. */
  resets: number;
}

export class StringInterner {
  private table = new Map<string, string>();
  readonly stats: InternStats = { hits: 0, misses: 0, resets: 0 };

  constructor(
    private readonly maxEntries = 20_000,
    /** Longer strings are left alone: rarely repeated, and hashing them is not free. */
    private readonly maxLength = 256,
  ) {
    if (!(maxEntries > 0) || !(maxLength > 0)) throw new Error('a string interner needs positive bounds');
  }

  get size(): number {
    return this.table.size;
  }

  /** The held copy of `value` (held from now on if it was not). */
  intern(value: string): string {
    if (value.length > this.maxLength) return value;
    const held = this.table.get(value);
    if (held !== undefined) {
      this.stats.hits++;
      return held;
    }
    if (this.table.size >= this.maxEntries) {
      this.table = new Map();
      this.stats.resets++;
    }
    this.table.set(value, value);
    this.stats.misses++;
    return value;
  }

  /**
   * Replaces, in place, every string value in `obj`'s plain objects and arrays (at any depth) with
   * its held copy. Other objects (Dates, Buffers, class instances of client-node's models are
   * walked too: they are plain data) keep their identity; only string slots change. Returns `obj`.
   */
  internAll<T>(obj: T): T {
    try {
      this.walk(obj, 0);
    } catch {
      // Only memory is at stake: an object the walk cannot write keeps its own copies.
    }
    return obj;
  }

  private walk(node: unknown, depth: number): void {
    // Listed and watched objects are trees a few levels deep (JSON has no cycles); the bound only
    // stops a runaway recursion.
    if (depth > 64 || node === null || typeof node !== 'object') return;
    if (ArrayBuffer.isView(node) || node instanceof Date) return;
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const value: unknown = node[i];
        if (typeof value === 'string') node[i] = this.intern(value);
        else if (typeof value === 'object') this.walk(value, depth + 1);
      }
      return;
    }
    const record = node as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const value = record[key];
      if (typeof value === 'string') {
        if (!UNIQUE_VALUE_KEYS.has(key)) record[key] = this.intern(value);
      } else if (typeof value === 'object') this.walk(value, depth + 1);
    }
  }
}

/** The one interner every informer of the process shares: a job names its provider's strings too. */
export const sharedInterner = new StringInterner();
