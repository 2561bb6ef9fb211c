import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { consentBody, patientBody, procedureBody, releasedLot, uniq } from '../support/fixtures.js';

/**
 * Issue 18: the lot safety report, the signals across lots and the `lot.safety-signal` event.
 *
 * One product, four lots, two clinics (procedures with an adverse event not judged not-related / procedures):
 *   A: clinic-a 6/8 (+ one entered in error, with an event, not counted), clinic-b 1/2  → 7/10, raised
 *   D: clinic-a 6/10                                                                  → 6/10, raised
 *   B: clinic-a 0/20                                                                  → 0/20
 *   C: clinic-a 0/20, clinic-b 1/20                                                   → 1/40
 * Expected values are worked out by hand below; p-values and intervals are SciPy 1.17.1's
 * (scipy.stats.fisher_exact(..., alternative='greater'), scipy.stats.beta.ppf), independent of this code.
 */

const now = new Date('2026-06-01T12:00:00Z');
let t: TestApp;
let supplier: string;
let inspector: string;
const clinician: Record<string, string> = {};
const auditor: Record<string, string> = {};
let eventsReader: Record<string, string> = {};
const PRODUCT = `MSC-EV safety ${uniq()}`;
const lot: Record<'A' | 'B' | 'C' | 'D', string> = { A: '', B: '', C: '', D: '' };
const patient: Record<string, string> = {};
const procs: Record<string, string[]> = {};
let enteredInError: string;
let lateBaseline: string;

const bearer = (token: string) => ['authorization', `Bearer ${token}`] as const;

async function ship(lotId: string, clinicId: string, vials: number) {
  const res = await t.http.post(`/v1/lots/${lotId}/shipments`).set(...bearer(supplier)).send({ clinicId, vials, shippedAt: '2026-03-02T08:00:00Z' });
  expect(res.status).toBe(201);
}

async function procedures(clinic: string, lotId: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const res = await t.http.post('/v1/procedures').set(...bearer(clinician[clinic]!)).send(procedureBody(patient[clinic]!, lotId, { performedAt: '2026-03-10T10:00:00Z' }));
    expect(res.status).toBe(201);
    ids.push(res.body.id);
  }
  return ids;
}

async function adverseEvent(clinic: string, procedureId: string, o: { grade?: number; relatedness?: string; serious?: boolean; awareAt?: string } = {}) {
  const res = await t.http
    .post('/v1/adverse-events')
    .set(...bearer(clinician[clinic]!))
    .send({
      procedureId,
      onsetAt: '2026-03-11T08:00:00Z',
      description: 'Knee effusion',
      severityGrade: o.grade ?? 1,
      serious: o.serious ?? false,
      seriousnessCriteria: o.serious ? ['hospitalization'] : [],
      relatedness: o.relatedness ?? 'probable',
      outcome: 'resolved',
      ...(o.awareAt ? { awareAt: o.awareAt } : {}),
    });
  expect(res.status).toBe(201);
  return res.body as { id: string; version: number };
}

async function score(clinic: string, procedureId: string, timepoint: string, value: number, assessedAt: string) {
  const res = await t.http.post('/v1/outcomes').set(...bearer(clinician[clinic]!)).send({ procedureId, instrument: 'nrs-pain', score: value, assessedAt, timepoint });
  expect(res.status).toBe(201);
}

const get = (path: string, token: string) => t.http.get(path).set(...bearer(token));
const report = async (lotId: string, token: string) => {
  const res = await get(`/v1/reports/lot-safety/${lotId}`, token);
  expect(res.status).toBe(200);
  return res.body;
};

async function signalEvents(token: string) {
  const res = await get('/v1/events?types=lot.safety-signal&limit=200', token);
  expect(res.status).toBe(200);
  return res.body.items as { type: string; clinicId: string | null; subject: { type: string; id: string }; data: Record<string, unknown> }[];
}

