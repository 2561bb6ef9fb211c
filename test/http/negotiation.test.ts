import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { clinicSetup, patientBody, procedureBody } from '../support/fixtures.js';

let t: TestApp;
let inspector: string;
let setup: Awaited<ReturnType<typeof clinicSetup>>;
let reports: string[];

beforeAll(async () => {
  t = await createTestApp();
  setup = await clinicSetup(t);
  inspector = await t.token({ scope: 'reports:read', clinic: null, sub: 'inspector' });
  const p = await t.http.post('/v1/procedures').set('authorization', `Bearer ${setup.clinician}`).send(procedureBody(setup.patientId, setup.lot.id));
  expect(p.status).toBe(201);
  reports = [
    `/v1/reports/lot-traceability/${setup.lot.id}`,
    `/v1/reports/donor-lookback/${setup.donor.id}`,
    `/v1/reports/patient-exposures/${setup.patientId}`,
  ];
});
afterAll(() => t.close());

const get = (path: string, token: string, accept?: string) => {
  const req = t.http.get(path).set('authorization', `Bearer ${token}`);
  return accept === undefined ? req : req.set('accept', accept);
};

const varies = (res: { headers: Record<string, string> }) => (res.headers.vary ?? '').split(',').map((v) => v.trim().toLowerCase());

describe('reports choose JSON or CSV by Accept (RFC 9110 §12.5.1)', () => {
  it.each([
    [undefined, 'application/json'],
    ['*/*', 'application/json'],
    ['application/json, text/csv;q=0', 'application/json'],
    ['text/csv;q=0.5, application/json;q=0.9', 'application/json'],
    ['text/*', 'text/csv'],
    ['text/csv', 'text/csv'],
    ['application/json;q=0.2, text/csv', 'text/csv'],
    // The donor and patient reports have no HTML form: a browser gets JSON there. The lot report is also the
    // printable dossier (text/html, application/pdf), so a browser asking for HTML first gets the dossier.
    ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'application/json', 'text/html'],
  ])('Accept %j → %s on every report (the lot report: %s), with Vary: Accept', async (accept, type, lotType = type) => {
    for (const path of reports) {
      const res = await get(path, inspector, accept);
      if (path === reports[0] && lotType !== type) {
        expect(res.status, path).toBe(200);
        expect(res.headers['content-type'], path).toMatch(new RegExp(`^${lotType.replace('/', '\\/')}`));
        continue;
      }
      expect(res.status, path).toBe(200);
      expect(res.headers['content-type'], path).toMatch(new RegExp(`^${type.replace('/', '\\/')}`));
      expect(varies(res), path).toContain('accept');
      if (type === 'text/csv') expect(res.text.split('\r\n')[0], path).toMatch(/^[a-z_]+(,[a-z_]+)+$/);
      else expect(JSON.parse(res.text).generatedAt, path).toBeTruthy();
    }
  });

  // (text/html is refused too in the wildcard case: the lot report also offers it, as its printable dossier.)
  it.each(['text/csv;q=0', 'application/xml', 'application/json;q=0, text/csv;q=0', 'text/*, text/csv;q=0, text/html;q=0', '*/*;q=0'])(
    'Accept %j → 406 problem+json on every report, audited as nothing exported',
    async (accept) => {
      const before = (await t.pool.query("SELECT count(*)::int AS n FROM audit_events WHERE action = 'export'")).rows[0].n;
      for (const path of reports) {
        const res = await get(path, inspector, accept);
        expect(res.status, path).toBe(406);
        expect(res.headers['content-type'], path).toMatch(/^application\/problem\+json/);
        expect(varies(res), path).toContain('accept');
        expect(res.body).toMatchObject({ status: 406, code: 'not-acceptable', title: 'Not Acceptable' });
        expect(res.body.detail).toContain('application/json or text/csv');
      }
      const after = (await t.pool.query("SELECT count(*)::int AS n FROM audit_events WHERE action = 'export'")).rows[0].n;
      expect(after).toBe(before);
    },
  );

  it('answers errors as problem+json whatever Accept asks for (404 with Accept: text/csv)', async () => {
    const res = await get('/v1/reports/lot-traceability/01900000-0000-7000-8000-000000000000', inspector, 'text/csv');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(varies(res)).toContain('accept');
  });
});

