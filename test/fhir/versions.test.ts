import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { clinicSetup, procedureBody } from '../support/fixtures.js';
import { validateR4 } from './validator.js';

let t: TestApp;
let s: Awaited<ReturnType<typeof clinicSetup>>;
let reader: string;
let otherClinic: string;
let procedureId: string;
let outcomeId: string;
let adverseEventId: string;

type Entry = {
  fullUrl: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- FHIR resources are checked by the validator, not by types
  resource: Record<string, any>;
  request: { method: string; url: string };
  response: { status: string; etag: string; lastModified?: string };
};
type HistoryBundle = { resourceType: string; type: string; link: { relation: string; url: string }[]; entry?: Entry[] };

const auth = (token: string) => ['authorization', `Bearer ${token}`] as const;
const fhirGet = (path: string, token = reader) => t.http.get(`/fhir/R4${path}`).set(...auth(token));
const pathOf = (url: string) => new URL(url).pathname + new URL(url).search;
const givenNames = ['Maria', 'Mariela', 'Marisol'];

beforeAll(async () => {
  t = await createTestApp();
  s = await clinicSetup(t);
  reader = await t.token({ scope: 'patients:read clinical:read lots:read', clinic: 'clinic-a', sub: 'fhir-versions-reader' });
  otherClinic = await t.token({ scope: 'patients:read clinical:read lots:read', clinic: 'clinic-b', sub: 'other-clinic' });

  // Patient: versions 1 (Maria), 2 (Mariela), 3 (Marisol).
  for (let v = 1; v < givenNames.length; v++) {
    const patch = await t.http.patch(`/v1/patients/${s.patientId}`).set(...auth(s.clinician)).set('if-match', `"${v}"`).send({ givenName: givenNames[v] });
    expect(patch.status, JSON.stringify(patch.body)).toBe(200);
    expect(patch.body.version).toBe(v + 1);
  }

  // Procedure: version 1 completed, version 2 entered-in-error.
  const p = await t.http.post('/v1/procedures').set(...auth(s.clinician)).send(procedureBody(s.patientId, s.lot.id, { performedAt: '2026-03-10T10:00:00Z' }));
  expect(p.status, JSON.stringify(p.body)).toBe(201);
  procedureId = p.body.id;

  const o = await t.http
    .post('/v1/outcomes')
    .set(...auth(s.clinician))
    .send({ procedureId, instrument: 'nrs-pain', timepoint: 'baseline', score: 7, assessedAt: '2026-03-01T10:00:00Z' });
  expect(o.status, JSON.stringify(o.body)).toBe(201);
  outcomeId = o.body.id;

  // AdverseEvent: version 1 recovering, version 2 resolved.
  const ae = await t.http
    .post('/v1/adverse-events')
    .set(...auth(s.clinician))
    .send({ procedureId, onsetAt: '2026-03-11T08:00:00Z', description: 'Knee effusion', severityGrade: 2, serious: false, seriousnessCriteria: [], relatedness: 'probable', outcome: 'recovering' });
  expect(ae.status, JSON.stringify(ae.body)).toBe(201);
  adverseEventId = ae.body.id;
  const followUp = await t.http.patch(`/v1/adverse-events/${adverseEventId}`).set(...auth(s.clinician)).set('if-match', '"1"').send({ outcome: 'resolved' });
  expect(followUp.status, JSON.stringify(followUp.body)).toBe(200);

  const eie = await t.http.post(`/v1/procedures/${procedureId}/entered-in-error`).set(...auth(s.clinician)).set('if-match', '"1"').send({ reason: 'Wrong patient selected', vialsReturned: 1 });
  expect(eie.status, JSON.stringify(eie.body)).toBe(200);
});
afterAll(() => t.close());