beforeAll(async () => {
  t = await createTestApp({ clock: { now: () => now } });
  supplier = await t.token({ scope: 'lots:read lots:write reports:read', clinic: null, sub: 'qa-unit' });
  inspector = await t.token({ scope: 'reports:read', clinic: null, sub: 'inspector' });
  eventsReader = { supplier: await t.token({ scope: 'events:read', clinic: null, sub: 'qa-feed' }) };
  for (const c of ['clinic-a', 'clinic-b', 'clinic-c']) {
    clinician[c] = await t.token({ scope: 'patients:read patients:write clinical:read clinical:write lots:read', clinic: c, sub: `dr-${c}` });
    auditor[c] = await t.token({ scope: 'reports:read', clinic: c, sub: `auditor-${c}` });
    eventsReader[c] = await t.token({ scope: 'events:read', clinic: c, sub: `feed-${c}` });
    const p = await t.http.post('/v1/patients').set(...bearer(clinician[c])).send(patientBody());
    patient[c] = p.body.id;
    await t.http.post(`/v1/patients/${p.body.id}/consents`).set(...bearer(clinician[c])).send(consentBody({ signedAt: '2026-02-15T09:00:00Z' }));
  }
  for (const k of ['A', 'B', 'C', 'D'] as const) lot[k] = (await releasedLot(t.http, supplier, { productName: PRODUCT })).lot.id;
  await ship(lot.A, 'clinic-a', 9);
  await ship(lot.A, 'clinic-b', 2);
  await ship(lot.D, 'clinic-a', 10);
  await ship(lot.B, 'clinic-a', 20);
  await ship(lot.C, 'clinic-a', 20);
  await ship(lot.C, 'clinic-b', 20);
  await ship(lot.B, 'clinic-c', 1);

  // Lot A, clinic-a: 8 procedures; 6 with a related event (one of them two events, one serious and reported late),
  // the 7th with a not-related event only, the 8th none; a 9th entered in error, with an event.
  procs.Aa = await procedures('clinic-a', lot.A, 9);
  const grades = [1, 1, 2, 2, 1, 2];
  for (const [i, g] of grades.entries()) await adverseEvent('clinic-a', procs.Aa[i]!, { grade: g, relatedness: i < 3 ? 'probable' : 'possible' });
  await adverseEvent('clinic-a', procs.Aa[0]!, { grade: 3, serious: true, relatedness: 'certain', awareAt: '2026-03-11T09:00:00Z' });
  await adverseEvent('clinic-a', procs.Aa[6]!, { grade: 1, relatedness: 'not-related' });
  enteredInError = procs.Aa[8]!;
  await adverseEvent('clinic-a', enteredInError, { grade: 2 });
  // Lot A, clinic-b: 2 procedures, 1 with an event.
  procs.Ab = await procedures('clinic-b', lot.A, 2);
  await adverseEvent('clinic-b', procs.Ab[0]!, { grade: 2, relatedness: 'probable' });
  // Lot D: 6 of 10 with an event. Lot B: none of 20. Lot C: 1 of 40 (clinic-b).
  procs.D = await procedures('clinic-a', lot.D, 10);
  for (const id of procs.D.slice(0, 6)) await adverseEvent('clinic-a', id);
  procs.B = await procedures('clinic-a', lot.B, 20);
  procs.Ca = await procedures('clinic-a', lot.C, 20);
  procs.Cb = await procedures('clinic-b', lot.C, 20);
  await adverseEvent('clinic-b', procs.Cb[0]!, { grade: 1, relatedness: 'possible' });

  // Responders on nrs-pain (MCID 2, lower is better) at week 6. Lot A: 8→4 yes; 8→7 no; 8→7 then 8→5 (the latest
  // counts) yes; a score without a baseline is not assessable; and one whose baseline comes later (below).
  const [p1, p2, p3, p4, p5] = procs.Aa;
  for (const p of [p1!, p2!, p3!]) await score('clinic-a', p, 'baseline', 8, '2026-03-09T10:00:00Z');
  await score('clinic-a', p1!, 'week-6', 4, '2026-04-21T10:00:00Z');
  await score('clinic-a', p2!, 'week-6', 7, '2026-04-21T10:00:00Z');
  await score('clinic-a', p3!, 'week-6', 7, '2026-04-19T10:00:00Z');
  await score('clinic-a', p3!, 'week-6', 5, '2026-04-22T10:00:00Z');
  await score('clinic-a', p4!, 'week-6', 2, '2026-04-21T10:00:00Z');
  lateBaseline = p5!;
  await score('clinic-a', p5!, 'week-6', 5, '2026-04-21T10:00:00Z');
  // The procedure entered in error had a responder; it leaves with it.
  await score('clinic-a', enteredInError, 'baseline', 9, '2026-03-09T10:00:00Z');
  await score('clinic-a', enteredInError, 'week-6', 1, '2026-04-21T10:00:00Z');
  // Pool (lot B): 6→3 yes, 6→6 no.
  await score('clinic-a', procs.B[0]!, 'baseline', 6, '2026-03-09T10:00:00Z');
  await score('clinic-a', procs.B[0]!, 'week-6', 3, '2026-04-21T10:00:00Z');
  await score('clinic-a', procs.B[1]!, 'baseline', 6, '2026-03-09T10:00:00Z');
  await score('clinic-a', procs.B[1]!, 'week-6', 6, '2026-04-21T10:00:00Z');

  const eie = await t.http
    .post(`/v1/procedures/${enteredInError}/entered-in-error`)
    .set(...bearer(clinician['clinic-a']!))
    .send({ reason: 'Recorded against the wrong patient' });
  expect(eie.status).toBe(200);
}, 120_000);
afterAll(() => t.close());

