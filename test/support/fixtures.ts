import { randomBytes } from 'node:crypto';

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
