import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { clinicSetup, procedureBody, uniq } from '../support/fixtures.js';
import { validateR4 } from '../fhir/validator.js';

/**
 * Issue 18: adverse-event expectedness (against the product's expected-reaction list) and the 21 CFR 312.32
 * IND safety report clock: due 15 calendar days after awareness for a serious, unexpected suspected reaction,
 * 7 if fatal or life-threatening; none for an expected, non-serious, or unlikely / not-related event.
 */

let now = new Date('2026-03-20T12:00:00Z');
const clock = { now: () => now };
let t: TestApp;
let s: Awaited<ReturnType<typeof clinicSetup>>;
let b: Awaited<ReturnType<typeof clinicSetup>>;
let procedureId: string;
let otherLotProcedureId: string;
let clinicBProcedureId: string;
const PRODUCT = 'MSC-EV 2.5e11/mL';
const OTHER_PRODUCT = `MSC-EV spine ${uniq()}`;

beforeAll(async () => {
  t = await createTestApp({ clock });
  s = await clinicSetup(t);
  const other = await clinicSetup(t, { lot: { productName: OTHER_PRODUCT } });
  b = await clinicSetup(t, { clinic: 'clinic-b' });
  const proc = async (setup: typeof s, patientId: string, lotId: string) => {
    const res = await t.http.post('/v1/procedures').set(...bearer(setup.clinician)).send(procedureBody(patientId, lotId, { performedAt: '2026-03-10T10:00:00Z' }));
    expect(res.status).toBe(201);
    return res.body.id as string;
  };
  procedureId = await proc(s, s.patientId, s.lot.id);
  otherLotProcedureId = await proc(other, other.patientId, other.lot.id);
  clinicBProcedureId = await proc(b, b.patientId, b.lot.id);
});
afterAll(() => t.close());

const bearer = (token: string) => ['authorization', `Bearer ${token}`] as const;
const auth = () => bearer(s.clinician);
const listUrl = (product: string) => `/v1/products/${encodeURIComponent(product)}/expected-reactions`;

/** A serious, unexpected (no term), possibly related hospitalisation, aware 2026-03-12 09:00Z. */
const ae = (overrides: Record<string, unknown> = {}) => ({
  procedureId,
  onsetAt: '2026-03-11T08:00:00Z',
  description: 'Septic arthritis of the treated knee',
  severityGrade: 3,
  serious: true,
  seriousnessCriteria: ['hospitalization'],
  relatedness: 'possible',
  outcome: 'recovering',
  awareAt: '2026-03-12T09:00:00Z',
  ...overrides,
});
const report = async (body: Record<string, unknown>, token = s.clinician) => t.http.post('/v1/adverse-events').set(...bearer(token)).send(body);
async function created(body: Record<string, unknown>, token = s.clinician) {
  const res = await report(body, token);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}
async function putList(product: string, reactions: string[], ifMatch?: string) {
  const req = t.http.put(listUrl(product)).set(...bearer(s.supplier));
  if (ifMatch) req.set('if-match', ifMatch);
  return req.send({ reactions });
}

