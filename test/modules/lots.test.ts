import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { createDonor, createLot, eligibleDonor, lotBody, releasedLot } from '../support/fixtures.js';

let t: TestApp;
let supplier: string;
beforeAll(async () => {
  t = await createTestApp();
  supplier = await t.token({ scope: 'lots:read lots:write', clinic: null, sub: 'qa-unit' });
});
afterAll(() => t.close());
const auth = (token = supplier) => ['authorization', `Bearer ${token}`] as const;

describe('lots', () => {
  it('records a lot in quarantine, with particle counts that round-trip exactly', async () => {
    const donor = await eligibleDonor(t.http, supplier);
    const body = lotBody([donor.id], { characterization: { ...lotBody([]).characterization, particlesPerMl: 1_234_567_890_123 } });
    const res = await t.http.post('/v1/lots').set(...auth()).send(body);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ status: 'quarantine', donorIds: [donor.id], vialsShipped: 0, version: 1 });
    expect(res.body.characterization.particlesPerMl).toBe(1_234_567_890_123);
    expect(res.body.statusChanges).toEqual([expect.objectContaining({ status: 'quarantine', cause: 'created', effectiveAt: '2026-02-01T00:00:00.000Z' })]);
    const read = await t.http.get(`/v1/lots/${res.body.id}`).set(...auth());
    expect(read.body).toEqual(res.body);
  });

  it('refuses a duplicate lot number per manufacturer (409) but not across manufacturers', async () => {
    const donor = await createDonor(t.http, supplier);
    const first = await createLot(t.http, supplier, [donor.id]);
    const lot = (await t.http.get(`/v1/lots/${first.id}`).set(...auth())).body;
    const dup = await t.http.post('/v1/lots').set(...auth()).send(lotBody([donor.id], { lotNumber: lot.lotNumber }));
    expect(dup.status).toBe(409);
    expect(dup.body.code).toBe('duplicate-lot-number');
    const other = await t.http.post('/v1/lots').set(...auth()).send(lotBody([donor.id], { lotNumber: lot.lotNumber, manufacturer: 'Other Labs' }));
    expect(other.status).toBe(201);
  });

  it('refuses pooling without justification (422), unknown donors (422), bad dates and counts (400)', async () => {
    const a = await createDonor(t.http, supplier);
    const b = await createDonor(t.http, supplier);
    const pooled = await t.http.post('/v1/lots').set(...auth()).send(lotBody([a.id, b.id]));
    expect(pooled.status).toBe(422);
    expect(pooled.body.code).toBe('pooling-not-justified');
    const justified = await t.http.post('/v1/lots').set(...auth()).send(lotBody([a.id, b.id], { poolingJustification: 'Autologous-equivalent cord pair, IRB approved' }));
    expect(justified.status).toBe(201);
    const unknown = await t.http.post('/v1/lots').set(...auth()).send(lotBody(['01900000-0000-7000-8000-000000000000']));
    expect(unknown.status).toBe(422);
    expect(unknown.body.code).toBe('unknown-donor');
    expect((await t.http.post('/v1/lots').set(...auth()).send(lotBody([a.id], { expiresOn: '2026-01-01' }))).status).toBe(400);
    expect((await t.http.post('/v1/lots').set(...auth()).send(lotBody([a.id], { vialCount: 0 }))).status).toBe(400);
    expect((await t.http.post('/v1/lots').set(...auth()).send(lotBody([a.id], { isolationMethod: 'magic' }))).status).toBe(400);
    expect((await t.http.post('/v1/lots').set(...auth()).send(lotBody([a.id], { characterization: { ...lotBody([]).characterization, particlesPerMl: -1 } }))).status).toBe(400);
  });

  it('filters lots by status, manufacturer, lot number and donor', async () => {
    const { donor, lot } = await releasedLot(t.http, supplier, { manufacturer: 'Filter Labs' });
    const byDonor = await t.http.get('/v1/lots').query({ donorId: donor.id }).set(...auth());
    expect(byDonor.body.items.map((l: { id: string }) => l.id)).toEqual([lot.id]);
    const byStatus = await t.http.get('/v1/lots').query({ status: 'released', manufacturer: 'Filter Labs' }).set(...auth());
    expect(byStatus.body.items.map((l: { id: string }) => l.id)).toEqual([lot.id]);
    const none = await t.http.get('/v1/lots').query({ status: 'recalled', manufacturer: 'Filter Labs' }).set(...auth());
    expect(none.body.items).toEqual([]);
  });
});

