export const ISOLATION_METHODS = [
  'ultracentrifugation',
  'density-gradient',
  'size-exclusion-chromatography',
  'ultrafiltration',
  'tangential-flow-filtration',
  'precipitation',
  'immunoaffinity',
  'microfluidic',
] as const;

export const SIZE_METHODS = ['nta', 'trps', 'nano-flow-cytometry', 'dls'] as const;
export const RELEASE_TEST_RESULTS = ['pass', 'fail', 'pending'] as const;
export const LOT_STATUSES = ['quarantine', 'released', 'recalled'] as const;
export type LotStatus = (typeof LOT_STATUSES)[number];

/** At least one tetraspanin must be shown present for release (MISEV2018/2023). */
export const RELEASE_MARKERS = ['CD9', 'CD63', 'CD81'] as const;
