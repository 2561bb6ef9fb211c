import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { clinicSetup, procedureBody } from '../support/fixtures.js';
import { validateR4 } from './validator.js';
import { auth, fhir, nextOf, pathOf, selfOf, writer, type Bundle } from './search-support.js';

/** Paging links are bound to their search, and the request's own parameters are read as RFC 7240 and R4 say. */
let t: TestApp;
let f: ReturnType<typeof fhir>;
let s: Awaited<ReturnType<typeof clinicSetup>>;
let reader: string;
let other: string;

beforeAll(async () => {
  t = await createTestApp();
  f = fhir(t);
  s = await clinicSetup(t);
  reader = await t.token({ scope: 'patients:read clinical:read lots:read', clinic: 'clinic-a', sub: 'ehr-cursors' });
  other = (await writer(t, s.clinician).patient({ familyName: 'Cursorfam' }, { consent: true })).id;
  // The first procedure is on 2026-03-01: its vial reached the clinic that morning, just after the release.
  const early = await t.http.post(`/v1/lots/${s.lot.id}/shipments`).set(...auth(s.supplier)).send({ clinicId: s.clinic, vials: 5, shippedAt: '2026-03-01T09:30:00Z' });
  expect(early.status).toBe(201);
  for (const [patient, day] of [[s.patientId, 1], [s.patientId, 2], [s.patientId, 3], [other, 4], [other, 5]] as const) {
    const res = await t.http.post('/v1/procedures').set(...auth(s.clinician)).send(procedureBody(patient, s.lot.id, { performedAt: `2026-03-0${day}T10:00:00Z` }));
    expect(res.status).toBe(201);
  }
});
afterAll(() => t.close());

const get = (path: string, headers: Record<string, string> = {}) => {
  const r = t.http.get(path.startsWith('/fhir') ? path : `/fhir/R4${path}`).set(...auth(reader));
  for (const [k, v] of Object.entries(headers)) r.set(k, v);
  return r;
};
const cursorOf = (b: Bundle) => new URL(nextOf(b)!).searchParams.get('_cursor')!;
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o), 'utf8').toString('base64url');

function expectInvalid(res: { status: number; body: Record<string, unknown> }, path: string) {
  expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBe(400);
  validateR4(res.body);
  expect(res.body).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'invalid', expression: [path] }] });
}

describe('cursors belong to the search that gave them', () => {
  it('a next link walks the sorted search; its cursor on another patient, resource or filter is a 400', async () => {
    const first = await f.search(`/Procedure?patient=${s.patientId}&_sort=date&_count=2`, reader);
    expect(first.entry!.map((e) => e.resource.performedDateTime)).toEqual(['2026-03-01T10:00:00.000Z', '2026-03-02T10:00:00.000Z']);
    const second = await f.search(pathOf(nextOf(first)!).replace('/fhir/R4', ''), reader);
    expect(second.entry!.map((e) => e.resource.performedDateTime)).toEqual(['2026-03-03T10:00:00.000Z']);
    const cursor = cursorOf(first);
    for (const elsewhere of [
      `/Procedure?patient=${other}&_sort=date&_count=2&_cursor=${cursor}`,
      `/Procedure?patient=${s.patientId}&_sort=-date&_count=2&_cursor=${cursor}`,
      `/Procedure?patient=${s.patientId}&status=completed&_sort=date&_count=2&_cursor=${cursor}`,
      `/Observation?patient=${s.patientId}&_sort=date&_count=2&_cursor=${cursor}`,
    ]) expectInvalid(await get(elsewhere), 'querystring._cursor');
    // The page size may change between pages.
    expect((await get(`/Procedure?patient=${s.patientId}&_sort=date&_count=5&_cursor=${cursor}`)).status).toBe(200);
  });

  it('a cursor whose sort key was edited is a 400, never a 500', async () => {
    const first = await f.search(`/Procedure?patient=${s.patientId}&_sort=date&_count=1`, reader);
    const real = JSON.parse(Buffer.from(cursorOf(first), 'base64url').toString('utf8')) as { q: string; k: string; i: string };
    for (const k of ['not a date', '9999-99-99 10:00:00+00', '0000-01-01 00:00:00+00', 'x'.repeat(5000), 'infinity', null, 7]) {
      expectInvalid(await get(`/Procedure?patient=${s.patientId}&_sort=date&_count=1&_cursor=${b64({ ...real, k })}`), 'querystring._cursor');
    }
    expectInvalid(await get(`/Procedure?patient=${s.patientId}&_sort=date&_count=1&_cursor=${b64({ ...real, i: 'nope' })}`), 'querystring._cursor');
    expect((await get(`/Procedure?patient=${s.patientId}&_sort=date&_count=1&_cursor=${b64(real)}`)).status).toBe(200);
  });

  it('a $everything cursor of one patient is a 400 on another', async () => {
    const first = (await get(`/Patient/${s.patientId}/$everything?_count=1`)).body as Bundle;
    expectInvalid(await get(`/Patient/${other}/$everything?_count=1&_cursor=${cursorOf(first)}`), 'querystring._cursor');
    expect((await get(pathOf(nextOf(first)!))).status).toBe(200);
  });
});