describe('release', () => {
  it('lists every unmet criterion in one 422 and changes nothing', async () => {
    const donor = await createDonor(t.http, supplier); // never determined eligible
    const lot = await createLot(t.http, supplier, [donor.id], {
      characterization: undefined,
      releaseTests: { sterility: 'pending', mycoplasma: 'fail', endotoxinEuPerMl: 0.9 },
    });
    const res = await t.http.post(`/v1/lots/${lot.id}/release`).set(...auth()).send({ releasedAt: '2026-03-01T00:00:00Z' });
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('lot-release-criteria-unmet');
    expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual([
      `donors.${donor.id}`,
      'releaseTests.sterility',
      'releaseTests.mycoplasma',
      'releaseTests.endotoxinEuPerMl',
      'characterization',
    ]);
    const after = (await t.http.get(`/v1/lots/${lot.id}`).set(...auth())).body;
    expect(after).toMatchObject({ status: 'quarantine', version: 1 });
  });

  it('releases once results arrive (PATCH under If-Match), recording who and when', async () => {
    const donor = await eligibleDonor(t.http, supplier);
    const lot = await createLot(t.http, supplier, [donor.id], { releaseTests: { sterility: 'pending', mycoplasma: 'pending', endotoxinEuPerMl: null } });
    const patch = await t.http
      .patch(`/v1/lots/${lot.id}`)
      .set(...auth())
      .set('if-match', '"1"')
      .send({ releaseTests: { sterility: 'pass', mycoplasma: 'pass', endotoxinEuPerMl: 0.2 } });
    expect(patch.status).toBe(200);
    expect(patch.body.version).toBe(2);
    const res = await t.http.post(`/v1/lots/${lot.id}/release`).set(...auth()).send({ releasedAt: '2026-03-01T09:00:00+01:00', reason: 'QA review complete' });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('released');
    expect(res.body.statusChanges.at(-1)).toMatchObject({ status: 'released', effectiveAt: '2026-03-01T08:00:00.000Z', changedBy: 'qa-unit', reason: 'QA review complete' });
    const late = await t.http.patch(`/v1/lots/${lot.id}`).set(...auth()).set('if-match', `"${res.body.version}"`).send({ releaseTests: { sterility: 'fail' } });
    expect(late.status).toBe(409);
  });

  it('refuses release of an expired lot, before the donor was eligible, in the future, or twice', async () => {
    const donor = await eligibleDonor(t.http, supplier, {}, '2026-02-10T00:00:00Z');
    const lot = await createLot(t.http, supplier, [donor.id], { expiresOn: '2026-06-30' });
    const beforeEligible = await t.http.post(`/v1/lots/${lot.id}/release`).set(...auth()).send({ releasedAt: '2026-02-05T00:00:00Z' });
    expect(beforeEligible.status).toBe(422);
    expect(beforeEligible.body.errors).toEqual([{ path: `donors.${donor.id}`, message: 'donor has no eligibility determination by then' }]);
    const expired = await t.http.post(`/v1/lots/${lot.id}/release`).set(...auth()).send({});
    expect(expired.status).toBe(422);
    expect(expired.body.errors).toEqual([{ path: 'expiresOn', message: 'expired on 2026-06-30' }]);
    const future = await t.http.post(`/v1/lots/${lot.id}/release`).set(...auth()).send({ releasedAt: '2999-01-01T00:00:00Z' });
    expect(future.status).toBe(422);
    expect(future.body.code).toBe('time-in-future');
    expect((await t.http.post(`/v1/lots/${lot.id}/release`).set(...auth()).send({ releasedAt: '2026-03-01T00:00:00Z' })).status).toBe(200);
    const twice = await t.http.post(`/v1/lots/${lot.id}/release`).set(...auth()).send({});
    expect(twice.status).toBe(409);
    expect(twice.body.code).toBe('lot-not-in-quarantine');
  });
});

describe('quarantine and recall', () => {
  it('quarantines only a released lot, keeps changes in time order, and recall is final', async () => {
    const { lot } = await releasedLot(t.http, supplier);
    const backdated = await t.http.post(`/v1/lots/${lot.id}/quarantine`).set(...auth()).send({ reason: 'x', effectiveAt: '2026-02-15T00:00:00Z' });
    expect(backdated.status).toBe(422);
    expect(backdated.body.code).toBe('effective-time-out-of-order');
    const q = await t.http.post(`/v1/lots/${lot.id}/quarantine`).set(...auth()).send({ reason: 'Temperature excursion in transit', effectiveAt: '2026-04-01T00:00:00Z' });
    expect(q.status).toBe(200);
    expect(q.body.status).toBe('quarantine');
    expect((await t.http.post(`/v1/lots/${lot.id}/quarantine`).set(...auth()).send({ reason: 'again' })).status).toBe(409);
    expect((await t.http.post(`/v1/lots/${lot.id}/recall`).set(...auth()).send({})).status).toBe(400);

    const recall = await t.http.post(`/v1/lots/${lot.id}/recall`).set(...auth()).send({ reason: 'Excursion confirmed', recalledAt: '2026-04-02T00:00:00Z' });
    expect(recall.status).toBe(200);
    expect(recall.body).toMatchObject({ status: 'recalled', affectedRecipients: 0, affectedClinics: 0 });
    expect(recall.body.statusChanges.map((c: { status: string }) => c.status)).toEqual(['quarantine', 'released', 'quarantine', 'recalled']);
    const again = await t.http.post(`/v1/lots/${lot.id}/recall`).set(...auth()).send({ reason: 'again' });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('lot-already-recalled');
    expect((await t.http.post(`/v1/lots/${lot.id}/release`).set(...auth()).send({})).status).toBe(409);
  });

  it('audits every lot change with the effective time, and keeps every version', async () => {
    const { lot } = await releasedLot(t.http, supplier);
    await t.http.post(`/v1/lots/${lot.id}/recall`).set(...auth()).send({ reason: 'Drill', recalledAt: '2026-05-01T00:00:00Z' });
    const { rows } = await t.pool.query("SELECT action, details FROM audit_events WHERE resource_type = 'lot' AND resource_id = $1 ORDER BY id", [lot.id]);
    expect(rows.map((r) => [r.action, r.details.status ?? null])).toEqual([
      ['create', null],
      ['state-change', 'released'],
      ['state-change', 'recalled'],
    ]);
    expect(rows[2].details.effectiveAt).toBe('2026-05-01T00:00:00.000Z');
    const versions = await t.pool.query("SELECT version, body->>'status' AS status FROM record_versions WHERE resource_type = 'lot' AND resource_id = $1 ORDER BY version", [lot.id]);
    expect(versions.rows).toEqual([
      { version: 1, status: 'quarantine' },
      { version: 2, status: 'released' },
      { version: 3, status: 'recalled' },
    ]);
  });
});
