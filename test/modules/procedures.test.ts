import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { clinicSetup, procedureBody } from '../support/fixtures.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(() => t.close());

const post = (token: string, body: object, http = t.http) => http.post('/v1/procedures').set('authorization', `Bearer ${token}`).send(body);
const inventory = async (token: string, lotId: string) => (await t.http.get(`/v1/lots/${lotId}/inventory`).set('authorization', `Bearer ${token}`)).body;

describe('recording a procedure', () => {
  it('records a valid procedure, takes its vials off the clinic\'s hand, and keeps particle counts beyond 2^31 exact', async () => {
    const s = await clinicSetup(t);
    const body = procedureBody(s.patientId, s.lot.id, { dose: { particles: 15_000_000_000, volumeMl: 0.06 }, vialsUsed: 2 });
    const res = await post(s.clinician, body);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({
      clinicId: 'clinic-a',
      patientId: s.patientId,
      lotId: s.lot.id,
      performedAt: '2026-03-10T08:30:00.000Z',
      dose: { particles: 15_000_000_000, volumeMl: 0.06 },
      vialsUsed: 2,
      status: 'completed',
      enteredInError: null,
      version: 1,
    });
    const read = await t.http.get(`/v1/procedures/${res.body.id}`).set('authorization', `Bearer ${s.clinician}`);
    expect(read.body.dose.particles).toBe(15_000_000_000);
    const { rows } = await t.pool.query('SELECT dose_particles::text AS p FROM procedures WHERE id = $1', [res.body.id]);
    expect(rows[0].p).toBe('15000000000');
    const inv = await inventory(s.supplier, s.lot.id);
    expect(inv.clinics).toEqual([{ clinicId: 'clinic-a', shipped: 10, administered: 2, discarded: 0, returned: 0, recalled: 0, expired: 0, onHand: 8 }]);
  });

  it('refuses each gate with its own code and changes nothing', async () => {
    const s = await clinicSetup(t);
    const other = await clinicSetup(t, { clinic: 'clinic-b' });
    const cases: [string, object][] = [
      ['unknown-patient', procedureBody(other.patientId, s.lot.id)],
      ['consent-missing', procedureBody(s.patientId, s.lot.id, { performedAt: '2026-02-14T10:00:00Z' })],
      ['unknown-lot', procedureBody(s.patientId, '01900000-0000-7000-8000-000000000000')],
      ['lot-not-released', procedureBody(s.patientId, s.lot.id, { performedAt: '2026-02-28T10:00:00Z' })],
      ['insufficient-vials', procedureBody(s.patientId, s.lot.id, { vialsUsed: 11, dose: { particles: 2.5e9, volumeMl: 0.01 } })],
      ['insufficient-vials', procedureBody(s.patientId, other.lot.id)],
      ['site-required', procedureBody(s.patientId, s.lot.id, { site: undefined })],
      ['imaging-guidance-not-allowed', procedureBody(s.patientId, s.lot.id, { route: 'intravenous', site: undefined, imagingGuidance: 'ultrasound' })],
      ['laterality-required', procedureBody(s.patientId, s.lot.id, { site: { bodySite: 'knee-joint' } })],
      ['laterality-not-allowed', procedureBody(s.patientId, s.lot.id, { route: 'epidural', site: { bodySite: 'lumbar-spine', laterality: 'left' } })],
      ['dose-out-of-tolerance', procedureBody(s.patientId, s.lot.id, { dose: { particles: 3_000_000_000, volumeMl: 0.01 } })],
      ['time-in-future', procedureBody(s.patientId, s.lot.id, { performedAt: '2999-01-01T00:00:00Z' })],
    ];
    for (const [code, body] of cases) {
      const res = await post(s.clinician, body);
      expect(res.status, code).toBe(422);
      expect(res.body.code, JSON.stringify(res.body)).toBe(code);
      expect(res.headers['content-type']).toMatch(/problem\+json/);
    }
    const { rows } = await t.pool.query('SELECT count(*)::int AS n FROM procedures WHERE patient_id = $1', [s.patientId]);
    expect(rows[0].n).toBe(0);
    expect((await inventory(s.supplier, s.lot.id)).clinics[0]).toMatchObject({ administered: 0, onHand: 10 });
  });

  it('accepts a dose outside ±10 % with doseDeviationReason, and an intravenous procedure without a site', async () => {
    const s = await clinicSetup(t);
    expect((await post(s.clinician, procedureBody(s.patientId, s.lot.id, { dose: { particles: 3e9, volumeMl: 0.01 }, doseDeviationReason: 'Partial vial drawn' }))).status).toBe(201);
    expect((await post(s.clinician, procedureBody(s.patientId, s.lot.id, { route: 'intravenous', site: undefined, imagingGuidance: 'none' }))).status).toBe(201);
  });

  it('refuses a procedure once consent is withdrawn, but keeps one performed before the withdrawal', async () => {
    const s = await clinicSetup(t);
    await t.http
      .post(`/v1/patients/${s.patientId}/consents/${s.consentId}/withdraw`)
      .set('authorization', `Bearer ${s.clinician}`)
      .send({ reason: 'Patient declined further treatment', withdrawnAt: '2026-03-20T00:00:00Z' });
    expect((await post(s.clinician, procedureBody(s.patientId, s.lot.id, { performedAt: '2026-03-21T10:00:00Z' }))).body.code).toBe('consent-missing');
    expect((await post(s.clinician, procedureBody(s.patientId, s.lot.id, { performedAt: '2026-03-19T10:00:00Z' }))).status).toBe(201);
  });

  it('judges the lot at performedAt: a late entry of a procedure done while released is kept after a recall; one after it is refused', async () => {
    const s = await clinicSetup(t);
    expect((await post(s.clinician, procedureBody(s.patientId, s.lot.id, { performedAt: '2026-03-05T10:00:00Z' }))).status).toBe(201);
    const recall = await t.http.post(`/v1/lots/${s.lot.id}/recall`).set('authorization', `Bearer ${s.supplier}`).send({ reason: 'Sterility failure on retain', recalledAt: '2026-04-01T00:00:00Z' });
    expect(recall.status).toBe(200);
    expect(recall.body).toMatchObject({ affectedRecipients: 1, affectedClinics: 1 });
    const late = await post(s.clinician, procedureBody(s.patientId, s.lot.id, { performedAt: '2026-03-25T10:00:00Z' }));
    expect(late.status).toBe(201);
    const after = await post(s.clinician, procedureBody(s.patientId, s.lot.id, { performedAt: '2026-04-01T00:00:00Z' }));
    expect(after.status).toBe(422);
    expect(after.body.code).toBe('lot-not-released');
    expect(after.body.detail).toContain('recalled');
  });

  it('counts distinct patients for a recall, and administered vials in the inventory', async () => {
    const s = await clinicSetup(t);
    const second = await t.http.post('/v1/patients').set('authorization', `Bearer ${s.clinician}`).send({ mrn: `M-${Date.now()}`, givenName: 'B', familyName: 'C', birthDate: '1970-01-01', sex: 'male' });
    await t.http.post(`/v1/patients/${second.body.id}/consents`).set('authorization', `Bearer ${s.clinician}`).send({ kind: 'investigational-treatment', signedAt: '2026-03-01T00:00:00Z', documentVersion: 'v1' });
    for (const pid of [s.patientId, s.patientId, second.body.id]) expect((await post(s.clinician, procedureBody(pid, s.lot.id))).status).toBe(201);
    const recall = await t.http.post(`/v1/lots/${s.lot.id}/recall`).set('authorization', `Bearer ${s.supplier}`).send({ reason: 'Drill' });
    expect(recall.body.affectedRecipients).toBe(2);
    expect((await inventory(s.supplier, s.lot.id)).clinics[0]).toMatchObject({ administered: 3, recalled: 7, onHand: 0 });
  });
});