describe('the safety monitor and lot.safety-signal', () => {
  it('flags the raised lots from the feed, before anyone reads a report, with one event each for the supplier', async () => {
    expect(await t.app.safetyMonitor.catchUp()).toBe(true);
    const events = await signalEvents(eventsReader.supplier!);
    expect(events.map((e) => e.subject.id).sort()).toEqual([lot.A, lot.D].sort());
    const a = events.find((e) => e.subject.id === lot.A)!;
    expect(a).toMatchObject({ type: 'lot.safety-signal', clinicId: null, subject: { type: 'Lot', id: lot.A } });
    // No p-value: it is judged over every clinic, and the clinics that received the lot are told too.
    expect(a.data).toEqual({ lotId: lot.A, lotNumber: expect.any(String), productName: PRODUCT, test: 'fisher-exact-greater', recurrence: false });
    // ids, codes and numbers only: no patient, procedure or clinic in the payload
    expect(JSON.stringify(a.data)).not.toMatch(new RegExp(`${patient['clinic-a']}|${procs.Aa![0]}|clinic-`));
  });

  it('tells the clinics that received the lot, and no other', async () => {
    expect((await signalEvents(eventsReader['clinic-a']!)).map((e) => e.subject.id).sort()).toEqual([lot.A, lot.D].sort());
    expect((await signalEvents(eventsReader['clinic-b']!)).map((e) => e.subject.id)).toEqual([lot.A]);
    expect(await signalEvents(eventsReader['clinic-c']!)).toEqual([]);
  });

  it('tells a signal once: more events, reports read, and later passes add no second event', async () => {
    await adverseEvent('clinic-a', procs.Aa![7]!, { grade: 1 });
    await report(lot.A, inspector);
    await get('/v1/reports/safety-signals', inspector);
    await t.app.safetyMonitor.catchUp();
    await t.app.safetyMonitor.catchUp();
    const events = await signalEvents(eventsReader.supplier!);
    expect(events.filter((e) => e.subject.id === lot.A)).toHaveLength(1);
    expect(events).toHaveLength(2);
  });
});

