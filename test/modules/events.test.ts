import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { clinicSetup, createLot, eligibleDonor, patientBody, procedureBody, releasedLot, uniq } from '../support/fixtures.js';

interface Event {
  id: string;
  type: string;
  occurredAt: string;
  clinicId: string | null;
  subject: { type: string; id: string };
  data: Record<string, unknown>;
}

let t: TestApp;
/** A reader with no clinic: sees every event. */
let reader: string;
let readerA: string;
let readerB: string;
let supplier: string;
beforeAll(async () => {
  t = await createTestApp();
  reader = await t.token({ scope: 'events:read', clinic: null, sub: 'integration' });
  readerA = await t.token({ scope: 'events:read', clinic: 'clinic-a', sub: 'integration-a' });
  readerB = await t.token({ scope: 'events:read', clinic: 'clinic-b', sub: 'integration-b' });
  supplier = await t.token({ scope: 'lots:read lots:write', clinic: null, sub: 'qa-unit' });
});
afterAll(() => t.close());

const bearer = (token: string) => ['authorization', `Bearer ${token}`] as const;

const page = (token: string, query: Record<string, string | number> = {}) => t.http.get('/v1/events').query(query).set(...bearer(token));

/** Every event the token sees (after `after`, of `types`), reading pages of 200 until the feed is caught up. */
async function all(token: string, opts: { types?: string; after?: string } = {}): Promise<Event[]> {
  const out: Event[] = [];
  let after = opts.after;
  for (;;) {
    const res = await page(token, { limit: 200, ...(opts.types ? { types: opts.types } : {}), ...(after ? { after } : {}) });
    expect(res.status).toBe(200);
    out.push(...(res.body.items as Event[]));
    if (res.body.items.length < 200) return out;
    after = res.body.nextCursor as string;
  }
}

/**
 * The feed lists an event once every transaction older than it has ended (events.table.ts): another test file's
 * open transaction on the same server can hold it back a moment, so a check that expects an event waits for it.
 */
async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v) || Date.now() > until) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The events of `type` about `subjectId` the token sees, waiting for at least `n`. */
async function about(type: string, subjectId: string, token = reader, n = 1): Promise<Event[]> {
  const found = await eventually(
    async () => (await all(token, { types: type })).filter((e) => e.subject.id === subjectId),
    (list) => list.length >= n,
  );
  return found;
}

/** The one event of `type` about `subjectId` (asserting there is exactly one). */
async function one(type: string, subjectId: string, token = reader): Promise<Event> {
  const found = await about(type, subjectId, token);
  expect(found, `${type} of ${subjectId}`).toHaveLength(1);
  return found[0]!;
}

/** The position after the last event the reader sees now. */
async function head(): Promise<string | undefined> {
  return (await all(reader)).at(-1)?.id;
}

const clinicToken = (clinic: string, scope = 'patients:read patients:write clinical:read clinical:write lots:read lots:write') =>
  t.token({ scope, clinic, sub: `dr-${clinic}` });

const ship = (lotId: string, clinicId: string, vials: number, shippedAt = '2026-03-02T08:00:00Z') =>
  t.http.post(`/v1/lots/${lotId}/shipments`).set(...bearer(supplier)).send({ clinicId, vials, shippedAt });

const recall = (lotId: string, reason = 'Mycoplasma positive on retain', recalledAt?: string) =>
  t.http.post(`/v1/lots/${lotId}/recall`).set(...bearer(supplier)).send({ reason, ...(recalledAt ? { recalledAt } : {}) });

const notices = async (lotId: string) =>
  (await t.http.get(`/v1/lots/${lotId}/recall-notices`).set(...bearer(supplier))).body.items as { id: string; clinicId: string; barcodes: string[] }[];

/** Text that must never reach an event: names, birth dates, MRNs, free text. */
const secrets = new Set<string>(['Maria', 'Lopez', '1961-04-17', 'Dr. Rivera', 'Unilateral primary osteoarthritis']);

