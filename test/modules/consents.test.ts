import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { consentBody, patientBody } from '../support/fixtures.js';

let t: TestApp;
let tokenA: string;
let tokenB: string;
let patientId: string;

beforeAll(async () => {
  t = await createTestApp();
  tokenA = await t.token({ scope: 'patients:read patients:write', clinic: 'clinic-a' });
  tokenB = await t.token({ scope: 'patients:read patients:write', clinic: 'clinic-b' });
  patientId = (await t.http.post('/v1/patients').set('authorization', `Bearer ${tokenA}`).send(patientBody())).body.id;
});
afterAll(() => t.close());

const consents = (id = patientId) => `/v1/patients/${id}/consents`;

describe('consents', () => {
  it('records a signed consent and lists it', async () => {
    const res = await t.http.post(consents()).set('authorization', `Bearer ${tokenA}`).send(consentBody({ indNumber: 'IND 029871' }));
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      patientId,
      kind: 'investigational-treatment',
      signedAt: '2026-10-01T07:00:00.000Z',
      indNumber: 'IND 029871',
      irbProtocol: 'IRB-2026-0147',
      status: 'active',
      withdrawnAt: null,
      version: 1,
    });
    const list = await t.http.get(consents()).set('authorization', `Bearer ${tokenA}`);
    expect(list.status).toBe(200);
    expect(list.body.items.map((c: { id: string }) => c.id)).toContain(res.body.id);
  });

  it('refuses an unknown kind (400), a signature in the future (422), and a timestamp without offset (400)', async () => {
    expect((await t.http.post(consents()).set('authorization', `Bearer ${tokenA}`).send(consentBody({ kind: 'general' }))).status).toBe(400);
    const future = await t.http.post(consents()).set('authorization', `Bearer ${tokenA}`).send(consentBody({ signedAt: '2999-01-01T00:00:00Z' }));
    expect(future.status).toBe(422);
    expect(future.body.code).toBe('time-in-future');
    expect((await t.http.post(consents()).set('authorization', `Bearer ${tokenA}`).send(consentBody({ signedAt: '2026-10-01 09:00' }))).status).toBe(400);
  });

  it('withdraws a consent once: kept, marked with who, when and why; a second withdrawal is 409', async () => {
    const c = (await t.http.post(consents()).set('authorization', `Bearer ${tokenA}`).send(consentBody())).body;
    const url = `${consents()}/${c.id}/withdraw`;
    const early = await t.http.post(url).set('authorization', `Bearer ${tokenA}`).send({ reason: 'x', withdrawnAt: '2026-09-01T00:00:00Z' });
    expect(early.status).toBe(422);
    expect(early.body.code).toBe('withdrawn-before-signed');
    const stale = await t.http.post(url).set('authorization', `Bearer ${tokenA}`).set('if-match', '"7"').send({ reason: 'x' });
    expect(stale.status).toBe(412);

    const res = await t.http.post(url).set('authorization', `Bearer ${tokenA}`).set('if-match', '"1"').send({ reason: 'Patient withdrew by phone' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'withdrawn', withdrawnBy: 'tester', withdrawalReason: 'Patient withdrew by phone', version: 2 });
    expect(res.body.withdrawnAt).toMatch(/Z$/);
    const again = await t.http.post(url).set('authorization', `Bearer ${tokenA}`).send({ reason: 'again' });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('consent-already-withdrawn');

    const versions = await t.pool.query("SELECT version, body->>'status' AS status FROM record_versions WHERE resource_id = $1 ORDER BY version", [c.id]);
    expect(versions.rows).toEqual([
      { version: 1, status: 'active' },
      { version: 2, status: 'withdrawn' },
    ]);
  });

  it("hides one clinic's consents from another (404) and writes nothing for it", async () => {
    const c = (await t.http.post(consents()).set('authorization', `Bearer ${tokenA}`).send(consentBody())).body;
    expect((await t.http.get(consents()).set('authorization', `Bearer ${tokenB}`)).status).toBe(404);
    expect((await t.http.post(consents()).set('authorization', `Bearer ${tokenB}`).send(consentBody())).status).toBe(404);
    const w = await t.http.post(`${consents()}/${c.id}/withdraw`).set('authorization', `Bearer ${tokenB}`).send({ reason: 'x' });
    expect(w.status).toBe(404);
    const still = await t.http.get(consents()).set('authorization', `Bearer ${tokenA}`);
    expect(still.body.items.find((x: { id: string }) => x.id === c.id).status).toBe('active');
  });

  it('audits consent writes and reads', async () => {
    const c = (await t.http.post(consents()).set('authorization', `Bearer ${tokenA}`).send(consentBody())).body;
    await t.http.get(consents()).set('authorization', `Bearer ${tokenA}`);
    const { rows } = await t.pool.query(
      "SELECT action FROM audit_events WHERE (resource_type = 'consent' AND resource_id = $1) OR (action = 'search' AND details->'resultIds' ? $1) ORDER BY id",
      [c.id],
    );
    expect(rows.map((r) => r.action)).toEqual(['create', 'search']);
  });
});