describe('product expected-reaction lists', () => {
  it('404 before a list exists; the first PUT creates version 1 without If-Match; later PUTs need If-Match (428) and a current one (412)', async () => {
    expect((await t.http.get(listUrl(OTHER_PRODUCT)).set(...auth())).status).toBe(404);
    const first = await putList(OTHER_PRODUCT, ['Injection site reaction', 'Fever']);
    expect(first.status).toBe(201);
    expect(first.headers.etag).toBe('"1"');
    expect(first.body).toMatchObject({ productName: OTHER_PRODUCT, reactions: ['Injection site reaction', 'Fever'], version: 1, createdBy: 'qa-unit' });

    const noIfMatch = await putList(OTHER_PRODUCT, ['Fever']);
    expect(noIfMatch.status).toBe(428);
    expect(noIfMatch.headers['content-type']).toContain('application/problem+json');
    const second = await putList(OTHER_PRODUCT, ['Fever', 'Arthralgia'], '"1"');
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ reactions: ['Fever', 'Arthralgia'], version: 2 });
    expect(second.headers.etag).toBe('"2"');
    expect((await putList(OTHER_PRODUCT, ['Fever'], '"1"')).status).toBe(412);
    // The same terms in another order change nothing.
    const same = await putList(OTHER_PRODUCT, ['Arthralgia', 'Fever'], '"2"');
    expect(same.status).toBe(200);
    expect(same.body.version).toBe(2);

    const read = await t.http.get(listUrl(OTHER_PRODUCT)).set(...auth());
    expect(read.status).toBe(200);
    expect(read.headers.etag).toBe('"2"');
    expect(read.body.reactions).toEqual(['Fever', 'Arthralgia']);

    const history = await t.http.get(`${listUrl(OTHER_PRODUCT)}/history`).set(...auth());
    expect(history.status).toBe(200);
    expect(history.body.items.map((v: { version: number; resource: { reactions: string[] } }) => [v.version, v.resource.reactions])).toEqual([
      [1, ['Injection site reaction', 'Fever']],
      [2, ['Fever', 'Arthralgia']],
    ]);
    const { rows } = await t.pool.query("select action, details from audit_events where resource_type = 'product-expected-reactions' and action in ('create', 'update') order by id");
    expect(rows.map((r) => [r.action, r.details.version])).toEqual([
      ['create', 1],
      ['update', 2],
      ['update', 2],
    ]);
  });

  it('an If-Match on the first PUT is 412 (there is no version to match); an emptied list reads as []', async () => {
    const product = `Empty ${uniq()}`;
    expect((await putList(product, ['Fever'], '"1"')).status).toBe(412);
    expect((await t.http.get(listUrl(product)).set(...auth())).status).toBe(404);
    expect((await putList(product, [])).status).toBe(201);
    const read = await t.http.get(listUrl(product)).set(...auth());
    expect(read.status).toBe(200);
    expect(read.body.reactions).toEqual([]);
    expect((await putList(product, ['Fever'])).status).toBe(428);
  });

  it('the product name in the path is NFC-normalized, may hold an encoded slash, and follows the text rules', async () => {
    const decomposed = `Cafe\u0301 EV ${uniq()}`;
    expect((await putList(decomposed, ['Fever'])).status).toBe(201);
    const composed = await t.http.get(listUrl(decomposed.normalize('NFC'))).set(...auth());
    expect(composed.status).toBe(200);
    expect(composed.body.productName).toBe(decomposed.normalize('NFC'));

    const slash = `EV 1e9/mL ${uniq()}`;
    expect((await putList(slash, ['Fever'])).status).toBe(201);
    expect((await t.http.get(listUrl(slash)).set(...auth())).body.productName).toBe(slash);

    const longest = `${uniq()}${'€'.repeat(192)}`;
    expect((await putList(longest, ['Fever'])).status).toBe(201);
    expect((await t.http.get(listUrl(longest)).set(...auth())).body.productName).toBe(longest);

    for (const bad of ['x'.repeat(201), 'bad\u0001name', ' leading space']) {
      const res = await t.http.get(listUrl(bad)).set(...auth());
      expect(res.status, bad).toBe(400);
      expect((await putList(bad, ['Fever'])).status, bad).toBe(400);
    }
    expect((await t.http.get('/v1/products/bad%00name/expected-reactions').set(...auth())).status).toBe(400);
  });

  it('refuses terms outside the CTCAE vocabulary, "Other, specify", duplicates, unknown fields (400), and needs lots:write (403)', async () => {
    const product = `Checked ${uniq()}`;
    for (const body of [
      { reactions: ['Knee pain'] },
      { reactions: ['fever'] },
      { reactions: ['Other, specify'] },
      { reactions: ['Fever', 'Fever'] },
      { reactions: 'Fever' },
      { reactions: ['Fever'], note: 'x' },
      {},
    ]) {
      const res = await t.http.put(listUrl(product)).set(...bearer(s.supplier)).send(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    expect((await t.http.put(listUrl(product)).set(...auth()).send({ reactions: ['Fever'] })).status).toBe(403);
    expect((await t.http.get(listUrl(product)).set(...bearer(s.supplier))).status).toBe(404);
  });

  it("is the supplier's: a clinic token with lots:write may neither create nor change a list (403 supplier-only)", async () => {
    const product = `Kept ${uniq()}`;
    const clinicWriter = await t.token({ scope: 'lots:read lots:write', clinic: 'clinic-a' });
    const create = await t.http.put(listUrl(product)).set(...bearer(clinicWriter)).send({ reactions: ['Fever'] });
    expect(create.status).toBe(403);
    expect(create.body.code).toBe('supplier-only');
    expect((await t.http.get(listUrl(product)).set(...bearer(s.supplier))).status).toBe(404);
    expect((await t.http.put(listUrl(product)).set(...bearer(s.supplier)).send({ reactions: ['Fever'] })).status).toBe(201);
    const change = await t.http.put(listUrl(product)).set(...bearer(clinicWriter)).set('if-match', '"1"').send({ reactions: ['Fever', 'Sepsis'] });
    expect(change.status).toBe(403);
    expect((await t.http.get(listUrl(product)).set(...bearer(s.supplier))).body).toMatchObject({ version: 1, reactions: ['Fever'] });
  });

  it('property: whatever terms are PUT, the list reads back as sent, or the PUT is refused 4xx and changes nothing', async () => {
    const product = `Prop ${uniq()}`;
    let version = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(fc.constantFrom('Fever', 'Chills', 'Sepsis', 'Other, specify', 'Joint effusion'), fc.string({ maxLength: 12 })), { maxLength: 4 }), async (reactions) => {
        const res = await putList(product, reactions, version ? `"${version}"` : undefined);
        const valid = new Set(reactions).size === reactions.length && reactions.every((r) => ['Fever', 'Chills', 'Sepsis', 'Joint effusion'].includes(r));
        if (valid) {
          expect([200, 201]).toContain(res.status);
          version = res.body.version;
        } else {
          expect(res.status).toBe(400);
        }
        if (version) expect((await t.http.get(listUrl(product)).set(...auth())).body.version).toBe(version);
      }),
      { numRuns: 25 },
    );
  });
});

