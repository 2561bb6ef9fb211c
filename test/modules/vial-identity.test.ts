import fc from 'fast-check';
import type { Response } from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { clinicSetup, consentBody, createLot, eligibleDonor, lotBody, patientBody, procedureBody, releasedLot, uniq } from '../support/fixtures.js';

/**
 * Vial identity (issue 15; contract "Vials"): every vial of a lot is a row with a barcode, moved one by one
 * (shipped, received, administered, discarded, returned, recalled), each movement in its custody, and the
 * inventory derived from the vials. Everything is checked through HTTP, as a client would see it.
 */

let t: TestApp;
/** The supplier's quality unit: no clinic, sees every vial. */
let supplier: string;
let donorId: string;
beforeAll(async () => {
  t = await createTestApp();
  supplier = await t.token({ scope: 'lots:read lots:write reports:read', clinic: null, sub: 'qa-unit' });
  donorId = (await eligibleDonor(t.http, supplier)).id;
});
afterAll(() => t.close());

type Http = TestApp['http'];
const auth = (token: string) => ['authorization', `Bearer ${token}`] as const;

interface Vial {
  id: string;
  lotId: string;
  lotNumber: string;
  sequence: number;
  barcode: string;
  status: string;
  clinicId: string | null;
  usedBy: string | null;
  receivedAt: string | null;
  expiresOn: string;
}
interface Custody {
  at: string;
  action: string;
  clinicId: string | null;
  by: string;
  procedureId?: string;
  shipmentId?: string;
  discardId?: string;
  returnId?: string;
  reason?: string;
  recordedAt: string;
}
interface ClinicStock {
  clinicId: string;
  shipped: number;
  administered: number;
  discarded: number;
  returned: number;
  recalled: number;
  expired: number;
  onHand: number;
}

/** A clinic's inventory/vial token (lots:read lots:write), as a clinic's stock software would hold. */
const clinicLots = (clinic: string) => t.token({ scope: 'lots:read lots:write', clinic, sub: `stock-${clinic}` });

/** Every page of a vial list. */
async function allPages<T>(path: string, query: Record<string, string | number>, token: string): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 50; i++) {
    const res: Response = await t.http
      .get(path)
      .query({ ...query, limit: 200, ...(cursor ? { cursor } : {}) })
      .set(...auth(token));
    expect(res.status, `${path} ${JSON.stringify(query)}: ${JSON.stringify(res.body)}`).toBe(200);
    items.push(...(res.body.items as T[]));
    cursor = res.body.nextCursor;
    if (!cursor) return items;
  }
  throw new Error('too many pages');
}
const lotVials = (lotId: string, query: Record<string, string> = {}, token = supplier) => allPages<Vial>(`/v1/lots/${lotId}/vials`, query, token);
const findVials = (query: Record<string, string>, token = supplier) => allPages<Vial>('/v1/vials', query, token);
const custodyOf = (vialId: string, token = supplier) => allPages<Custody>(`/v1/vials/${vialId}/custody`, {}, token);

async function inventory(lotId: string, token = supplier) {
  const res = await t.http.get(`/v1/lots/${lotId}/inventory`).set(...auth(token));
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as { lotId: string; vialCount: number; vialsShipped: number; vialsUnshipped: number; clinics: ClinicStock[] };
}
const clinicStock = async (lotId: string, clinicId: string, token = supplier) => (await inventory(lotId, token)).clinics.find((c) => c.clinicId === clinicId);

const ship = (lotId: string, body: Record<string, unknown>, token = supplier, http: Http = t.http) =>
  http.post(`/v1/lots/${lotId}/shipments`).set(...auth(token)).send({ shippedAt: '2026-03-02T08:00:00Z', ...body });
const discard = (lotId: string, body: Record<string, unknown>, token = supplier) =>
  t.http.post(`/v1/lots/${lotId}/discards`).set(...auth(token)).send({ reason: 'Vial cracked on thaw', ...body });
const giveBack = (lotId: string, body: Record<string, unknown>, token = supplier) =>
  t.http.post(`/v1/lots/${lotId}/returns`).set(...auth(token)).send({ reason: 'Returned unused to the manufacturer', ...body });
const postProcedure = (token: string, body: object, http: Http = t.http) => http.post('/v1/procedures').set(...auth(token)).send(body);
/** A procedure body naming its vials by barcode (vialsUsed left out, as a scanning client would). */
const scanned = (patientId: string, lotId: string, barcodes: string[], overrides: Record<string, unknown> = {}) =>
  procedureBody(patientId, lotId, { vialsUsed: undefined, vialBarcodes: barcodes, ...overrides });

/** A clinician and a consented patient at `clinic` (consent signed 2026-02-15). */
async function patientAt(clinic: string) {
  const clinician = await t.token({ scope: 'patients:read patients:write clinical:read clinical:write lots:read', clinic, sub: `dr-${clinic}` });
  const patient = await t.http.post('/v1/patients').set(...auth(clinician)).send(patientBody());
  expect(patient.status, JSON.stringify(patient.body)).toBe(201);
  const consent = await t.http.post(`/v1/patients/${patient.body.id}/consents`).set(...auth(clinician)).send(consentBody({ signedAt: '2026-02-15T09:00:00Z' }));
  expect(consent.status, JSON.stringify(consent.body)).toBe(201);
  return { clinician, patientId: patient.body.id as string };
}

/** The problem names `name` in its detail and in one of its errors' messages. */
function expectNames(res: Response, code: string, name: string) {
  expect(res.status, JSON.stringify(res.body)).toBe(422);
  expect(res.body.code, JSON.stringify(res.body)).toBe(code);
  expect(res.headers['content-type']).toMatch(/problem\+json/);
  expect(res.body.detail, JSON.stringify(res.body)).toContain(name);
  expect((res.body.errors as { message: string }[]).some((e) => e.message.includes(name)), JSON.stringify(res.body.errors)).toBe(true);
}
/** Which of `candidates` a problem names (in its errors). */
const namedIn = (res: Response, candidates: string[]) =>
  candidates.filter((c) => ((res.body.errors ?? []) as { message: string }[]).some((e) => e.message.includes(c)));

const pick = (v: Vial) => ({ status: v.status, clinicId: v.clinicId, usedBy: v.usedBy, receivedAt: v.receivedAt });
const bySeq = (vials: Vial[]) => new Map(vials.map((v) => [v.sequence, v]));

// ---------------------------------------------------------------------------------------------------------

describe('procedures naming vials under concurrency', () => {
  it('40 parallel procedures over two instances naming overlapping barcodes: each vial used once, each answer its own vials, each refusal names a taken vial', async () => {
    const s = await clinicSetup(t, { vials: 10 });
    const second = await t.another();
    const atClinic = await lotVials(s.lot.id, { clinicId: 'clinic-a' });
    expect(atClinic.map((v) => v.sequence)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const b = atClinic.map((v) => v.barcode);
    const named = Array.from({ length: 40 }, (_, i) => {
      const first = i % 10;
      if (i % 3 === 0) return [b[first]!];
      let other = (i * 7 + 3) % 10;
      if (other === first) other = (first + 1) % 10;
      return [b[other]!, b[first]!]; // not always in sequence order, as a nurse scans them
    });
    const results = await Promise.all(
      named.map((names, i) =>
        postProcedure(s.clinician, scanned(s.patientId, s.lot.id, names, i % 4 === 1 ? { vialsUsed: names.length } : {}), i % 2 ? second.http : t.http),
      ),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.every((st) => st === 201 || st === 422), JSON.stringify(statuses)).toBe(true);

    const ok = results.map((r, i) => ({ r, names: named[i]! })).filter((x) => x.r.status === 201);
    const refused = results.map((r, i) => ({ r, names: named[i]! })).filter((x) => x.r.status === 422);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    expect(ok.length).toBeLessThanOrEqual(10);

    // Each success answers exactly the vials it named (in sequence order), and no vial twice across successes.
    const takenBy = new Map<string, string>();
    for (const { r, names } of ok) {
      const expected = [...names].sort((x, y) => b.indexOf(x) - b.indexOf(y));
      expect(r.body.vials.map((v: { barcode: string }) => v.barcode)).toEqual(expected);
      expect(r.body.vialsUsed).toBe(names.length);
      for (const v of r.body.vials as { id: string; barcode: string }[]) {
        expect(takenBy.has(v.barcode), `${v.barcode} answered to two procedures`).toBe(false);
        takenBy.set(v.barcode, r.body.id);
        expect(v.id).toBe(atClinic[b.indexOf(v.barcode)]!.id);
      }
    }
    // Each refusal is vial-not-available and names only vials it asked for that another procedure took.
    for (const { r, names } of refused) {
      expect(r.body.code, JSON.stringify(r.body)).toBe('vial-not-available');
      const blamed = namedIn(r, b);
      expect(blamed.length, JSON.stringify(r.body)).toBeGreaterThanOrEqual(1);
      for (const x of blamed) {
        expect(names, `refusal names ${x}, which it did not ask for`).toContain(x);
        expect(takenBy.has(x), `refusal names ${x}, which no procedure took`).toBe(true);
        expect(r.body.detail).toContain(x);
      }
    }

    // The vials, their custody, the procedures and the inventory agree.
    const after = await lotVials(s.lot.id, { clinicId: 'clinic-a' });
    for (const v of after) {
      const owner = takenBy.get(v.barcode);
      expect({ barcode: v.barcode, status: v.status, usedBy: v.usedBy }).toEqual({ barcode: v.barcode, status: owner ? 'administered' : 'at-clinic', usedBy: owner ?? null });
      const administered = (await custodyOf(v.id)).filter((c) => c.action === 'administered');
      expect(administered.map((c) => c.procedureId)).toEqual(owner ? [owner] : []);
    }
    const listed = await t.http.get('/v1/procedures').query({ lotId: s.lot.id, limit: 200 }).set(...auth(s.clinician));
    expect(listed.body.items).toHaveLength(ok.length);
    const answered = new Map(ok.map(({ r }) => [r.body.id as string, r.body.vials]));
    for (const p of listed.body.items as { id: string; vials: { id: string; barcode: string }[] }[]) {
      expect.soft(p.vials, `GET /v1/procedures?lotId= item ${p.id}`).toEqual(answered.get(p.id));
    }
    const read = await t.http.get(`/v1/procedures/${ok[0]!.r.body.id}`).set(...auth(s.clinician));
    expect.soft(read.body.vials, 'GET /v1/procedures/{id}').toEqual(ok[0]!.r.body.vials);
    expect(await clinicStock(s.lot.id, 'clinic-a')).toMatchObject({ shipped: 10, administered: takenBy.size, onHand: 10 - takenBy.size });
  }, 60_000);

  it('40 parallel procedures without barcodes over two instances against 10 vials: exactly 10 succeed, each with its own vial', async () => {
    const s = await clinicSetup(t, { vials: 10 });
    const second = await t.another();
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => postProcedure(s.clinician, procedureBody(s.patientId, s.lot.id, { vialsUsed: 1 }), i % 2 ? second.http : t.http)),
    );
    const ok = results.filter((r) => r.status === 201);
    expect(ok).toHaveLength(10);
    const refused = results.filter((r) => r.status !== 201);
    expect(refused.map((r) => `${r.status} ${r.body.code}`)).toEqual(Array(30).fill('422 insufficient-vials'));
    const ids = ok.map((r) => {
      expect(r.body.vials).toHaveLength(1);
      return r.body.vials[0].id as string;
    });
    expect(new Set(ids).size).toBe(10);
    const vials = await lotVials(s.lot.id, { clinicId: 'clinic-a' });
    expect(new Set(ids)).toEqual(new Set(vials.map((v) => v.id)));
    for (const r of ok) expect(vials.find((v) => v.id === r.body.vials[0].id)!.usedBy).toBe(r.body.id);
    expect(await clinicStock(s.lot.id, 'clinic-a')).toMatchObject({ shipped: 10, administered: 10, onHand: 0 });
  }, 60_000);
});

