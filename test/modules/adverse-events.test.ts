import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { clinicSetup, procedureBody } from '../support/fixtures.js';

let t: TestApp;
let s: Awaited<ReturnType<typeof clinicSetup>>;
let procedureId: string;
beforeAll(async () => {
  t = await createTestApp();
  s = await clinicSetup(t);
  procedureId = (await t.http.post('/v1/procedures').set('authorization', `Bearer ${s.clinician}`).send(procedureBody(s.patientId, s.lot.id, { performedAt: '2026-03-10T10:00:00Z' }))).body.id;
});
afterAll(() => t.close());

const ae = (overrides: Record<string, unknown> = {}) => ({
  procedureId,
  onsetAt: '2026-03-11T08:00:00Z',
  description: 'Knee effusion and warmth',
  severityGrade: 2,
  serious: false,
  seriousnessCriteria: [],
  relatedness: 'probable',
  outcome: 'recovering',
  ...overrides,
});
const auth = () => ['authorization', `Bearer ${s.clinician}`] as const;

describe('adverse events', () => {
  it('reports an event tied to the procedure, patient and lot, and finds it by lot and seriousness', async () => {
    const res = await t.http.post('/v1/adverse-events').set(...auth()).send(ae());
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ procedureId, patientId: s.patientId, lotId: s.lot.id, severityGrade: 2, serious: false, version: 1 });
    const serious = await t.http
      .post('/v1/adverse-events')
      .set(...auth())
      .send(ae({ severityGrade: 3, serious: true, seriousnessCriteria: ['hospitalization'], description: 'Septic arthritis' }));
    expect(serious.status).toBe(201);
    const byLot = await t.http.get('/v1/adverse-events').query({ lotId: s.lot.id, serious: 'true' }).set(...auth());
    expect(byLot.body.items.map((a: { id: string }) => a.id)).toEqual([serious.body.id]);
    const byProcedure = await t.http.get('/v1/adverse-events').query({ procedureId, serious: 'false' }).set(...auth());
    expect(byProcedure.body.items.map((a: { id: string }) => a.id)).toEqual([res.body.id]);
  });

  it('enforces grade 1..5, seriousness consistency, fatal for grade 5, and onset after the procedure (422 each)', async () => {
    const cases: [string, Record<string, unknown>][] = [
      ['grade-out-of-range', { severityGrade: 6 }],
      ['grade-out-of-range', { severityGrade: 0 }],
      ['seriousness-inconsistent', { serious: true, seriousnessCriteria: [] }],
      ['seriousness-inconsistent', { serious: false, seriousnessCriteria: ['hospitalization'] }],
      ['grade-5-requires-fatal', { severityGrade: 5, serious: true, seriousnessCriteria: ['death'], outcome: 'ongoing' }],
      ['onset-before-procedure', { onsetAt: '2026-03-10T09:59:00Z' }],
    ];
    for (const [code, patch] of cases) {
      const res = await t.http.post('/v1/adverse-events').set(...auth()).send(ae(patch));
      expect(res.status, code).toBe(422);
      expect(res.body.code).toBe(code);
    }
    expect((await t.http.post('/v1/adverse-events').set(...auth()).send(ae({ relatedness: 'maybe' }))).status).toBe(400);
    const fatal = await t.http.post('/v1/adverse-events').set(...auth()).send(ae({ severityGrade: 5, serious: true, seriousnessCriteria: ['death'], outcome: 'fatal' }));
    expect(fatal.status).toBe(201);
  });

  it('follows up under If-Match: a new version, history kept, rules rechecked, concurrent follow-ups never fork', async () => {
    const created = (await t.http.post('/v1/adverse-events').set(...auth()).send(ae())).body;
    const url = `/v1/adverse-events/${created.id}`;
    expect((await t.http.patch(url).set(...auth()).send({ outcome: 'resolved' })).status).toBe(428);
    const bad = await t.http.patch(url).set(...auth()).set('if-match', '"1"').send({ severityGrade: 5 });
    expect(bad.status).toBe(422);
    expect(bad.body.code).toBe('grade-5-requires-fatal');
    const second = await t.another();
    const [a, b] = await Promise.all([
      t.http.patch(url).set(...auth()).set('if-match', '"1"').send({ outcome: 'resolved' }),
      second.http.patch(url).set(...auth()).set('if-match', '"1"').send({ outcome: 'resolved-with-sequelae' }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 412]);
    const history = await t.http.get(`${url}/history`).set(...auth());
    expect(history.body.items.map((v: { version: number; resource: { outcome: string } }) => [v.version, v.resource.outcome])).toEqual([
      [1, 'recovering'],
      [2, (a.status === 200 ? a : b).body.outcome],
    ]);
  });

  it('keeps adverse events inside the clinic', async () => {
    const created = (await t.http.post('/v1/adverse-events').set(...auth()).send(ae())).body;
    const other = await t.token({ scope: 'clinical:read clinical:write', clinic: 'clinic-b' });
    expect((await t.http.get(`/v1/adverse-events/${created.id}`).set('authorization', `Bearer ${other}`)).status).toBe(404);
    expect((await t.http.patch(`/v1/adverse-events/${created.id}`).set('authorization', `Bearer ${other}`).set('if-match', '"1"').send({ outcome: 'resolved' })).status).toBe(404);
    const report = await t.http.post('/v1/adverse-events').set('authorization', `Bearer ${other}`).send(ae());
    expect(report.body.code).toBe('unknown-procedure');
  });

  it('audits reports and follow-ups', async () => {
    const created = (await t.http.post('/v1/adverse-events').set(...auth()).send(ae())).body;
    await t.http.patch(`/v1/adverse-events/${created.id}`).set(...auth()).set('if-match', '"1"').send({ outcome: 'resolved' });
    const { rows } = await t.pool.query("SELECT action, details FROM audit_events WHERE resource_type = 'adverse-event' AND resource_id = $1 ORDER BY id", [created.id]);
    expect(rows.map((r) => r.action)).toEqual(['create', 'update']);
    expect(rows[1].details.changedFields).toEqual(['outcome']);
  });
});
