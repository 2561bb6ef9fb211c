/** CTCAE v5 grades, ICH E2A seriousness, WHO-UMC causality (domain.md, Adverse events). */
export const SERIOUSNESS_CRITERIA = ['death', 'life-threatening', 'hospitalization', 'disability', 'congenital-anomaly', 'important-medical-event'] as const;
export const RELATEDNESS = ['certain', 'probable', 'possible', 'unlikely', 'conditional', 'unassessable', 'not-related'] as const;
export const AE_OUTCOMES = ['resolved', 'recovering', 'ongoing', 'resolved-with-sequelae', 'fatal', 'unknown'] as const;
export const GRADE_NAMES = { 1: 'mild', 2: 'moderate', 3: 'severe', 4: 'life-threatening', 5: 'death' } as const;
