import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { patientBody } from '../support/fixtures.js';

let t: TestApp;
let writeA: string;
let readA: string;
let writeB: string;

beforeAll(async () => {
  t = await createTestApp();
  writeA = await t.token({ scope: 'patients:read patients:write', clinic: 'clinic-a' });
  readA = await t.token({ scope: 'patients:read', clinic: 'clinic-a' });
  writeB = await t.token({ scope: 'patients:read patients:write', clinic: 'clinic-b' });
});
afterAll(() => t.close());

async function createPatient(token: string, overrides: Record<string, unknown> = {}) {
  const res = await t.http.post('/v1/patients').set('authorization', `Bearer ${token}`).send(patientBody(overrides));
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; version: number; mrn: string; identifiers: { system: string; value: string }[] };
}

async function auditRows(resourceId: string) {
  const { rows } = await t.pool.query('SELECT action, actor_sub, actor_clinic_id, clinic_id, request_id, details FROM audit_events WHERE resource_id = $1 ORDER BY id', [resourceId]);
  return rows as { action: string; actor_sub: string; actor_clinic_id: string; clinic_id: string; request_id: string; details: Record<string, unknown> | null }[];
}

describe('creating and reading patients', () => {
  it('creates a patient with version 1, an ETag and a Location, and reads it back', async () => {
    const body = patientBody({ givenName: 'Ana', familyName: 'Ruiz' });
    const res = await t.http.post('/v1/patients').set('authorization', `Bearer ${writeA}`).send(body);
    expect(res.status).toBe(201);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers.etag).toBe('"1"');
    expect(res.headers.location).toBe(`/v1/patients/${res.body.id}`);
    expect(res.body).toMatchObject({ ...body, clinicId: 'clinic-a', version: 1 });
    expect(res.body.createdAt).toMatch(/Z$/);

    const got = await t.http.get(`/v1/patients/${res.body.id}`).set('authorization', `Bearer ${readA}`);
    expect(got.status).toBe(200);
    expect(got.headers.etag).toBe('"1"');
    expect(got.body).toEqual(res.body);
  });

  it('refuses a second patient with the same MRN in one clinic (409) but allows it in another clinic', async () => {
    const p = await createPatient(writeA);
    const dup = await t.http.post('/v1/patients').set('authorization', `Bearer ${writeA}`).send(patientBody({ mrn: p.mrn }));
    expect(dup.status).toBe(409);
    expect(dup.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(dup.body).toMatchObject({ status: 409, code: 'duplicate-mrn', title: 'Conflict', instance: '/v1/patients' });
    const other = await t.http.post('/v1/patients').set('authorization', `Bearer ${writeB}`).send(patientBody({ mrn: p.mrn }));
    expect(other.status).toBe(201);
  });

  it('refuses a birth date after today with 422 and stores nothing', async () => {
    const before = await t.pool.query('SELECT count(*)::int AS n FROM patients');
    const res = await t.http.post('/v1/patients').set('authorization', `Bearer ${writeA}`).send(patientBody({ birthDate: '2999-01-01' }));
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('birth-date-in-future');
    const after = await t.pool.query('SELECT count(*)::int AS n FROM patients');
    expect(after.rows[0].n).toBe(before.rows[0].n);
  });

  it('audits the create and the read with actor, clinic and request id', async () => {
    const p = await createPatient(writeA);
    const read = await t.http.get(`/v1/patients/${p.id}`).set('authorization', `Bearer ${readA}`).set('x-request-id', 'req-audit-1');
    expect(read.status).toBe(200);
    const rows = await auditRows(p.id);
    expect(rows.map((r) => r.action)).toEqual(['create', 'read']);
    expect(rows[1]).toMatchObject({ actor_sub: 'tester', actor_clinic_id: 'clinic-a', clinic_id: 'clinic-a', request_id: 'req-audit-1' });
  });
});

