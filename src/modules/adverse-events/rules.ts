import { RuleViolation } from '../../shared/errors.js';
import { OTHER_TERM, type Expectedness } from './vocabulary.js';

export interface AdverseEventState {
  onsetAt: Date;
  severityGrade: number;
  serious: boolean;
  seriousnessCriteria: string[];
  outcome: string;
}

/** Consistency of an adverse event, on create and after every follow-up. */
export function checkAdverseEvent(ae: AdverseEventState, performedAt: Date): void {
  if (!Number.isInteger(ae.severityGrade) || ae.severityGrade < 1 || ae.severityGrade > 5) {
    throw new RuleViolation('grade-out-of-range', 'severityGrade is a CTCAE grade, 1 (mild) to 5 (death).', [{ path: 'body.severityGrade', message: 'outside 1..5' }]);
  }
  if (ae.serious !== ae.seriousnessCriteria.length > 0) {
    throw new RuleViolation(
      'seriousness-inconsistent',
      'An adverse event is serious exactly when at least one ICH E2A seriousness criterion holds: set serious and seriousnessCriteria together.',
      [{ path: 'body.seriousnessCriteria', message: ae.serious ? 'serious needs a criterion' : 'criteria given but serious is false' }],
    );
  }
  if (ae.severityGrade === 5 && ae.outcome !== 'fatal') {
    throw new RuleViolation('grade-5-requires-fatal', 'A grade 5 event (death) has the outcome fatal.', [{ path: 'body.outcome', message: 'must be fatal for grade 5' }]);
  }
  if (ae.onsetAt < performedAt) {
    throw new RuleViolation('onset-before-procedure', 'The onset cannot be before the procedure was performed.', [{ path: 'body.onsetAt', message: 'before the procedure' }]);
  }
}

/** Relatedness that rules out a *suspected* adverse reaction (21 CFR 312.32(a): a reasonable possibility of causation). */
export const NOT_SUSPECTED: readonly string[] = ['unlikely', 'not-related'];

/** 21 CFR 312.32(c)(1): 15 calendar days; (c)(2): 7 for an unexpected fatal or life-threatening suspected reaction. */
export const REPORT_DAYS = 15;
export const REPORT_DAYS_FATAL_OR_LIFE_THREATENING = 7;
const DAY_MS = 86_400_000;

/** What the reporting clock is judged on. */
export interface ClockFacts {
  serious: boolean;
  expectedness: Expectedness;
  relatedness: string;
  severityGrade: number;
  outcome: string;
  seriousnessCriteria: readonly string[];
  awareAt: Date;
}

/**
 * Expectedness (21 CFR 312.32(a), judged against the investigator brochure's list): `expected` exactly when the
 * event has a term and that term is on its lot's product's reference list; no term, or another term, `unexpected`.
 */
export function expectednessOf(term: string | null | undefined, expectedTerms: readonly string[]): Expectedness {
  return term != null && expectedTerms.includes(term) ? 'expected' : 'unexpected';
}

/** Fatal or life-threatening: CTCAE grade 4 or 5, outcome fatal, or the ICH E2A criterion death or life-threatening. */
export function isFatalOrLifeThreatening(ae: Pick<ClockFacts, 'severityGrade' | 'outcome' | 'seriousnessCriteria'>): boolean {
  return ae.severityGrade >= 4 || ae.outcome === 'fatal' || ae.seriousnessCriteria.includes('death') || ae.seriousnessCriteria.includes('life-threatening');
}

/**
 * The IND safety report window in calendar days (21 CFR 312.32(c)), or null when no report is due: the clock
 * applies to a serious, unexpected event whose relatedness is not `unlikely` or `not-related` (a suspected
 * adverse reaction); 7 days when it is fatal or life-threatening, else 15.
 */
export function reportWindowDays(ae: Omit<ClockFacts, 'awareAt'>): number | null {
  if (!ae.serious || ae.expectedness !== 'unexpected' || NOT_SUSPECTED.includes(ae.relatedness)) return null;
  return isFatalOrLifeThreatening(ae) ? REPORT_DAYS_FATAL_OR_LIFE_THREATENING : REPORT_DAYS;
}

/**
 * When the IND safety report is due: `awareAt` plus the window, counted as whole 24-hour days from the instant of
 * awareness (the service knows no sponsor time zone, so it never ends a day later than a local calendar count
 * would); null when no clock applies. The migration 0021 backfill writes the same rule in SQL.
 */
export function reportDueAt(ae: ClockFacts): Date | null {
  const days = reportWindowDays(ae);
  return days === null ? null : new Date(ae.awareAt.getTime() + days * DAY_MS);
}

/** Overdue: a report was due and is still missing after its due time, or was submitted after it. */
export function isReportOverdue(ae: { reportDueAt: Date | null; reportedAt: Date | null }, now: Date): boolean {
  if (ae.reportDueAt === null) return false;
  return (ae.reportedAt ?? now).getTime() > ae.reportDueAt.getTime();
}

/** The facts about a term and the times of awareness and report that an event must keep consistent. */
export interface TermAndTimes {
  term: string | null;
  description: string;
  onsetAt: Date;
  awareAt: Date;
  reportedAt: Date | null;
}

/** `Other, specify` needs a description that says what; awareness is not before the onset, nor after a report. */
export function checkTermAndTimes(ae: TermAndTimes): void {
  if (ae.term === OTHER_TERM && /^\s*other(\s*,\s*specify)?\s*[.:]?\s*$/i.test(ae.description)) {
    throw new RuleViolation('other-term-unspecified', 'With the term "Other, specify" the description says what the event was.', [
      { path: 'body.description', message: 'does not say what the event was' },
    ]);
  }
  if (ae.awareAt < ae.onsetAt) {
    throw new RuleViolation('aware-before-onset', 'awareAt (when the sponsor learned of the event) cannot be before its onset.', [{ path: 'body.awareAt', message: 'before onsetAt' }]);
  }
  if (ae.reportedAt !== null && ae.awareAt > ae.reportedAt) {
    throw new RuleViolation('aware-after-report', 'awareAt cannot be after the safety report was submitted.', [{ path: 'body.awareAt', message: 'after reportedAt' }]);
  }
}