describe('a procedure naming a vial it may not use', () => {
  it('refuses another clinic\'s vial, another lot\'s, a used one, one still in stock and an unknown barcode, naming each, and changes nothing', async () => {
    const s = await clinicSetup(t, { vials: 10 }); // lot L: sequences 1..10 at clinic-a
    expect((await ship(s.lot.id, { clinicId: 'clinic-b', vials: 5 })).status).toBe(201); // 11..15 at clinic-b
    const { lot: other } = await releasedLot(t.http, supplier);
    expect((await ship(other.id, { clinicId: 'clinic-a', vials: 2 })).status).toBe(201);
    const l = bySeq(await lotVials(s.lot.id));
    const used = await postProcedure(s.clinician, scanned(s.patientId, s.lot.id, [l.get(1)!.barcode]));
    expect(used.status, JSON.stringify(used.body)).toBe(201);

    const cases: [string, string][] = [
      ['another clinic\'s stock', l.get(11)!.barcode],
      ['another lot', (await lotVials(other.id))[0]!.barcode],
      ['already used', l.get(1)!.barcode],
      ['not yet shipped', l.get(50)!.barcode],
      ['unknown', `NO-SUCH-${uniq()}`],
    ];
    const before = [...(await lotVials(s.lot.id)), ...(await lotVials(other.id))];
    for (const [what, barcode] of cases) {
      const alone = await postProcedure(s.clinician, scanned(s.patientId, s.lot.id, [barcode]));
      expectNames(alone, 'vial-not-available', barcode);
      // With a good vial beside it: still refused, naming only the bad one; the good one is not taken.
      const mixed = await postProcedure(s.clinician, scanned(s.patientId, s.lot.id, [l.get(2)!.barcode, barcode]));
      expectNames(mixed, 'vial-not-available', barcode);
      expect(mixed.body.detail, what).not.toContain(l.get(2)!.barcode);
    }
    // By id: the vial of another clinic is named by its id.
    const byId = await postProcedure(s.clinician, procedureBody(s.patientId, s.lot.id, { vialsUsed: undefined, vialIds: [l.get(12)!.id] }));
    expectNames(byId, 'vial-not-available', l.get(12)!.id);

    const after = [...(await lotVials(s.lot.id)), ...(await lotVials(other.id))];
    expect(after.map(pick)).toEqual(before.map(pick));
    const procs = await t.http.get('/v1/procedures').query({ lotId: s.lot.id }).set(...auth(s.clinician));
    expect(procs.body.items.map((p: { id: string }) => p.id)).toEqual([used.body.id]);
    expect((await t.http.get('/v1/procedures').query({ lotId: other.id }).set(...auth(s.clinician))).body.items).toEqual([]);
    expect(await clinicStock(s.lot.id, 'clinic-a')).toMatchObject({ administered: 1, onHand: 9 });
  }, 60_000);

  it('refuses malformed vial lists with 400: both vialIds and vialBarcodes, vialsUsed not their number, a barcode twice, no vials at all', async () => {
    const s = await clinicSetup(t, { vials: 3 });
    const [v1, v2] = await lotVials(s.lot.id, { clinicId: 'clinic-a' });
    const bodies: [string, object][] = [
      ['both lists', procedureBody(s.patientId, s.lot.id, { vialsUsed: undefined, vialIds: [v1!.id], vialBarcodes: [v2!.barcode] })],
      ['vialsUsed 1 for 2 barcodes', scanned(s.patientId, s.lot.id, [v1!.barcode, v2!.barcode], { vialsUsed: 1 })],
      ['vialsUsed 3 for 2 ids', procedureBody(s.patientId, s.lot.id, { vialsUsed: 3, vialIds: [v1!.id, v2!.id] })],
      ['a barcode twice', scanned(s.patientId, s.lot.id, [v1!.barcode, v1!.barcode])],
      ['nothing', procedureBody(s.patientId, s.lot.id, { vialsUsed: undefined })],
    ];
    for (const [what, body] of bodies) {
      const res = await postProcedure(s.clinician, body);
      expect(res.status, `${what}: ${JSON.stringify(res.body)}`).toBe(400);
    }
    expect(await clinicStock(s.lot.id, 'clinic-a')).toMatchObject({ administered: 0, onHand: 3 });
    const ok = await postProcedure(s.clinician, scanned(s.patientId, s.lot.id, [v2!.barcode, v1!.barcode], { vialsUsed: 2 }));
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    expect(ok.body.vials).toEqual([{ id: v1!.id, barcode: v1!.barcode }, { id: v2!.id, barcode: v2!.barcode }]);
  });
});

describe('lots and their barcodes', () => {
  it('makes vialCount vials with default barcodes {lotNumber}-NNNN, or the label list given; a scan finds the vial', async () => {
    const lot = await createLot(t.http, supplier, [donorId], { vialCount: 5 });
    const lotNumber = (await t.http.get(`/v1/lots/${lot.id}`).set(...auth(supplier))).body.lotNumber as string;
    const vials = await lotVials(lot.id);
    expect(vials.map((v) => [v.sequence, v.barcode, v.status, v.clinicId, v.usedBy, v.lotId, v.lotNumber, v.expiresOn, v.receivedAt])).toEqual(
      [1, 2, 3, 4, 5].map((n) => [n, `${lotNumber}-000${n}`, 'in-stock', null, null, lot.id, lotNumber, '2028-02-01', null]),
    );

    const manufacturer = `Label Works ${uniq()}`;
    const labels = [`=W0001${uniq()}`, `W0002${uniq()}`, `W0003 ${uniq()}`];
    const custom = await createLot(t.http, supplier, [donorId], { manufacturer, vialCount: 3, vialBarcodes: labels });
    expect((await lotVials(custom.id)).map((v) => [v.sequence, v.barcode])).toEqual([[1, labels[0]], [2, labels[1]], [3, labels[2]]]);
    const scan = await findVials({ barcode: labels[1]! });
    expect(scan.map((v) => [v.lotId, v.sequence, v.barcode])).toEqual([[custom.id, 2, labels[1]]]);
    const one = await t.http.get(`/v1/vials/${scan[0]!.id}`).set(...auth(supplier));
    expect(one.status).toBe(200);
    expect(one.body).toEqual(scan[0]);
    expect(await findVials({ barcode: `${labels[1]}x` })).toEqual([]);
  });

  it('keeps barcodes unique per manufacturer: 409 barcode-taken for the same manufacturer, none for another; a wrong list is 400', async () => {
    const manufacturer = `Label Works ${uniq()}`;
    const labels = [`A-${uniq()}`, `B-${uniq()}`];
    await createLot(t.http, supplier, [donorId], { manufacturer, vialCount: 2, vialBarcodes: labels });

    const fresh = `C-${uniq()}`;
    const clash = await t.http.post('/v1/lots').set(...auth(supplier)).send(lotBody([donorId], { manufacturer, vialCount: 2, vialBarcodes: [fresh, labels[1]] }));
    expect(clash.status, JSON.stringify(clash.body)).toBe(409);
    expect(clash.body.code).toBe('barcode-taken');
    expect(clash.body.detail).toContain(labels[1]);
    expect(await findVials({ barcode: fresh }), 'the refused lot made no vials').toEqual([]);

    const elsewhere = await createLot(t.http, supplier, [donorId], { manufacturer: `Other Labs ${uniq()}`, vialCount: 2, vialBarcodes: labels });
    const scan = await findVials({ barcode: labels[1]! });
    expect(scan).toHaveLength(2);
    expect(scan.map((v) => v.lotId)).toContain(elsewhere.id);

    for (const [what, patch] of [
      ['too few', { vialCount: 3, vialBarcodes: [`X-${uniq()}`, `Y-${uniq()}`] }],
      ['too many', { vialCount: 1, vialBarcodes: [`X-${uniq()}`, `Y-${uniq()}`] }],
      ['one twice', { vialCount: 2, vialBarcodes: ['SAME-1', 'SAME-1'] }],
      ['an empty one', { vialCount: 1, vialBarcodes: [''] }],
    ] as const) {
      const res = await t.http.post('/v1/lots').set(...auth(supplier)).send(lotBody([donorId], { manufacturer, ...patch }));
      expect(res.status, `${what}: ${JSON.stringify(res.body)}`).toBe(400);
    }
  });

  it('refuses a default barcode another lot of the manufacturer already carries on its label: 409 barcode-taken, not a 500', async () => {
    const manufacturer = `Label Works ${uniq()}`;
    const lotNumber = `EVX-${uniq()}`;
    await createLot(t.http, supplier, [donorId], { manufacturer, vialCount: 1, vialBarcodes: [`${lotNumber}-0001`] });
    const res = await t.http.post('/v1/lots').set(...auth(supplier)).send(lotBody([donorId], { manufacturer, lotNumber, vialCount: 2 }));
    expect(res.status, JSON.stringify(res.body)).toBe(409);
    expect(res.body.code).toBe('barcode-taken');
  });

  it('lets exactly one of 6 parallel lots (two instances) claim the same label: the others 409 barcode-taken', async () => {
    const manufacturer = `Label Works ${uniq()}`;
    const label = `RACE-${uniq()}`;
    const second = await t.another();
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        (i % 2 ? second.http : t.http).post('/v1/lots').set(...auth(supplier)).send(lotBody([donorId], { manufacturer, vialCount: 2, vialBarcodes: [`${label}-${i}`, label] })),
      ),
    );
    expect(results.map((r) => r.status).sort(), JSON.stringify(results.map((r) => r.body))).toEqual([201, 409, 409, 409, 409, 409]);
    expect(results.filter((r) => r.status === 409).every((r) => r.body.code === 'barcode-taken')).toBe(true);
    expect(await findVials({ barcode: label })).toHaveLength(1);
  }, 30_000);
});