describe('JSON routes of /v1 offer application/json only', () => {
  const jsonRoutes = () => [
    [`/v1/patients/${setup.patientId}`, setup.clinician],
    ['/v1/patients?limit=1', setup.clinician],
    [`/v1/lots/${setup.lot.id}`, setup.supplier],
    [`/v1/donors/${setup.donor.id}`, setup.supplier],
  ] as const;

  it.each([undefined, '*/*', 'application/json', 'application/*', 'application/json; charset=utf-8', 'text/html, */*;q=0.1'])(
    'Accept %j → 200 JSON with Vary: Accept',
    async (accept) => {
      for (const [path, token] of jsonRoutes()) {
        const res = await get(path, token, accept);
        expect(res.status, path).toBe(200);
        expect(res.headers['content-type'], path).toMatch(/^application\/json/);
        expect(varies(res), path).toContain('accept');
      }
    },
  );

  it.each(['text/html', 'text/csv', 'application/xml', 'application/json;q=0'])('Accept %j → 406 problem+json', async (accept) => {
    for (const [path, token] of jsonRoutes()) {
      const res = await get(path, token, accept);
      expect(res.status, path).toBe(406);
      expect(res.headers['content-type'], path).toMatch(/^application\/problem\+json/);
      expect(res.body.code, path).toBe('not-acceptable');
    }
  });

  it('refuses an unacceptable POST before doing anything (nothing is created)', async () => {
    const body = patientBody();
    const refused = await t.http.post('/v1/patients').set('authorization', `Bearer ${setup.clinician}`).set('accept', 'text/html').send(body);
    expect(refused.status).toBe(406);
    const { rows } = await t.pool.query('SELECT count(*)::int AS n FROM patients WHERE mrn = $1', [body.mrn]);
    expect(rows[0].n).toBe(0);
    const created = await t.http.post('/v1/patients').set('authorization', `Bearer ${setup.clinician}`).set('accept', 'application/json').send(body);
    expect(created.status).toBe(201);
  });

  it('checks the token first: no token is 401 whatever Accept says', async () => {
    const res = await t.http.get(`/v1/patients/${setup.patientId}`).set('accept', 'text/html');
    expect(res.status).toBe(401);
  });
});

describe('health and the OpenAPI document are not negotiated', () => {
  it('answer whatever Accept says', async () => {
    expect((await t.http.get('/health/live').set('accept', 'text/csv')).status).toBe(200);
    expect((await t.http.get('/openapi.json').set('accept', 'text/html')).status).toBe(200);
  });
});

describe('the FHIR facade answers JSON forms only, by Accept', () => {
  let ehr: string;
  beforeAll(async () => {
    ehr = await t.token({ scope: 'patients:read clinical:read', clinic: setup.clinic });
  });
  const fhirGet = (path: string, accept?: string) => get(path, ehr, accept);

  it.each([
    [undefined, 'application/fhir+json'],
    ['application/fhir+json', 'application/fhir+json'],
    ['application/fhir+json; fhirVersion=4.0', 'application/fhir+json'],
    ['application/json', 'application/fhir+json'], // contract: JSON forms → application/fhir+json
    ['*/*', 'application/fhir+json'],
    ['application/fhir+xml;q=0.9, application/json;q=0.5', 'application/fhir+json'],
  ])('Accept %j on a read, a search and metadata → %s, with Vary: Accept', async (accept, type) => {
    for (const path of [`/fhir/R4/Patient/${setup.patientId}`, `/fhir/R4/Procedure?patient=${setup.patientId}`, '/fhir/R4/metadata']) {
      const res = await fhirGet(path, accept);
      expect(res.status, path).toBe(200);
      expect(res.headers['content-type'], path).toBe(`${type}; charset=utf-8`);
      expect(varies(res), path).toContain('accept');
    }
  });

  it.each(['application/fhir+xml', 'application/xml', 'text/html', 'application/fhir+json; fhirVersion=3.0', '*/*;q=0'])(
    'Accept %j → 406 OperationOutcome',
    async (accept) => {
      for (const path of [`/fhir/R4/Patient/${setup.patientId}`, `/fhir/R4/Patient?identifier=urn:x|y`]) {
        const res = await fhirGet(path, accept);
        expect(res.status, path).toBe(406);
        expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
        expect(res.body).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ severity: 'error' }] });
        expect(varies(res)).toContain('accept');
      }
    },
  );
});

describe('the OpenAPI document', () => {
  it('lists 406 for every /v1 and FHIR operation, and for none outside them', async () => {
    const doc = (await t.http.get('/openapi.json')).body as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        expect(Object.keys(op.responses).includes('406'), `${method} ${path}`).toBe(path.startsWith('/v1/') || path.startsWith('/fhir/R4/'));
      }
    }
  });
});