describe('expectedness follows the product list in force when the event is recorded', () => {
  it('expected exactly when the term is on the lot\'s product list; no term or another term is unexpected', async () => {
    const listed = await putList(PRODUCT, ['Injection site reaction', 'Joint effusion']);
    expect(listed.status).toBe(201);
    const expected = await created(ae({ term: 'Joint effusion' }));
    expect(expected).toMatchObject({ term: 'Joint effusion', expectedness: 'expected', reportDueAt: null });
    const other = await created(ae({ term: 'Sepsis' }));
    expect(other).toMatchObject({ term: 'Sepsis', expectedness: 'unexpected', reportDueAt: '2026-03-27T09:00:00.000Z' });
    const none = await created(ae());
    expect(none).toMatchObject({ term: null, expectedness: 'unexpected' });
    // Another product's list does not count: the other lot's product lists Fever, not Joint effusion.
    const otherLot = await report(ae({ procedureId: otherLotProcedureId, term: 'Joint effusion' }));
    expect(otherLot.status).toBe(201);
    expect(otherLot.body.expectedness).toBe('unexpected');

    // The list changes: recorded events keep their judgement; new ones, and a PATCHed term, are judged by the new list.
    expect((await putList(PRODUCT, ['Injection site reaction'], '"1"')).status).toBe(200);
    expect((await t.http.get(`/v1/adverse-events/${expected.id}`).set(...auth())).body.expectedness).toBe('expected');
    expect((await created(ae({ term: 'Joint effusion' }))).expectedness).toBe('unexpected');
    const patched = await t.http.patch(`/v1/adverse-events/${other.id}`).set(...auth()).set('if-match', '"1"').send({ term: 'Injection site reaction' });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ term: 'Injection site reaction', expectedness: 'expected', reportDueAt: null, version: 2 });
    const cleared = await t.http.patch(`/v1/adverse-events/${other.id}`).set(...auth()).set('if-match', '"2"').send({ term: null });
    expect(cleared.body).toMatchObject({ term: null, expectedness: 'unexpected', reportDueAt: '2026-03-27T09:00:00.000Z', version: 3 });
  });
});