describe('each change emits its event', () => {
  it('lot.released, lot.quarantined, lot.recalled: the lot, its status and cause; never the reason text', async () => {
    const { lot } = await releasedLot(t.http, supplier, {}, '2026-03-01T09:00:00Z');
    const lotRow = (await t.http.get(`/v1/lots/${lot.id}`).set(...bearer(supplier))).body as { lotNumber: string; productName: string };
    const released = await one('lot.released', lot.id);
    expect(released).toMatchObject({
      clinicId: null,
      subject: { type: 'Lot', id: lot.id },
      data: { lotId: lot.id, lotNumber: lotRow.lotNumber, productName: lotRow.productName, status: 'released', cause: 'manual', effectiveAt: '2026-03-01T09:00:00.000Z' },
    });

    const reason = `Temperature excursion ${uniq()}`;
    secrets.add(reason);
    const q = await t.http.post(`/v1/lots/${lot.id}/quarantine`).set(...bearer(supplier)).send({ reason, effectiveAt: '2026-03-05T00:00:00Z' });
    expect(q.status).toBe(200);
    const quarantined = await one('lot.quarantined', lot.id);
    expect(quarantined.data).toEqual({
      lotId: lot.id,
      lotNumber: lotRow.lotNumber,
      productName: lotRow.productName,
      status: 'quarantine',
      cause: 'manual',
      effectiveAt: '2026-03-05T00:00:00.000Z',
    });

    const recallReason = `Sterility failure ${uniq()}`;
    secrets.add(recallReason);
    expect((await recall(lot.id, recallReason, '2026-03-06T00:00:00Z')).status).toBe(200);
    const recalled = await one('lot.recalled', lot.id);
    expect(recalled).toMatchObject({ clinicId: null, subject: { type: 'Lot', id: lot.id }, data: { lotId: lot.id, status: 'recalled', cause: 'manual' } });
    for (const e of [released, quarantined, recalled]) expect(JSON.stringify(e)).not.toMatch(/Temperature excursion|Sterility failure/);
    // The feed lists them in the order they happened.
    const ids = (await all(reader, { types: 'lot.released,lot.quarantined,lot.recalled' })).map((e) => e.id);
    expect(ids.indexOf(released.id)).toBeLessThan(ids.indexOf(quarantined.id));
    expect(ids.indexOf(quarantined.id)).toBeLessThan(ids.indexOf(recalled.id));
  });

  it('donor.ineligible names the lots it quarantined, each told as lot.quarantined (cause donor-ineligible)', async () => {
    const { lot, donor } = await releasedLot(t.http, supplier);
    const reason = `Travel deferral found on review ${uniq()}`;
    secrets.add(reason);
    const res = await t.http.post(`/v1/donors/${donor.id}/eligibility`).set(...bearer(supplier)).send({ status: 'ineligible', determinedBy: 'Dr. Director', reason });
    expect(res.status).toBe(201);
    expect(res.body.quarantinedLotIds).toEqual([lot.id]);
    const ineligible = await one('donor.ineligible', donor.id);
    expect(ineligible).toMatchObject({ clinicId: null, subject: { type: 'Donor', id: donor.id }, data: { donorId: donor.id, quarantinedLotIds: [lot.id] } });
    const quarantined = await one('lot.quarantined', lot.id);
    expect(quarantined.data).toMatchObject({ lotId: lot.id, status: 'quarantine', cause: 'donor-ineligible' });
    expect(JSON.stringify([ineligible, quarantined])).not.toContain('Travel deferral');
    // In the order they happened, in one transaction: the lot back in quarantine, then the donor.
    const ids = (await all(reader)).map((e) => e.id);
    expect(ids.indexOf(quarantined.id)).toBeLessThan(ids.indexOf(ineligible.id));
  });

  it('donor.ineligible is seen by each clinic that received any lot of the donor, quarantined or not', async () => {
    const donor = await eligibleDonor(t.http, supplier);
    const recalledLot = await createLot(t.http, supplier, [donor.id]);
    const releasedOne = await createLot(t.http, supplier, [donor.id]);
    for (const l of [recalledLot, releasedOne]) {
      expect((await t.http.post(`/v1/lots/${l.id}/release`).set(...bearer(supplier)).send({ releasedAt: '2026-03-01T09:00:00Z' })).status).toBe(200);
    }
    expect((await ship(recalledLot.id, 'clinic-d', 1)).status).toBe(201);
    expect((await recall(recalledLot.id)).status).toBe(200);
    const res = await t.http.post(`/v1/donors/${donor.id}/eligibility`).set(...bearer(supplier)).send({ status: 'ineligible', determinedBy: 'Dr. Director', reason: 'Deferral' });
    expect(res.body.quarantinedLotIds).toEqual([releasedOne.id]);
    expect((await one('donor.ineligible', donor.id)).data).toEqual({ donorId: donor.id, quarantinedLotIds: [releasedOne.id] });
    const readerD = await t.token({ scope: 'events:read', clinic: 'clinic-d' });
    expect(await about('donor.ineligible', donor.id, readerD)).toHaveLength(1);
    const readerE = await t.token({ scope: 'events:read', clinic: 'clinic-e' });
    expect((await all(readerE, { types: 'donor.ineligible' })).map((e) => e.subject.id)).not.toContain(donor.id);
    // A second ineligible determination changes nothing and tells nothing.
    const again = await t.http.post(`/v1/donors/${donor.id}/eligibility`).set(...bearer(supplier)).send({ status: 'ineligible', determinedBy: 'Dr. Director', reason: 'Confirmed' });
    expect(again.status).toBe(201);
    expect(again.body.quarantinedLotIds).toEqual([]);
    await about('lot.quarantined', releasedOne.id);
    const barrier = (await releasedLot(t.http, supplier)).lot;
    await about('lot.released', barrier.id);
    expect(await about('donor.ineligible', donor.id)).toHaveLength(1);
  });

  it('shipment.created to the destination clinic, with the vials; procedure, outcome and adverse events to the patient\'s clinic', async () => {
    const familyName = `Okonkwo${uniq()}`;
    const mrn = `MRN-${uniq()}`;
    secrets.add(familyName).add(mrn);
    const s = await clinicSetup(t, { clinic: 'clinic-a' });
    const patient = await t.http.post('/v1/patients').set(...bearer(s.clinician)).send(patientBody({ familyName, mrn, givenName: 'Adaeze', birthDate: '1958-12-03' }));
    secrets.add('Adaeze').add('1958-12-03');
    await t.http.post(`/v1/patients/${patient.body.id}/consents`).set(...bearer(s.clinician)).send({
      kind: 'investigational-treatment',
      signedAt: '2026-02-15T09:00:00Z',
      documentVersion: 'ICF-EV-KNEE v3.1',
      irbProtocol: 'IRB-2026-0147',
    });
    const patientId = patient.body.id as string;

    const [shipment] = (await t.http.get(`/v1/lots/${s.lot.id}/shipments`).set(...bearer(supplier))).body.items as { id: string; vialIds: string[]; barcodes: string[] }[];
    const shipped = await one('shipment.created', shipment!.id);
    expect(shipped).toMatchObject({
      clinicId: 'clinic-a',
      subject: { type: 'Shipment', id: shipment!.id },
      data: { shipmentId: shipment!.id, lotId: s.lot.id, clinicId: 'clinic-a', vialIds: shipment!.vialIds, barcodes: shipment!.barcodes },
    });
    expect(shipment!.vialIds).toHaveLength(10);

    const notes = `Patient tolerated well ${uniq()}`;
    secrets.add(notes);
    const p = await t.http.post('/v1/procedures').set(...bearer(s.clinician)).send(procedureBody(patientId, s.lot.id, { notes }));
    expect(p.status).toBe(201);
    const created = await one('procedure.created', p.body.id);
    expect(created).toMatchObject({
      clinicId: 'clinic-a',
      subject: { type: 'Procedure', id: p.body.id },
      data: { procedureId: p.body.id, patientId, lotId: s.lot.id, status: 'completed' },
    });

    const o = await t.http
      .post('/v1/outcomes')
      .set(...bearer(s.clinician))
      .send({ procedureId: p.body.id, instrument: 'nrs-pain', score: 7, assessedAt: '2026-03-10T08:00:00Z', timepoint: 'baseline' });
    expect(o.status).toBe(201);
    const outcome = await one('outcome.created', o.body.id);
    expect(outcome).toMatchObject({ clinicId: 'clinic-a', subject: { type: 'Outcome', id: o.body.id } });
    expect(outcome.data).toEqual({ outcomeId: o.body.id, patientId, procedureId: p.body.id, instrument: 'nrs-pain', timepoint: 'baseline' });

    const description = `Knee effusion and warmth ${uniq()}`;
    secrets.add(description);
    const ae = await t.http.post('/v1/adverse-events').set(...bearer(s.clinician)).send({
      procedureId: p.body.id,
      onsetAt: '2026-03-11T08:00:00Z',
      description,
      severityGrade: 2,
      serious: false,
      seriousnessCriteria: [],
      relatedness: 'probable',
      outcome: 'recovering',
    });
    expect(ae.status).toBe(201);
    const aeCreated = await one('adverse-event.created', ae.body.id);
    expect(aeCreated).toMatchObject({ clinicId: 'clinic-a', subject: { type: 'AdverseEvent', id: ae.body.id } });
    const clock = { term: null, expectedness: 'unexpected', reportDueAt: null, reportedAt: null };
    expect(aeCreated.data).toEqual({ adverseEventId: ae.body.id, patientId, procedureId: p.body.id, grade: 2, serious: false, relatedness: 'probable', ...clock, version: 1 });

    const url = `/v1/adverse-events/${ae.body.id}`;
    expect((await t.http.patch(url).set(...bearer(s.clinician)).set('if-match', '"1"').send({ severityGrade: 3 })).status).toBe(200);
    const updated = await one('adverse-event.updated', ae.body.id);
    expect(updated.data).toEqual({ adverseEventId: ae.body.id, patientId, procedureId: p.body.id, grade: 3, serious: false, relatedness: 'probable', ...clock, version: 2 });
    // A patch that changes nothing tells nothing.
    const noop = await t.http.patch(url).set(...bearer(s.clinician)).set('if-match', '"2"').send({ severityGrade: 3 });
    expect(noop.status).toBe(200);
    expect(noop.body.version).toBe(2);

    const reason = `Wrong patient selected ${uniq()}`;
    secrets.add(reason);
    const eie = await t.http.post(`/v1/procedures/${p.body.id}/entered-in-error`).set(...bearer(s.clinician)).set('if-match', '"1"').send({ reason });
    expect(eie.status).toBe(200);
    const inError = await one('procedure.entered-in-error', p.body.id);
    expect(inError).toMatchObject({ clinicId: 'clinic-a', subject: { type: 'Procedure', id: p.body.id } });
    expect(inError.data).toEqual({ procedureId: p.body.id, patientId, lotId: s.lot.id, status: 'entered-in-error', version: 2 });
    // Only the one update (the no-op patch, read after the later entered-in-error event settled, added none).
    expect(await about('adverse-event.updated', ae.body.id)).toHaveLength(1);
  });

  it('recall-notice.created to each clinic the recall notified; recall-notice.acknowledged once', async () => {
    const { lot } = await releasedLot(t.http, supplier);
    expect((await ship(lot.id, 'clinic-a', 2)).status).toBe(201);
    expect((await ship(lot.id, 'clinic-b', 3)).status).toBe(201);
    expect((await recall(lot.id)).status).toBe(200);
    const made = (await notices(lot.id)).sort((x, y) => x.clinicId.localeCompare(y.clinicId));
    expect(made.map((n) => n.clinicId)).toEqual(['clinic-a', 'clinic-b']);
    for (const n of made) {
      const e = await one('recall-notice.created', n.id);
      expect(e).toMatchObject({ clinicId: n.clinicId, subject: { type: 'RecallNotice', id: n.id } });
      expect(e.data).toEqual({ noticeId: n.id, lotId: lot.id, clinicId: n.clinicId, barcodes: n.barcodes });
      expect(n.barcodes.length).toBeGreaterThan(0);
    }
    expect(JSON.stringify(await all(reader, { types: 'recall-notice.created' }))).not.toContain('Mycoplasma');

    const ackA = await clinicToken('clinic-a');
    const noticeA = made[0]!;
    const ack = await t.http.post(`/v1/lots/${lot.id}/recall-notices/${noticeA.id}/acknowledge`).set(...bearer(ackA));
    expect(ack.status).toBe(200);
    expect((await t.http.post(`/v1/lots/${lot.id}/recall-notices/${noticeA.id}/acknowledge`).set(...bearer(ackA))).status).toBe(200);
    const acknowledged = await one('recall-notice.acknowledged', noticeA.id);
    expect(acknowledged).toMatchObject({ clinicId: 'clinic-a', subject: { type: 'RecallNotice', id: noticeA.id } });
    expect(acknowledged.data).toEqual({ noticeId: noticeA.id, lotId: lot.id, clinicId: 'clinic-a', barcodes: noticeA.barcodes, acknowledgedAt: ack.body.acknowledgedAt });
  });

  it('a late shipment of recalled vials makes the clinic\'s notice once (recall-notice.created), then adds to it silently', async () => {
    const { lot } = await releasedLot(t.http, supplier);
    expect((await recall(lot.id, 'Drill', '2026-05-01T00:00:00Z')).status).toBe(200);
    expect(await notices(lot.id)).toEqual([]);
    const first = await ship(lot.id, 'clinic-c', 2, '2026-04-01T00:00:00Z');
    expect(first.status).toBe(201);
    const [notice] = await notices(lot.id);
    expect(notice!.barcodes).toEqual(first.body.barcodes);
    const e = await one('recall-notice.created', notice!.id);
    expect(e).toMatchObject({ clinicId: 'clinic-c', data: { noticeId: notice!.id, lotId: lot.id, clinicId: 'clinic-c', barcodes: first.body.barcodes } });
    await one('shipment.created', first.body.id);
    const second = await ship(lot.id, 'clinic-c', 1, '2026-04-02T00:00:00Z');
    expect(second.status).toBe(201);
    await one('shipment.created', second.body.id);
    expect((await notices(lot.id))[0]!.barcodes).toHaveLength(3);
    expect((await all(reader, { types: 'recall-notice.created' })).filter((x) => x.data.lotId === lot.id)).toHaveLength(1);
  });
});

