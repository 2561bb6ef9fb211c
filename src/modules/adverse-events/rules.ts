import { RuleViolation } from '../../shared/errors.js';

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