describe('shipments name their vials', () => {
  it('ships by number, ids or barcodes and answers the vials in sequence order; refuses a named vial not in stock, naming it', async () => {
    const { lot } = await releasedLot(t.http, supplier, { vialCount: 20 });
    const v = bySeq(await lotVials(lot.id));
    const bc = (n: number) => v.get(n)!.barcode;
    const id = (n: number) => v.get(n)!.id;

    const byNumber = await ship(lot.id, { clinicId: 'clinic-a', vials: 3 });
    expect(byNumber.status, JSON.stringify(byNumber.body)).toBe(201);
    expect(byNumber.body).toMatchObject({ lotId: lot.id, clinicId: 'clinic-a', vials: 3, vialIds: [id(1), id(2), id(3)], barcodes: [bc(1), bc(2), bc(3)] });

    const byIds = await ship(lot.id, { clinicId: 'clinic-a', vialIds: [id(6), id(5)] });
    expect(byIds.status, JSON.stringify(byIds.body)).toBe(201);
    expect(byIds.body).toMatchObject({ vials: 2, vialIds: [id(5), id(6)], barcodes: [bc(5), bc(6)] });

    const byBarcodes = await ship(lot.id, { clinicId: 'clinic-b', barcodes: [bc(10), bc(8)] });
    expect(byBarcodes.status, JSON.stringify(byBarcodes.body)).toBe(201);
    expect(byBarcodes.body).toMatchObject({ clinicId: 'clinic-b', vials: 2, vialIds: [id(8), id(10)], barcodes: [bc(8), bc(10)] });

    const lowest = await ship(lot.id, { clinicId: 'clinic-b', vials: 2 });
    expect(lowest.body).toMatchObject({ vials: 2, barcodes: [bc(4), bc(7)] });

    // Named vials that are not in stock.
    const shippedAlready = await ship(lot.id, { clinicId: 'clinic-b', barcodes: [bc(9), bc(1)] });
    expectNames(shippedAlready, 'vial-not-available', bc(1));
    expect(shippedAlready.body.detail).not.toContain(bc(9));
    expectNames(await ship(lot.id, { clinicId: 'clinic-b', vialIds: [id(2)] }), 'vial-not-available', id(2));
    const unknown = `NOPE-${uniq()}`;
    expectNames(await ship(lot.id, { clinicId: 'clinic-b', barcodes: [unknown] }), 'vial-not-available', unknown);
    const { lot: otherLot } = await releasedLot(t.http, supplier, { vialCount: 2 });
    const otherBarcode = (await lotVials(otherLot.id))[0]!.barcode;
    expectNames(await ship(lot.id, { clinicId: 'clinic-b', barcodes: [otherBarcode] }), 'vial-not-available', otherBarcode);
    // Too many by number; none or several ways of naming them.
    const tooMany = await ship(lot.id, { clinicId: 'clinic-b', vials: 12 });
    expect(tooMany.status).toBe(422);
    expect(tooMany.body.code).toBe('insufficient-vials');
    for (const body of [{ clinicId: 'clinic-b' }, { clinicId: 'clinic-b', vials: 1, barcodes: [bc(9)] }, { clinicId: 'clinic-b', vialIds: [id(9)], barcodes: [bc(9)] }]) {
      expect((await ship(lot.id, body)).status, JSON.stringify(body)).toBe(400);
    }

    const after = bySeq(await lotVials(lot.id));
    expect([...after.values()].map((x) => `${x.sequence}:${x.status}:${x.clinicId}`).slice(0, 11)).toEqual([
      '1:at-clinic:clinic-a', '2:at-clinic:clinic-a', '3:at-clinic:clinic-a', '4:at-clinic:clinic-b', '5:at-clinic:clinic-a', '6:at-clinic:clinic-a',
      '7:at-clinic:clinic-b', '8:at-clinic:clinic-b', '9:in-stock:null', '10:at-clinic:clinic-b', '11:in-stock:null',
    ]);
    const inv = await inventory(lot.id);
    expect(inv).toMatchObject({ vialsShipped: 9, vialsUnshipped: 11 });
    expect(inv.clinics.map((c) => [c.clinicId, c.shipped, c.onHand])).toEqual([['clinic-a', 5, 5], ['clinic-b', 4, 4]]);
    const listed = await t.http.get(`/v1/lots/${lot.id}/shipments`).set(...auth(supplier));
    expect(listed.body.items.map((s: { id: string; barcodes: string[] }) => [s.id, s.barcodes])).toEqual([
      [byNumber.body.id, [bc(1), bc(2), bc(3)]],
      [byIds.body.id, [bc(5), bc(6)]],
      [byBarcodes.body.id, [bc(8), bc(10)]],
      [lowest.body.id, [bc(4), bc(7)]],
    ]);
  }, 60_000);

  it('keeps the custody: released, shipped (its shipment), received, administered (its procedure), in order', async () => {
    const { lot } = await releasedLot(t.http, supplier, { vialCount: 4 });
    const shipment = await ship(lot.id, { clinicId: 'clinic-a', vials: 2 });
    const vial = (await lotVials(lot.id))[0]!;
    const stock = await clinicLots('clinic-a');
    const receipt = await t.http.post(`/v1/vials/${vial.id}/receipt`).set(...auth(stock)).send({ receivedAt: '2026-03-03T10:15:00+01:00' });
    expect(receipt.status, JSON.stringify(receipt.body)).toBe(200);
    const { clinician, patientId } = await patientAt('clinic-a');
    const proc = await postProcedure(clinician, scanned(patientId, lot.id, [vial.barcode]));
    expect(proc.status, JSON.stringify(proc.body)).toBe(201);
    const custody = await custodyOf(vial.id);
    expect(custody.map((c) => c.action)).toEqual(['released', 'shipped', 'received', 'administered']);
    expect(custody[0]).toMatchObject({ at: '2026-03-01T09:00:00.000Z', by: 'qa-unit' });
    expect(custody[1]).toMatchObject({ at: '2026-03-02T08:00:00.000Z', clinicId: 'clinic-a', shipmentId: shipment.body.id, by: 'qa-unit' });
    expect(custody[2]).toMatchObject({ at: '2026-03-03T09:15:00.000Z', clinicId: 'clinic-a', by: 'stock-clinic-a' });
    expect(custody[3]).toMatchObject({ at: '2026-03-10T08:30:00.000Z', clinicId: 'clinic-a', procedureId: proc.body.id, by: 'dr-clinic-a' });
    expect(custody[3]!.shipmentId).toBeUndefined();
    // The clinic sees its vial's custody too; the untouched second vial has released and shipped only.
    expect((await custodyOf(vial.id, stock)).map((c) => c.action)).toEqual(['released', 'shipped', 'received', 'administered']);
    const secondVial = (await lotVials(lot.id))[1]!;
    expect((await custodyOf(secondVial.id)).map((c) => c.action)).toEqual(['released', 'shipped']);
  });
});

describe('receipt', () => {
  it('records a receipt once at the holding clinic: 422 before the shipment, 409 the second time or once used, 404 for another clinic\'s or an unshipped vial', async () => {
    const { lot } = await releasedLot(t.http, supplier, { vialCount: 10 });
    await ship(lot.id, { clinicId: 'clinic-a', vials: 3 });
    await ship(lot.id, { clinicId: 'clinic-b', vials: 1 });
    const v = bySeq(await lotVials(lot.id));
    const a = await clinicLots('clinic-a');
    const b = await clinicLots('clinic-b');
    const receive = (n: number, token: string, body: object = {}) => t.http.post(`/v1/vials/${v.get(n)!.id}/receipt`).set(...auth(token)).send(body);

    const early = await receive(1, a, { receivedAt: '2026-03-02T07:59:59Z' });
    expect(early.status, JSON.stringify(early.body)).toBe(422);
    expect(early.body.code).toBe('received-before-shipped');
    expect((await t.http.get(`/v1/vials/${v.get(1)!.id}`).set(...auth(a))).body.receivedAt).toBeNull();

    const ok = await receive(1, a, { receivedAt: '2026-03-03T10:00:00Z' });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body).toMatchObject({ id: v.get(1)!.id, status: 'at-clinic', clinicId: 'clinic-a', receivedAt: '2026-03-03T10:00:00.000Z', barcode: v.get(1)!.barcode });
    const twice = await receive(1, a, { receivedAt: '2026-03-04T10:00:00Z' });
    expect(twice.status).toBe(409);
    expect(twice.body.code).toBe('vial-already-received');
    expect((await t.http.get(`/v1/vials/${v.get(1)!.id}`).set(...auth(a))).body.receivedAt).toBe('2026-03-03T10:00:00.000Z');

    expect((await receive(4, a)).status, 'clinic-b\'s vial').toBe(404);
    expect((await receive(5, a)).status, 'a vial still in stock').toBe(404);
    expect((await t.http.post(`/v1/vials/01900000-0000-7000-8000-000000000000/receipt`).set(...auth(a)).send({})).status).toBe(404);
    const atB = await receive(4, b);
    expect(atB.status, JSON.stringify(atB.body)).toBe(200);
    expect(atB.body.receivedAt).not.toBeNull();

    // A vial already administered cannot be received.
    const { clinician, patientId } = await patientAt('clinic-a');
    expect((await postProcedure(clinician, scanned(patientId, lot.id, [v.get(2)!.barcode]))).status).toBe(201);
    const used = await receive(2, a);
    expect(used.status).toBe(409);
    expect(used.body.code).toBe('vial-not-at-clinic');

    const custody = await custodyOf(v.get(1)!.id);
    expect(custody.filter((c) => c.action === 'received')).toHaveLength(1);
  }, 30_000);
});

