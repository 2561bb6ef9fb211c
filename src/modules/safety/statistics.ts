import { createRequire } from 'node:module';

/**
 * The statistics of the lot safety report: an exact binomial interval and Fisher's exact test, one-sided.
 * Distributions come from jStat (beta quantiles, log-gamma); the hypergeometric tail is summed here in log space
 * because jStat's `hypgeom.cdf` answers the upper tail as `1 - cdf`, which rounds every p below ~1e-16 to 0 and
 * so cannot rank strong signals (statistics.test.ts checks both against exact rational arithmetic and SciPy).
 */
interface JStat {
  beta: { inv(p: number, alpha: number, beta: number): number };
  combinationln(n: number, k: number): number;
}
const { jStat } = createRequire(import.meta.url)('jstat') as { jStat: JStat };

export interface Interval {
  /** x / n; null when n = 0 (no procedures: no rate). */
  value: number | null;
  lower: number | null;
  upper: number | null;
}

/**
 * The Clopper–Pearson ("exact") interval for a binomial proportion x/n (Clopper & Pearson 1934; method 5 of
 * Newcombe 1998, Stat Med 17:857): lower = Beta⁻¹(α/2; x, n−x+1), upper = Beta⁻¹(1−α/2; x+1, n−x), with
 * α = 1 − confidence; x = 0 gives lower 0 and x = n upper 1. n = 0 gives nulls (no rate). Throws RangeError
 * unless 0 ≤ x ≤ n are whole numbers and 0 < confidence < 1.
 */
export function clopperPearson(x: number, n: number, confidence = 0.95): Interval {
  if (!Number.isInteger(x) || !Number.isInteger(n) || x < 0 || x > n) throw new RangeError(`clopperPearson: need whole 0 <= x <= n, got ${x}/${n}`);
  if (!(confidence > 0 && confidence < 1)) throw new RangeError(`clopperPearson: confidence must lie in (0, 1), got ${confidence}`);
  if (n === 0) return { value: null, lower: null, upper: null };
  const alpha = 1 - confidence;
  const lower = x === 0 ? 0 : jStat.beta.inv(alpha / 2, x, n - x + 1);
  const upper = x === n ? 1 : jStat.beta.inv(1 - alpha / 2, x + 1, n - x);
  // The quantile iteration stops at a relative 1e-8: never let that put the estimate outside its own interval.
  return { value: x / n, lower: Math.min(lower, x / n), upper: Math.max(upper, x / n) };
}

/**
 * Fisher's exact test, one-sided "greater" (Fisher 1935; R's `fisher.test(alternative = "greater")`), for the
 * 2×2 table
 *
 *             event   no event
 *   lot         a        b
 *   pool        c        d
 *
 * the probability, with the margins fixed, of a table at least as extreme in the lot's direction: P(X ≥ a) for
 * X ~ Hypergeometric(N = a+b+c+d, K = a+c events, n = a+b drawn), for any size (millions of procedures): the
 * first term from jStat's log-binomials, the rest by the ratio of successive terms, summed in log space from the side
 * of the mode where they fall away. Relative error about 1e-8 at N ≈ 2e6 (the log-gamma of such arguments is ~3e7,
 * carried by a double to ~1e-8 absolute), far smaller for small tables; p-values of 1e-85 come out, not 0.
 * Throws RangeError unless all four are whole numbers ≥ 0.
 */
export function fisherExactGreater(a: number, b: number, c: number, d: number): number {
  for (const v of [a, b, c, d]) if (!Number.isInteger(v) || v < 0) throw new RangeError(`fisherExactGreater: counts must be whole numbers >= 0, got ${[a, b, c, d].join(', ')}`);
  const N = a + b + c + d;
  const K = a + c;
  const n = a + b;
  const lo = Math.max(0, n + K - N);
  const hi = Math.min(n, K);
  if (a <= lo) return 1;
  const logPmf = (k: number) => jStat.combinationln(K, k) + jStat.combinationln(N - K, n - k) - jStat.combinationln(N, n);
  // log of pmf(k+1) / pmf(k)
  const logRatioUp = (k: number) => Math.log(K - k) + Math.log(n - k) - Math.log(k + 1) - Math.log(N - K - n + k + 1);
  const mode = Math.floor(((n + 1) * (K + 1)) / (N + 2));
  if (a > mode) {
    // Terms fall from a upwards: P(X >= a) = pmf(a) · Σ pmf(k)/pmf(a).
    return Math.min(1, Math.exp(logPmf(a) + Math.log(sumFalling(a, hi, (k) => logRatioUp(k), 1))));
  }
  // a at or below the mode: the upper tail is the bulk; 1 − P(X <= a−1), the lower tail summed downwards.
  const lower = Math.exp(logPmf(a - 1) + Math.log(sumFalling(a - 1, lo, (k) => -logRatioUp(k - 1), -1)));
  return Math.min(1, Math.max(0, 1 - lower));
}

/** Σ of pmf(k)/pmf(from) for k from `from` to `to` (step ±1), while the terms still count against the sum. */
function sumFalling(from: number, to: number, logRatio: (k: number) => number, step: 1 | -1): number {
  let sum = 1;
  let logTerm = 0;
  for (let k = from; k !== to; k += step) {
    logTerm += logRatio(k);
    const term = Math.exp(logTerm);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}