describe('GET /v1/reports/lot-safety/{lotId}', () => {
  // From here on lot A's clinic-a procedures with an event are 7 of 8 (the one added above): 8/10 over both clinics.
  it('matches the hand count for the supplier: procedures, events by grade, seriousness and relatedness, rate, pool, signal', async () => {
    const r = await report(lot.A, inspector);
    expect(r).toMatchObject({ lotId: lot.A, productName: PRODUCT, requestedBy: { sub: 'inspector', clinicId: null }, generatedAt: now.toISOString() });
    // 8 + 2 procedures; the one entered in error is not counted, nor is its event.
    expect(r.procedures).toBe(10);
    expect(r.proceduresWithEvent).toBe(8);
    // clinic-a: 6 related + 1 serious certain + 1 not-related + 1 added = 9; clinic-b: 1
    expect(r.adverseEvents).toEqual({
      total: 10,
      serious: 1,
      byGrade: { 1: 5, 2: 4, 3: 1, 4: 0, 5: 0 },
      byRelatedness: { certain: 1, probable: 5, possible: 3, unlikely: 0, conditional: 0, unassessable: 0, 'not-related': 1 },
      // the serious, unexpected, certain event: aware 2026-03-11, due 15 days later, not reported by 2026-06-01
      reportsOverdue: 1,
    });
    expect(r.rate).toEqual({ value: 0.8, lower: expect.any(Number), upper: expect.any(Number), method: 'clopper-pearson', confidence: 0.95 });
    expect(r.rate.lower).toBeCloseTo(0.4439045376923585, 8); // scipy.stats.beta.ppf(0.025, 8, 3)
    expect(r.rate.upper).toBeCloseTo(0.9747892736731666, 8); // scipy.stats.beta.ppf(0.975, 9, 2)
    // Pool: D 6/10, B 0/20, C 1/40
    expect(r.pool).toMatchObject({ lots: 3, procedures: 70, proceduresWithEvent: 7 });
    expect(r.pool.rate.value).toBeCloseTo(0.1, 12);
    expect(r.pool.rate.lower).toBeCloseTo(0.04115970158358478, 8);
    expect(r.pool.rate.upper).toBeCloseTo(0.19524565254166246, 8);
    expect(r.signal.test).toBe('fisher-exact-greater');
    expect(r.signal.flagged).toBe(true);
    expect(r.signal.pValue).toBeCloseTo(8.328693417790237e-6, 12); // fisher_exact([[8, 2], [7, 63]], 'greater')
  });

  it('does not flag a normal lot', async () => {
    const b = await report(lot.B, inspector);
    expect(b).toMatchObject({ procedures: 20, proceduresWithEvent: 0, rate: { value: 0, lower: 0 }, pool: { lots: 3, procedures: 60, proceduresWithEvent: 15 } });
    expect(b.rate.upper).toBeCloseTo(0.1684334709830853, 8);
    expect(b.signal).toEqual({ flagged: false, pValue: 1, test: 'fisher-exact-greater' });
    const c = await report(lot.C, inspector);
    expect(c).toMatchObject({ procedures: 40, proceduresWithEvent: 1, signal: { flagged: false } });
  });

  it('gives responders per instrument and timepoint against the pool, updated as scores (and late baselines) arrive', async () => {
    let r = await report(lot.A, inspector);
    // A at week 6: 8→4, 8→7, 8→5 (latest): 2 of 3; the score without a baseline is not counted; the one entered in error is gone.
    expect(r.responders).toEqual([
      {
        instrument: 'nrs-pain',
        timepoint: 'week-6',
        n: 3,
        responders: 2,
        rate: { value: 2 / 3, lower: expect.any(Number), upper: expect.any(Number), method: 'clopper-pearson', confidence: 0.95 },
        pool: { n: 2, responders: 1, rate: expect.objectContaining({ value: 0.5 }) },
      },
    ]);
    await score('clinic-a', lateBaseline, 'baseline', 8, '2026-03-09T11:00:00Z');
    r = await report(lot.A, inspector);
    expect(r.responders[0]).toMatchObject({ n: 4, responders: 3, rate: { value: 0.75 } });
    expect(r.responders[0].rate.lower).toBeCloseTo(0.19412044968324338, 8); // scipy.stats.beta.ppf(0.025, 3, 2)
    expect(r.responders[0].rate.upper).toBeCloseTo(0.9936905367902902, 8); // scipy.stats.beta.ppf(0.975, 4, 1)
    // From the pool's side: lot B sees lot A's responders as its pool.
    expect((await report(lot.B, inspector)).responders[0]).toMatchObject({ n: 2, responders: 1, pool: { n: 4, responders: 3 } });
  });

  it("counts a clinic's own procedures only, on both sides, so another clinic's numbers never reach it", async () => {
    const a = await report(lot.A, auditor['clinic-a']!);
    expect(a.requestedBy).toEqual({ sub: 'auditor-clinic-a', clinicId: 'clinic-a' });
    expect(a).toMatchObject({ procedures: 8, proceduresWithEvent: 7, pool: { lots: 3, procedures: 50, proceduresWithEvent: 6 } });
    expect(a.adverseEvents).toMatchObject({ total: 9, serious: 1, reportsOverdue: 1 });
    expect(a.signal.flagged).toBe(true);
    expect(a.signal.pValue).toBeCloseTo(4.095738216527579e-5, 12); // fisher_exact([[7, 1], [6, 44]], 'greater')

    const b = await report(lot.A, auditor['clinic-b']!);
    expect(b).toMatchObject({ procedures: 2, proceduresWithEvent: 1, pool: { lots: 1, procedures: 20, proceduresWithEvent: 1 } });
    expect(b.adverseEvents).toEqual({
      total: 1,
      serious: 0,
      byGrade: { 1: 0, 2: 1, 3: 0, 4: 0, 5: 0 },
      byRelatedness: { certain: 0, probable: 1, possible: 0, unlikely: 0, conditional: 0, unassessable: 0, 'not-related': 0 },
      reportsOverdue: 0,
    });
    expect(b.responders).toEqual([]);
    expect(b.signal.flagged).toBe(false);
    expect(b.signal.pValue).toBeCloseTo(0.17748917748917747, 12);

    // A clinic that never used the lot sees zeros, not the lot's figures.
    const c = await report(lot.A, auditor['clinic-c']!);
    expect(c).toMatchObject({ procedures: 0, proceduresWithEvent: 0, rate: { value: null, lower: null, upper: null }, adverseEvents: { total: 0 }, pool: { lots: 0, procedures: 0 } });
    expect(c.signal).toEqual({ flagged: false, pValue: 1, test: 'fisher-exact-greater' });
  });

  it('is 404 for an unknown lot, 400 for a malformed id, 403 without reports:read', async () => {
    expect((await get('/v1/reports/lot-safety/6f1c2a64-1111-4111-8111-111111111111', inspector)).status).toBe(404);
    const bad = await get('/v1/reports/lot-safety/not-a-uuid', inspector);
    expect(bad.status).toBe(400);
    expect(bad.headers['content-type']).toMatch(/problem\+json/);
    expect((await get(`/v1/reports/lot-safety/${lot.A}`, clinician['clinic-a']!)).status).toBe(403);
    expect((await get('/v1/reports/safety-signals', clinician['clinic-a']!)).status).toBe(403);
  });

  it('records every report read in the audit log', async () => {
    const before = await t.pool.query("select count(*)::int as n from audit_events where resource_type = 'lot' and details->>'report' = 'lot-safety' and resource_id = $1", [lot.D]);
    await report(lot.D, auditor['clinic-a']!);
    const after = await t.pool.query(
      "select actor_sub, actor_clinic_id, action from audit_events where resource_type = 'lot' and details->>'report' = 'lot-safety' and resource_id = $1 order by id",
      [lot.D],
    );
    expect(after.rows).toHaveLength(before.rows[0].n + 1);
    expect(after.rows.at(-1)).toEqual({ actor_sub: 'auditor-clinic-a', actor_clinic_id: 'clinic-a', action: 'export' });
  });
});