describe('$everything reads its own parameters', () => {
  it('refuses types it does not serve, takes _type repeated or comma-separated, ignores an empty one', async () => {
    for (const bad of ['_type=Bogus', '_type=procedure', '_type=Procedure,Medication']) expectInvalid(await get(`/Patient/${s.patientId}/$everything?${bad}`), 'querystring._type');
    const types = (b: Bundle) => [...new Set((b.entry ?? []).filter((e) => e.search?.mode === 'match').map((e) => e.resource.resourceType as string))];
    expect(types((await get(`/Patient/${s.patientId}/$everything?_type=Procedure&_type=Patient`)).body as Bundle).sort()).toEqual(['Patient', 'Procedure']);
    expect(types((await get(`/Patient/${s.patientId}/$everything?_type=Procedure,Patient`)).body as Bundle).sort()).toEqual(['Patient', 'Procedure']);
    const empty = (await get(`/Patient/${s.patientId}/$everything?_type=`)).body as Bundle;
    expect(types(empty)).toContain('Procedure');
    expect(selfOf(empty).searchParams.has('_type')).toBe(false);
  });

  it('ignores parameters it does not take (absent from self), and refuses them under Prefer: handling=strict', async () => {
    const lenient = await get(`/Patient/${s.patientId}/$everything?start=2026-03-02&_count=3`);
    expect(lenient.status).toBe(200);
    expect([...selfOf(lenient.body as Bundle).searchParams.keys()]).toEqual(['_count']);
    expectInvalid(await get(`/Patient/${s.patientId}/$everything?start=2026-03-02`, { prefer: 'handling=strict' }), 'querystring.start');
  });
});

describe('request parameters as the standards read them', () => {
  it('Prefer: the first handling preference counts, quoted or not (RFC 7240 §2)', async () => {
    expectInvalid(await get('/Patient?foo=1', { prefer: 'handling="strict"' }), 'querystring.foo');
    expectInvalid(await get('/Patient?foo=1', { prefer: 'return=minimal, handling=strict' }), 'querystring.foo');
    expect((await get('/Patient?foo=1', { prefer: 'handling=lenient, handling=strict' })).status).toBe(200);
    const res = await get('/Patient?foo=1', { prefer: 'handling=lenient' });
    expect(res.headers['preference-applied']).toBe('handling=lenient');
  });

  it('a result parameter given twice applies its last value, and the self link shows only that one', async () => {
    const b = await f.search(`/Procedure?patient=${s.patientId}&_count=1&_count=2&_sort=date&_sort=-date`, reader);
    expect(b.entry!.length).toBe(2);
    expect(b.entry![0]!.resource.performedDateTime).toBe('2026-03-03T10:00:00.000Z');
    expect([...selfOf(b).searchParams.entries()].filter(([k]) => k.startsWith('_'))).toEqual([['_count', '2'], ['_sort', '-date']]);
  });

  it('an empty modifier is an unsupported modifier (400), not the bare parameter', async () => {
    expectInvalid(await get('/Patient?family:=cursorfam'), 'querystring.family:');
  });

  it('_format and Accept take every JSON form FHIR names, and refuse another FHIR version', async () => {
    for (const [q, accept] of [['', 'application/json+fhir'], [`?_format=${encodeURIComponent('application/json+fhir')}`, undefined], ['?_format=json', 'application/fhir+xml']] as const) {
      const res = await get(`/Patient/${s.patientId}${q}`, accept ? { accept } : {});
      expect(res.status, `${q} ${accept}`).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
    }
    const v5 = await get(`/Patient/${s.patientId}?_format=${encodeURIComponent('application/fhir+json;fhirVersion=5.0')}`);
    expect(v5.status).toBe(406);
    expect(v5.body.resourceType).toBe('OperationOutcome');
  });
});