describe('clinic visibility', () => {
  it('shows a clinic token only the vials its clinic holds or held; a supplier sees all', async () => {
    const { lot } = await releasedLot(t.http, supplier, { vialCount: 8 });
    await ship(lot.id, { clinicId: 'clinic-a', vials: 3 });
    await ship(lot.id, { clinicId: 'clinic-b', vials: 2 });
    const v = bySeq(await lotVials(lot.id));
    const a = await clinicLots('clinic-a');
    // clinic-a used one of its vials: it still sees it.
    const { clinician, patientId } = await patientAt('clinic-a');
    expect((await postProcedure(clinician, scanned(patientId, lot.id, [v.get(1)!.barcode]))).status).toBe(201);

    expect((await t.http.get(`/v1/vials/${v.get(1)!.id}`).set(...auth(a))).body).toMatchObject({ status: 'administered', clinicId: 'clinic-a' });
    for (const n of [4, 5, 6]) {
      expect((await t.http.get(`/v1/vials/${v.get(n)!.id}`).set(...auth(a))).status, `vial ${n}`).toBe(404);
      expect((await t.http.get(`/v1/vials/${v.get(n)!.id}/custody`).set(...auth(a))).status, `custody of vial ${n}`).toBe(404);
      expect(await findVials({ barcode: v.get(n)!.barcode }, a)).toEqual([]);
    }
    expect((await lotVials(lot.id, {}, a)).map((x) => x.sequence)).toEqual([1, 2, 3]);
    expect((await findVials({ lotId: lot.id }, a)).map((x) => x.sequence)).toEqual([1, 2, 3]);
    expect(await lotVials(lot.id, { clinicId: 'clinic-b' }, a)).toEqual([]);
    expect(await findVials({ lotId: lot.id, clinicId: 'clinic-b' }, a)).toEqual([]);
    expect((await lotVials(lot.id, { status: 'at-clinic' }, a)).map((x) => x.sequence)).toEqual([2, 3]);
    // The supplier sees every vial, by clinic.
    expect((await lotVials(lot.id)).map((x) => x.sequence)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect((await lotVials(lot.id, { clinicId: 'clinic-b' })).map((x) => x.sequence)).toEqual([4, 5]);
    expect((await findVials({ barcode: v.get(4)!.barcode })).map((x) => x.id)).toEqual([v.get(4)!.id]);
    expect((await t.http.get(`/v1/vials/${v.get(6)!.id}`).set(...auth(supplier))).body).toMatchObject({ status: 'in-stock', clinicId: null });
    // The inventory a clinic reads is its own.
    expect((await inventory(lot.id, a)).clinics.map((c) => c.clinicId)).toEqual(['clinic-a']);
  }, 30_000);
});

describe('discards, returns and corrections by vial', () => {
  it('discards and returns named vials, lists them, gives a vial back on entered-in-error for reuse, and the inventory adds up', async () => {
    const s = await clinicSetup(t, { vials: 10 });
    const stock = await clinicLots('clinic-a');
    const v = bySeq(await lotVials(s.lot.id));
    const bc = (n: number) => v.get(n)!.barcode;

    const d = await discard(s.lot.id, { clinicId: 'clinic-a', barcodes: [bc(3)] }, stock);
    expect(d.status, JSON.stringify(d.body)).toBe(201);
    expect(d.body).toMatchObject({ clinicId: 'clinic-a', vials: 1, vialIds: [v.get(3)!.id], barcodes: [bc(3)], reason: 'Vial cracked on thaw', recordedBy: 'stock-clinic-a' });
    expectNames(await discard(s.lot.id, { clinicId: 'clinic-a', barcodes: [bc(3)] }, stock), 'vial-not-available', bc(3));
    expectNames(await discard(s.lot.id, { clinicId: 'clinic-a', barcodes: [bc(20)] }, stock), 'vial-not-available', bc(20));

    const r = await giveBack(s.lot.id, { clinicId: 'clinic-a', barcodes: [bc(5), bc(4)], returnedAt: '2026-03-20T10:00:00Z' }, stock);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body).toMatchObject({ clinicId: 'clinic-a', vials: 2, barcodes: [bc(4), bc(5)], vialIds: [v.get(4)!.id, v.get(5)!.id], returnedAt: '2026-03-20T10:00:00.000Z' });
    expectNames(await giveBack(s.lot.id, { clinicId: 'clinic-a', barcodes: [bc(3)] }, stock), 'vial-not-available', bc(3));
    expectNames(await giveBack(s.lot.id, { clinicId: 'clinic-a', vialIds: [v.get(30)!.id] }, stock), 'vial-not-available', v.get(30)!.id);
    expect((await giveBack(s.lot.id, { clinicId: 'clinic-a', vials: 1 }, stock)).status, 'a return names its vials').toBe(400);
    expect((await giveBack(s.lot.id, { clinicId: 'clinic-b', barcodes: [bc(6)] }, stock)).status, 'another clinic').toBe(403);

    const discards = await t.http.get(`/v1/lots/${s.lot.id}/discards`).set(...auth(supplier));
    expect(discards.body.items.map((x: { id: string; barcodes: string[] }) => [x.id, x.barcodes])).toEqual([[d.body.id, [bc(3)]]]);
    const returns = await t.http.get(`/v1/lots/${s.lot.id}/returns`).set(...auth(stock));
    expect(returns.status).toBe(200);
    expect(returns.body.items.map((x: { id: string; barcodes: string[]; reason: string }) => [x.id, x.barcodes, x.reason])).toEqual([
      [r.body.id, [bc(4), bc(5)], 'Returned unused to the manufacturer'],
    ]);
    expect((await custodyOf(v.get(3)!.id)).at(-1)).toMatchObject({ action: 'discarded', discardId: d.body.id, reason: 'Vial cracked on thaw', clinicId: 'clinic-a' });
    expect((await custodyOf(v.get(4)!.id)).at(-1)).toMatchObject({ action: 'returned', returnId: r.body.id, at: '2026-03-20T10:00:00.000Z' });

    // Procedures: two vials by number (1 and 2), then one by barcode (6).
    const two = await postProcedure(s.clinician, procedureBody(s.patientId, s.lot.id, { vialsUsed: 2 }));
    expect(two.status, JSON.stringify(two.body)).toBe(201);
    expect(two.body.vials).toEqual([{ id: v.get(1)!.id, barcode: bc(1) }, { id: v.get(2)!.id, barcode: bc(2) }]);
    expect((await postProcedure(s.clinician, scanned(s.patientId, s.lot.id, [bc(6)]))).status).toBe(201);

    // Entered in error, one vial given back: the highest (2) is at the clinic again, unused, and can be given.
    const eie = await t.http.post(`/v1/procedures/${two.body.id}/entered-in-error`).set(...auth(s.clinician)).send({ reason: 'Wrong patient selected', vialsReturned: 1 });
    expect(eie.status, JSON.stringify(eie.body)).toBe(200);
    expect(eie.body.vials).toEqual([{ id: v.get(1)!.id, barcode: bc(1) }]);
    expect((await t.http.get(`/v1/vials/${v.get(2)!.id}`).set(...auth(supplier))).body).toMatchObject({ status: 'at-clinic', usedBy: null, clinicId: 'clinic-a' });
    const back = (await custodyOf(v.get(2)!.id)).at(-1)!;
    expect(back).toMatchObject({ action: 'received', procedureId: two.body.id, clinicId: 'clinic-a' });
    const reuse = await postProcedure(s.clinician, scanned(s.patientId, s.lot.id, [bc(2)]));
    expect(reuse.status, JSON.stringify(reuse.body)).toBe(201);
    expect((await t.http.get(`/v1/vials/${v.get(2)!.id}`).set(...auth(supplier))).body.usedBy).toBe(reuse.body.id);

    const inv = await clinicStock(s.lot.id, 'clinic-a');
    expect(inv).toEqual({ clinicId: 'clinic-a', shipped: 10, administered: 3, discarded: 1, returned: 2, recalled: 0, expired: 0, onHand: 4 });
    for (const [status, key] of [['administered', 'administered'], ['discarded', 'discarded'], ['returned', 'returned'], ['at-clinic', 'onHand']] as const) {
      expect((await lotVials(s.lot.id, { clinicId: 'clinic-a', status })).length, status).toBe(inv![key]);
    }
  }, 60_000);

  it('answers the vials on GET /procedures/{id} and keeps each version\'s vials in the procedure\'s history', async () => {
    const s = await clinicSetup(t, { vials: 4 });
    const v = await lotVials(s.lot.id, { clinicId: 'clinic-a' });
    const created = await postProcedure(s.clinician, scanned(s.patientId, s.lot.id, [v[2]!.barcode, v[0]!.barcode]));
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const both = [{ id: v[0]!.id, barcode: v[0]!.barcode }, { id: v[2]!.id, barcode: v[2]!.barcode }];
    expect(created.body).toMatchObject({ vialsUsed: 2, vials: both });
    expect.soft((await t.http.get(`/v1/procedures/${created.body.id}`).set(...auth(s.clinician))).body.vials, 'GET /v1/procedures/{id} after create').toEqual(both);
    const listed = await t.http.get('/v1/procedures').query({ lotId: s.lot.id }).set(...auth(s.clinician));
    expect.soft(listed.body.items.map((p: { vials: unknown }) => p.vials), 'GET /v1/procedures?lotId=').toEqual([both]);
    const eie = await t.http.post(`/v1/procedures/${created.body.id}/entered-in-error`).set(...auth(s.clinician)).send({ reason: 'Recorded twice', vialsReturned: 1 });
    expect(eie.status).toBe(200);
    expect(eie.body.vials, 'the entered-in-error answer').toEqual([both[0]]);
    expect.soft((await t.http.get(`/v1/procedures/${created.body.id}`).set(...auth(s.clinician))).body.vials, 'GET /v1/procedures/{id} after entered-in-error').toEqual([both[0]]);

    const history = await t.http.get(`/v1/procedures/${created.body.id}/history`).set(...auth(s.clinician));
    expect(history.status, `GET /v1/procedures/{id}/history: ${JSON.stringify(history.body)}`).toBe(200);
    const bodies = (history.body.items as { version: number; resource?: { vials: unknown }; body?: { vials: unknown } }[]).map((i) => [i.version, (i.resource ?? i.body)?.vials]);
    expect(bodies).toEqual([[1, both], [2, [both[0]]]]);
  });
});