describe('tenancy', () => {
  it("answers 404 for another clinic's patient on read, update, history and consents, exactly as for a missing id", async () => {
    const p = await createPatient(writeA);
    const missing = '01900000-0000-7000-8000-000000000000';
    for (const id of [p.id, missing]) {
      const get = await t.http.get(`/v1/patients/${id}`).set('authorization', `Bearer ${writeB}`);
      expect(get.status).toBe(404);
      expect(get.body.detail).toBe('No patient with that id is visible to you.');
      const patch = await t.http.patch(`/v1/patients/${id}`).set('authorization', `Bearer ${writeB}`).set('if-match', '"1"').send({ givenName: 'X' });
      expect(patch.status).toBe(404);
      expect((await t.http.get(`/v1/patients/${id}/history`).set('authorization', `Bearer ${writeB}`)).status).toBe(404);
      expect((await t.http.get(`/v1/patients/${id}/consents`).set('authorization', `Bearer ${writeB}`)).status).toBe(404);
    }
    const unchanged = await t.http.get(`/v1/patients/${p.id}`).set('authorization', `Bearer ${readA}`);
    expect(unchanged.body.version).toBe(1);
  });

  it("leaves other clinics' patients out of searches, both ways", async () => {
    const shared = { system: 'https://shared-ehr.example.org/id', value: 'SAME-1' };
    const a = await createPatient(writeA, { identifiers: [shared], familyName: 'Tenancy' });
    const b = await createPatient(writeB, { identifiers: [shared], familyName: 'Tenancy' });
    const q = `identifier=${encodeURIComponent(`${shared.system}|${shared.value}`)}`;
    const fromA = await t.http.get(`/v1/patients?${q}`).set('authorization', `Bearer ${readA}`);
    expect(fromA.body.items.map((p: { id: string }) => p.id)).toEqual([a.id]);
    const fromB = await t.http.get(`/v1/patients?familyName=tenancy`).set('authorization', `Bearer ${writeB}`);
    expect(fromB.body.items.map((p: { id: string }) => p.id)).toEqual([b.id]);
  });

  it('refuses patient operations to a token without clinic_id (403)', async () => {
    const supplier = await t.token({ scope: 'patients:read patients:write', clinic: null });
    const res = await t.http.get('/v1/patients').set('authorization', `Bearer ${supplier}`);
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('clinic-required');
  });
});

describe('search and pagination', () => {
  it('finds by identifier, MRN, family name prefix (case-insensitive) and birth date', async () => {
    const p = await createPatient(writeA, { familyName: "O'Brien-Search", birthDate: '1950-12-31' });
    const auth = ['authorization', `Bearer ${readA}`] as const;
    const ident = p.identifiers[0]!;
    const byId = await t.http.get('/v1/patients').query({ identifier: `${ident.system}|${ident.value}` }).set(...auth);
    expect(byId.body.items.map((x: { id: string }) => x.id)).toEqual([p.id]);
    const byMrn = await t.http.get('/v1/patients').query({ mrn: p.mrn }).set(...auth);
    expect(byMrn.body.items.map((x: { id: string }) => x.id)).toEqual([p.id]);
    const byName = await t.http.get('/v1/patients').query({ familyName: "o'brien-s", birthDate: '1950-12-31' }).set(...auth);
    expect(byName.body.items.map((x: { id: string }) => x.id)).toEqual([p.id]);
    const none = await t.http.get('/v1/patients').query({ familyName: "o'brien-s", birthDate: '1950-12-30' }).set(...auth);
    expect(none.body).toEqual({ items: [], nextCursor: null });
    // LIKE wildcards in the input are literal
    const wildcard = await t.http.get('/v1/patients').query({ familyName: '%' }).set(...auth);
    expect(wildcard.body.items).toEqual([]);
  });

  it('pages through every patient once, in a stable order', async () => {
    const token = await t.token({ scope: 'patients:read patients:write', clinic: 'clinic-pages' });
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await createPatient(token)).id);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { status: number; body: { items: { id: string }[]; nextCursor: string | null } } = await t.http
        .get('/v1/patients')
        .query({ limit: 3, ...(cursor ? { cursor } : {}) })
        .set('authorization', `Bearer ${token}`);
      expect(res.status).toBe(200);
      seen.push(...res.body.items.map((p: { id: string }) => p.id));
      cursor = res.body.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(ids);
  });

  it('rejects a limit outside 1..200, a forged cursor and a malformed identifier with 400', async () => {
    for (const query of ['limit=0', 'limit=201', 'cursor=bm90LWEtY3Vyc29y', 'identifier=novalue', 'birthDate=17-04-1961', 'unknown=1']) {
      const res = await t.http.get(`/v1/patients?${query}`).set('authorization', `Bearer ${readA}`);
      expect(res.status, query).toBe(400);
      expect(res.body.errors.length, query).toBeGreaterThan(0);
    }
  });
});

