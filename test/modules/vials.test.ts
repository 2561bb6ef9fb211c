import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { createLot, eligibleDonor, releasedLot } from '../support/fixtures.js';

let t: TestApp;
let supplier: string;
let clinicA: string;
beforeAll(async () => {
  t = await createTestApp();
  supplier = await t.token({ scope: 'lots:read lots:write', clinic: null, sub: 'qa-unit' });
  clinicA = await t.token({ scope: 'lots:read lots:write', clinic: 'clinic-a', sub: 'nurse-a' });
});
afterAll(() => t.close());
const auth = (token = supplier) => ['authorization', `Bearer ${token}`] as const;

const ship = (lotId: string, clinicId: string, vials: number, shippedAt?: string, http = t.http) =>
  http
    .post(`/v1/lots/${lotId}/shipments`)
    .set(...auth())
    .send({ clinicId, vials, ...(shippedAt ? { shippedAt } : {}) });

describe('shipments', () => {
  it('ships a released lot and accounts the vials per clinic', async () => {
    const { lot } = await releasedLot(t.http, supplier);
    const res = await ship(lot.id, 'clinic-a', 10, '2026-03-02T10:00:00Z');
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ lotId: lot.id, clinicId: 'clinic-a', vials: 10, shippedAt: '2026-03-02T10:00:00.000Z', recordedBy: 'qa-unit' });
    expect((await ship(lot.id, 'clinic-b', 5)).status).toBe(201);
    const inv = await t.http.get(`/v1/lots/${lot.id}/inventory`).set(...auth());
    expect(inv.body).toEqual({
      lotId: lot.id,
      vialCount: 100,
      vialsShipped: 15,
      vialsUnshipped: 85,
      clinics: [
        { clinicId: 'clinic-a', shipped: 10, administered: 0, discarded: 0, returned: 0, recalled: 0, expired: 0, onHand: 10 },
        { clinicId: 'clinic-b', shipped: 5, administered: 0, discarded: 0, returned: 0, recalled: 0, expired: 0, onHand: 5 },
      ],
    });
    const list = await t.http.get(`/v1/lots/${lot.id}/shipments`).set(...auth());
    expect(list.body.items.map((s: { clinicId: string }) => s.clinicId)).toEqual(['clinic-a', 'clinic-b']);
  });

  it('refuses a lot in quarantine, a shipment dated before release or after expiry, and more vials than remain', async () => {
    const donor = await eligibleDonor(t.http, supplier);
    const quarantined = await createLot(t.http, supplier, [donor.id]);
    const q = await ship(quarantined.id, 'clinic-a', 1);
    expect(q.status).toBe(422);
    expect(q.body.code).toBe('lot-not-released');

    const { lot } = await releasedLot(t.http, supplier, { vialCount: 5, expiresOn: '2026-06-30' });
    const beforeRelease = await ship(lot.id, 'clinic-a', 1, '2026-02-20T00:00:00Z');
    expect(beforeRelease.status).toBe(422);
    expect(beforeRelease.body.code).toBe('lot-not-released');
    const expired = await ship(lot.id, 'clinic-a', 1, '2026-07-01T00:00:00Z');
    expect(expired.status).toBe(422);
    expect(expired.body.code).toBe('lot-expired');
    const tooMany = await ship(lot.id, 'clinic-a', 6, '2026-03-05T00:00:00Z');
    expect(tooMany.status).toBe(422);
    expect(tooMany.body.code).toBe('insufficient-vials');
    expect((await t.http.get(`/v1/lots/${lot.id}/inventory`).set(...auth())).body.vialsShipped).toBe(0);
  });

  it('records a late shipment made while the lot was released, even after a recall', async () => {
    const { lot } = await releasedLot(t.http, supplier);
    await t.http.post(`/v1/lots/${lot.id}/recall`).set(...auth()).send({ reason: 'Drill', recalledAt: '2026-05-01T00:00:00Z' });
    expect((await ship(lot.id, 'clinic-a', 2, '2026-04-01T00:00:00Z')).status).toBe(201);
    expect((await ship(lot.id, 'clinic-a', 2, '2026-05-02T00:00:00Z')).status).toBe(422);
  });

  it('never oversells: 40 parallel one-vial shipments over two instances against 25 vials, exactly 25 succeed', async () => {
    const { lot } = await releasedLot(t.http, supplier, { vialCount: 25 });
    const second = await t.another();
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => ship(lot.id, `clinic-${i % 4}`, 1, undefined, i % 2 ? second.http : t.http)),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(25);
    expect(statuses.filter((s) => s === 422)).toHaveLength(15);
    expect(results.filter((r) => r.status === 422).every((r) => r.body.code === 'insufficient-vials')).toBe(true);
    const inv = (await t.http.get(`/v1/lots/${lot.id}/inventory`).set(...auth())).body;
    expect(inv.vialsShipped).toBe(25);
    expect(inv.vialsUnshipped).toBe(0);
    expect(inv.clinics.reduce((n: number, c: { shipped: number }) => n + c.shipped, 0)).toBe(25);
    const { rows } = await t.pool.query('SELECT coalesce(sum(vials), 0)::int AS n FROM shipments WHERE lot_id = $1', [lot.id]);
    expect(rows[0].n).toBe(25);
  });

  it('lets a clinic token act only for its own clinic', async () => {
    const { lot } = await releasedLot(t.http, supplier);
    const other = await t.http.post(`/v1/lots/${lot.id}/shipments`).set(...auth(clinicA)).send({ clinicId: 'clinic-b', vials: 1 });
    expect(other.status).toBe(403);
    expect(other.body.code).toBe('clinic-mismatch');
  });
});