describe('recall by vial', () => {
  it('marks every unused vial recalled, counts them, lists each clinic\'s barcodes on its notice; a late procedure may use one; recalled vials can be returned', async () => {
    const s = await clinicSetup(t, { vials: 6, lot: { vialCount: 12 } }); // 1..6 at clinic-a
    expect((await ship(s.lot.id, { clinicId: 'clinic-b', vials: 3 })).status).toBe(201); // 7..9 at clinic-b; 10..12 in stock
    const v = bySeq(await lotVials(s.lot.id));
    const bc = (n: number) => v.get(n)!.barcode;
    const first = await postProcedure(s.clinician, scanned(s.patientId, s.lot.id, [bc(1)]));
    expect(first.status).toBe(201);

    const recall = await t.http.post(`/v1/lots/${s.lot.id}/recall`).set(...auth(supplier)).send({ reason: 'Sterility failure on retain', recalledAt: '2026-04-01T00:00:00Z' });
    expect(recall.status, JSON.stringify(recall.body)).toBe(200);
    const after = bySeq(await lotVials(s.lot.id));
    expect([...after.values()].map((x) => `${x.sequence}:${x.status}:${x.clinicId}`)).toEqual([
      '1:administered:clinic-a',
      ...[2, 3, 4, 5, 6].map((n) => `${n}:recalled:clinic-a`),
      ...[7, 8, 9].map((n) => `${n}:recalled:clinic-b`),
      ...[10, 11, 12].map((n) => `${n}:recalled:null`),
    ]);
    expect((await custodyOf(v.get(2)!.id)).at(-1)).toMatchObject({ action: 'recalled', at: '2026-04-01T00:00:00.000Z', reason: 'Sterility failure on retain' });
    expect((await custodyOf(v.get(1)!.id)).map((c) => c.action)).not.toContain('recalled');
    expect((await lotVials(s.lot.id, { status: 'recalled' })).length).toBe(11);
    let inv = await inventory(s.lot.id);
    expect(inv.clinics).toEqual([
      { clinicId: 'clinic-a', shipped: 6, administered: 1, discarded: 0, returned: 0, recalled: 5, expired: 0, onHand: 0 },
      { clinicId: 'clinic-b', shipped: 3, administered: 0, discarded: 0, returned: 0, recalled: 3, expired: 0, onHand: 0 },
    ]);

    const notices = await t.http.get(`/v1/lots/${s.lot.id}/recall-notices`).set(...auth(supplier));
    expect(notices.body.items.map((n: { clinicId: string; barcodes: string[] }) => [n.clinicId, n.barcodes]).sort()).toEqual([
      ['clinic-a', [2, 3, 4, 5, 6].map(bc)],
      ['clinic-b', [7, 8, 9].map(bc)],
    ]);
    const stockB = await clinicLots('clinic-b');
    const mine = await t.http.get(`/v1/lots/${s.lot.id}/recall-notices`).set(...auth(stockB));
    expect(mine.body.items.map((n: { clinicId: string; barcodes: string[] }) => [n.clinicId, n.barcodes])).toEqual([['clinic-b', [7, 8, 9].map(bc)]]);

    // A procedure performed before the recall, entered late, names a recalled vial at its clinic: recorded.
    const late = await postProcedure(s.clinician, scanned(s.patientId, s.lot.id, [bc(2)], { performedAt: '2026-03-25T10:00:00Z' }));
    expect(late.status, JSON.stringify(late.body)).toBe(201);
    expect(late.body.vials).toEqual([{ id: v.get(2)!.id, barcode: bc(2) }]);
    // After the recall: refused, nothing taken.
    const afterRecall = await postProcedure(s.clinician, scanned(s.patientId, s.lot.id, [bc(3)], { performedAt: '2026-04-02T10:00:00Z' }));
    expect(afterRecall.status).toBe(422);
    expect(afterRecall.body.code).toBe('lot-not-released');
    // Late procedures cannot take clinic-b's or the stock's recalled vials.
    expectNames(await postProcedure(s.clinician, scanned(s.patientId, s.lot.id, [bc(7)], { performedAt: '2026-03-25T10:00:00Z' })), 'vial-not-available', bc(7));
    expectNames(await postProcedure(s.clinician, scanned(s.patientId, s.lot.id, [bc(10)], { performedAt: '2026-03-25T10:00:00Z' })), 'vial-not-available', bc(10));

    // The recalled vials go back to the manufacturer.
    const stockA = await clinicLots('clinic-a');
    const ret = await giveBack(s.lot.id, { clinicId: 'clinic-a', barcodes: [bc(3), bc(4)], reason: 'Recall: returned unused' }, stockA);
    expect(ret.status, JSON.stringify(ret.body)).toBe(201);
    expect(ret.body.barcodes).toEqual([bc(3), bc(4)]);
    expect((await t.http.get(`/v1/vials/${v.get(3)!.id}`).set(...auth(stockA))).body.status).toBe('returned');
    expectNames(await giveBack(s.lot.id, { clinicId: 'clinic-a', barcodes: [bc(7)] }, stockA), 'vial-not-available', bc(7));
    inv = await inventory(s.lot.id);
    expect(inv.clinics[0]).toEqual({ clinicId: 'clinic-a', shipped: 6, administered: 2, discarded: 0, returned: 2, recalled: 2, expired: 0, onHand: 0 });
    // The notice keeps what the clinic was told.
    const again = await t.http.get(`/v1/lots/${s.lot.id}/recall-notices`).set(...auth(supplier));
    expect(again.body.items.find((n: { clinicId: string }) => n.clinicId === 'clinic-a').barcodes).toEqual([2, 3, 4, 5, 6].map(bc));
  }, 60_000);

  it('does not put a vial given back after the recall (entered in error) on hand: it is recalled', async () => {
    const s = await clinicSetup(t, { vials: 3, lot: { vialCount: 3 } });
    const p = await postProcedure(s.clinician, procedureBody(s.patientId, s.lot.id, { vialsUsed: 1 }));
    expect(p.status).toBe(201);
    const recall = await t.http.post(`/v1/lots/${s.lot.id}/recall`).set(...auth(supplier)).send({ reason: 'Endotoxin retest failed', recalledAt: '2026-04-01T00:00:00Z' });
    expect(recall.status).toBe(200);
    const eie = await t.http.post(`/v1/procedures/${p.body.id}/entered-in-error`).set(...auth(s.clinician)).send({ reason: 'Never given', vialsReturned: 1 });
    expect(eie.status).toBe(200);
    const vial = await t.http.get(`/v1/vials/${p.body.vials[0].id}`).set(...auth(supplier));
    expect(vial.body.status, 'a vial of a recalled lot back at the clinic').toBe('recalled');
    expect(await clinicStock(s.lot.id, 'clinic-a')).toMatchObject({ administered: 0, recalled: 3, onHand: 0 });
  });
});

describe('expiry', () => {
  it('shows the unused vials of an expired lot as expired, lists them by ?status=expired, counts them as expired, not on hand', async () => {
    const { lot } = await releasedLot(t.http, supplier, { vialCount: 6, manufacturedOn: '2026-02-01', expiresOn: '2026-06-30' }, '2026-03-01T09:00:00Z');
    expect((await ship(lot.id, { clinicId: 'clinic-a', vials: 4, shippedAt: '2026-03-02T08:00:00Z' })).status).toBe(201);
    const v = bySeq(await lotVials(lot.id));
    const { clinician, patientId } = await patientAt('clinic-a');
    // Given before the expiry (entered late): fine.
    const given = await postProcedure(clinician, scanned(patientId, lot.id, [v.get(1)!.barcode], { performedAt: '2026-03-10T09:00:00Z' }));
    expect(given.status, JSON.stringify(given.body)).toBe(201);
    const stock = await clinicLots('clinic-a');
    expect((await discard(lot.id, { clinicId: 'clinic-a', barcodes: [v.get(2)!.barcode], discardedAt: '2026-03-15T09:00:00Z' }, stock)).status).toBe(201);

    const all = await lotVials(lot.id);
    expect(all.map((x) => `${x.sequence}:${x.status}:${x.clinicId}`)).toEqual([
      '1:administered:clinic-a', '2:discarded:clinic-a', '3:expired:clinic-a', '4:expired:clinic-a', '5:expired:null', '6:expired:null',
    ]);
    expect((await t.http.get(`/v1/vials/${v.get(3)!.id}`).set(...auth(stock))).body).toMatchObject({ status: 'expired', expiresOn: '2026-06-30' });
    expect((await lotVials(lot.id, { status: 'expired' })).map((x) => x.sequence)).toEqual([3, 4, 5, 6]);
    expect((await findVials({ lotId: lot.id, status: 'expired' })).map((x) => x.sequence)).toEqual([3, 4, 5, 6]);
    expect((await lotVials(lot.id, { status: 'expired' }, stock)).map((x) => x.sequence)).toEqual([3, 4]);
    expect(await lotVials(lot.id, { status: 'in-stock' })).toEqual([]);
    expect(await lotVials(lot.id, { status: 'at-clinic' })).toEqual([]);
    const inv = await inventory(lot.id);
    expect(inv).toMatchObject({ vialCount: 6, vialsShipped: 4, vialsUnshipped: 2 });
    expect(inv.clinics).toEqual([{ clinicId: 'clinic-a', shipped: 4, administered: 1, discarded: 1, returned: 0, recalled: 0, expired: 2, onHand: 0 }]);
    // Nothing is given from it now.
    const now = await postProcedure(clinician, scanned(patientId, lot.id, [v.get(3)!.barcode], { performedAt: '2026-07-01T09:00:00Z' }));
    expect(now.status).toBe(422);
    expect(now.body.code).toBe('lot-expired');
    // Expired vials are still destroyed by barcode.
    expect((await discard(lot.id, { clinicId: 'clinic-a', barcodes: [v.get(3)!.barcode], reason: 'Expired' }, stock)).status).toBe(201);
    expect((await clinicStock(lot.id, 'clinic-a'))!).toMatchObject({ discarded: 2, expired: 1, onHand: 0 });
  }, 30_000);
});

