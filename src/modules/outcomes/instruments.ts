/** Outcome instruments (domain.md, Outcomes). LOINC where listed; null: the service's own code system. */
export interface Instrument {
  min: number;
  max: number;
  better: 'lower' | 'higher';
  loinc: string | null;
  /** Minimal clinically important difference: absolute points, or a fraction of the baseline score. */
  mcid: { points: number } | { fractionOfBaseline: number } | null;
  unit: string;
  display: string;
}

export const INSTRUMENTS = {
  'nrs-pain': { min: 0, max: 10, better: 'lower', loinc: '72514-3', mcid: { points: 2 }, unit: '{score}', display: 'Pain severity 0-10 (NRS)' },
  'vas-pain': { min: 0, max: 100, better: 'lower', loinc: '38214-3', mcid: { points: 17.5 }, unit: 'mm', display: 'Pain severity VAS 0-100 mm' },
  womac: { min: 0, max: 96, better: 'lower', loinc: '72091-2', mcid: { fractionOfBaseline: 0.12 }, unit: '{score}', display: 'WOMAC total' },
  'womac-pain': { min: 0, max: 20, better: 'lower', loinc: null, mcid: null, unit: '{score}', display: 'WOMAC pain' },
  'womac-stiffness': { min: 0, max: 8, better: 'lower', loinc: null, mcid: null, unit: '{score}', display: 'WOMAC stiffness' },
  'womac-function': { min: 0, max: 68, better: 'lower', loinc: null, mcid: null, unit: '{score}', display: 'WOMAC physical function' },
  'koos-pain': { min: 0, max: 100, better: 'higher', loinc: null, mcid: null, unit: '{score}', display: 'KOOS pain' },
  'koos-symptoms': { min: 0, max: 100, better: 'higher', loinc: null, mcid: null, unit: '{score}', display: 'KOOS symptoms' },
  'koos-adl': { min: 0, max: 100, better: 'higher', loinc: null, mcid: null, unit: '{score}', display: 'KOOS activities of daily living' },
  'koos-sport': { min: 0, max: 100, better: 'higher', loinc: null, mcid: null, unit: '{score}', display: 'KOOS sport and recreation' },
  'koos-qol': { min: 0, max: 100, better: 'higher', loinc: null, mcid: { points: 8 }, unit: '{score}', display: 'KOOS quality of life' },
  'koos-jr': { min: 0, max: 100, better: 'higher', loinc: '82332-8', mcid: null, unit: '{score}', display: 'KOOS JR' },
  ikdc: { min: 0, max: 100, better: 'higher', loinc: null, mcid: { points: 12.2 }, unit: '{score}', display: 'IKDC subjective knee form' },
  quickdash: { min: 0, max: 100, better: 'lower', loinc: '71798-3', mcid: null, unit: '{score}', display: 'QuickDASH' },
  odi: { min: 0, max: 100, better: 'lower', loinc: '77544-1', mcid: { points: 8 }, unit: '%', display: 'Oswestry Disability Index' },
  'visa-a': { min: 0, max: 100, better: 'higher', loinc: null, mcid: null, unit: '{score}', display: 'VISA-A' },
  lefs: { min: 0, max: 80, better: 'higher', loinc: '74304-7', mcid: { points: 8.4 }, unit: '{score}', display: 'Lower Extremity Functional Scale' },
  'rom-flexion': { min: 0, max: 180, better: 'higher', loinc: null, mcid: null, unit: 'deg', display: 'Range of motion, flexion' },
} as const satisfies Record<string, Instrument>;
export type InstrumentCode = keyof typeof INSTRUMENTS;
export const INSTRUMENT_CODES = Object.keys(INSTRUMENTS) as [InstrumentCode, ...InstrumentCode[]];

/** Days after the procedure in which each timepoint belongs; `unscheduled` has none. */
export const TIMEPOINTS = {
  baseline: [-30, 0],
  'week-6': [35, 49],
  'month-3': [76, 104],
  'month-6': [150, 210],
  'month-12': [320, 410],
  unscheduled: null,
} as const satisfies Record<string, readonly [number, number] | null>;
export type Timepoint = keyof typeof TIMEPOINTS;
export const TIMEPOINT_CODES = Object.keys(TIMEPOINTS) as [Timepoint, ...Timepoint[]];

const DAY_MS = 86_400_000;

export function daysAfter(performedAt: Date, assessedAt: Date): number {
  return Math.floor((assessedAt.getTime() - performedAt.getTime()) / DAY_MS);
}

export function inWindow(timepoint: Timepoint, days: number): boolean | null {
  const w = TIMEPOINTS[timepoint];
  return w ? days >= w[0] && days <= w[1] : null;
}

export function changeFromBaseline(score: number, baseline: number | null): number | null {
  return baseline === null ? null : round(score - baseline);
}

/** Improvement from baseline at least the MCID, in the instrument's better direction; null when unknowable. */
export function isResponder(instrument: InstrumentCode, score: number, baseline: number | null): boolean | null {
  const info: Instrument = INSTRUMENTS[instrument];
  if (baseline === null || !info.mcid) return null;
  const improvement = info.better === 'lower' ? baseline - score : score - baseline;
  const threshold = 'points' in info.mcid ? info.mcid.points : info.mcid.fractionOfBaseline * baseline;
  return improvement >= threshold - 1e-9;
}

const round = (n: number) => Math.round(n * 1e6) / 1e6;
