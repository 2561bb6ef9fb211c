import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RuleViolation } from '../../shared/errors.js';
import { checkTermAndTimes, expectednessOf, isReportOverdue, reportDueAt, reportWindowDays, type ClockFacts } from './rules.js';
import { AE_OUTCOMES, CTCAE_TERMS, RELATEDNESS, SERIOUSNESS_CRITERIA } from './vocabulary.js';

const DAY = 86_400_000;
const awareAt = new Date('2026-03-12T09:00:00Z');
/** A serious, unexpected, possibly related hospitalisation (grade 3): the 15-day case of 21 CFR 312.32(c)(1). */
const base: ClockFacts = {
  serious: true,
  expectedness: 'unexpected',
  relatedness: 'possible',
  severityGrade: 3,
  outcome: 'recovering',
  seriousnessCriteria: ['hospitalization'],
  awareAt,
};
const due = (f: Partial<ClockFacts>) => reportDueAt({ ...base, ...f })?.toISOString() ?? null;

describe('IND safety report clock (21 CFR 312.32(c))', () => {
  it('is 15 calendar days after awareness for a serious, unexpected suspected reaction', () => {
    expect(due({})).toBe('2026-03-27T09:00:00.000Z');
  });

  it('is 7 days when fatal or life-threatening, by grade, outcome or criterion', () => {
    const seven = '2026-03-19T09:00:00.000Z';
    expect(due({ severityGrade: 5, outcome: 'fatal', seriousnessCriteria: ['death'] })).toBe(seven);
    expect(due({ severityGrade: 4 })).toBe(seven);
    expect(due({ seriousnessCriteria: ['life-threatening'] })).toBe(seven);
    expect(due({ seriousnessCriteria: ['death', 'hospitalization'] })).toBe(seven);
    expect(due({ outcome: 'fatal' })).toBe(seven);
  });

  it('does not apply to an expected, a non-serious, or an unlikely / not-related event', () => {
    expect(due({ expectedness: 'expected' })).toBeNull();
    expect(due({ serious: false, seriousnessCriteria: [] })).toBeNull();
    expect(due({ relatedness: 'unlikely' })).toBeNull();
    expect(due({ relatedness: 'not-related' })).toBeNull();
    // Conditional and unassessable causality still leave a reasonable possibility: the clock runs.
    expect(due({ relatedness: 'conditional' })).toBe('2026-03-27T09:00:00.000Z');
    expect(due({ relatedness: 'unassessable' })).toBe('2026-03-27T09:00:00.000Z');
  });

  it('counts from awareness, not onset (24-hour days, across a daylight-saving change)', () => {
    expect(due({ awareAt: new Date('2026-03-20T23:30:00-04:00') })).toBe('2026-04-05T03:30:00.000Z');
  });

  const facts = fc.record({
    serious: fc.boolean(),
    expectedness: fc.constantFrom('expected' as const, 'unexpected' as const),
    relatedness: fc.constantFrom(...RELATEDNESS),
    severityGrade: fc.integer({ min: 1, max: 5 }),
    outcome: fc.constantFrom(...AE_OUTCOMES),
    seriousnessCriteria: fc.subarray([...SERIOUSNESS_CRITERIA]),
    awareAt: fc.date({ min: new Date('1900-01-01T00:00:00Z'), max: new Date('9999-12-01T00:00:00Z'), noInvalidDate: true }),
  });

  it('property: a clock exists exactly for serious, unexpected, suspected events, and is 7 or 15 whole days after awareness', () => {
    fc.assert(
      fc.property(facts, (f) => {
        const at = reportDueAt(f);
        const applies = f.serious && f.expectedness === 'unexpected' && f.relatedness !== 'unlikely' && f.relatedness !== 'not-related';
        expect(at !== null).toBe(applies);
        if (at) {
          const days = (at.getTime() - f.awareAt.getTime()) / DAY;
          const grave = f.severityGrade >= 4 || f.outcome === 'fatal' || f.seriousnessCriteria.includes('death') || f.seriousnessCriteria.includes('life-threatening');
          expect(days).toBe(grave ? 7 : 15);
          expect(reportWindowDays(f)).toBe(days);
        }
      }),
    );
  });

  it('property: a graver event is never due later, and later awareness never makes it due earlier', () => {
    fc.assert(
      fc.property(facts, fc.integer({ min: 0, max: 365 * DAY }), (f, shift) => {
        const at = reportDueAt(f);
        const graver = reportDueAt({ ...f, severityGrade: 5, outcome: 'fatal' });
        if (at) expect(graver!.getTime()).toBeLessThanOrEqual(at.getTime());
        const later = reportDueAt({ ...f, awareAt: new Date(f.awareAt.getTime() + shift) });
        if (at) expect(later!.getTime() - at.getTime()).toBe(shift);
      }),
    );
  });
});