describe('vread (R4 §3.1.0.3)', () => {
  it('answers each Patient version as it was, with its ETag and Last-Modified, and 304 on If-None-Match', async () => {
    for (let v = 1; v <= givenNames.length; v++) {
      const res = await fhirGet(`/Patient/${s.patientId}/_history/${v}`);
      expect(res.status, `v${v}`).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
      validateR4(res.body);
      expect(res.body).toMatchObject({ resourceType: 'Patient', id: s.patientId, meta: { versionId: String(v) }, name: [{ given: [givenNames[v - 1]] }] });
      expect(res.headers.etag).toBe(`W/"${v}"`);
      expect(new Date(res.headers['last-modified']!).toISOString().slice(0, 19)).toBe(new Date(res.body.meta.lastUpdated).toISOString().slice(0, 19));
      const again = await fhirGet(`/Patient/${s.patientId}/_history/${v}`).set('if-none-match', `W/"${v}"`);
      expect(again.status).toBe(304);
      expect(again.text ?? '').toBe('');
      expect((await fhirGet(`/Patient/${s.patientId}/_history/${v}`).set('if-none-match', `W/"${v + 1}"`)).status).toBe(200);
    }
    // The current version read and vread agree.
    const current = await fhirGet(`/Patient/${s.patientId}`);
    expect(current.body.meta.versionId).toBe(String(givenNames.length));
    expect((await fhirGet(`/Patient/${s.patientId}/_history/${givenNames.length}`)).body).toEqual(current.body);
  });

  it('answers each version of a Procedure, an AdverseEvent and a lot (BiologicallyDerivedProduct)', async () => {
    const proc1 = (await fhirGet(`/Procedure/${procedureId}/_history/1`)).body;
    const proc2 = (await fhirGet(`/Procedure/${procedureId}/_history/2`)).body;
    expect([proc1.status, proc2.status]).toEqual(['completed', 'entered-in-error']);
    expect([proc1.meta.versionId, proc2.meta.versionId]).toEqual(['1', '2']);

    const ae1 = (await fhirGet(`/AdverseEvent/${adverseEventId}/_history/1`)).body;
    const ae2 = (await fhirGet(`/AdverseEvent/${adverseEventId}/_history/2`)).body;
    expect([ae1.outcome.coding[0].code, ae2.outcome.coding[0].code]).toEqual(['recovering', 'resolved']);

    // Lots: version 1 made (quarantine), version 2 released.
    const lot1 = await fhirGet(`/BiologicallyDerivedProduct/${s.lot.id}/_history/1`);
    const lot2 = await fhirGet(`/BiologicallyDerivedProduct/${s.lot.id}/_history/2`);
    expect(lot1.headers.etag).toBe('W/"1"');
    expect([lot1.body.status, lot2.body.status]).toEqual(['unavailable', 'available']);
    expect(lot1.body.extension[0].valueCoding.code).toBe('quarantine');
    for (const lot of [lot1.body, lot2.body]) {
      expect(lot.identifier).toContainEqual({ system: 'urn:exosome-records:fhir:identifier:isbt128-din', value: s.donor.din });
    }
    for (const body of [proc1, proc2, ae1, ae2, lot1.body, lot2.body]) validateR4(body);
  });

  it('answers an Observation (an outcome score) as its one version, 1', async () => {
    const res = await fhirGet(`/Observation/${outcomeId}/_history/1`);
    expect(res.status).toBe(200);
    validateR4(res.body);
    expect(res.body).toMatchObject({ resourceType: 'Observation', id: outcomeId, meta: { versionId: '1' }, valueQuantity: { value: 7 } });
    expect(res.headers.etag).toBe('W/"1"');
    expect((await fhirGet(`/Observation/${outcomeId}/_history/1`).set('if-none-match', 'W/"1"')).status).toBe(304);
    const two = await fhirGet(`/Observation/${outcomeId}/_history/2`);
    expect(two.status).toBe(404);
    expect(two.body.resourceType).toBe('OperationOutcome');
  });

  it('404 for a version the resource never had, and for an unknown resource', async () => {
    for (const path of [
      `/Patient/${s.patientId}/_history/4`,
      `/Procedure/${procedureId}/_history/3`,
      `/AdverseEvent/${adverseEventId}/_history/2147483647`,
      `/BiologicallyDerivedProduct/${s.lot.id}/_history/99`,
      '/Patient/0193a5b2-7c1e-7d3a-9f10-2b4c6d8e0f12/_history/1',
    ]) {
      const res = await fhirGet(path);
      expect(res.status, path).toBe(404);
      validateR4(res.body);
      expect(res.body.issue[0].code, path).toBe('not-found');
    }
  });

  it('400 for a vid that is not a positive integer', async () => {
    for (const vid of ['0', '-1', 'abc', '01', '1.5', '1e2', '2147483648', '99999999999']) {
      const res = await fhirGet(`/Patient/${s.patientId}/_history/${vid}`);
      expect(res.status, vid).toBe(400);
      validateR4(res.body);
      expect(res.body.issue, vid).toEqual([expect.objectContaining({ code: 'invalid', expression: ['params.vid'] })]);
    }
  });
});

