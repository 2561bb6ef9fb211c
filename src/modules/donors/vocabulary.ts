/** Donor screening vocabularies (domain.md). */
export const SOURCE_TISSUES = [
  'bone-marrow',
  'adipose',
  'umbilical-cord',
  'umbilical-cord-blood',
  'placenta',
  'amniotic-fluid',
  'amniotic-membrane',
  'peripheral-blood',
  'other',
] as const;
export type SourceTissue = (typeof SOURCE_TISSUES)[number];

export const LEUKOCYTE_RICH: ReadonlySet<SourceTissue> = new Set(['bone-marrow', 'umbilical-cord-blood', 'peripheral-blood']);

export const MARKERS = [
  'hiv-1-2-ab',
  'hiv-1-nat',
  'hbsag',
  'anti-hbc',
  'hbv-nat',
  'anti-hcv',
  'hcv-nat',
  'syphilis',
  'wnv-nat',
  'htlv-1-2-ab',
  'cmv',
  'zika-nat',
] as const;
export type Marker = (typeof MARKERS)[number];

export const ALWAYS_REQUIRED: readonly Marker[] = ['hiv-1-2-ab', 'hiv-1-nat', 'hbsag', 'anti-hbc', 'hbv-nat', 'anti-hcv', 'hcv-nat', 'syphilis'];

export const TEST_METHODS = ['nat', 'serology'] as const;
export const TEST_RESULTS = ['non-reactive', 'reactive', 'indeterminate'] as const;
export type TestResult = (typeof TEST_RESULTS)[number];

export const ELIGIBILITY_STATUSES = ['pending', 'eligible', 'ineligible'] as const;
export type EligibilityStatus = (typeof ELIGIBILITY_STATUSES)[number];

export const DONOR_SEXES = ['female', 'male', 'other', 'unknown'] as const;