describe('GET /v1/reports/safety-signals', () => {
  it('lists every flagged lot, smallest p first', async () => {
    const res = await get('/v1/reports/safety-signals', inspector);
    expect(res.status).toBe(200);
    expect(res.body.requestedBy).toEqual({ sub: 'inspector', clinicId: null });
    expect(res.body.items.map((i: { lotId: string }) => i.lotId)).toEqual([lot.A, lot.D]);
    const [a, d] = res.body.items;
    expect(a).toMatchObject({ productName: PRODUCT, procedures: 10, proceduresWithEvent: 8, pool: { lots: 3, procedures: 70, proceduresWithEvent: 7 }, signal: { flagged: true } });
    // D: 6/10 against A 8/10 + B 0/20 + C 1/40
    expect(d).toMatchObject({ procedures: 10, proceduresWithEvent: 6, pool: { procedures: 70, proceduresWithEvent: 9 } });
    expect(d.signal.pValue).toBeCloseTo(0.0022371070625607473, 12); // fisher_exact([[6, 4], [9, 61]], 'greater')
    expect(a.signal.pValue).toBeLessThan(d.signal.pValue);
  });

  it("judges a clinic's list on its own procedures", async () => {
    const a = await get('/v1/reports/safety-signals', auditor['clinic-a']!);
    // clinic-a: A 7/8 against its 6/50 elsewhere; D 6/10 against its 7/48 (fisher_exact([[6, 4], [7, 41]], 'greater') = 0.00539)
    expect(a.body.items.map((i: { lotId: string }) => i.lotId)).toEqual([lot.A, lot.D]);
    expect(a.body.items[1].signal.pValue).toBeCloseTo(0.005391622114722682, 12);
    expect(a.body.items[1].pool).toMatchObject({ procedures: 48, proceduresWithEvent: 7 });
    const b = await get('/v1/reports/safety-signals', auditor['clinic-b']!);
    expect(b.body.items).toEqual([]);
  });
});