describe('concurrency', () => {
  it('never oversells: 40 parallel procedures over two instances against 10 vials, exactly 10 succeed', async () => {
    const s = await clinicSetup(t, { vials: 10 });
    const second = await t.another();
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => post(s.clinician, procedureBody(s.patientId, s.lot.id), i % 2 ? second.http : t.http)),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(10);
    const refused = results.filter((r) => r.status !== 201);
    expect(refused.every((r) => r.status === 422 && r.body.code === 'insufficient-vials')).toBe(true);
    expect((await inventory(s.supplier, s.lot.id)).clinics[0]).toMatchObject({ administered: 10, onHand: 0 });
    const { rows } = await t.pool.query('SELECT coalesce(sum(vials_used),0)::int AS n FROM procedures WHERE lot_id = $1', [s.lot.id]);
    expect(rows[0].n).toBe(10);
  });
});

describe('reading and correcting', () => {
  it('lists by patient, lot and date range; hides another clinic\'s procedures (404 / absent)', async () => {
    const s = await clinicSetup(t);
    const b = await clinicSetup(t, { clinic: 'clinic-b' });
    const p1 = (await post(s.clinician, procedureBody(s.patientId, s.lot.id, { performedAt: '2026-03-10T10:00:00Z' }))).body;
    const p2 = (await post(s.clinician, procedureBody(s.patientId, s.lot.id, { performedAt: '2026-03-20T10:00:00Z' }))).body;
    const auth = ['authorization', `Bearer ${s.clinician}`] as const;
    const byPatient = await t.http.get('/v1/procedures').query({ patientId: s.patientId }).set(...auth);
    expect(byPatient.body.items.map((p: { id: string }) => p.id)).toEqual([p1.id, p2.id]);
    const range = await t.http.get('/v1/procedures').query({ lotId: s.lot.id, performedFrom: '2026-03-15', performedTo: '2026-03-20' }).set(...auth);
    expect(range.body.items.map((p: { id: string }) => p.id)).toEqual([p2.id]);
    expect((await t.http.get(`/v1/procedures/${p1.id}`).set('authorization', `Bearer ${b.clinician}`)).status).toBe(404);
    expect((await t.http.get('/v1/procedures').query({ patientId: s.patientId }).set('authorization', `Bearer ${b.clinician}`)).body.items).toEqual([]);
  });

  it('marks a procedure entered-in-error with a reason: it stays, its vials stay used unless returned', async () => {
    const s = await clinicSetup(t);
    const p = (await post(s.clinician, procedureBody(s.patientId, s.lot.id, { vialsUsed: 2, dose: { particles: 2.5e9, volumeMl: 0.01 } }))).body;
    const url = `/v1/procedures/${p.id}/entered-in-error`;
    const auth = ['authorization', `Bearer ${s.clinician}`] as const;
    expect((await t.http.post(url).set(...auth).send({})).status).toBe(400);
    const res = await t.http.post(url).set(...auth).set('if-match', '"1"').send({ reason: 'Wrong patient selected', vialsReturned: 1 });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'entered-in-error', version: 2, enteredInError: { reason: 'Wrong patient selected', by: `dr-clinic-a`, vialsReturned: 1 } });
    expect((await t.http.post(url).set(...auth).send({ reason: 'again' })).status).toBe(409);
    expect((await inventory(s.supplier, s.lot.id)).clinics[0]).toMatchObject({ administered: 1, onHand: 9 });
    expect((await t.http.get(`/v1/procedures/${p.id}`).set(...auth)).body.status).toBe('entered-in-error');
    await expect(t.pool.query('DELETE FROM procedures WHERE id = $1', [p.id])).rejects.toThrow(/append-only|refused/);
  });

  it('audits every procedure write and read with the patient', async () => {
    const s = await clinicSetup(t);
    const p = (await post(s.clinician, procedureBody(s.patientId, s.lot.id))).body;
    await t.http.get(`/v1/procedures/${p.id}`).set('authorization', `Bearer ${s.clinician}`);
    const { rows } = await t.pool.query("SELECT action, clinic_id, details->>'patientId' AS patient FROM audit_events WHERE resource_type = 'procedure' AND resource_id = $1 ORDER BY id", [p.id]);
    expect(rows).toEqual([
      { action: 'create', clinic_id: 'clinic-a', patient: s.patientId },
      { action: 'read', clinic_id: 'clinic-a', patient: s.patientId },
    ]);
  });

  it('refuses unknown vocabularies with 400 and an ICD-10-CM code that is not one', async () => {
    const s = await clinicSetup(t);
    for (const patch of [{ route: 'oral' }, { imagingGuidance: 'xray' }, { site: { bodySite: 'elbow', laterality: 'left' } }, { indication: { code: 'knee pain' } }, { dose: { particles: 2.5e9 + 0.5, volumeMl: 0.01 } }]) {
      const res = await post(s.clinician, procedureBody(s.patientId, s.lot.id, patch));
      expect(res.status, JSON.stringify(patch)).toBe(400);
    }
  });
});
