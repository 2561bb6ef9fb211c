import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { patientBody, releasedLot } from '../support/fixtures.js';

/** HEAD changes nothing (RFC 9110 §9.2.1): on a route whose GET exports, it is refused; elsewhere it is the GET without a body. */
let t: TestApp;
let auditor: string;
let clinician: string;
let lotId: string;
let donorId: string;
let patientId: string;

beforeAll(async () => {
  t = await createTestApp();
  const supplier = await t.token({ scope: 'lots:read lots:write reports:read', clinic: null, sub: 'qa' });
  auditor = await t.token({ scope: 'reports:read clinical:read patients:read', clinic: null, sub: 'auditor' });
  clinician = await t.token({ scope: 'patients:read patients:write', clinic: 'clinic-a', sub: 'dr-a' });
  const released = await releasedLot(t.http, supplier);
  lotId = released.lot.id;
  donorId = released.donor.id;
  patientId = (await t.http.post('/v1/patients').set('authorization', `Bearer ${clinician}`).send(patientBody())).body.id;
});
afterAll(() => t.close());

const exportsAndJobs = async () => {
  const audit = await t.pool.query<{ n: number }>("select count(*)::int as n from audit_events where action = 'export'");
  const jobs = await t.pool.query<{ n: number }>('select count(*)::int as n from bulk_export_jobs');
  return { exports: audit.rows[0]!.n, jobs: jobs.rows[0]!.n };
};

describe('HEAD', () => {
  it('is refused with 405 and Allow: GET wherever GET exports, and exports nothing', async () => {
    const before = await exportsAndJobs();
    const routes: [string, Record<string, string>][] = [
      [`/v1/reports/lot-traceability/${lotId}`, {}],
      [`/v1/reports/lot-traceability/${lotId}`, { accept: 'text/csv' }],
      [`/v1/reports/lot-traceability/${lotId}`, { accept: 'application/pdf' }],
      [`/v1/reports/lot-traceability/${lotId}`, { accept: 'text/html' }],
      [`/v1/reports/donor-lookback/${donorId}`, {}],
      [`/v1/reports/patient-exposures/${patientId}`, {}],
      [`/v1/reports/lot-safety/${lotId}`, {}],
      ['/v1/reports/safety-signals', {}],
      ['/fhir/R4/$export?_type=Patient', { prefer: 'respond-async' }],
      ['/fhir/R4/Patient/$export', { prefer: 'respond-async' }],
      [`/fhir/R4/Group/${lotId}/$export`, { prefer: 'respond-async' }],
    ];
    for (const [path, headers] of routes) {
      const res = await t.http.head(path).set('authorization', `Bearer ${auditor}`).set(headers);
      expect(res.status, path).toBe(405);
      expect(res.headers.allow, path).toBe('GET');
    }
    expect(await exportsAndJobs()).toEqual(before);
    // GET still exports (the refusal is HEAD's alone).
    expect((await t.http.get(`/v1/reports/lot-traceability/${lotId}`).set('authorization', `Bearer ${auditor}`)).status).toBe(200);
    expect((await exportsAndJobs()).exports).toBe(before.exports + 1);
  });

  it('checks the token before refusing, and is the GET without a body elsewhere', async () => {
    expect((await t.http.head(`/v1/reports/lot-traceability/${lotId}`)).status).toBe(401);
    const get = await t.http.get(`/v1/patients/${patientId}`).set('authorization', `Bearer ${clinician}`);
    const head = await t.http.head(`/v1/patients/${patientId}`).set('authorization', `Bearer ${clinician}`);
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(get.headers['content-length']);
    expect(head.headers.etag).toBe(get.headers.etag);
    expect(head.text ?? '').toBe('');
  });
});