describe('history (R4 §3.1.0.4)', () => {
  it('answers a history Bundle, newest first, with request and response on every entry; it validates', async () => {
    const res = await fhirGet(`/Patient/${s.patientId}/_history`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
    validateR4(res.body);
    const b = res.body as HistoryBundle;
    expect(b).toMatchObject({ resourceType: 'Bundle', type: 'history' });
    expect(b.link).toEqual([{ relation: 'self', url: expect.stringMatching(new RegExp(`/fhir/R4/Patient/${s.patientId}/_history$`)) }]);
    expect(b.entry!.map((e) => e.resource.meta.versionId)).toEqual(['3', '2', '1']);
    expect(b.entry!.map((e) => e.resource.name[0].given[0])).toEqual([...givenNames].reverse());
    for (const e of b.entry!) {
      expect(e.fullUrl).toMatch(new RegExp(`/fhir/R4/Patient/${s.patientId}$`));
      expect(e.response.etag).toBe(`W/"${e.resource.meta.versionId}"`);
      expect(e.response.lastModified).toBe(e.resource.meta.lastUpdated);
      validateR4(e.resource);
    }
    expect(b.entry!.map((e) => e.request)).toEqual([
      { method: 'PUT', url: `Patient/${s.patientId}` },
      { method: 'PUT', url: `Patient/${s.patientId}` },
      { method: 'POST', url: 'Patient' },
    ]);
    expect(b.entry!.map((e) => e.response.status)).toEqual(['200 OK', '200 OK', '201 Created']);
  });

  it('answers the history of every versioned type', async () => {
    for (const [path, versions] of [
      [`/Procedure/${procedureId}/_history`, ['2', '1']],
      [`/AdverseEvent/${adverseEventId}/_history`, ['2', '1']],
      [`/Observation/${outcomeId}/_history`, ['1']],
      [`/BiologicallyDerivedProduct/${s.lot.id}/_history`, ['2', '1']],
    ] as const) {
      const res = await fhirGet(path);
      expect(res.status, path).toBe(200);
      validateR4(res.body);
      const b = res.body as HistoryBundle;
      expect(b.type).toBe('history');
      expect(b.entry!.map((e) => e.resource.meta.versionId), path).toEqual(versions);
      expect(b.entry!.at(-1)!.request.method, path).toBe('POST');
      for (const e of b.entry!) validateR4(e.resource);
    }
  });

  it('pages with _count and next links, to the oldest version', async () => {
    const seen: string[] = [];
    let url: string | undefined = `/fhir/R4/Patient/${s.patientId}/_history?_count=1`;
    let pages = 0;
    while (url) {
      const res = await t.http.get(url).set(...auth(reader));
      expect(res.status, url).toBe(200);
      validateR4(res.body);
      const b = res.body as HistoryBundle;
      expect(b.entry, url).toHaveLength(1);
      seen.push(b.entry![0]!.resource.meta.versionId as string);
      const next = b.link.find((l) => l.relation === 'next');
      url = next ? pathOf(next.url) : undefined;
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(['3', '2', '1']);
    const two = (await fhirGet(`/Patient/${s.patientId}/_history?_count=2`)).body as HistoryBundle;
    expect(two.entry!.map((e) => e.resource.meta.versionId)).toEqual(['3', '2']);
    const rest = (await t.http.get(pathOf(two.link.find((l) => l.relation === 'next')!.url)).set(...auth(reader))).body as HistoryBundle;
    expect(rest.entry!.map((e) => e.resource.meta.versionId)).toEqual(['1']);
    expect(rest.link.map((l) => l.relation)).toEqual(['self']);
  });

  it('refuses a page size outside 1..200 and a cursor it did not give out with a 400 OperationOutcome', async () => {
    for (const q of ['_count=0', '_count=201', '_count=x', '_cursor=bm9wZQ']) {
      const res = await fhirGet(`/Patient/${s.patientId}/_history?${q}`);
      expect(res.status, q).toBe(400);
      expect(res.body.resourceType, q).toBe('OperationOutcome');
    }
  });

  it('ignores parameters it does not support (left out of self), or refuses them under Prefer: handling=strict', async () => {
    const lenient = await fhirGet(`/Patient/${s.patientId}/_history?_since=2020-01-01&_count=5`);
    expect(lenient.status).toBe(200);
    const self = new URL((lenient.body as HistoryBundle).link.find((l) => l.relation === 'self')!.url);
    expect([...self.searchParams.keys()]).toEqual(['_count']);
    const strict = await fhirGet(`/Patient/${s.patientId}/_history?_since=2020-01-01`).set('prefer', 'handling=strict');
    expect(strict.status).toBe(400);
    expect(strict.body.issue[0]).toMatchObject({ code: 'invalid', expression: ['querystring._since'] });
  });
});

describe('reads of Observation and AdverseEvent', () => {
  it('read with ETag, Last-Modified and If-None-Match, as the other reads', async () => {
    for (const [path, version] of [
      [`/Observation/${outcomeId}`, '1'],
      [`/AdverseEvent/${adverseEventId}`, '2'],
    ] as const) {
      const res = await fhirGet(path);
      expect(res.status, path).toBe(200);
      validateR4(res.body);
      expect(res.body.meta.versionId, path).toBe(version);
      expect(res.headers.etag, path).toBe(`W/"${version}"`);
      expect(res.headers['last-modified'], path).toBeDefined();
      expect((await fhirGet(path).set('if-none-match', res.headers.etag!)).status, path).toBe(304);
    }
  });

  it('the search results\' fullUrls resolve', async () => {
    for (const search of [`/Observation?patient=${s.patientId}`, `/AdverseEvent?subject=${s.patientId}`]) {
      const b = (await fhirGet(search)).body as { entry: { fullUrl: string; resource: { id: string } }[] };
      expect(b.entry.length, search).toBeGreaterThan(0);
      for (const e of b.entry) {
        const res = await t.http.get(pathOf(e.fullUrl)).set(...auth(reader));
        expect(res.status, e.fullUrl).toBe(200);
        expect(res.body.id).toBe(e.resource.id);
      }
    }
  });
});

describe('tenancy, scopes and audit', () => {
  it('another clinic gets 404 for the reads, vreads and histories of this clinic\'s records', async () => {
    for (const path of [
      `/Patient/${s.patientId}/_history`,
      `/Patient/${s.patientId}/_history/1`,
      `/Procedure/${procedureId}/_history`,
      `/Procedure/${procedureId}/_history/1`,
      `/AdverseEvent/${adverseEventId}`,
      `/AdverseEvent/${adverseEventId}/_history`,
      `/AdverseEvent/${adverseEventId}/_history/1`,
      `/Observation/${outcomeId}`,
      `/Observation/${outcomeId}/_history`,
      `/Observation/${outcomeId}/_history/1`,
    ]) {
      const res = await fhirGet(path, otherClinic);
      expect(res.status, path).toBe(404);
      expect(res.body.resourceType, path).toBe('OperationOutcome');
    }
    // Lots are the supplier's records, readable by any lots:read token, as the read is.
    expect((await fhirGet(`/BiologicallyDerivedProduct/${s.lot.id}/_history/1`, otherClinic)).status).toBe(200);
  });

  it('needs the read\'s scope: 403 OperationOutcome without it', async () => {
    const patientsOnly = await t.token({ scope: 'patients:read', clinic: 'clinic-a' });
    const clinicalOnly = await t.token({ scope: 'clinical:read', clinic: 'clinic-a' });
    for (const [path, token] of [
      [`/Patient/${s.patientId}/_history/1`, clinicalOnly],
      [`/Patient/${s.patientId}/_history`, clinicalOnly],
      [`/Procedure/${procedureId}/_history`, patientsOnly],
      [`/Observation/${outcomeId}`, patientsOnly],
      [`/AdverseEvent/${adverseEventId}/_history/1`, patientsOnly],
      [`/BiologicallyDerivedProduct/${s.lot.id}/_history`, clinicalOnly],
    ] as const) {
      const res = await fhirGet(path, token);
      expect(res.status, path).toBe(403);
      expect(res.body.issue[0].code, path).toBe('forbidden');
    }
    expect((await t.http.get(`/fhir/R4/Patient/${s.patientId}/_history`)).status).toBe(401);
  });

  it('audits vread and history as history reads', async () => {
    const sub = 'fhir-versions-auditor';
    const token = await t.token({ scope: 'patients:read clinical:read', clinic: 'clinic-a', sub });
    expect((await fhirGet(`/Patient/${s.patientId}/_history`, token)).status).toBe(200);
    expect((await fhirGet(`/Procedure/${procedureId}/_history/2`, token)).status).toBe(200);
    const { rows } = await t.pool.query('SELECT resource_type, resource_id, action, details FROM audit_events WHERE actor_sub = $1 ORDER BY id', [sub]);
    expect(rows).toEqual([
      expect.objectContaining({ resource_type: 'patient', resource_id: s.patientId, action: 'read', details: expect.objectContaining({ history: true }) }),
      expect.objectContaining({ resource_type: 'procedure', resource_id: procedureId, action: 'read', details: expect.objectContaining({ history: true, version: 2 }) }),
    ]);
  });

  it('a vread or history answered 404 writes no read entry: an unknown version of each type, another clinic\'s record', async () => {
    const sub = 'fhir-versions-404-auditor';
    const token = await t.token({ scope: 'patients:read clinical:read lots:read', clinic: 'clinic-a', sub });
    const other = await t.token({ scope: 'patients:read clinical:read lots:read', clinic: 'clinic-b', sub });
    for (const path of [
      `/Patient/${s.patientId}/_history/99`,
      `/Procedure/${procedureId}/_history/99`,
      `/Observation/${outcomeId}/_history/2`,
      `/BiologicallyDerivedProduct/${s.lot.id}/_history/99`,
    ]) {
      expect((await fhirGet(path, token)).status, path).toBe(404);
    }
    for (const path of [`/Patient/${s.patientId}/_history`, `/Procedure/${procedureId}/_history/1`, `/Observation/${outcomeId}/_history/1`]) {
      expect((await fhirGet(path, other)).status, path).toBe(404);
    }
    const { rows } = await t.pool.query('SELECT count(*)::int AS n FROM audit_events WHERE actor_sub = $1', [sub]);
    expect(rows[0].n).toBe(0);
  });
});

describe('the CapabilityStatement', () => {
  it('lists read, vread and history-instance for each versioned type, with readHistory', async () => {
    const cap = (await t.http.get('/fhir/R4/metadata')).body;
    validateR4(cap);
    const byType = new Map<string, { interaction: { code: string }[]; readHistory?: boolean }>(
      cap.rest[0].resource.map((r: { type: string }) => [r.type, r]),
    );
    for (const type of ['Patient', 'Procedure', 'Observation', 'AdverseEvent', 'BiologicallyDerivedProduct']) {
      const codes = byType.get(type)!.interaction.map((i) => i.code);
      expect(codes, type).toEqual(expect.arrayContaining(['read', 'vread', 'history-instance']));
      expect(byType.get(type)!.readHistory, type).toBe(true);
    }
  });
});

describe('_format (R4 §3.1.0.1.10)', () => {
  it('json and application/fhir+json → fhir+json, xml → 406 OperationOutcome', async () => {
    const json = await fhirGet(`/Patient/${s.patientId}?_format=json`);
    expect(json.status).toBe(200);
    // contract "FHIR R4: search": JSON forms → application/fhir+json
    expect(json.headers['content-type']).toMatch(/^application\/fhir\+json/);
    expect(json.body.resourceType).toBe('Patient');
    const fhirJson = await fhirGet(`/Patient/${s.patientId}?_format=${encodeURIComponent('application/fhir+json')}`);
    expect(fhirJson.status).toBe(200);
    expect(fhirJson.headers['content-type']).toMatch(/^application\/fhir\+json/);
    const xml = await fhirGet(`/Patient/${s.patientId}?_format=xml`);
    expect(xml.status).toBe(406);
    expect(xml.headers['content-type']).toMatch(/^application\/fhir\+json/);
    expect(xml.body.resourceType).toBe('OperationOutcome');
    validateR4(xml.body);
    // _format stands in for Accept on the version routes too, and stays in the history Bundle's self link.
    const history = await fhirGet(`/Patient/${s.patientId}/_history?_format=json`);
    expect(history.headers['content-type']).toMatch(/^application\/fhir\+json/);
    expect((history.body as HistoryBundle).link[0]!.url).toMatch(/\?_format=json$/);
  });
});