describe('expectedness', () => {
  it('is expected exactly when the term is on the product list', () => {
    expect(expectednessOf('Joint effusion', ['Injection site reaction', 'Joint effusion'])).toBe('expected');
    expect(expectednessOf('Sepsis', ['Injection site reaction', 'Joint effusion'])).toBe('unexpected');
    expect(expectednessOf(null, ['Injection site reaction'])).toBe('unexpected');
    expect(expectednessOf('Joint effusion', [])).toBe('unexpected');
  });

  it('property: membership, nothing else', () => {
    fc.assert(
      fc.property(fc.option(fc.constantFrom(...CTCAE_TERMS), { nil: null }), fc.subarray([...CTCAE_TERMS]), (term, list) => {
        expect(expectednessOf(term, list) === 'expected').toBe(term !== null && list.includes(term));
      }),
    );
  });
});

describe('overdue', () => {
  const dueAt = new Date('2026-03-27T09:00:00Z');
  it('is true when unreported past the due time, or reported after it; never without a clock', () => {
    expect(isReportOverdue({ reportDueAt: dueAt, reportedAt: null }, new Date('2026-03-27T09:00:00Z'))).toBe(false);
    expect(isReportOverdue({ reportDueAt: dueAt, reportedAt: null }, new Date('2026-03-27T09:00:00.001Z'))).toBe(true);
    expect(isReportOverdue({ reportDueAt: dueAt, reportedAt: new Date('2026-03-20T00:00:00Z') }, new Date('2027-01-01T00:00:00Z'))).toBe(false);
    expect(isReportOverdue({ reportDueAt: dueAt, reportedAt: new Date('2026-03-28T00:00:00Z') }, new Date('2026-03-28T00:00:00Z'))).toBe(true);
    expect(isReportOverdue({ reportDueAt: null, reportedAt: null }, new Date('2099-01-01T00:00:00Z'))).toBe(false);
  });
});

describe('term and times', () => {
  const ok = { term: 'Joint effusion', description: 'Knee effusion', onsetAt: new Date('2026-03-11T08:00:00Z'), awareAt: new Date('2026-03-12T08:00:00Z'), reportedAt: null };
  const codeOf = (f: () => void) => {
    try {
      f();
      return null;
    } catch (e) {
      return e instanceof RuleViolation ? e.code : 'other';
    }
  };
  it('refuses awareness before onset or after the report, and "Other, specify" with a description that says nothing', () => {
    expect(codeOf(() => checkTermAndTimes(ok))).toBeNull();
    expect(codeOf(() => checkTermAndTimes({ ...ok, awareAt: new Date('2026-03-11T07:59:59Z') }))).toBe('aware-before-onset');
    expect(codeOf(() => checkTermAndTimes({ ...ok, reportedAt: new Date('2026-03-12T07:00:00Z') }))).toBe('aware-after-report');
    expect(codeOf(() => checkTermAndTimes({ ...ok, term: 'Other, specify', description: 'Other, specify' }))).toBe('other-term-unspecified');
    expect(codeOf(() => checkTermAndTimes({ ...ok, term: 'Other, specify', description: ' other ' }))).toBe('other-term-unspecified');
    expect(codeOf(() => checkTermAndTimes({ ...ok, term: 'Other, specify', description: 'Transient metallic taste' }))).toBeNull();
  });
});