describe('rebuilding counts from the records', () => {
  it('restores exact counts for a lot whose counts were lost or written around the service', async () => {
    const expected = await report(lot.A, inspector);
    await t.pool.query('update lot_safety_counts set procedures = 999, procedures_with_event = 0 where lot_id = $1', [lot.A]);
    await t.pool.query('delete from lot_responder_counts where lot_id = $1', [lot.A]);
    await t.pool.query('insert into lot_safety_recount (lot_id) values ($1)', [lot.A]);
    expect(await t.app.safetyMonitor.catchUp({ rebuild: true })).toBe(true);
    const rebuilt = await report(lot.A, inspector);
    expect({ ...rebuilt, generatedAt: null }).toEqual({ ...expected, generatedAt: null });
    expect((await t.pool.query('select count(*)::int as n from lot_safety_recount')).rows[0].n).toBe(0);
  });
});

describe('a signal that clears and comes back', () => {
  it('is told again, once, as a recurrence', async () => {
    // Another product: lot E 6 of 8 with an event against lot F 0 of 20.
    const product = `MSC-EV recurrence ${uniq()}`;
    const E = (await releasedLot(t.http, supplier, { productName: product })).lot.id;
    const F = (await releasedLot(t.http, supplier, { productName: product })).lot.id;
    await ship(E, 'clinic-a', 12);
    await ship(F, 'clinic-a', 20);
    const e = await procedures('clinic-a', E, 8);
    for (const id of e.slice(0, 6)) await adverseEvent('clinic-a', id, { relatedness: 'probable' });
    await procedures('clinic-a', F, 20);
    await t.app.safetyMonitor.catchUp();
    const told = async () => (await signalEvents(eventsReader.supplier!)).filter((x) => x.subject.id === E);
    expect((await told()).map((x) => x.data.recurrence)).toEqual([false]);

    // Five of the six were recorded in error: 1 of 3 is no signal.
    for (const id of e.slice(0, 5)) {
      const res = await t.http.post(`/v1/procedures/${id}/entered-in-error`).set(...bearer(clinician['clinic-a']!)).send({ reason: 'Wrong lot scanned' });
      expect(res.status).toBe(200);
    }
    await t.app.safetyMonitor.catchUp();
    expect((await report(E, inspector)).signal.flagged).toBe(false);
    expect(await told()).toHaveLength(1);

    // Four more procedures, each with an event: 5 of 7 against 0 of 20, flagged again and told again.
    for (const id of await procedures('clinic-a', E, 4)) await adverseEvent('clinic-a', id, { relatedness: 'possible' });
    await t.app.safetyMonitor.catchUp();
    expect((await report(E, inspector)).signal.flagged).toBe(true);
    expect((await told()).map((x) => x.data.recurrence)).toEqual([false, true]);
    await t.app.safetyMonitor.catchUp();
    expect(await told()).toHaveLength(2);
  });
});
