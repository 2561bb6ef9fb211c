import { createRequire } from 'node:module';

/** jStat (a well-kept statistics library, CommonJS, no bundled types): only the Student t quantile is used here. */
const { jStat } = createRequire(import.meta.url)('jstat') as { jStat: { studentt: { inv(p: number, dof: number): number } } };

export interface MeanInterval {
  mean: number;
  lower: number;
  upper: number;
}

/**
 * The two-sided t-interval of a mean from a sample's size, mean and sample standard deviation:
 * mean ± t(1 − α/2, n − 1) · sd / √n (e.g. Altman et al., Statistics with Confidence, 2nd ed., ch. 4).
 * Null when there is no interval to give: fewer than two values, or no standard deviation.
 */
export function tInterval(n: number, mean: number, sd: number | null, confidence = 0.95): MeanInterval | null {
  if (n < 2 || sd === null || !Number.isFinite(sd)) return null;
  const half = jStat.studentt.inv(1 - (1 - confidence) / 2, n - 1) * (sd / Math.sqrt(n));
  return { mean, lower: mean - half, upper: mean + half };
}
