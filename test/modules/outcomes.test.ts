import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { clinicSetup, procedureBody } from '../support/fixtures.js';

let t: TestApp;
let s: Awaited<ReturnType<typeof clinicSetup>>;
let procedureId: string;
beforeAll(async () => {
  t = await createTestApp();
  s = await clinicSetup(t);
  const p = await t.http.post('/v1/procedures').set('authorization', `Bearer ${s.clinician}`).send(procedureBody(s.patientId, s.lot.id, { performedAt: '2026-03-10T10:00:00Z' }));
  procedureId = p.body.id;
});
afterAll(() => t.close());

const record = (body: Record<string, unknown>, token = s.clinician) => t.http.post('/v1/outcomes').set('authorization', `Bearer ${token}`).send({ procedureId, ...body });

describe('outcomes', () => {
  it('derives change from baseline, days, window and responder for each listed score', async () => {
    expect((await record({ instrument: 'nrs-pain', score: 7, assessedAt: '2026-03-01T10:00:00Z', timepoint: 'baseline' })).status).toBe(201);
    const w6 = await record({ instrument: 'nrs-pain', score: 4.5, assessedAt: '2026-04-21T10:00:00Z', timepoint: 'week-6' });
    expect(w6.status).toBe(201);
    expect(w6.body).toMatchObject({ score: 4.5, daysAfterProcedure: 42, inWindow: true, changeFromBaseline: -2.5, responder: true });
    const late = await record({ instrument: 'nrs-pain', score: 6, assessedAt: '2026-07-30T10:00:00Z', timepoint: 'month-3' });
    expect(late.body).toMatchObject({ daysAfterProcedure: 142, inWindow: false, changeFromBaseline: -1, responder: false });
    const noBaseline = await record({ instrument: 'koos-qol', score: 60, assessedAt: '2026-04-21T10:00:00Z', timepoint: 'week-6' });
    expect(noBaseline.body).toMatchObject({ changeFromBaseline: null, responder: null });

    const list = await t.http.get(`/v1/procedures/${procedureId}/outcomes`).set('authorization', `Bearer ${s.clinician}`);
    expect(list.status).toBe(200);
    expect(list.body.items.map((o: { timepoint: string; changeFromBaseline: number | null }) => [o.timepoint, o.changeFromBaseline])).toEqual([
      ['baseline', 0],
      ['week-6', -2.5],
      ['month-3', -1],
      ['week-6', null],
    ]);
    const byPatient = await t.http.get(`/v1/patients/${s.patientId}/outcomes`).set('authorization', `Bearer ${s.clinician}`);
    expect(byPatient.body.items).toEqual(list.body.items);
  });

  it('applies the instrument\'s direction: higher is better for KOOS QOL', async () => {
    await record({ instrument: 'koos-qol', score: 40, assessedAt: '2026-03-05T10:00:00Z', timepoint: 'baseline' });
    const res = await record({ instrument: 'koos-qol', score: 48, assessedAt: '2026-06-10T10:00:00Z', timepoint: 'month-3' });
    expect(res.body).toMatchObject({ changeFromBaseline: 8, responder: true });
  });

  it('refuses a score outside its instrument\'s range with 422 naming the range, and an unknown instrument with 400', async () => {
    const res = await record({ instrument: 'womac', score: 97, assessedAt: '2026-04-21T10:00:00Z', timepoint: 'week-6' });
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('score-out-of-range');
    expect(res.body.detail).toContain('0..96');
    expect((await record({ instrument: 'nrs-pain', score: -1, assessedAt: '2026-04-21T10:00:00Z', timepoint: 'week-6' })).status).toBe(422);
    expect((await record({ instrument: 'sf-36', score: 50, assessedAt: '2026-04-21T10:00:00Z', timepoint: 'week-6' })).status).toBe(400);
    expect((await record({ instrument: 'nrs-pain', score: 3, assessedAt: '2026-04-21T10:00:00Z', timepoint: 'week-7' })).status).toBe(400);
  });

  it('keeps outcomes inside the clinic', async () => {
    const otherClinic = await t.token({ scope: 'clinical:read clinical:write', clinic: 'clinic-b' });
    const res = await record({ instrument: 'nrs-pain', score: 3, assessedAt: '2026-04-21T10:00:00Z', timepoint: 'week-6' }, otherClinic);
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('unknown-procedure');
    expect((await t.http.get(`/v1/procedures/${procedureId}/outcomes`).set('authorization', `Bearer ${otherClinic}`)).status).toBe(404);
    expect((await t.http.get(`/v1/patients/${s.patientId}/outcomes`).set('authorization', `Bearer ${otherClinic}`)).status).toBe(404);
  });

  it('audits each outcome written', async () => {
    const res = await record({ instrument: 'vas-pain', score: 55, assessedAt: '2026-04-21T10:00:00Z', timepoint: 'week-6' });
    const { rows } = await t.pool.query("SELECT action, details->>'patientId' AS patient FROM audit_events WHERE resource_type = 'outcome' AND resource_id = $1", [res.body.id]);
    expect(rows).toEqual([{ action: 'create', patient: s.patientId }]);
  });
});