describe('traceability by vial', () => {
  /** RFC 4180 with CRLF records; quoted fields may hold commas, quotes ("") and line breaks. */
  function parseCsv(text: string): Record<string, string>[] {
    const records: string[][] = [];
    let field = '';
    let record: string[] = [];
    let quoted = false;
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      if (quoted && c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') {
        quoted = !quoted;
      } else if (!quoted && c === ',') {
        record.push(field);
        field = '';
      } else if (!quoted && c === '\r' && text[i + 1] === '\n') {
        record.push(field);
        records.push(record);
        record = [];
        field = '';
        i++;
      } else {
        field += c;
      }
    }
    const [header, ...rows] = records;
    return rows.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i]!])));
  }

  it('lists each recipient\'s vial barcodes in the JSON report and the CSV export', async () => {
    const s = await clinicSetup(t, { vials: 6 });
    await ship(s.lot.id, { clinicId: 'clinic-b', vials: 2 }); // 7, 8
    const v = bySeq(await lotVials(s.lot.id));
    const bc = (n: number) => v.get(n)!.barcode;
    const p1 = await postProcedure(s.clinician, procedureBody(s.patientId, s.lot.id, { vialsUsed: 2 })); // 1, 2
    const p2 = await postProcedure(s.clinician, scanned(s.patientId, s.lot.id, [bc(5)]));
    const p3 = await postProcedure(s.clinician, scanned(s.patientId, s.lot.id, [bc(4), bc(3)]));
    await t.http.post(`/v1/procedures/${p3.body.id}/entered-in-error`).set(...auth(s.clinician)).send({ reason: 'Duplicate entry', vialsReturned: 2 });
    const b = await patientAt('clinic-b');
    const p4 = await postProcedure(b.clinician, scanned(b.patientId, s.lot.id, [bc(8)]));
    for (const p of [p1, p2, p3, p4]) expect(p.status, JSON.stringify(p.body)).toBe(201);
    const expected: Record<string, string[]> = {
      [p1.body.id]: [bc(1), bc(2)],
      [p2.body.id]: [bc(5)],
      [p3.body.id]: [],
      [p4.body.id]: [bc(8)],
    };

    const json = await t.http.get(`/v1/reports/lot-traceability/${s.lot.id}`).set(...auth(supplier));
    expect(json.status, JSON.stringify(json.body)).toBe(200);
    const recipients = json.body.recipients as { procedureId: string; vialBarcodes: string[] }[];
    expect(Object.fromEntries(recipients.map((r) => [r.procedureId, r.vialBarcodes]))).toEqual(expected);

    const csv = await t.http.get(`/v1/reports/lot-traceability/${s.lot.id}`).set(...auth(supplier)).set('accept', 'text/csv').buffer(true).parse((res, cb) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => cb(null, text));
    });
    expect(csv.status).toBe(200);
    const rows = parseCsv(csv.body as string);
    expect(rows).toHaveLength(4);
    expect(Object.fromEntries(rows.map((r) => [r.procedure_id, JSON.parse(r.vial_barcodes!)]))).toEqual(expected);

    // A clinic's report shows its own recipients' barcodes only.
    const reader = await t.token({ scope: 'reports:read', clinic: 'clinic-b', sub: 'reader-b' });
    const own = await t.http.get(`/v1/reports/lot-traceability/${s.lot.id}`).set(...auth(reader));
    expect(own.body.recipients.map((r: { procedureId: string; vialBarcodes: string[] }) => [r.procedureId, r.vialBarcodes])).toEqual([[p4.body.id, [bc(8)]]]);
  }, 30_000);
});

// ---------------------------------------------------------------------------------------------------------

