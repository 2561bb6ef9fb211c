import { describe, expect, it } from 'vitest';
import { tInterval } from './interval.js';

describe('tInterval', () => {
  it('matches a published t quantile: t(0.975, 9) = 2.262 (any t table), so n = 10, sd = 1 gives ± 0.7154', () => {
    const i = tInterval(10, 5, 1)!;
    expect(i.upper - 5).toBeCloseTo(2.262157 / Math.sqrt(10), 5);
    expect(i.lower).toBeCloseTo(5 - 0.715357, 5);
  });

  it('widens as the sample shrinks and narrows to the normal z for large n (1.96 at 95 %)', () => {
    expect(tInterval(3, 0, 1)!.upper).toBeCloseTo(4.302653 / Math.sqrt(3), 5);
    expect(tInterval(100_000, 0, 1)!.upper * Math.sqrt(100_000)).toBeCloseTo(1.96, 2);
  });

  it('gives no interval below two values or without a standard deviation', () => {
    expect(tInterval(1, 3, null)).toBeNull();
    expect(tInterval(5, 3, null)).toBeNull();
  });
});
