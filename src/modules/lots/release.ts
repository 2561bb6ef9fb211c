import type { FieldError } from '../../shared/errors.js';
import type { Characterization, ReleaseTests } from './lots.table.js';
import { RELEASE_MARKERS } from './vocabulary.js';

/** Everything a lot needs to be released at `at` (domain.md, Lots). Pure: returns every unmet criterion. */
export interface ReleaseFacts {
  characterization: Characterization | null;
  releaseTests: ReleaseTests;
  manufacturedOn: string;
  expiresOn: string;
  /** Each donor's eligibility status in force at `at`; undefined when none was determined by then. */
  donorStatuses: { donorId: string; status: string | undefined }[];
}

export function unmetReleaseCriteria(f: ReleaseFacts, at: Date, endotoxinLimit: number): FieldError[] {
  const unmet: FieldError[] = [];
  const day = at.toISOString().slice(0, 10);
  for (const d of f.donorStatuses) {
    if (d.status !== 'eligible') {
      unmet.push({ path: `donors.${d.donorId}`, message: d.status ? `donor is ${d.status}` : 'donor has no eligibility determination by then' });
    }
  }
  if (f.releaseTests.sterility !== 'pass') unmet.push({ path: 'releaseTests.sterility', message: `sterility is ${f.releaseTests.sterility}, not pass` });
  if (f.releaseTests.mycoplasma !== 'pass') unmet.push({ path: 'releaseTests.mycoplasma', message: `mycoplasma is ${f.releaseTests.mycoplasma}, not pass` });
  const endotoxin = f.releaseTests.endotoxinEuPerMl;
  if (endotoxin === null) unmet.push({ path: 'releaseTests.endotoxinEuPerMl', message: 'no endotoxin result' });
  else if (endotoxin > endotoxinLimit) unmet.push({ path: 'releaseTests.endotoxinEuPerMl', message: `${endotoxin} EU/mL exceeds the limit of ${endotoxinLimit} EU/mL` });
  if (!f.characterization) {
    unmet.push({ path: 'characterization', message: 'no characterization' });
  } else {
    if (!(f.characterization.particlesPerMl > 0)) unmet.push({ path: 'characterization.particlesPerMl', message: 'no particle concentration' });
    const present = new Set(f.characterization.positiveMarkers.map((m) => m.toUpperCase()));
    if (!RELEASE_MARKERS.some((m) => present.has(m))) {
      unmet.push({ path: 'characterization.positiveMarkers', message: `none of ${RELEASE_MARKERS.join(', ')} shown present` });
    }
  }
  if (day > f.expiresOn) unmet.push({ path: 'expiresOn', message: `expired on ${f.expiresOn}` });
  if (day < f.manufacturedOn) unmet.push({ path: 'manufacturedOn', message: 'release cannot precede manufacture' });
  return unmet;
}