describe('property: the inventory is the vials', () => {
  const N = 10;
  const CLINICS = ['clinic-a', 'clinic-b'] as const;
  type Clinic = (typeof CLINICS)[number];
  type Op =
    | { kind: 'ship'; clinic: Clinic; n: number }
    | { kind: 'shipNamed'; clinic: Clinic; seq: number }
    | { kind: 'discard'; clinic: Clinic; n: number }
    | { kind: 'discardNamed'; clinic: Clinic; seq: number }
    | { kind: 'use'; clinic: Clinic; n: number }
    | { kind: 'useNamed'; clinic: Clinic; seqs: number[] }
    | { kind: 'returnNamed'; clinic: Clinic; seq: number }
    | { kind: 'enteredInError'; pick: number; returned: number }
    | { kind: 'recall' };

  const clinic = fc.constantFrom(...CLINICS);
  const seq = fc.integer({ min: 1, max: N });
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('ship' as const), clinic, n: fc.integer({ min: 1, max: 5 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('shipNamed' as const), clinic, seq }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('discard' as const), clinic, n: fc.integer({ min: 1, max: 3 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('discardNamed' as const), clinic, seq }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('use' as const), clinic, n: fc.integer({ min: 1, max: 3 }) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('useNamed' as const), clinic, seqs: fc.uniqueArray(seq, { minLength: 1, maxLength: 2 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('returnNamed' as const), clinic, seq }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('enteredInError' as const), pick: fc.nat(), returned: fc.integer({ min: 0, max: 2 }) }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'recall' as const }) },
  );

  let people: Record<Clinic, { clinician: string; patientId: string; stock: string }>;
  beforeAll(async () => {
    const entries = await Promise.all(CLINICS.map(async (c) => [c, { ...(await patientAt(c)), stock: await clinicLots(c) }] as const));
    people = Object.fromEntries(entries) as typeof people;
  });

  interface ModelVial {
    status: 'in-stock' | 'at-clinic' | 'administered' | 'discarded' | 'returned' | 'recalled';
    clinic: string | null;
    proc: string | null;
  }

  it('after random shipments, discards, returns, procedures, corrections and a recall, every vial and every count is as modelled, and shipped = administered + discarded + returned + recalled + expired + onHand', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 6 }), async (ops) => {
        const lot = await createLot(t.http, supplier, [donorId], { vialCount: N });
        const rel = await t.http.post(`/v1/lots/${lot.id}/release`).set(...auth(supplier)).send({ releasedAt: '2026-03-01T09:00:00Z' });
        expect(rel.status).toBe(200);
        const real = await lotVials(lot.id);
        const barcode = (n: number) => real[n - 1]!.barcode;
        const model: ModelVial[] = Array.from({ length: N }, () => ({ status: 'in-stock', clinic: null, proc: null }));
        const procs: { id: string; clinic: Clinic; seqs: number[]; inError: boolean }[] = [];
        let recalled = false;
        const usable = (m: ModelVial, c: string) => m.clinic === c && (m.status === 'at-clinic' || m.status === 'recalled');
        const inStock = (m: ModelVial) => m.clinic === null && (m.status === 'in-stock' || m.status === 'recalled');
        const lowest = (pred: (m: ModelVial) => boolean) => model.map((m, i) => [m, i + 1] as const).filter(([m]) => pred(m)).map(([, n]) => n);

        for (const o of ops) {
          const what = JSON.stringify(o);
          switch (o.kind) {
            case 'ship':
            case 'shipNamed': {
              const seqs = o.kind === 'ship' ? lowest(inStock).slice(0, o.n) : [o.seq];
              const can = o.kind === 'ship' ? seqs.length === o.n : inStock(model[o.seq - 1]!);
              const res = await ship(lot.id, o.kind === 'ship' ? { clinicId: o.clinic, vials: o.n } : { clinicId: o.clinic, barcodes: [barcode(o.seq)] });
              if (!can) {
                if (o.kind === 'ship') expect(`${res.status} ${res.body.code}`, what).toBe('422 insufficient-vials');
                else expectNames(res, 'vial-not-available', barcode(o.seq));
                break;
              }
              expect(res.status, `${what}: ${JSON.stringify(res.body)}`).toBe(201);
              expect(res.body.barcodes, what).toEqual(seqs.map(barcode));
              for (const n of seqs) Object.assign(model[n - 1]!, { clinic: o.clinic, status: model[n - 1]!.status === 'recalled' ? 'recalled' : 'at-clinic' });
              break;
            }
            case 'discard':
            case 'discardNamed':
            case 'returnNamed': {
              const seqs = o.kind === 'discard' ? lowest((m) => usable(m, o.clinic)).slice(0, o.n) : [o.seq];
              const can = o.kind === 'discard' ? seqs.length === o.n : usable(model[o.seq - 1]!, o.clinic);
              const body = o.kind === 'discard' ? { clinicId: o.clinic, vials: o.n } : { clinicId: o.clinic, barcodes: [barcode(o.seq)] };
              const res = o.kind === 'returnNamed' ? await giveBack(lot.id, body, people[o.clinic].stock) : await discard(lot.id, body, people[o.clinic].stock);
              if (!can) {
                if (o.kind === 'discard') expect(`${res.status} ${res.body.code}`, what).toBe('422 insufficient-vials');
                else expectNames(res, 'vial-not-available', barcode(o.seq));
                break;
              }
              expect(res.status, `${what}: ${JSON.stringify(res.body)}`).toBe(201);
              expect(res.body.barcodes, what).toEqual(seqs.map(barcode));
              for (const n of seqs) model[n - 1]!.status = o.kind === 'returnNamed' ? 'returned' : 'discarded';
              break;
            }
            case 'use':
            case 'useNamed': {
              const who = people[o.clinic];
              const seqs = o.kind === 'use' ? lowest((m) => usable(m, o.clinic)).slice(0, o.n) : [...o.seqs].sort((x, y) => x - y);
              const bad = o.kind === 'use' ? [] : seqs.filter((n) => !usable(model[n - 1]!, o.clinic));
              const can = o.kind === 'use' ? seqs.length === o.n : bad.length === 0;
              // Performed before any recall: a late entry may still use a recalled vial at its clinic.
              const body =
                o.kind === 'use' ? procedureBody(who.patientId, lot.id, { vialsUsed: o.n }) : scanned(who.patientId, lot.id, o.seqs.map(barcode));
              const res = await postProcedure(who.clinician, body);
              if (!can) {
                if (o.kind === 'use') expect(`${res.status} ${res.body.code}`, what).toBe('422 insufficient-vials');
                else {
                  expect(`${res.status} ${res.body.code}`, `${what}: ${JSON.stringify(res.body)}`).toBe('422 vial-not-available');
                  expect(namedIn(res, real.map((r) => r.barcode)).sort(), what).toEqual(bad.map(barcode).sort());
                }
                break;
              }
              expect(res.status, `${what}: ${JSON.stringify(res.body)}`).toBe(201);
              expect(res.body.vials.map((x: { barcode: string }) => x.barcode), what).toEqual(seqs.map(barcode));
              for (const n of seqs) Object.assign(model[n - 1]!, { status: 'administered', proc: res.body.id });
              procs.push({ id: res.body.id, clinic: o.clinic, seqs, inError: false });
              break;
            }
            case 'enteredInError': {
              const open = procs.filter((p) => !p.inError);
              // After a recall, what a given-back vial becomes is tested on its own (the recall tests above).
              if (open.length === 0 || recalled) break;
              const p = open[o.pick % open.length]!;
              const back = Math.min(o.returned, p.seqs.length);
              const res = await t.http.post(`/v1/procedures/${p.id}/entered-in-error`).set(...auth(people[p.clinic].clinician)).send({ reason: 'Recorded in error', vialsReturned: back });
              expect(res.status, `${what}: ${JSON.stringify(res.body)}`).toBe(200);
              p.inError = true;
              const given = p.seqs.slice(p.seqs.length - back); // the highest sequences come back
              p.seqs = p.seqs.slice(0, p.seqs.length - back);
              for (const n of given) Object.assign(model[n - 1]!, { status: 'at-clinic', proc: null });
              expect(res.body.vials.map((x: { barcode: string }) => x.barcode), what).toEqual(p.seqs.map(barcode));
              break;
            }
            case 'recall': {
              if (recalled) break;
              const res = await t.http.post(`/v1/lots/${lot.id}/recall`).set(...auth(supplier)).send({ reason: 'Property drill', recalledAt: '2026-04-01T00:00:00Z' });
              expect(res.status, JSON.stringify(res.body)).toBe(200);
              recalled = true;
              for (const m of model) if (m.status === 'in-stock' || m.status === 'at-clinic') m.status = 'recalled';
              break;
            }
          }
        }

        // Every vial as modelled.
        const vials = await lotVials(lot.id);
        expect(vials.map((x) => [x.sequence, x.status, x.clinicId, x.usedBy]), JSON.stringify(ops)).toEqual(
          model.map((m, i) => [i + 1, m.status, m.clinic, m.proc]),
        );
        // The inventory: as modelled, the identity holds, and each count is the number of vials listed with that status.
        const inv = await inventory(lot.id);
        const shippedVials = model.filter((m) => m.clinic !== null).length;
        expect([inv.vialsShipped, inv.vialsUnshipped], JSON.stringify(ops)).toEqual([shippedVials, N - shippedVials]);
        const clinicsHeld = CLINICS.filter((c) => model.some((m) => m.clinic === c));
        expect(inv.clinics.map((c) => c.clinicId), JSON.stringify(ops)).toEqual(clinicsHeld);
        for (const c of inv.clinics) {
          const mine = model.filter((m) => m.clinic === c.clinicId);
          const count = (st: ModelVial['status']) => mine.filter((m) => m.status === st).length;
          expect(c, JSON.stringify(ops)).toEqual({
            clinicId: c.clinicId,
            shipped: mine.length,
            administered: count('administered'),
            discarded: count('discarded'),
            returned: count('returned'),
            recalled: count('recalled'),
            expired: 0,
            onHand: count('at-clinic'),
          });
          expect(c.shipped).toBe(c.administered + c.discarded + c.returned + c.recalled + c.expired + c.onHand);
          for (const [status, key] of [
            ['administered', 'administered'],
            ['discarded', 'discarded'],
            ['returned', 'returned'],
            ['recalled', 'recalled'],
            ['expired', 'expired'],
            ['at-clinic', 'onHand'],
          ] as const) {
            const listed = await lotVials(lot.id, { clinicId: c.clinicId, status });
            expect(listed.length, `${c.clinicId} ${status}: ${JSON.stringify(ops)}`).toBe(c[key]);
          }
        }
      }),
      { numRuns: 15, endOnFailure: true },
    );
  }, 180_000);
});

describe('idempotent vial movements', () => {
  it('a retried shipment, discard or return with the same Idempotency-Key answers the first result and moves nothing more; another body is 422', async () => {
    const s = await clinicSetup(t, { vials: 6 });
    const lotVials = async () =>
      ((await t.http.get(`/v1/lots/${s.lot.id}/vials?limit=200`).set(...auth(supplier))).body.items as Vial[]).map((v) => `${v.sequence}:${v.status}`);
    const shipKey = `ship-${uniq()}`;
    const ship = () => t.http.post(`/v1/lots/${s.lot.id}/shipments`).set(...auth(supplier)).set('Idempotency-Key', shipKey).send({ clinicId: s.clinic, vials: 2 });
    const first = await ship();
    expect(first.status).toBe(201);
    const again = await ship();
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    const barcodes = first.body.barcodes as string[];
    const before = await lotVials();

    const discardKey = `discard-${uniq()}`;
    const discard = (body: object) => t.http.post(`/v1/lots/${s.lot.id}/discards`).set(...auth(supplier)).set('Idempotency-Key', discardKey).send(body);
    const d1 = await discard({ clinicId: s.clinic, barcodes: [barcodes[0]], reason: 'Cracked' });
    expect(d1.status).toBe(201);
    const d2 = await discard({ clinicId: s.clinic, barcodes: [barcodes[0]], reason: 'Cracked' });
    expect(d2.status).toBe(201);
    expect(d2.body).toEqual(d1.body);
    expect((await discard({ clinicId: s.clinic, barcodes: [barcodes[1]], reason: 'Cracked' })).status).toBe(422);

    const returnKey = `return-${uniq()}`;
    const giveBack = () => t.http.post(`/v1/lots/${s.lot.id}/returns`).set(...auth(supplier)).set('Idempotency-Key', returnKey).send({ clinicId: s.clinic, barcodes: [barcodes[1]], reason: 'Not needed' });
    const r1 = await giveBack();
    expect(r1.status).toBe(201);
    const r2 = await giveBack();
    expect(r2.status).toBe(201);
    expect(r2.body).toEqual(r1.body);
    expect(r2.body).toMatchObject({ vials: 1, barcodes: [barcodes[1]], reason: 'Not needed' });

    const after = await lotVials();
    // Two more vials moved than before the discard, each once: one discarded, one returned.
    expect(after.filter((x) => x.endsWith(':discarded'))).toHaveLength(1);
    expect(after.filter((x) => x.endsWith(':returned'))).toHaveLength(1);
    expect(before.filter((x) => x.endsWith(':at-clinic')).length - after.filter((x) => x.endsWith(':at-clinic')).length).toBe(2);
    const inv = (await t.http.get(`/v1/lots/${s.lot.id}/inventory`).set(...auth(supplier))).body.clinics as ClinicStock[];
    expect(inv.find((c) => c.clinicId === s.clinic)).toMatchObject({ discarded: 1, returned: 1 });
  });
});

describe('idempotent procedures with vials', () => {
  it('a procedure with an Idempotency-Key answers 201 with its vials; a retry and parallel twins answer the same and take no other vial', async () => {
    const s = await clinicSetup(t, { vials: 5 });
    const key = `proc-${uniq()}`;
    const post = (body: object) => t.http.post('/v1/procedures').set(...auth(s.clinician)).set('Idempotency-Key', key).send(body);
    const body = procedureBody(s.patientId, s.lot.id, { vialsUsed: 2 });
    const results = await Promise.all(Array.from({ length: 8 }, () => post(body)));
    expect(results.map((r) => r.status)).toEqual(Array(8).fill(201));
    const first = results[0]!.body;
    expect(first.vials).toHaveLength(2);
    for (const r of results) expect(r.body).toEqual(first);
    const retry = await post(body);
    expect(retry.status).toBe(201);
    expect(retry.body).toEqual(first);
    const other = await post({ ...body, notes: 'another request' });
    expect(other.status).toBe(422);
    expect(other.body.code).toBe('idempotency-key-reused');
    const inv = (await t.http.get(`/v1/lots/${s.lot.id}/inventory`).set(...auth(supplier))).body.clinics as ClinicStock[];
    expect(inv.find((c) => c.clinicId === s.clinic)).toMatchObject({ administered: 2, onHand: 3 });
    const listed = await t.http.get(`/v1/procedures?lotId=${s.lot.id}`).set(...auth(s.clinician));
    expect(listed.body.items).toHaveLength(1);
    expect(listed.body.items[0].vials).toEqual(first.vials);
  });

  it('twins naming the last vial by barcode both answer the one procedure that took it', async () => {
    const s = await clinicSetup(t, { vials: 1 });
    const vial = ((await t.http.get(`/v1/lots/${s.lot.id}/vials`).set(...auth(supplier))).body.items as Vial[])[0]!;
    const key = `proc-${uniq()}`;
    const body = procedureBody(s.patientId, s.lot.id, { vialsUsed: undefined, vialBarcodes: [vial.barcode] });
    const results = await Promise.all(Array.from({ length: 6 }, () => t.http.post('/v1/procedures').set(...auth(s.clinician)).set('Idempotency-Key', key).send(body)));
    expect(results.map((r) => r.status)).toEqual(Array(6).fill(201));
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
    expect(results[0]!.body.vials).toEqual([{ id: vial.id, barcode: vial.barcode }]);
  });
});