describe('a change that fails emits nothing', () => {
  it('refused procedures (422, also when the statement\'s guard refuses), a 409 and other refusals leave the feed as it was', async () => {
    const s = await clinicSetup(t, { clinic: 'clinic-a', vials: 2 });
    const before = await head();
    // The clinic holds 2 vials: the statement's vial claim fails and the refusal answers.
    const tooMany = await t.http.post('/v1/procedures').set(...bearer(s.clinician)).send(procedureBody(s.patientId, s.lot.id, { vialsUsed: 3, dose: { particles: 2.5e9, volumeMl: 0.01 } }));
    expect(tooMany.status).toBe(422);
    expect(tooMany.body.code).toBe('insufficient-vials');
    const early = await t.http.post('/v1/procedures').set(...bearer(s.clinician)).send(procedureBody(s.patientId, s.lot.id, { performedAt: '2026-02-10T09:00:00Z' }));
    expect(early.status).toBe(422);
    const p = await t.http.post('/v1/procedures').set(...bearer(s.clinician)).send(procedureBody(s.patientId, s.lot.id));
    expect(p.status).toBe(201);
    const afterCreate = (await about('procedure.created', p.body.id))[0]!.id;

    const eie = `/v1/procedures/${p.body.id}/entered-in-error`;
    expect((await t.http.post(eie).set(...bearer(s.clinician)).send({ reason: 'Wrong patient', vialsReturned: 5 })).status).toBe(422);
    expect((await t.http.post(eie).set(...bearer(s.clinician)).set('if-match', '"7"').send({ reason: 'Wrong patient' })).status).toBe(412);
    expect((await ship(s.lot.id, 'clinic-b', 1000)).status).toBe(422);
    expect((await t.http.post(`/v1/lots/${s.lot.id}/release`).set(...bearer(supplier)).send({})).status).toBe(409);
    expect((await recall(s.lot.id)).status).toBe(200);
    const recalledEvents = (await about('lot.recalled', s.lot.id))[0]!.id;
    expect((await recall(s.lot.id)).status).toBe(409);

    // A change that succeeds after them: once its event is listed, nothing else was added.
    const barrier = await t.http.post(eie).set(...bearer(s.clinician)).send({ reason: 'Wrong patient' });
    expect(barrier.status).toBe(200);
    await about('procedure.entered-in-error', p.body.id);
    const added = await all(reader, { after: before! });
    expect(added.map((e) => e.type)).toEqual(['procedure.created', 'lot.recalled', 'recall-notice.created', 'procedure.entered-in-error']);
    expect(added[0]!.id).toBe(afterCreate);
    expect(added[1]!.id).toBe(recalledEvents);
    expect((await t.http.post(eie).set(...bearer(s.clinician)).send({ reason: 'again' })).status).toBe(409);
    const barrier2 = await t.http.post(`/v1/lots/${(await releasedLot(t.http, supplier)).lot.id}/recall`).set(...bearer(supplier)).send({ reason: 'Drill' });
    expect(barrier2.status).toBe(200);
    await about('lot.recalled', barrier2.body.id);
    expect((await all(reader, { after: added.at(-1)!.id })).map((e) => e.type)).toEqual(['lot.released', 'lot.recalled']);
  });
});

