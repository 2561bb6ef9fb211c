import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { clopperPearson, fisherExactGreater } from './statistics.js';

const { jStat } = createRequire(import.meta.url)('jstat') as { jStat: { hypgeom: { cdf(x: number, N: number, m: number, n: number): number } } };

/** Binomial coefficient as an exact BigInt. */
function choose(n: number, k: number): bigint {
  if (k < 0 || k > n) return 0n;
  k = Math.min(k, n - k);
  let r = 1n;
  for (let i = 1; i <= k; i++) r = (r * BigInt(n - k + i)) / BigInt(i);
  return r;
}

/** P(X >= a) for the table's hypergeometric, as an exact rational, then divided to 17 significant digits. */
function exactGreater(a: number, b: number, c: number, d: number): number {
  const N = a + b + c + d;
  const K = a + c;
  const n = a + b;
  let num = 0n;
  for (let k = a; k <= Math.min(n, K); k++) num += choose(K, k) * choose(N - K, n - k);
  const den = choose(N, n);
  const scale = 10n ** 30n;
  return Number((num * scale) / den) / 1e30;
}

describe('clopperPearson', () => {
  // Newcombe RG (1998), "Two-sided confidence intervals for the single proportion: comparison of seven methods",
  // Stat Med 17:857-872, Table I, method 5 (exact, Clopper-Pearson), to the 4 decimals printed there.
  // (81/263 → 0.2553-0.3662 in the same table is method 3, Wilson's score interval, not this one.)
  it.each([
    [81, 263, 0.2527, 0.3676],
    [15, 148, 0.0578, 0.1617],
    [0, 20, 0, 0.1684],
    [1, 29, 0.0009, 0.1776],
  ])('%i/%i matches Newcombe (1998) Table I, method 5', (x, n, lower, upper) => {
    const ci = clopperPearson(x, n, 0.95);
    expect(ci.value).toBeCloseTo(x / n, 12);
    expect(ci.lower).toBeCloseTo(lower, 4);
    expect(ci.upper).toBeCloseTo(upper, 4);
  });

  it('has closed forms at the edges: 0/n upper = 1 − (α/2)^(1/n), n/n lower = (α/2)^(1/n)', () => {
    expect(clopperPearson(0, 2_000_000).upper).toBeCloseTo(1 - 0.025 ** (1 / 2_000_000), 12);
    expect(clopperPearson(0, 2_000_000).lower).toBe(0);
    expect(clopperPearson(12, 12).upper).toBe(1);
    expect(clopperPearson(12, 12).lower).toBeCloseTo(0.025 ** (1 / 12), 9);
  });

  it('stays accurate at bench scale (reference: SciPy 1.17.1 scipy.stats.beta.ppf)', () => {
    const ci = clopperPearson(15_000, 2_000_000);
    expect(ci.lower).toBeCloseTo(0.007380891646790504, 9);
    expect(ci.upper).toBeCloseTo(0.0076205377488953565, 9);
    const one = clopperPearson(1, 2_000_000);
    expect(one.lower! / 1.2658903912021012e-8).toBeCloseTo(1, 6);
    expect(one.upper! / 2.785818511507096e-6).toBeCloseTo(1, 6);
  });

  it('answers nulls for no procedures, and refuses impossible counts', () => {
    expect(clopperPearson(0, 0)).toEqual({ value: null, lower: null, upper: null });
    expect(() => clopperPearson(3, 2)).toThrow(RangeError);
    expect(() => clopperPearson(-1, 2)).toThrow(RangeError);
    expect(() => clopperPearson(1.5, 2)).toThrow(RangeError);
    expect(() => clopperPearson(1, 2, 1)).toThrow(RangeError);
  });

  it('contains x/n, lies within [0, 1], and widens with the confidence (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3_000_000 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0.5, max: 0.995, noNaN: true }), (n, share, conf) => {
        const x = Math.round(share * n);
        const narrow = clopperPearson(x, n, conf);
        const wide = clopperPearson(x, n, Math.min(0.999, conf + 0.004));
        expect(narrow.lower!).toBeGreaterThanOrEqual(0);
        expect(narrow.upper!).toBeLessThanOrEqual(1);
        expect(narrow.lower!).toBeLessThanOrEqual(x / n);
        expect(narrow.upper!).toBeGreaterThanOrEqual(x / n);
        expect(wide.lower!).toBeLessThanOrEqual(narrow.lower! + 1e-12);
        expect(wide.upper!).toBeGreaterThanOrEqual(narrow.upper! - 1e-12);
      }),
      { numRuns: 300 },
    );
  });
});