describe('vial ids in either case', () => {
  it('takes an upper-case vial id as the vial it names, and the same vial twice in two cases is 400', async () => {
    const { lot } = await releasedLot(t.http, supplier, { vialCount: 4 });
    const vials = (await t.http.get(`/v1/lots/${lot.id}/vials`).set(...auth(supplier))).body.items as Vial[];
    const shipped = await t.http.post(`/v1/lots/${lot.id}/shipments`).set(...auth(supplier)).send({ clinicId: 'clinic-a', vialIds: [vials[0]!.id.toUpperCase()] });
    expect(shipped.status).toBe(201);
    expect(shipped.body.vialIds).toEqual([vials[0]!.id]);
    const twice = await t.http.post(`/v1/lots/${lot.id}/shipments`).set(...auth(supplier)).send({ clinicId: 'clinic-a', vialIds: [vials[1]!.id.toUpperCase(), vials[1]!.id] });
    expect(twice.status).toBe(400);
    const discarded = await t.http.post(`/v1/lots/${lot.id}/discards`).set(...auth(supplier)).send({ clinicId: 'clinic-a', vialIds: [vials[0]!.id.toUpperCase()], reason: 'Dropped' });
    expect(discarded.status).toBe(201);
    expect((await t.http.get(`/v1/vials/${vials[0]!.id.toUpperCase()}`).set(...auth(supplier))).body.status).toBe('discarded');
  });
});

describe('custody in time order', () => {
  it('refuses to give, discard or return a vial at a time before it was shipped to the clinic', async () => {
    const s = await clinicSetup(t, { vials: 3 }); // shipped 2026-03-02T08:00:00Z
    const vials = (await t.http.get(`/v1/lots/${s.lot.id}/vials?status=at-clinic`).set(...auth(supplier))).body.items as Vial[];
    const early = '2026-03-02T07:00:00Z';
    const named = await t.http.post('/v1/procedures').set(...auth(s.clinician)).send(procedureBody(s.patientId, s.lot.id, { performedAt: early, vialsUsed: undefined, vialBarcodes: [vials[0]!.barcode] }));
    expect(named.status).toBe(422);
    expect(named.body.code).toBe('vial-not-available');
    expect(named.body.detail).toContain(vials[0]!.barcode);
    const counted = await t.http.post('/v1/procedures').set(...auth(s.clinician)).send(procedureBody(s.patientId, s.lot.id, { performedAt: early }));
    expect(counted.status).toBe(422);
    expect(counted.body.code).toBe('insufficient-vials');
    for (const [path, extra] of [
      ['discards', { discardedAt: early }],
      ['returns', { returnedAt: early }],
    ] as const) {
      const res = await t.http.post(`/v1/lots/${s.lot.id}/${path}`).set(...auth(supplier)).send({ clinicId: s.clinic, barcodes: [vials[1]!.barcode], reason: 'Test', ...extra });
      expect(res.status, path).toBe(422);
      expect(res.body.code, path).toBe('vial-not-available');
    }
    const byNumber = await t.http.post(`/v1/lots/${s.lot.id}/discards`).set(...auth(supplier)).send({ clinicId: s.clinic, vials: 1, reason: 'Test', discardedAt: early });
    expect(byNumber.status).toBe(422);
    expect(byNumber.body.code).toBe('insufficient-vials');
    // Nothing moved; at the shipment's time or later everything works.
    expect(((await t.http.get(`/v1/lots/${s.lot.id}/vials?status=at-clinic`).set(...auth(supplier))).body.items as Vial[]).length).toBe(3);
    expect((await t.http.post('/v1/procedures').set(...auth(s.clinician)).send(procedureBody(s.patientId, s.lot.id, { performedAt: '2026-03-02T08:00:00Z' }))).status).toBe(201);
  });
});

describe('recall notices name every recalled vial a clinic holds', () => {
  it('a shipment entered after the recall (made before it) and a vial given back after it are added to the clinic notice, made if there was none', async () => {
    const s = await clinicSetup(t, { vials: 3 }); // clinic-a, shipped 2026-03-02
    const done = await t.http.post('/v1/procedures').set(...auth(s.clinician)).send(procedureBody(s.patientId, s.lot.id));
    expect(done.status).toBe(201);
    const given = done.body.vials[0].barcode as string;
    expect((await t.http.post(`/v1/lots/${s.lot.id}/recall`).set(...auth(supplier)).send({ reason: 'Endotoxin', recalledAt: '2026-06-01T00:00:00Z' })).status).toBe(200);
    const late = await t.http.post(`/v1/lots/${s.lot.id}/shipments`).set(...auth(supplier)).send({ clinicId: 'clinic-late', vials: 2, shippedAt: '2026-05-01T00:00:00Z' });
    expect(late.status).toBe(201);
    const notices = async () =>
      Object.fromEntries(((await t.http.get(`/v1/lots/${s.lot.id}/recall-notices`).set(...auth(supplier))).body.items as { clinicId: string; barcodes: string[]; recallReason: string }[]).map((n) => [n.clinicId, n]));
    let byClinic = await notices();
    expect(byClinic['clinic-late']).toMatchObject({ barcodes: late.body.barcodes, recallReason: 'Endotoxin' });
    expect(byClinic[s.clinic]!.barcodes).toHaveLength(2);
    expect(byClinic[s.clinic]!.barcodes).not.toContain(given);

    const eie = await t.http.post(`/v1/procedures/${done.body.id}/entered-in-error`).set(...auth(s.clinician)).send({ reason: 'Not given', vialsReturned: 1 });
    expect(eie.status).toBe(200);
    byClinic = await notices();
    expect(byClinic[s.clinic]!.barcodes).toHaveLength(3);
    expect(byClinic[s.clinic]!.barcodes).toContain(given);
    const vial = ((await t.http.get(`/v1/vials?barcode=${encodeURIComponent(given)}`).set(...auth(supplier))).body.items as Vial[])[0]!;
    expect(vial).toMatchObject({ status: 'recalled', usedBy: null });
    const custody = (await t.http.get(`/v1/vials/${vial.id}/custody`).set(...auth(supplier))).body.items as Custody[];
    expect(custody.at(-1)).toMatchObject({ action: 'received', clinicId: s.clinic, procedureId: done.body.id });
  });
});

describe('receipt without a body', () => {
  it('a POST /receipt with no body records the arrival now', async () => {
    const s = await clinicSetup(t, { vials: 1 });
    const clinicLots = await t.token({ scope: 'lots:read lots:write', clinic: s.clinic, sub: 'store-keeper' });
    const vial = ((await t.http.get(`/v1/lots/${s.lot.id}/vials`).set(...auth(clinicLots))).body.items as Vial[])[0]!;
    const res = await t.http.post(`/v1/vials/${vial.id}/receipt`).set(...auth(clinicLots));
    expect(res.status).toBe(200);
    expect(res.body.receivedAt).not.toBeNull();
    expect(Math.abs(Date.parse(res.body.receivedAt) - Date.now())).toBeLessThan(60_000);
  });
});

describe('entered in error, naming the vials not given', () => {
  it('gives back exactly the named vial, refuses one the procedure did not use (naming it), and a count with a list that disagree is 400', async () => {
    const s = await clinicSetup(t, { vials: 4 });
    const all = (await t.http.get(`/v1/lots/${s.lot.id}/vials?status=at-clinic`).set(...auth(supplier))).body.items as Vial[];
    const done = await t.http.post('/v1/procedures').set(...auth(s.clinician)).send(procedureBody(s.patientId, s.lot.id, { vialsUsed: undefined, vialBarcodes: [all[0]!.barcode, all[1]!.barcode] }));
    expect(done.status).toBe(201);
    const eie = (body: object) => t.http.post(`/v1/procedures/${done.body.id}/entered-in-error`).set(...auth(s.clinician)).send({ reason: 'Second vial not opened', ...body });
    const notOurs = await eie({ returnedBarcodes: [all[2]!.barcode] });
    expect(notOurs.status).toBe(422);
    expect(notOurs.body.code).toBe('vial-not-available');
    expect(notOurs.body.detail).toContain(all[2]!.barcode);
    expect((await eie({ returnedBarcodes: [all[0]!.barcode], vialsReturned: 2 })).status).toBe(400);
    const ok = await eie({ returnedBarcodes: [all[0]!.barcode] });
    expect(ok.status).toBe(200);
    expect(ok.body.vials).toEqual([{ id: all[1]!.id, barcode: all[1]!.barcode }]);
    expect(ok.body.enteredInError.vialsReturned).toBe(1);
    expect((await t.http.get(`/v1/vials/${all[0]!.id}`).set(...auth(supplier))).body).toMatchObject({ status: 'at-clinic', usedBy: null });
    expect((await t.http.get(`/v1/vials/${all[1]!.id}`).set(...auth(supplier))).body).toMatchObject({ status: 'administered', usedBy: done.body.id });
  });
});