describe('discards', () => {
  it('discards vials on hand, never more, and a clinic sees only its own stock', async () => {
    const { lot } = await releasedLot(t.http, supplier);
    await ship(lot.id, 'clinic-a', 3);
    await ship(lot.id, 'clinic-b', 4);
    const res = await t.http.post(`/v1/lots/${lot.id}/discards`).set(...auth(clinicA)).send({ clinicId: 'clinic-a', vials: 2, reason: 'Vial cracked on thaw' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ clinicId: 'clinic-a', vials: 2, reason: 'Vial cracked on thaw', recordedBy: 'nurse-a' });
    const tooMany = await t.http.post(`/v1/lots/${lot.id}/discards`).set(...auth(clinicA)).send({ clinicId: 'clinic-a', vials: 2, reason: 'x' });
    expect(tooMany.status).toBe(422);
    expect(tooMany.body.code).toBe('insufficient-vials');
    expect(tooMany.body.detail).toContain('holds 1 vial(s)');
    const notShipped = await t.http.post(`/v1/lots/${lot.id}/discards`).set(...auth()).send({ clinicId: 'clinic-z', vials: 1, reason: 'x' });
    expect(notShipped.status).toBe(422);
    const mine = (await t.http.get(`/v1/lots/${lot.id}/inventory`).set(...auth(clinicA))).body;
    expect(mine.clinics).toEqual([{ clinicId: 'clinic-a', shipped: 3, administered: 0, discarded: 2, returned: 0, recalled: 0, expired: 0, onHand: 1 }]);
    expect((await t.http.get(`/v1/lots/${lot.id}/shipments`).set(...auth(clinicA))).body.items).toHaveLength(1);
    expect((await t.http.get(`/v1/lots/${lot.id}/discards`).set(...auth())).body.items).toHaveLength(1);
  });

  it('never discards below zero under concurrency', async () => {
    const { lot } = await releasedLot(t.http, supplier);
    await ship(lot.id, 'clinic-a', 5);
    const results = await Promise.all(
      Array.from({ length: 12 }, () => t.http.post(`/v1/lots/${lot.id}/discards`).set(...auth()).send({ clinicId: 'clinic-a', vials: 1, reason: 'expired at clinic' })),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(5);
    const inv = (await t.http.get(`/v1/lots/${lot.id}/inventory`).set(...auth())).body;
    expect(inv.clinics[0]).toMatchObject({ discarded: 5, onHand: 0 });
  });

  it('audits shipments and discards with the receiving clinic', async () => {
    const { lot } = await releasedLot(t.http, supplier);
    const s = await ship(lot.id, 'clinic-a', 2);
    const d = await t.http.post(`/v1/lots/${lot.id}/discards`).set(...auth()).send({ clinicId: 'clinic-a', vials: 1, reason: 'x' });
    const { rows } = await t.pool.query('SELECT resource_type, clinic_id, details FROM audit_events WHERE resource_id = ANY($1) ORDER BY id', [[s.body.id, d.body.id]]);
    expect(rows).toEqual([
      { resource_type: 'shipment', clinic_id: 'clinic-a', details: { lotId: lot.id, vials: 2 } },
      { resource_type: 'discard', clinic_id: 'clinic-a', details: { lotId: lot.id, vials: 1 } },
    ]);
  });

  it('answers 404 for an unknown lot', async () => {
    const id = '01900000-0000-7000-8000-000000000000';
    expect((await ship(id, 'clinic-a', 1)).status).toBe(404);
    expect((await t.http.get(`/v1/lots/${id}/inventory`).set(...auth())).status).toBe(404);
  });
});