describe('who sees what', () => {
  it('a clinic sees its own clinic\'s events and supplier events about lots shipped to it, nothing else', async () => {
    const a = await clinicSetup(t, { clinic: 'clinic-a' });
    const p = await t.http.post('/v1/procedures').set(...bearer(a.clinician)).send(procedureBody(a.patientId, a.lot.id));
    expect(p.status).toBe(201);
    const o = await t.http
      .post('/v1/outcomes')
      .set(...bearer(a.clinician))
      .send({ procedureId: p.body.id, instrument: 'nrs-pain', score: 6, assessedAt: '2026-03-10T08:00:00Z', timepoint: 'baseline' });
    expect(o.status).toBe(201);
    const ae = await t.http.post('/v1/adverse-events').set(...bearer(a.clinician)).send({
      procedureId: p.body.id,
      onsetAt: '2026-03-11T08:00:00Z',
      description: 'Swelling',
      severityGrade: 1,
      serious: false,
      seriousnessCriteria: [],
      relatedness: 'possible',
      outcome: 'recovering',
    });
    expect(ae.status).toBe(201);

    // Shipped to both clinics, and one shipped to clinic-a only; both recalled.
    const both = (await releasedLot(t.http, supplier)).lot;
    expect((await ship(both.id, 'clinic-a', 1)).status).toBe(201);
    expect((await ship(both.id, 'clinic-b', 1)).status).toBe(201);
    expect((await recall(both.id)).status).toBe(200);
    expect((await recall(a.lot.id)).status).toBe(200);
    const noticeA = (await notices(both.id)).find((n) => n.clinicId === 'clinic-a');
    const noticeB = (await notices(both.id)).find((n) => n.clinicId === 'clinic-b');

    // Everything has settled for the reader without a clinic.
    await one('outcome.created', o.body.id);
    await one('adverse-event.created', ae.body.id);
    await one('recall-notice.created', noticeB!.id);
    await one('lot.recalled', a.lot.id);

    const seenByB = await all(readerB);
    const idsB = new Set(seenByB.map((e) => e.subject.id));
    expect(seenByB.every((e) => e.clinicId === 'clinic-b' || e.clinicId === null)).toBe(true);
    for (const id of [p.body.id, o.body.id, ae.body.id, noticeA!.id, a.lot.id]) expect(idsB.has(id)).toBe(false);
    expect(seenByB.filter((e) => e.type === 'lot.recalled').map((e) => e.subject.id)).toContain(both.id);
    expect(seenByB.some((e) => e.type === 'recall-notice.created' && e.subject.id === noticeB!.id)).toBe(true);
    // Supplier events of lots never shipped to clinic-b stay hidden: every one it sees is about a lot it received.
    const shippedToB = new Set(
      (await all(reader, { types: 'shipment.created' })).filter((e) => e.clinicId === 'clinic-b').map((e) => e.data.lotId as string),
    );
    for (const e of seenByB.filter((x) => x.clinicId === null)) expect(e.data.lotId === undefined || shippedToB.has(e.data.lotId as string)).toBe(true);

    const seenByA = await all(readerA);
    const idsA = new Set(seenByA.map((e) => e.subject.id));
    for (const id of [p.body.id, o.body.id, ae.body.id, noticeA!.id, a.lot.id, both.id]) expect(idsA.has(id)).toBe(true);
    expect(idsA.has(noticeB!.id)).toBe(false);
  });

  it('refuses a token without events:read (403)', async () => {
    const other = await t.token({ scope: 'lots:read lots:write clinical:read audit:read', clinic: null });
    const res = await page(other);
    expect(res.status).toBe(403);
  });
});