describe('fisherExactGreater', () => {
  it("Fisher's lady tasting tea (Fisher 1935, The Design of Experiments §2; Agresti 2002, Categorical Data Analysis 2nd ed. §3.5): 3,1,1,3 → 0.2429", () => {
    // 17/70 exactly; R: fisher.test(TeaTasting, alternative = "greater") gives p-value = 0.2429.
    expect(fisherExactGreater(3, 1, 1, 3)).toBeCloseTo(17 / 70, 12);
    expect(fisherExactGreater(3, 1, 1, 3)).toBeCloseTo(0.2429, 4);
  });

  it("criminal twins (Fisher 1962; R's fisher.test documentation, example 'Convictions'): monozygotic 10 convicted of 13, dizygotic 2 of 17 → 0.0004652", () => {
    // R: fisher.test(Convictions, alternative = "less") = 0.0004652, the same test with the rows the other way round.
    expect(fisherExactGreater(10, 3, 2, 15)).toBeCloseTo(0.0004652, 7);
    expect(fisherExactGreater(10, 3, 2, 15) / exactGreater(10, 3, 2, 15)).toBeCloseTo(1, 9);
  });

  // A pool of ~2 million procedures (bench scale). References: mpmath 1.3.0 at 40 digits, the exact sum
  // Σ_k C(K,k)·C(N−K,n−k) / C(N,n), independent of this code and of jStat. The log-gamma of arguments near 2e6
  // is ~3e7, so a double carries it to ~1e-8 absolute: p is good to 8 significant digits, whatever its size.
  it.each([
    [100, 9_900, 15_000, 1_985_000, 0.0033211079431584055],
    [90, 9_910, 15_000, 1_985_000, 0.050033914658995113],
    [300, 9_700, 15_000, 1_985_000, 1.612429600720869e-85],
    [2_100, 227_438, 15_000, 1_900_000, 2.7896845548734131e-11],
    [5, 5, 20, 2_000_000, 5.020224381106631e-23],
  ])('is exact for large tables: %i, %i, %i, %i', (a, b, c, d, p) => {
    expect(Math.abs(fisherExactGreater(a, b, c, d) / p - 1)).toBeLessThan(3e-8);
  });

  it('is 1 when the lot has no event, and refuses negative or fractional counts', () => {
    expect(fisherExactGreater(0, 5, 3, 7)).toBe(1);
    expect(fisherExactGreater(0, 0, 0, 0)).toBe(1);
    expect(() => fisherExactGreater(-1, 1, 1, 1)).toThrow(RangeError);
    expect(() => fisherExactGreater(1, 1.5, 1, 1)).toThrow(RangeError);
  });

  it('agrees with exact rational arithmetic on any small table (property)', () => {
    fc.assert(
      fc.property(fc.nat(40), fc.nat(60), fc.nat(40), fc.nat(300), (a, b, c, d) => {
        const p = fisherExactGreater(a, b, c, d);
        expect(p).toBeGreaterThanOrEqual(0);
        expect(p).toBeLessThanOrEqual(1);
        const exact = exactGreater(a, b, c, d);
        expect(Math.abs(p - exact)).toBeLessThanOrEqual(1e-10 * exact + 1e-15);
      }),
      { numRuns: 400 },
    );
  });

  it('agrees with jStat.hypgeom.cdf (Ferguson’s algorithm) where 1 − cdf is not rounded away (property)', () => {
    fc.assert(
      fc.property(fc.nat(400), fc.integer({ min: 1, max: 50_000 }), fc.nat(20_000), fc.integer({ min: 1, max: 2_000_000 }), (a, b, c, d) => {
        const N = a + b + c + d;
        const upper = 1 - jStat.hypgeom.cdf(a - 1, N, a + c, a + b);
        fc.pre(upper > 1e-6);
        expect(Math.abs(fisherExactGreater(a, b, c, d) - upper)).toBeLessThan(3e-8 * upper + 1e-12);
      }),
      { numRuns: 200 },
    );
  });

  it('never rises as the lot has more events, the rest unchanged (property)', () => {
    fc.assert(
      fc.property(fc.nat(200), fc.nat(5_000), fc.nat(2_000), fc.nat(500_000), (a, b, c, d) => {
        expect(fisherExactGreater(a + 1, b, c, d)).toBeLessThanOrEqual(fisherExactGreater(a, b, c, d) * (1 + 1e-12));
      }),
      { numRuns: 300 },
    );
  });
});
