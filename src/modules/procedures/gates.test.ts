import { describe, expect, it } from 'vitest';
import { checkDose, checkRouteSiteGuidance, type ProcedureShape } from './gates.js';

const knee: ProcedureShape = {
  route: 'intra-articular',
  site: { bodySite: 'knee-joint', laterality: 'right' },
  imagingGuidance: 'ultrasound',
  dose: { particles: 2_500_000_000, volumeMl: 0.01 },
};
const code = (f: () => void) => {
  try {
    f();
    return null;
  } catch (e) {
    return (e as { code: string }).code;
  }
};

describe('route, site and guidance', () => {
  it('accepts an ultrasound-guided right knee injection', () => expect(code(() => checkRouteSiteGuidance(knee))).toBeNull());
  it('needs a site for every route but intravenous and intranasal', () => {
    expect(code(() => checkRouteSiteGuidance({ ...knee, site: undefined }))).toBe('site-required');
    expect(code(() => checkRouteSiteGuidance({ ...knee, route: 'topical', site: undefined, imagingGuidance: 'none' }))).toBe('site-required');
    expect(code(() => checkRouteSiteGuidance({ ...knee, route: 'intravenous', site: undefined, imagingGuidance: 'none' }))).toBeNull();
    expect(code(() => checkRouteSiteGuidance({ ...knee, route: 'intranasal', site: undefined, imagingGuidance: 'none' }))).toBeNull();
  });
  it('refuses imaging guidance for intravenous, intranasal and topical', () => {
    for (const route of ['intravenous', 'intranasal', 'topical'] as const) {
      expect(code(() => checkRouteSiteGuidance({ ...knee, route, site: { bodySite: 'face' } }))).toBe('imaging-guidance-not-allowed');
    }
  });
  it('needs laterality for joints and tendons and refuses it for spine, scalp and face', () => {
    expect(code(() => checkRouteSiteGuidance({ ...knee, site: { bodySite: 'achilles-tendon' } }))).toBe('laterality-required');
    expect(code(() => checkRouteSiteGuidance({ ...knee, route: 'epidural', site: { bodySite: 'lumbar-spine', laterality: 'left' } }))).toBe('laterality-not-allowed');
    expect(code(() => checkRouteSiteGuidance({ ...knee, route: 'intradermal', site: { bodySite: 'scalp' } }))).toBeNull();
  });
});

describe('dose tolerance', () => {
  const perMl = 2.5e11;
  it('accepts exactly ±10 % and refuses beyond, unless a reason is given', () => {
    expect(code(() => checkDose({ ...knee, dose: { particles: 2_750_000_000, volumeMl: 0.01 } }, perMl))).toBeNull();
    expect(code(() => checkDose({ ...knee, dose: { particles: 2_250_000_000, volumeMl: 0.01 } }, perMl))).toBeNull();
    expect(code(() => checkDose({ ...knee, dose: { particles: 2_760_000_000, volumeMl: 0.01 } }, perMl))).toBe('dose-out-of-tolerance');
    expect(code(() => checkDose({ ...knee, dose: { particles: 2_760_000_000, volumeMl: 0.01 }, doseDeviationReason: 'Partial vial drawn' }, perMl))).toBeNull();
  });
  it('handles doses beyond 2^31 (1.5e10 particles)', () => {
    expect(code(() => checkDose({ ...knee, dose: { particles: 15_000_000_000, volumeMl: 0.06 } }, perMl))).toBeNull();
  });
});