describe('the cursor', () => {
  it('pages one at a time through every event once, in feed order', async () => {
    const everything = await all(reader);
    expect(everything.length).toBeGreaterThan(20);
    const visited: string[] = [];
    let after: string | undefined;
    for (;;) {
      const res = await page(reader, { limit: 1, ...(after ? { after } : {}) });
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(1);
      if (res.body.items.length === 0) {
        expect(res.body.nextCursor).toBe(after);
        break;
      }
      visited.push(res.body.items[0].id);
      expect(res.body.nextCursor).toBe(res.body.items[0].id);
      after = res.body.nextCursor;
    }
    expect(visited).toEqual(everything.map((e) => e.id));
    expect(new Set(visited).size).toBe(visited.length);
  });

  it('filters by types; refuses an unknown type, an unknown after and an event the token cannot see (400)', async () => {
    const recalls = await all(reader, { types: 'lot.recalled' });
    expect(recalls.length).toBeGreaterThan(0);
    expect(recalls.every((e) => e.type === 'lot.recalled')).toBe(true);
    const two = await all(reader, { types: 'lot.recalled,shipment.created' });
    expect(new Set(two.map((e) => e.type))).toEqual(new Set(['lot.recalled', 'shipment.created']));
    const allIds = (await all(reader)).map((e) => e.id);
    expect(two.map((e) => e.id)).toEqual(allIds.filter((id) => two.some((e) => e.id === id)));

    const unknownType = await page(reader, { types: 'lot.recalled,lot.exploded' });
    expect(unknownType.status).toBe(400);

    const unknownAfter = await page(reader, { after: '00000000-0000-4000-8000-000000000000' });
    expect(unknownAfter.status).toBe(400);
    expect(unknownAfter.body.code).toBe('invalid-cursor');

    const hidden = (await all(reader, { types: 'procedure.created' })).find((e) => e.clinicId === 'clinic-a')!;
    expect((await page(readerA, { after: hidden.id })).status).toBe(200);
    const notVisible = await page(readerB, { after: hidden.id });
    expect(notVisible.status).toBe(400);
    expect({ code: notVisible.body.code, detail: notVisible.body.detail, errors: notVisible.body.errors }).toEqual({
      code: unknownAfter.body.code,
      detail: unknownAfter.body.detail,
      errors: unknownAfter.body.errors,
    });
  });
});

describe('what events carry', () => {
  it('never a name, a birth date, an MRN or free text', async () => {
    const everything = JSON.stringify(await all(reader));
    for (const s of secrets) expect(everything).not.toContain(s);
    expect(everything).not.toContain('MRN-');
  });
});
