import { RuleViolation } from '../../shared/errors.js';
import { BODY_SITES, DOSE_TOLERANCE, ROUTES, type BodySite, type ImagingGuidance, type Laterality, type Route } from './vocabulary.js';

/** The clinical rules of a procedure that need no database: route, site, laterality, guidance, dose. */
export interface ProcedureShape {
  route: Route;
  site?: { bodySite: BodySite; laterality?: Laterality };
  imagingGuidance: ImagingGuidance;
  dose: { particles: number; volumeMl: number };
  doseDeviationReason?: string;
}

export function checkRouteSiteGuidance(p: ProcedureShape): void {
  const route = ROUTES[p.route];
  if (route.siteRequired && !p.site) {
    throw new RuleViolation('site-required', `A ${p.route} procedure needs a site.`, [{ path: 'body.site', message: 'required for this route' }]);
  }
  if (!route.guidanceAllowed && p.imagingGuidance !== 'none') {
    throw new RuleViolation('imaging-guidance-not-allowed', `Imaging guidance does not apply to a ${p.route} procedure; use none.`, [
      { path: 'body.imagingGuidance', message: 'must be none for this route' },
    ]);
  }
  if (p.site) {
    const kind = BODY_SITES[p.site.bodySite].kind;
    if ((kind === 'joint' || kind === 'tendon') && !p.site.laterality) {
      throw new RuleViolation('laterality-required', `${p.site.bodySite} needs a laterality (left, right or bilateral).`, [
        { path: 'body.site.laterality', message: 'required for joints and tendons' },
      ]);
    }
    if ((kind === 'spine' || kind === 'surface') && p.site.laterality) {
      throw new RuleViolation('laterality-not-allowed', `${p.site.bodySite} has no laterality.`, [{ path: 'body.site.laterality', message: 'not allowed for this site' }]);
    }
  }
}

/** The dose must be within ±10 % of volumeMl × particlesPerMl of the lot, unless a reason is given. */
export function expectedParticles(volumeMl: number, particlesPerMl: number): number {
  return volumeMl * particlesPerMl;
}

export function checkDose(p: ProcedureShape, particlesPerMl: number): void {
  const expected = expectedParticles(p.dose.volumeMl, particlesPerMl);
  const deviation = Math.abs(p.dose.particles - expected) / expected;
  if (deviation > DOSE_TOLERANCE + 1e-12 && !p.doseDeviationReason) {
    throw new RuleViolation(
      'dose-out-of-tolerance',
      `The dose of ${p.dose.particles} particles is ${(deviation * 100).toFixed(1)} % from the ${expected.toExponential(3)} expected ` +
        `(${p.dose.volumeMl} mL × ${particlesPerMl} particles/mL); within ±10 % or give doseDeviationReason.`,
      [{ path: 'body.dose.particles', message: 'outside ±10 % of volumeMl × particlesPerMl' }],
    );
  }
}
