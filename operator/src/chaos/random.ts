// A small seeded PRNG (mulberry32): the same seed gives the same stream on every machine, so a
// chaos schedule can be replayed from its seed alone. Not for anything secret.

export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer in [min, max], both included. */
  int(min: number, max: number): number;
  /** One element, chosen with the given weights (all ≥ 0, not all 0). */
  weighted<T>(choices: readonly (readonly [T, number])[]): T;
  /** True with probability p. */
  chance(p: number): boolean;
}

export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    weighted(choices) {
      const total = choices.reduce((n, [, w]) => n + w, 0);
      if (!(total > 0)) throw new RangeError('weighted: no positive weight');
      let r = next() * total;
      for (const [value, w] of choices) {
        if ((r -= w) < 0) return value;
      }
      return choices.at(-1)![0];
    },
    chance: (p) => next() < p,
  };
}
