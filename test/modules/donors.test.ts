import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALWAYS_REQUIRED } from '../../src/modules/donors/vocabulary.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { createDonor, donorBody, eligibleDonor, newDin, releasedLot } from '../support/fixtures.js';

let t: TestApp;
let supplier: string;
let reader: string;
beforeAll(async () => {
  t = await createTestApp();
  supplier = await t.token({ scope: 'lots:read lots:write', clinic: null, sub: 'qa-unit' });
  reader = await t.token({ scope: 'lots:read', clinic: 'clinic-a' });
});
afterAll(() => t.close());

const auth = (token = supplier) => ['authorization', `Bearer ${token}`] as const;
const test = (marker: string, result = 'non-reactive', testedOn = '2026-01-14') => ({
  marker,
  method: marker.endsWith('nat') ? 'nat' : 'serology',
  result,
  testedOn,
  laboratory: 'Central Lab',
});

describe('donors', () => {
  it('records a donor with a verified DIN, readable by any clinic, findable by DIN', async () => {
    const body = donorBody();
    const res = await t.http.post('/v1/donors').set(...auth()).send(body);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ ...body, eligibility: null, screeningTests: [], determinations: [], version: 1 });
    const found = await t.http.get('/v1/donors').query({ din: body.din }).set(...auth(reader));
    expect(found.status).toBe(200);
    expect(found.body.items.map((d: { id: string }) => d.id)).toEqual([res.body.id]);
    expect((await t.http.get(`/v1/donors/${res.body.id}`).set(...auth(reader))).status).toBe(200);
  });

  it('refuses a wrong check character, a lowercase DIN, identity fields and unknown vocabularies with 400', async () => {
    const { din, dinCheckCharacter } = newDin();
    const wrong = dinCheckCharacter === 'A' ? 'B' : 'A';
    const wrongCheck = await t.http.post('/v1/donors').set(...auth()).send(donorBody({ din, dinCheckCharacter: wrong }));
    expect(wrongCheck.status).toBe(400);
    expect(wrongCheck.body.errors).toEqual([{ path: 'body.dinCheckCharacter', message: expect.stringContaining('does not match') }]);
    expect((await t.http.post('/v1/donors').set(...auth()).send(donorBody({ din: 'a999922012346', dinCheckCharacter: '*' }))).status).toBe(400);
    const identity = await t.http.post('/v1/donors').set(...auth()).send({ ...donorBody(), name: 'Jane Doe', ssn: '123-45-6789' });
    expect(identity.status).toBe(400);
    expect(identity.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(['body.name', 'body.ssn']);
    expect((await t.http.post('/v1/donors').set(...auth()).send(donorBody({ sourceTissue: 'liver' }))).status).toBe(400);
    expect((await t.http.post(`/v1/donors/${(await createDonor(t.http, supplier)).id}/tests`).set(...auth()).send(test('hepatitis-x'))).status).toBe(400);
  });

  it('refuses a duplicate DIN with 409', async () => {
    const body = donorBody();
    expect((await t.http.post('/v1/donors').set(...auth()).send(body)).status).toBe(201);
    const dup = await t.http.post('/v1/donors').set(...auth()).send(body);
    expect(dup.status).toBe(409);
    expect(dup.body.code).toBe('duplicate-din');
  });

  it('needs lots:write to record and lots:read to read', async () => {
    expect((await t.http.post('/v1/donors').set(...auth(reader)).send(donorBody())).status).toBe(403);
    const patientsOnly = await t.token({ scope: 'patients:read' });
    expect((await t.http.get('/v1/donors').set(...auth(patientsOnly))).status).toBe(403);
  });
});

