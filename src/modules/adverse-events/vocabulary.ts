/** CTCAE v5 grades, ICH E2A seriousness, WHO-UMC causality (domain.md, Adverse events). */
export const SERIOUSNESS_CRITERIA = ['death', 'life-threatening', 'hospitalization', 'disability', 'congenital-anomaly', 'important-medical-event'] as const;
export const RELATEDNESS = ['certain', 'probable', 'possible', 'unlikely', 'conditional', 'unassessable', 'not-related'] as const;
export const AE_OUTCOMES = ['resolved', 'recovering', 'ongoing', 'resolved-with-sequelae', 'fatal', 'unknown'] as const;
export const GRADE_NAMES = { 1: 'mild', 2: 'moderate', 3: 'severe', 4: 'life-threatening', 5: 'death' } as const;

/**
 * CTCAE v5 term names this therapy meets (domain.md, Adverse events), exactly as CTCAE spells them; `Other, specify`
 * is CTCAE's own catch-all, whose description says what happened.
 */
export const CTCAE_TERMS = [
  'Injection site reaction',
  'Joint effusion',
  'Arthralgia',
  'Fever',
  'Chills',
  'Fatigue',
  'Headache',
  'Allergic reaction',
  'Anaphylaxis',
  'Infusion related reaction',
  'Joint infection',
  'Skin infection',
  'Sepsis',
  'Rash maculo-papular',
  'Urticaria',
  'Nausea',
  'Dizziness',
  'Syncope',
  'Hypotension',
  'Epistaxis',
  'Sinusitis',
  'Other, specify',
] as const;
export type CtcaeTerm = (typeof CTCAE_TERMS)[number];
export const OTHER_TERM = 'Other, specify' satisfies CtcaeTerm;
export const EXPECTEDNESS = ['expected', 'unexpected'] as const;
export type Expectedness = (typeof EXPECTEDNESS)[number];