describe('updates, versions and history', () => {
  it('PATCH needs If-Match (428), refuses a stale one (412), applies a current one and keeps every version', async () => {
    const p = await createPatient(writeA, { givenName: 'Old' });
    const url = `/v1/patients/${p.id}`;
    const auth = ['authorization', `Bearer ${writeA}`] as const;

    const noIfMatch = await t.http.patch(url).set(...auth).send({ givenName: 'New' });
    expect(noIfMatch.status).toBe(428);

    const ok = await t.http.patch(url).set(...auth).set('if-match', '"1"').send({ givenName: 'New' });
    expect(ok.status).toBe(200);
    expect(ok.headers.etag).toBe('"2"');
    expect(ok.body).toMatchObject({ givenName: 'New', version: 2, mrn: p.mrn });

    const stale = await t.http.patch(url).set(...auth).set('if-match', '"1"').send({ givenName: 'Newer' });
    expect(stale.status).toBe(412);

    const merge = await t.http.patch(url).set(...auth).set('if-match', '"2"').set('content-type', 'application/merge-patch+json').send(JSON.stringify({ sex: 'unknown' }));
    expect(merge.status).toBe(200);
    expect(merge.body.version).toBe(3);

    const history = await t.http.get(`${url}/history`).set(...auth);
    expect(history.status).toBe(200);
    expect(history.body.items.map((v: { version: number; resource: { givenName: string } }) => [v.version, v.resource.givenName])).toEqual([
      [1, 'Old'],
      [2, 'New'],
      [3, 'New'],
    ]);
    const audits = await auditRows(p.id);
    expect(audits.find((a) => a.action === 'update')?.details).toMatchObject({ changedFields: ['givenName'], version: 2 });
  });

  it('lets exactly one of two concurrent PATCHes with the same If-Match win; the other gets 412', async () => {
    const p = await createPatient(writeA);
    const second = await t.another();
    const [r1, r2] = await Promise.all([
      t.http.patch(`/v1/patients/${p.id}`).set('authorization', `Bearer ${writeA}`).set('if-match', '"1"').send({ givenName: 'One' }),
      second.http.patch(`/v1/patients/${p.id}`).set('authorization', `Bearer ${writeA}`).set('if-match', '"1"').send({ givenName: 'Two' }),
    ]);
    expect([r1.status, r2.status].sort()).toEqual([200, 412]);
    const winner = r1.status === 200 ? r1.body.givenName : r2.body.givenName;
    const now = await t.http.get(`/v1/patients/${p.id}`).set('authorization', `Bearer ${readA}`);
    expect(now.body).toMatchObject({ version: 2, givenName: winner });
    const history = await t.http.get(`/v1/patients/${p.id}/history`).set('authorization', `Bearer ${readA}`);
    expect(history.body.items).toHaveLength(2);
  });

  it('refuses an MRN change onto another patient\'s MRN (409) and changes nothing', async () => {
    const a = await createPatient(writeA);
    const b = await createPatient(writeA);
    const res = await t.http.patch(`/v1/patients/${b.id}`).set('authorization', `Bearer ${writeA}`).set('if-match', '"1"').send({ mrn: a.mrn });
    expect(res.status).toBe(409);
    const after = await t.http.get(`/v1/patients/${b.id}`).set('authorization', `Bearer ${readA}`);
    expect(after.body).toMatchObject({ version: 1, mrn: b.mrn });
  });

  it('refuses an empty PATCH and unknown fields with 400', async () => {
    const p = await createPatient(writeA);
    const empty = await t.http.patch(`/v1/patients/${p.id}`).set('authorization', `Bearer ${writeA}`).set('if-match', '"1"').send({});
    expect(empty.status).toBe(400);
    const unknown = await t.http.patch(`/v1/patients/${p.id}`).set('authorization', `Bearer ${writeA}`).set('if-match', '"1"').send({ clinicId: 'clinic-b' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors).toContainEqual({ path: 'body.clinicId', message: 'unknown field' });
  });

  it('never lets a patient row be deleted, even by SQL', async () => {
    const p = await createPatient(writeA);
    await expect(t.pool.query('DELETE FROM patients WHERE id = $1', [p.id])).rejects.toThrow(/append-only|refused/);
  });
});

describe('idempotency', () => {
  it('creates one patient for twenty parallel retries with one key, all answered with the same 201', async () => {
    const body = patientBody();
    const key = `key-${body.mrn}`;
    const second = await t.another();
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? second.http : t.http).post('/v1/patients').set('authorization', `Bearer ${writeA}`).set('idempotency-key', key).send(body),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(20).fill(201));
    expect(new Set(responses.map((r) => r.body.id)).size).toBe(1);
    const { rows } = await t.pool.query('SELECT count(*)::int AS n FROM patients WHERE mrn = $1', [body.mrn]);
    expect(rows[0].n).toBe(1);
  });

  it('refuses the same key with a different body (422) and scopes keys to the caller', async () => {
    const body = patientBody();
    const first = await t.http.post('/v1/patients').set('authorization', `Bearer ${writeA}`).set('idempotency-key', 'k-reuse').send(body);
    expect(first.status).toBe(201);
    const other = await t.http.post('/v1/patients').set('authorization', `Bearer ${writeA}`).set('idempotency-key', 'k-reuse').send(patientBody());
    expect(other.status).toBe(422);
    expect(other.body.code).toBe('idempotency-key-reused');
    // Another clinic using the same key string is a different caller.
    const otherCaller = await t.http.post('/v1/patients').set('authorization', `Bearer ${writeB}`).set('idempotency-key', 'k-reuse').send(body);
    expect(otherCaller.status).toBe(201);
    expect(otherCaller.body.id).not.toBe(first.body.id);
  });
});