describe('the IND safety report clock (21 CFR 312.32(c))', () => {
  const cases: [string, Record<string, unknown>, string | null][] = [
    ['serious and unexpected: 15 days after awareness', {}, '2026-03-27T09:00:00.000Z'],
    ['fatal: 7 days', { severityGrade: 5, seriousnessCriteria: ['death'], outcome: 'fatal' }, '2026-03-19T09:00:00.000Z'],
    ['life-threatening: 7 days', { severityGrade: 4, seriousnessCriteria: ['life-threatening'] }, '2026-03-19T09:00:00.000Z'],
    ['expected: none', { term: 'Injection site reaction' }, null],
    ['non-serious: none', { serious: false, seriousnessCriteria: [], severityGrade: 2 }, null],
    ['awareness later than onset: counted from awareness', { onsetAt: '2026-03-11T08:00:00Z', awareAt: '2026-03-14T15:30:00+01:00' }, '2026-03-29T14:30:00.000Z'],
    ['relatedness unlikely: none', { relatedness: 'unlikely' }, null],
    ['not related: none', { relatedness: 'not-related' }, null],
  ];
  for (const [name, overrides, due] of cases) {
    it(name, async () => {
      const res = await created(ae(overrides));
      expect(res.reportDueAt).toBe(due);
      expect(res.reportedAt).toBeNull();
      expect(res.reportOverdue).toBe(due !== null && due < now.toISOString());
      const read = await t.http.get(`/v1/adverse-events/${res.id}`).set(...auth());
      expect(read.body.reportDueAt).toBe(due);
    });
  }

  it('awareAt defaults to when the event is recorded', async () => {
    const res = await created(ae({ awareAt: undefined }));
    expect(res.awareAt).toBe(now.toISOString());
    expect(res.reportDueAt).toBe(new Date(now.getTime() + 15 * 86_400_000).toISOString());
  });

  it('a follow-up that makes an event serious starts the clock from awareAt; a corrected awareAt moves it; no longer serious stops it', async () => {
    const mild = await created(ae({ serious: false, seriousnessCriteria: [], severityGrade: 2 }));
    expect(mild.reportDueAt).toBeNull();
    const url = `/v1/adverse-events/${mild.id}`;
    const serious = await t.http.patch(url).set(...auth()).set('if-match', '"1"').send({ serious: true, seriousnessCriteria: ['hospitalization'], severityGrade: 3 });
    expect(serious.status).toBe(200);
    expect(serious.body.reportDueAt).toBe('2026-03-27T09:00:00.000Z');
    const grave = await t.http.patch(url).set(...auth()).set('if-match', '"2"').send({ severityGrade: 4 });
    expect(grave.body.reportDueAt).toBe('2026-03-19T09:00:00.000Z');
    const moved = await t.http.patch(url).set(...auth()).set('if-match', '"3"').send({ awareAt: '2026-03-13T09:00:00Z' });
    expect(moved.body).toMatchObject({ awareAt: '2026-03-13T09:00:00.000Z', reportDueAt: '2026-03-20T09:00:00.000Z', version: 4 });
    const unlikely = await t.http.patch(url).set(...auth()).set('if-match', '"4"').send({ relatedness: 'unlikely' });
    expect(unlikely.body.reportDueAt).toBeNull();
    const { rows } = await t.pool.query("select details from audit_events where resource_type = 'adverse-event' and resource_id = $1 and action = 'update' order by id", [mild.id]);
    expect(rows[0].details.changedFields).toEqual(expect.arrayContaining(['serious', 'seriousnessCriteria', 'severityGrade', 'reportDueAt']));
  });

  it('an unreported event is overdue once its due time passes', async () => {
    const res = await created(ae({ awareAt: '2026-03-19T12:00:00Z' }));
    expect(res.reportOverdue).toBe(false);
    const saved = now;
    try {
      now = new Date('2026-04-03T12:00:00.001Z');
      expect((await t.http.get(`/v1/adverse-events/${res.id}`).set(...auth())).body.reportOverdue).toBe(true);
    } finally {
      now = saved;
    }
  });
});

