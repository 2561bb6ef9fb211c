import { randomBytes } from 'node:crypto';
import { dinCheckCharacter } from '../../src/modules/donors/din.js';
import { ALWAYS_REQUIRED } from '../../src/modules/donors/vocabulary.js';
import type { TestApp } from './app.js';

export const uniq = () => randomBytes(4).toString('hex');

export function patientBody(overrides: Record<string, unknown> = {}) {
  return {
    mrn: `MRN-${uniq()}`,
    identifiers: [{ system: 'https://ehr.example-clinic.org/patient-id', value: `EHR-${uniq()}` }],
    givenName: 'Maria',
    familyName: 'Lopez',
    birthDate: '1961-04-17',
    sex: 'female',
    ...overrides,
  };
}

export function consentBody(overrides: Record<string, unknown> = {}) {
  return {
    kind: 'investigational-treatment',
    signedAt: '2026-10-01T09:00:00+02:00',
    documentVersion: 'ICF-EV-KNEE v3.1',
    irbProtocol: 'IRB-2026-0147',
    ...overrides,
  };
}


let dinSeq = Math.floor(Math.random() * 900_000);
/** A fresh, valid ISBT 128 DIN with its check character. */
export function newDin() {
  dinSeq = (dinSeq + 1) % 1_000_000;
  const din = `A9999${'26'}${String(dinSeq).padStart(6, '0')}`;
  return { din, dinCheckCharacter: dinCheckCharacter(din) };
}

export function donorBody(overrides: Record<string, unknown> = {}) {
  return { ...newDin(), sourceTissue: 'umbilical-cord', sex: 'female', ageAtDonationYears: 29, collectedOn: '2026-01-15', ...overrides };
}

export function lotBody(donorIds: string[], overrides: Record<string, unknown> = {}) {
  return {
    lotNumber: `EVX-${uniq()}`,
    manufacturer: 'Vesicle Biologics Inc.',
    productName: 'MSC-EV 2.5e11/mL',
    donorIds,
    isolationMethod: 'tangential-flow-filtration',
    characterization: {
      particlesPerMl: 250_000_000_000,
      meanSizeNm: 112,
      sizeMethod: 'nta',
      positiveMarkers: ['CD63', 'CD81', 'TSG101'],
      negativeMarkers: ['calnexin'],
    },
    releaseTests: { sterility: 'pass', mycoplasma: 'pass', endotoxinEuPerMl: 0.1 },
    manufacturedOn: '2026-02-01',
    expiresOn: '2028-02-01',
    storageTempC: -80,
    vialVolumeMl: 1,
    vialCount: 100,
    ...overrides,
  };
}

type Http = TestApp['http'];
const bearer = (token: string) => ['authorization', `Bearer ${token}`] as const;

export async function createDonor(http: Http, token: string, overrides: Record<string, unknown> = {}) {
  const res = await http.post('/v1/donors').set(...bearer(token)).send(donorBody(overrides));
  if (res.status !== 201) throw new Error(`donor: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; din: string; collectedOn: string; version: number };
}

/** A donor with every always-required marker non-reactive, determined eligible. */
export async function eligibleDonor(http: Http, token: string, overrides: Record<string, unknown> = {}, determinedAt = '2026-01-20T10:00:00Z') {
  const donor = await createDonor(http, token, overrides);
  for (const marker of ALWAYS_REQUIRED) {
    const t = await http
      .post(`/v1/donors/${donor.id}/tests`)
      .set(...bearer(token))
      .send({ marker, method: marker.endsWith('nat') ? 'nat' : 'serology', result: 'non-reactive', testedOn: '2026-01-14', laboratory: 'Central Lab' });
    if (t.status !== 201) throw new Error(`test: ${t.status} ${JSON.stringify(t.body)}`);
  }
  const e = await http.post(`/v1/donors/${donor.id}/eligibility`).set(...bearer(token)).send({ status: 'eligible', determinedBy: 'Dr. Director', determinedAt });
  if (e.status !== 201) throw new Error(`eligibility: ${e.status} ${JSON.stringify(e.body)}`);
  return donor;
}

export async function createLot(http: Http, token: string, donorIds: string[], overrides: Record<string, unknown> = {}) {
  const res = await http.post('/v1/lots').set(...bearer(token)).send(lotBody(donorIds, overrides));
  if (res.status !== 201) throw new Error(`lot: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; version: number; status: string; vialCount: number };
}

/** An eligible donor's lot, released at `releasedAt`. */
export async function releasedLot(http: Http, token: string, overrides: Record<string, unknown> = {}, releasedAt = '2026-03-01T09:00:00Z') {
  const donor = await eligibleDonor(http, token);
  const lot = await createLot(http, token, [donor.id], overrides);
  const res = await http.post(`/v1/lots/${lot.id}/release`).set(...bearer(token)).send({ releasedAt });
  if (res.status !== 200) throw new Error(`release: ${res.status} ${JSON.stringify(res.body)}`);
  return { donor, lot: res.body as { id: string; version: number; status: string; vialCount: number } };
}

/** A patient of `clinic` with consent signed 2026-02-15, and a released lot with `vials` shipped to the clinic. */
export async function clinicSetup(
  t: TestApp,
  opts: { clinic?: string; vials?: number; lot?: Record<string, unknown>; consentSignedAt?: string } = {},
) {
  const clinic = opts.clinic ?? 'clinic-a';
  const supplier = await t.token({ scope: 'lots:read lots:write', clinic: null, sub: 'qa-unit' });
  const clinician = await t.token({ scope: 'patients:read patients:write clinical:read clinical:write lots:read', clinic, sub: `dr-${clinic}` });
  const { lot, donor } = await releasedLot(t.http, supplier, opts.lot ?? {});
  const shipped = await t.http
    .post(`/v1/lots/${lot.id}/shipments`)
    .set('authorization', `Bearer ${supplier}`)
    .send({ clinicId: clinic, vials: opts.vials ?? 10, shippedAt: '2026-03-02T08:00:00Z' });
  if (shipped.status !== 201) throw new Error(`ship: ${JSON.stringify(shipped.body)}`);
  const patient = await t.http.post('/v1/patients').set('authorization', `Bearer ${clinician}`).send(patientBody());
  const consent = await t.http
    .post(`/v1/patients/${patient.body.id}/consents`)
    .set('authorization', `Bearer ${clinician}`)
    .send(consentBody({ signedAt: opts.consentSignedAt ?? '2026-02-15T09:00:00Z' }));
  if (consent.status !== 201) throw new Error(`consent: ${JSON.stringify(consent.body)}`);
  return { clinic, supplier, clinician, lot, donor, patientId: patient.body.id as string, consentId: consent.body.id as string };
}

/** A valid knee procedure body (2.5e9 particles = 0.01 mL × 2.5e11/mL). */
export function procedureBody(patientId: string, lotId: string, overrides: Record<string, unknown> = {}) {
  return {
    patientId,
    lotId,
    performedAt: '2026-03-10T09:30:00+01:00',
    performer: 'Dr. Rivera',
    indication: { system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'M17.11', display: 'Unilateral primary osteoarthritis, right knee' },
    route: 'intra-articular',
    site: { bodySite: 'knee-joint', laterality: 'right' },
    imagingGuidance: 'ultrasound',
    dose: { particles: 2_500_000_000, volumeMl: 0.01 },
    vialsUsed: 1,
    ...overrides,
  };
}