describe('eligibility', () => {
  it('refuses eligible without every required test, naming the missing markers, and records nothing', async () => {
    const d = await createDonor(t.http, supplier);
    for (const m of ALWAYS_REQUIRED.slice(0, 6)) await t.http.post(`/v1/donors/${d.id}/tests`).set(...auth()).send(test(m));
    const res = await t.http.post(`/v1/donors/${d.id}/eligibility`).set(...auth()).send({ status: 'eligible', determinedBy: 'Dr. D', determinedAt: '2026-01-20T10:00:00Z' });
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('donor-not-eligible');
    expect(res.body.detail).toContain('hcv-nat');
    expect(res.body.detail).toContain('syphilis');
    expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual(['screeningTests.hcv-nat', 'screeningTests.syphilis']);
    const donor = await t.http.get(`/v1/donors/${d.id}`).set(...auth());
    expect(donor.body.determinations).toEqual([]);
  });

  it('requires WNV in season and HTLV/CMV for leukocyte-rich tissue', async () => {
    const d = await createDonor(t.http, supplier, { sourceTissue: 'bone-marrow', collectedOn: '2026-07-10' });
    for (const m of ALWAYS_REQUIRED) await t.http.post(`/v1/donors/${d.id}/tests`).set(...auth()).send(test(m, 'non-reactive', '2026-07-01'));
    const res = await t.http.post(`/v1/donors/${d.id}/eligibility`).set(...auth()).send({ status: 'eligible', determinedBy: 'Dr. D', determinedAt: '2026-07-20T10:00:00Z' });
    expect(res.status).toBe(422);
    expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual(['screeningTests.wnv-nat', 'screeningTests.htlv-1-2-ab', 'screeningTests.cmv']);
  });

  it('does not count a test outside the specimen window, and a reactive result anywhere blocks', async () => {
    const d = await createDonor(t.http, supplier);
    for (const m of ALWAYS_REQUIRED.slice(1)) await t.http.post(`/v1/donors/${d.id}/tests`).set(...auth()).send(test(m));
    await t.http.post(`/v1/donors/${d.id}/tests`).set(...auth()).send(test('hiv-1-2-ab', 'non-reactive', '2026-02-01'));
    const outside = await t.http.post(`/v1/donors/${d.id}/eligibility`).set(...auth()).send({ status: 'eligible', determinedBy: 'Dr. D', determinedAt: '2026-02-02T10:00:00Z' });
    expect(outside.status).toBe(422);
    expect(outside.body.errors.map((e: { path: string }) => e.path)).toEqual(['screeningTests.hiv-1-2-ab']);
    await t.http.post(`/v1/donors/${d.id}/tests`).set(...auth()).send(test('hiv-1-2-ab'));
    await t.http.post(`/v1/donors/${d.id}/tests`).set(...auth()).send(test('syphilis', 'reactive', '2026-01-16'));
    const reactive = await t.http.post(`/v1/donors/${d.id}/eligibility`).set(...auth()).send({ status: 'eligible', determinedBy: 'Dr. D', determinedAt: '2026-02-02T10:00:00Z' });
    expect(reactive.status).toBe(422);
    expect(reactive.body.errors).toEqual([{ path: 'screeningTests.syphilis', message: 'reactive on 2026-01-16' }]);
  });

  it('keeps every determination with who and when; the current one is the latest; ineligible needs a reason', async () => {
    const d = await eligibleDonor(t.http, supplier);
    expect((await t.http.post(`/v1/donors/${d.id}/eligibility`).set(...auth()).send({ status: 'ineligible', determinedBy: 'Dr. D' })).status).toBe(400);
    const early = await t.http.post(`/v1/donors/${d.id}/eligibility`).set(...auth()).send({ status: 'pending', determinedBy: 'Dr. D', determinedAt: '2026-01-19T00:00:00Z' });
    expect(early.status).toBe(422);
    expect(early.body.code).toBe('determination-out-of-order');
    const later = await t.http.post(`/v1/donors/${d.id}/eligibility`).set(...auth()).send({ status: 'ineligible', determinedBy: 'Dr. E', reason: 'Travel deferral found on review', determinedAt: '2026-02-01T00:00:00Z' });
    expect(later.status).toBe(201);
    const donor = (await t.http.get(`/v1/donors/${d.id}`).set(...auth())).body;
    expect(donor.determinations.map((e: { status: string; determinedBy: string; recordedBy: string }) => [e.status, e.determinedBy, e.recordedBy])).toEqual([
      ['eligible', 'Dr. Director', 'qa-unit'],
      ['ineligible', 'Dr. E', 'qa-unit'],
    ]);
    expect(donor.eligibility).toMatchObject({ status: 'ineligible', reason: 'Travel deferral found on review', determinedAt: '2026-02-01T00:00:00.000Z' });
  });

  it('sends every released lot of a donor found ineligible back to quarantine in the same transaction', async () => {
    const { donor, lot } = await releasedLot(t.http, supplier);
    const res = await t.http
      .post(`/v1/donors/${donor.id}/eligibility`)
      .set(...auth())
      .send({ status: 'ineligible', determinedBy: 'Dr. D', reason: 'Reactive anti-HBc on retest', determinedAt: '2026-04-01T00:00:00Z' });
    expect(res.status).toBe(201);
    expect(res.body.quarantinedLotIds).toEqual([lot.id]);
    const after = (await t.http.get(`/v1/lots/${lot.id}`).set(...auth())).body;
    expect(after.status).toBe('quarantine');
    expect(after.statusChanges.at(-1)).toMatchObject({ status: 'quarantine', cause: 'donor-ineligible', effectiveAt: '2026-04-01T00:00:00.000Z' });
    // ...and it cannot be released again while the donor is ineligible
    const again = await t.http.post(`/v1/lots/${lot.id}/release`).set(...auth()).send({});
    expect(again.status).toBe(422);
    expect(again.body.errors[0]).toEqual({ path: `donors.${donor.id}`, message: 'donor is ineligible' });
  });

  it('audits every donor change', async () => {
    const d = await eligibleDonor(t.http, supplier);
    const { rows } = await t.pool.query("SELECT action, actor_sub, details FROM audit_events WHERE resource_type = 'donor' AND resource_id = $1 ORDER BY id", [d.id]);
    expect(rows).toHaveLength(1 + ALWAYS_REQUIRED.length + 1);
    expect(rows[0]).toMatchObject({ action: 'create', actor_sub: 'qa-unit' });
    expect(rows.at(-1).details).toMatchObject({ status: 'eligible' });
  });
});
