import { describe, expect, it } from 'vitest';
import { betaCdf, betaQuantile, logGamma } from './beta.js';

// P(Binomial(n, x) ≥ k), exact for small n: I_x(a, b) equals it with n = a + b − 1, k = a.
function binomialTail(n: number, k: number, x: number): number {
  let sum = 0;
  for (let j = k; j <= n; j++) {
    let coefficient = 1;
    for (let i = 1; i <= j; i++) coefficient = (coefficient * (n - j + i)) / i;
    sum += coefficient * x ** j * (1 - x) ** (n - j);
  }
  return sum;
}

describe('logGamma', () => {
  it.each([
    [1, 0],
    [2, 0],
    [5, Math.log(24)],
    [0.5, Math.log(Math.sqrt(Math.PI))],
    [10.5, Math.log(1133278.3889487855)],
  ])('lnΓ(%d)', (x, want) => {
    expect(logGamma(x)).toBeCloseTo(want, 12);
  });
});

describe('betaCdf', () => {
  it.each([
    ['Beta(1,1) is uniform', 0.3, 1, 1, 0.3],
    ['Beta(2,2) = 3x²−2x³', 0.25, 2, 2, 3 * 0.25 ** 2 - 2 * 0.25 ** 3],
    ['Beta(a,1) = x^a', 0.7, 3.5, 1, 0.7 ** 3.5],
    ['Beta(1,b) = 1−(1−x)^b', 0.2, 1, 4.25, 1 - 0.8 ** 4.25],
    ['binomial identity, left of mean', 0.3, 5, 8, binomialTail(12, 5, 0.3)],
    ['binomial identity, right of mean', 0.9, 20, 3, binomialTail(22, 20, 0.9)],
    ['edge 0', 0, 2, 3, 0],
    ['edge 1', 1, 2, 3, 1],
  ])('%s', (_name, x, a, b, want) => {
    expect(betaCdf(x, a, b)).toBeCloseTo(want, 12);
  });

  it('is symmetric: I_x(a,b) = 1 − I_{1−x}(b,a)', () => {
    for (const [x, a, b] of [[0.1, 3, 9], [0.5, 40.5, 2.25], [0.97, 500, 3]] as const) {
      expect(betaCdf(x, a, b)).toBeCloseTo(1 - betaCdf(1 - x, b, a), 12);
    }
  });

  it('rejects non-positive shapes', () => {
    expect(() => betaCdf(0.5, 0, 1)).toThrow(RangeError);
  });
});

describe('betaQuantile', () => {
  it.each([
    ['uniform', 0.05, 1, 1, 0.05],
    ['Beta(a,1): p^(1/a)', 0.05, 51, 1, 0.05 ** (1 / 51)],
    ['Beta(1,b): 1−(1−p)^(1/b)', 0.05, 1, 10, 1 - 0.95 ** (1 / 10)],
    ['median of a symmetric Beta', 0.5, 7.5, 7.5, 0.5],
    ['p = 0', 0, 3, 3, 0],
    ['p = 1', 1, 3, 3, 1],
  ])('%s', (_name, p, a, b, want) => {
    expect(betaQuantile(p, a, b)).toBeCloseTo(want, 10);
  });

  it('inverts the CDF for large, real-valued shapes', () => {
    for (const [a, b] of [[1000.5, 12.25], [3.3, 1.7], [250, 250]] as const) {
      const q = betaQuantile(0.05, a, b);
      expect(betaCdf(q, a, b)).toBeCloseTo(0.05, 10);
    }
  });
});
