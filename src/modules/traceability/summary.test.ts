import { describe, expect, it } from 'vitest';
import { summarizeOutcomes } from './traceability.service.js';

describe('summarizeOutcomes', () => {
  it('weighs each counted group of scores by its count', () => {
    const summary = summarizeOutcomes([
      { instrument: 'nrs-pain', timepoint: 'week-6', score: 3, baseline: 6, n: 3 }, // improved by 3: responders
      { instrument: 'nrs-pain', timepoint: 'week-6', score: 6, baseline: 6, n: 1 }, // unchanged
      { instrument: 'nrs-pain', timepoint: 'week-6', score: 5, baseline: null, n: 2 }, // no baseline: counted, not assessable
      { instrument: 'womac-pain', timepoint: 'week-6', score: 8, baseline: 10, n: 5 }, // no MCID: no responder rate
    ]);
    expect(summary).toEqual([
      { instrument: 'nrs-pain', timepoint: 'week-6', n: 6, withBaseline: 4, meanChangeFromBaseline: -2.25, responderRate: 0.75 },
      { instrument: 'womac-pain', timepoint: 'week-6', n: 5, withBaseline: 5, meanChangeFromBaseline: -2, responderRate: null },
    ]);
  });
});