describe('bad input for the new fields is a 4xx and changes nothing', () => {
  it('term, awareAt on create', async () => {
    const before = (await t.pool.query('select count(*)::int as n from adverse_events')).rows[0].n;
    const cases: [Record<string, unknown>, number, string?][] = [
      [ae({ term: 'Knee swelling' }), 400],
      [ae({ term: 'joint effusion' }), 400],
      [ae({ term: 42 }), 400],
      [ae({ term: 'Other, specify', description: 'Other, specify' }), 422, 'other-term-unspecified'],
      [ae({ awareAt: '2026-03-12' }), 400],
      [ae({ awareAt: '2026-03-12T09:00:00' }), 400],
      [ae({ awareAt: '1899-12-31T23:00:00Z' }), 400],
      [ae({ awareAt: '2026-03-11T07:59:59Z' }), 422, 'aware-before-onset'],
      [ae({ awareAt: '2026-03-21T12:00:00Z' }), 422, 'time-in-future'],
      [ae({ expectedness: 'expected' }), 400],
      [ae({ reportDueAt: '2026-04-01T00:00:00Z' }), 400],
    ];
    for (const [body, status, code] of cases) {
      const res = await report(body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      if (code) expect(res.body.code).toBe(code);
    }
    expect((await t.pool.query('select count(*)::int as n from adverse_events')).rows[0].n).toBe(before);
    const specified = await created(ae({ term: 'Other, specify', description: 'Transient metallic taste after injection' }));
    expect(specified).toMatchObject({ term: 'Other, specify', expectedness: 'unexpected' });
  });

  it('term, awareAt on follow-up', async () => {
    const a = await created(ae());
    const url = `/v1/adverse-events/${a.id}`;
    const cases: [Record<string, unknown>, number, string?][] = [
      [{ awareAt: null }, 400],
      [{ term: 'Nope' }, 400],
      [{ awareAt: '2026-03-10T00:00:00Z' }, 422, 'aware-before-onset'],
      [{ onsetAt: '2026-03-12T10:00:00Z' }, 422, 'aware-before-onset'],
      [{ awareAt: '2027-01-01T00:00:00Z' }, 422, 'time-in-future'],
      [{ term: 'Other, specify', description: 'other' }, 422, 'other-term-unspecified'],
    ];
    for (const [body, status, code] of cases) {
      const res = await t.http.patch(url).set(...auth()).set('if-match', '"1"').send(body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      if (code) expect(res.body.code).toBe(code);
    }
    const read = await t.http.get(url).set(...auth());
    expect(read.body.version).toBe(1);
    expect(read.body.awareAt).toBe('2026-03-12T09:00:00.000Z');
  });
});

describe('POST /adverse-events/{id}/reported', () => {
  it('records the submission as a new version, audited, told as adverse-event.updated, and in the history', async () => {
    const a = await created(ae());
    const url = `/v1/adverse-events/${a.id}/reported`;
    const res = await t.http.post(url).set(...auth()).send({ reportedAt: '2026-03-18T10:00:00+01:00', reportReference: 'IND-123456-SR-0007' });
    expect(res.status).toBe(200);
    expect(res.headers.etag).toBe('"2"');
    expect(res.body).toMatchObject({ reportedAt: '2026-03-18T09:00:00.000Z', reportReference: 'IND-123456-SR-0007', reportOverdue: false, version: 2 });
    const history = await t.http.get(`/v1/adverse-events/${a.id}/history`).set(...auth());
    expect(history.body.items.map((v: { resource: { reportedAt: string | null } }) => v.resource.reportedAt)).toEqual([null, '2026-03-18T09:00:00.000Z']);
    const audit = await t.pool.query("select details from audit_events where resource_type = 'adverse-event' and resource_id = $1 and action = 'update'", [a.id]);
    expect(audit.rows.map((r) => r.details)).toEqual([expect.objectContaining({ reported: true, correction: false, version: 2, changedFields: ['reportedAt', 'reportReference'] })]);
    const events = await t.pool.query("select data from events where type = 'adverse-event.updated' and subject_id = $1", [a.id]);
    expect(events.rows.map((r) => r.data)).toEqual([expect.objectContaining({ reportedAt: '2026-03-18T09:00:00.000Z', version: 2 })]);
    expect(JSON.stringify(events.rows)).not.toContain('IND-123456-SR-0007');

    // A second report: 409 without If-Match; 412 with a stale one; with the current version, a correction.
    const again = await t.http.post(url).set(...auth()).send({ reportedAt: '2026-03-18T10:00:00Z', reportReference: 'IND-123456-SR-0008' });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('already-reported');
    expect((await t.http.post(url).set(...auth()).set('if-match', '"1"').send({ reportedAt: '2026-03-18T10:00:00Z', reportReference: 'X' })).status).toBe(412);
    const corrected = await t.http.post(url).set(...auth()).set('if-match', '"2"').send({ reportedAt: '2026-03-18T10:00:00Z', reportReference: 'IND-123456-SR-0008' });
    expect(corrected.status).toBe(200);
    expect(corrected.body).toMatchObject({ reportedAt: '2026-03-18T10:00:00.000Z', reportReference: 'IND-123456-SR-0008', version: 3 });
  });

  it('a report after the due time is flagged overdue', async () => {
    const a = await created(ae({ severityGrade: 4, seriousnessCriteria: ['life-threatening'], awareAt: '2026-03-11T09:00:00Z' }));
    expect(a.reportDueAt).toBe('2026-03-18T09:00:00.000Z');
    expect(a.reportOverdue).toBe(true);
    const res = await t.http.post(`/v1/adverse-events/${a.id}/reported`).set(...auth()).send({ reportedAt: '2026-03-19T09:00:00Z', reportReference: 'IND-123456-SR-0009' });
    expect(res.body.reportOverdue).toBe(true);
  });

  it('refuses an event with no clock (422), bad times (422), bad bodies (400), another clinic (404), a missing scope (403)', async () => {
    const none = await created(ae({ relatedness: 'not-related' }));
    const noClock = await t.http.post(`/v1/adverse-events/${none.id}/reported`).set(...auth()).send({ reportedAt: '2026-03-18T10:00:00Z', reportReference: 'R-1' });
    expect(noClock.status).toBe(422);
    expect(noClock.body.code).toBe('no-report-due');

    const a = await created(ae());
    const url = `/v1/adverse-events/${a.id}/reported`;
    const cases: [Record<string, unknown>, number, string?][] = [
      [{ reportedAt: '2026-03-12T08:59:59Z', reportReference: 'R-1' }, 422, 'reported-before-aware'],
      [{ reportedAt: '2026-03-21T12:00:00Z', reportReference: 'R-1' }, 422, 'time-in-future'],
      [{ reportedAt: '2026-03-18T10:00:00Z' }, 400],
      [{ reportedAt: '2026-03-18T10:00:00Z', reportReference: '' }, 400],
      [{ reportedAt: '2026-03-18T10:00:00Z', reportReference: ' R-1' }, 400],
      [{ reportedAt: '2026-03-18T10:00:00Z', reportReference: 'R\u00011' }, 400],
      [{ reportedAt: '2026-03-18T10:00:00Z', reportReference: 'x'.repeat(201) }, 400],
      [{ reportedAt: '2026-02-30T10:00:00Z', reportReference: 'R-1' }, 400],
      [{ reportedAt: '2026-03-18T10:00:00Z', reportReference: 'R-1', extra: true }, 400],
    ];
    for (const [body, status, code] of cases) {
      const res = await t.http.post(url).set(...auth()).send(body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      if (code) expect(res.body.code).toBe(code);
    }
    expect((await t.http.get(`/v1/adverse-events/${a.id}`).set(...auth())).body).toMatchObject({ version: 1, reportedAt: null });
    const good = { reportedAt: '2026-03-18T10:00:00Z', reportReference: 'R-1' };
    expect((await t.http.post(url).set(...bearer(b.clinician)).send(good)).status).toBe(404);
    expect((await t.http.post(url).set(...bearer(await t.token({ scope: 'clinical:read', clinic: 'clinic-a' }))).send(good)).status).toBe(403);
    expect((await t.http.post(`/v1/adverse-events/${a.id}/reported`).set(...auth()).send(good)).status).toBe(200);
  });
});

describe('GET /adverse-events?reportDueBefore=', () => {
  it('lists the clinic\'s unreported events due before the instant, earliest due first, with the other filters, a page at a time', async () => {
    // A clinic of its own, so the listing holds exactly this test's events.
    const c = await clinicSetup(t, { clinic: `clinic-${uniq()}` });
    const pid = (await t.http.post('/v1/procedures').set(...bearer(c.clinician)).send(procedureBody(c.patientId, c.lot.id, { performedAt: '2026-03-10T10:00:00Z' }))).body.id;
    const mk = (o: Record<string, unknown>) => created(ae({ procedureId: pid, ...o }), c.clinician);
    const d15 = await mk({ awareAt: '2026-03-12T09:00:00Z' }); // due 03-27
    const d7 = await mk({ awareAt: '2026-03-12T09:00:00Z', severityGrade: 5, seriousnessCriteria: ['death'], outcome: 'fatal' }); // due 03-19
    const late = await mk({ awareAt: '2026-03-20T09:00:00Z' }); // due 04-04
    const reported = await mk({ awareAt: '2026-03-12T09:00:00Z' });
    await mk({ relatedness: 'unlikely' }); // no clock
    await mk({ serious: false, seriousnessCriteria: [], severityGrade: 1 }); // no clock
    const tie = await mk({ awareAt: '2026-03-12T09:00:00Z' }); // due 03-27, same as d15
    expect((await t.http.post(`/v1/adverse-events/${reported.id}/reported`).set(...bearer(c.clinician)).send({ reportedAt: '2026-03-15T00:00:00Z', reportReference: 'R' })).status).toBe(200);

    const list = async (query: Record<string, unknown>, token = c.clinician) => t.http.get('/v1/adverse-events').query(query).set(...bearer(token));
    const ids = (res: { body: { items: { id: string }[] } }) => res.body.items.map((i) => i.id);
    const dueBefore = await list({ reportDueBefore: '2026-04-01T00:00:00+02:00' });
    expect(dueBefore.status).toBe(200);
    expect(ids(dueBefore)).toEqual([d7.id, ...[d15.id, tie.id].sort()]);
    expect(ids(await list({ reportDueBefore: '2026-03-27T09:00:00Z' }))).toEqual([d7.id]);
    expect(ids(await list({ reportDueBefore: '2026-12-31T00:00:00Z' }))).toEqual([d7.id, ...[d15.id, tie.id].sort(), late.id]);
    expect(ids(await list({ reportDueBefore: '2026-12-31T00:00:00Z', lotId: c.lot.id, serious: 'true' }))).toHaveLength(4);
    expect(ids(await list({ reportDueBefore: '2026-12-31T00:00:00Z', lotId: s.lot.id }))).toEqual([]);
    expect(ids(await list({ reportDueBefore: '2026-12-31T00:00:00Z', procedureId: pid }))).toHaveLength(4);

    // A page at a time, in the same order, each event once.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Awaited<ReturnType<typeof list>> = await list({ reportDueBefore: '2026-12-31T00:00:00Z', limit: 1, ...(cursor ? { cursor } : {}) });
      expect(page.status).toBe(200);
      seen.push(...ids(page));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([d7.id, ...[d15.id, tie.id].sort(), late.id]);

    // Tenancy: another clinic sees none of these; this clinic none of theirs.
    await created(ae({ procedureId: clinicBProcedureId }), b.clinician);
    expect(ids(await list({ reportDueBefore: '2026-12-31T00:00:00Z' }, b.clinician)).some((id) => seen.includes(id))).toBe(false);
    expect(ids(await list({ reportDueBefore: '2026-12-31T00:00:00Z' }))).toEqual(seen);

    // Audited as a search naming the filter, never its value.
    const { rows } = await t.pool.query("select details from audit_events where action = 'search' and resource_type = 'adverse-event' and clinic_id = $1 order by id desc limit 1", [c.clinic]);
    expect(rows[0].details.filters).toContain('reportDueBefore');
    expect(JSON.stringify(rows[0].details)).not.toContain('2026-12-31');
  });

  it('refuses a bad instant or a cursor from another listing (400)', async () => {
    for (const v of ['tomorrow', '2026-03-12', '2026-02-30T00:00:00Z', '0099-01-01T00:00:00Z', '2026-03-12T00:00:00']) {
      expect((await t.http.get('/v1/adverse-events').query({ reportDueBefore: v }).set(...auth())).status, v).toBe(400);
    }
    const page = await t.http.get('/v1/adverse-events').query({ limit: 1 }).set(...auth());
    expect(page.body.nextCursor).toBeTruthy();
    const mixed = await t.http.get('/v1/adverse-events').query({ limit: 1, cursor: page.body.nextCursor, reportDueBefore: '2026-12-31T00:00:00Z' }).set(...auth());
    expect(mixed.status).toBe(400);
  });
});

describe('FHIR AdverseEvent', () => {
  it('codes the CTCAE term in event, keeps the description as text, and validates against R4', async () => {
    const a = await created(ae({ term: 'Other, specify', description: 'Transient metallic taste' }));
    const none = await created(ae());
    const reader = await t.token({ scope: 'patients:read clinical:read lots:read', clinic: 'clinic-a' });
    const res = await t.http.get(`/fhir/R4/AdverseEvent/${a.id}`).set(...bearer(reader));
    expect(res.status).toBe(200);
    validateR4(res.body);
    expect(res.body.event).toEqual({
      coding: [{ system: 'urn:exosome-records:fhir:CodeSystem:ctcae-v5-term', version: '5.0', code: 'Other, specify', display: 'Other, specify' }],
      text: 'Transient metallic taste',
    });
    const plain = await t.http.get(`/fhir/R4/AdverseEvent/${none.id}`).set(...bearer(reader));
    validateR4(plain.body);
    expect(plain.body.event).toEqual({ text: 'Septic arthritis of the treated knee' });
  });
});
