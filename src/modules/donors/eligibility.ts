import { ALWAYS_REQUIRED, LEUKOCYTE_RICH, type Marker, type SourceTissue, type TestResult } from './vocabulary.js';

/**
 * Whether a donor may be determined eligible, from its screening tests (21 CFR 1271.80/.85 as domain.md
 * states them). Pure: the service loads the donor and its tests and asks.
 */
export interface ScreeningTest {
  marker: Marker;
  result: TestResult;
  testedOn: string; // YYYY-MM-DD
}

export interface DonorFacts {
  sourceTissue: SourceTissue;
  collectedOn: string; // YYYY-MM-DD
}

const DAY_MS = 86_400_000;
const days = (from: string, to: string) => Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / DAY_MS);

export function requiredMarkers(d: DonorFacts): Marker[] {
  const required = [...ALWAYS_REQUIRED];
  const monthDay = d.collectedOn.slice(5);
  if (monthDay >= '06-01' && monthDay <= '10-31') required.push('wnv-nat');
  if (LEUKOCYTE_RICH.has(d.sourceTissue)) required.push('htlv-1-2-ab', 'cmv');
  return required;
}

/** A specimen counts when tested within 7 days of collection (from 30 days before, for bone marrow). */
export function inSpecimenWindow(d: DonorFacts, testedOn: string): boolean {
  const offset = days(d.collectedOn, testedOn);
  const earliest = d.sourceTissue === 'bone-marrow' ? -30 : -7;
  return offset >= earliest && offset <= 7;
}

export interface EligibilityAssessment {
  eligible: boolean;
  /** Required markers with no non-reactive result in the specimen window (tested by `asOf`). */
  missing: Marker[];
  /** Markers with a reactive or indeterminate result, whenever tested. */
  failing: { marker: Marker; result: TestResult; testedOn: string }[];
}

export function assessEligibility(d: DonorFacts, tests: ScreeningTest[], asOf: string): EligibilityAssessment {
  const failing = tests
    .filter((t) => t.result !== 'non-reactive')
    .map((t) => ({ marker: t.marker, result: t.result, testedOn: t.testedOn }));
  const covered = new Set(
    tests.filter((t) => t.result === 'non-reactive' && t.testedOn <= asOf && inSpecimenWindow(d, t.testedOn)).map((t) => t.marker),
  );
  const missing = requiredMarkers(d).filter((m) => !covered.has(m));
  return { eligible: missing.length === 0 && failing.length === 0, missing, failing };
}

export function describeAssessment(a: EligibilityAssessment): string {
  const parts: string[] = [];
  if (a.missing.length) parts.push(`missing a non-reactive result within the specimen window for: ${a.missing.join(', ')}`);
  if (a.failing.length) parts.push(`reactive or indeterminate: ${a.failing.map((f) => `${f.marker} (${f.result}, ${f.testedOn})`).join(', ')}`);
  return `The donor cannot be determined eligible: ${parts.join('; ')}.`;
}
