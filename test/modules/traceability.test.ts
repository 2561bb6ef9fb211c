import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { abandonDownload, checkedOutAfter } from '../support/downloads.js';
import { consentBody, createDonor, patientBody, procedureBody, releasedLot } from '../support/fixtures.js';

let t: TestApp;
let supplier: string;
let inspector: string;
const clinic: Record<string, string> = {};
const reportsOf: Record<string, string> = {};
let lotId: string;
let donorId: string;
const patients: Record<string, string> = {};
const procedures: Record<string, string> = {};

beforeAll(async () => {
  t = await createTestApp();
  supplier = await t.token({ scope: 'lots:read lots:write reports:read', clinic: null, sub: 'qa-unit' });
  inspector = await t.token({ scope: 'reports:read', clinic: null, sub: 'inspector' });
  for (const c of ['clinic-a', 'clinic-b']) {
    clinic[c] = await t.token({ scope: 'patients:read patients:write clinical:read clinical:write lots:read lots:write', clinic: c, sub: `dr-${c}` });
    reportsOf[c] = await t.token({ scope: 'reports:read', clinic: c, sub: `auditor-${c}` });
  }
  const released = await releasedLot(t.http, supplier);
  lotId = released.lot.id;
  donorId = released.donor.id;
  for (const c of ['clinic-a', 'clinic-b']) {
    await t.http.post(`/v1/lots/${lotId}/shipments`).set('authorization', `Bearer ${supplier}`).send({ clinicId: c, vials: 5, shippedAt: '2026-03-02T08:00:00Z' });
    const p = await t.http.post('/v1/patients').set('authorization', `Bearer ${clinic[c]}`).send(patientBody({ mrn: `MRN-${c}` }));
    patients[c] = p.body.id;
    await t.http.post(`/v1/patients/${p.body.id}/consents`).set('authorization', `Bearer ${clinic[c]}`).send(consentBody({ signedAt: '2026-02-15T09:00:00Z' }));
    const proc = await t.http.post('/v1/procedures').set('authorization', `Bearer ${clinic[c]}`).send(procedureBody(p.body.id, lotId, { performedAt: '2026-03-10T10:00:00Z' }));
    procedures[c] = proc.body.id;
    const score = (timepoint: string, score: number, assessedAt: string) =>
      t.http.post('/v1/outcomes').set('authorization', `Bearer ${clinic[c]}`).send({ procedureId: proc.body.id, instrument: 'nrs-pain', score, assessedAt, timepoint });
    await score('baseline', 8, '2026-03-01T10:00:00Z');
    await score('week-6', c === 'clinic-a' ? 4 : 7, '2026-04-21T10:00:00Z');
  }
  await t.http
    .post('/v1/adverse-events')
    .set('authorization', `Bearer ${clinic['clinic-b']}`)
    .send({ procedureId: procedures['clinic-b'], onsetAt: '2026-03-11T08:00:00Z', description: 'Effusion', severityGrade: 2, serious: false, relatedness: 'probable', outcome: 'resolved' });
});
afterAll(() => t.close());

/** The app's port on a real socket (for clients that leave mid-download), listening from the first call on. */
let port: number | undefined;
const listening = async () => {
  port ??= ((await t.app.listen({ port: 0, host: '127.0.0.1' }).then(() => t.app.server.address())) as { port: number }).port;
  return port;
};

const get = (path: string, token: string, accept?: string) => {
  const req = t.http.get(path).set('authorization', `Bearer ${token}`);
  return accept ? req.set('accept', accept) : req;
};

describe('lot traceability', () => {
  it('shows an inspector every clinic: donors with tests, release, vial accounting, recipients, adverse events, outcome summary', async () => {
    const res = await get(`/v1/reports/lot-traceability/${lotId}`, inspector);
    expect(res.status).toBe(200);
    const r = res.body;
    expect(r.requestedBy).toEqual({ sub: 'inspector', clinicId: null });
    expect(r.lot.statusChanges.map((c: { status: string }) => c.status)).toEqual(['quarantine', 'released']);
    expect(r.donors).toHaveLength(1);
    expect(r.donors[0].screeningTests.length).toBe(8);
    expect(r.donors[0].eligibility.status).toBe('eligible');
    expect(r.vialAccounting).toEqual([
      { clinicId: 'clinic-a', shipped: 5, administered: 1, discarded: 0, returned: 0, recalled: 0, expired: 0, onHand: 4 },
      { clinicId: 'clinic-b', shipped: 5, administered: 1, discarded: 0, returned: 0, recalled: 0, expired: 0, onHand: 4 },
    ]);
    expect(r.recipients.map((x: { clinicId: string; mrn: string }) => [x.clinicId, x.mrn]).sort()).toEqual([
      ['clinic-a', 'MRN-clinic-a'],
      ['clinic-b', 'MRN-clinic-b'],
    ]);
    expect(r.recipients[0]).toMatchObject({ route: 'intra-articular', site: { bodySite: 'knee-joint', laterality: 'right' }, dose: { particles: 2_500_000_000, volumeMl: 0.01 }, status: 'completed' });
    expect(r.adverseEvents).toEqual([expect.objectContaining({ clinicId: 'clinic-b', severityGrade: 2, serious: false, relatedness: 'probable' })]);
    expect(r.outcomeSummary).toEqual([{ instrument: 'nrs-pain', timepoint: 'week-6', n: 2, withBaseline: 2, meanChangeFromBaseline: -2.5, responderRate: 0.5 }]);
  });

  it('shows a clinic only its own recipients, accounting, events and outcomes', async () => {
    const r = (await get(`/v1/reports/lot-traceability/${lotId}`, reportsOf['clinic-a']!)).body;
    expect(r.recipients.map((x: { patientId: string }) => x.patientId)).toEqual([patients['clinic-a']]);
    expect(r.vialAccounting.map((v: { clinicId: string }) => v.clinicId)).toEqual(['clinic-a']);
    expect(r.adverseEvents).toEqual([]);
    expect(r.outcomeSummary[0]).toMatchObject({ n: 1, meanChangeFromBaseline: -4, responderRate: 1 });
  });

  it('streams CSV with Accept: text/csv, one row per recipient procedure, clinic-scoped the same way', async () => {
    const all = await get(`/v1/reports/lot-traceability/${lotId}`, inspector, 'text/csv');
    expect(all.status).toBe(200);
    expect(all.headers['content-type']).toMatch(/^text\/csv/);
    const lines = all.text.trim().split('\r\n');
    expect(lines[0]).toBe('lot_number,lot_id,procedure_id,clinic_id,patient_id,mrn,performed_at,route,body_site,laterality,imaging_guidance,dose_particles,dose_volume_ml,vials_used,vial_barcodes,status');
    expect(lines).toHaveLength(3);
    expect(lines[1]).toContain('2500000000');
    const mine = await get(`/v1/reports/lot-traceability/${lotId}`, reportsOf['clinic-b']!, 'text/csv');
    const rows = mine.text.trim().split('\r\n');
    expect(rows).toHaveLength(2);
    expect(rows[1]).toContain('MRN-clinic-b');
  });

  it('needs reports:read, answers 404 for an unknown lot, and audits each export', async () => {
    expect((await get(`/v1/reports/lot-traceability/${lotId}`, clinic['clinic-a']!)).status).toBe(403);
    expect((await get('/v1/reports/lot-traceability/01900000-0000-7000-8000-000000000000', inspector)).status).toBe(404);
    // Each export is one entry, whatever ran before: count this test's own two (JSON, then CSV).
    const exports = async () =>
      (await t.pool.query("SELECT actor_sub, details->>'format' AS format FROM audit_events WHERE action = 'export' AND resource_id = $1 ORDER BY id", [lotId])).rows as {
        actor_sub: string;
        format: string;
      }[];
    const before = (await exports()).length;
    expect((await get(`/v1/reports/lot-traceability/${lotId}`, inspector)).status).toBe(200);
    expect((await get(`/v1/reports/lot-traceability/${lotId}`, inspector, 'text/csv')).status).toBe(200);
    const after = await exports();
    expect(after).toHaveLength(before + 2);
    expect(after.slice(-2).map((r) => r.format)).toEqual(['json', 'csv']);
  });
});

describe('donor lookback and patient exposures', () => {
  it('lists who received a donor\'s lots after the donor is found ineligible (and the lot went back to quarantine)', async () => {
    const ineligible = await t.http
      .post(`/v1/donors/${donorId}/eligibility`)
      .set('authorization', `Bearer ${supplier}`)
      .send({ status: 'ineligible', determinedBy: 'Dr. D', reason: 'Reactive HBV NAT on retained sample', determinedAt: '2026-05-01T00:00:00Z' });
    expect(ineligible.body.quarantinedLotIds).toEqual([lotId]);
    const res = await get(`/v1/reports/donor-lookback/${donorId}`, inspector);
    expect(res.status).toBe(200);
    expect(res.body.donor.eligibility.status).toBe('ineligible');
    expect(res.body.lots).toHaveLength(1);
    expect(res.body.lots[0].lot.status).toBe('quarantine');
    expect(res.body.lots[0].recipients.map((r: { patientId: string }) => r.patientId).sort()).toEqual([patients['clinic-a'], patients['clinic-b']].sort());
    const mine = await get(`/v1/reports/donor-lookback/${donorId}`, reportsOf['clinic-a']!);
    expect(mine.body.lots[0].recipients.map((r: { patientId: string }) => r.patientId)).toEqual([patients['clinic-a']]);
    const csv = await get(`/v1/reports/donor-lookback/${donorId}`, inspector, 'text/csv');
    expect(csv.text.trim().split('\r\n')).toHaveLength(3);
  });

  it('gives a patient\'s lots and their donors with tests; another clinic gets 404, an inspector sees it', async () => {
    const mine = await get(`/v1/reports/patient-exposures/${patients['clinic-a']}`, reportsOf['clinic-a']!);
    expect(mine.status).toBe(200);
    expect(mine.body.patient).toEqual({ id: patients['clinic-a'], clinicId: 'clinic-a', mrn: 'MRN-clinic-a' });
    expect(mine.body.exposures).toHaveLength(1);
    expect(mine.body.exposures[0].lot.id).toBe(lotId);
    expect(mine.body.exposures[0].donors[0].screeningTests).toHaveLength(8);
    expect(mine.body.exposures[0].donors[0].din).toMatch(/^A9999/);
    expect(JSON.stringify(mine.body.exposures[0].donors)).not.toMatch(/givenName|familyName|ssn/i);
    expect((await get(`/v1/reports/patient-exposures/${patients['clinic-a']}`, reportsOf['clinic-b']!)).status).toBe(404);
    expect((await get(`/v1/reports/patient-exposures/${patients['clinic-a']}`, inspector)).status).toBe(200);
    const csv = await get(`/v1/reports/patient-exposures/${patients['clinic-a']}`, reportsOf['clinic-a']!, 'text/csv');
    expect(csv.text.split('\r\n')[1]).toContain('MRN-clinic-a');
  });
});

describe('recall notices', () => {
  it('recalls with one notice per clinic that received the lot; each clinic acknowledges its own', async () => {
    const { lot } = await releasedLot(t.http, supplier);
    for (const c of ['clinic-a', 'clinic-b']) {
      await t.http.post(`/v1/lots/${lot.id}/shipments`).set('authorization', `Bearer ${supplier}`).send({ clinicId: c, vials: 2, shippedAt: '2026-03-02T08:00:00Z' });
    }
    const p = await t.http.post('/v1/procedures').set('authorization', `Bearer ${clinic['clinic-a']}`).send(procedureBody(patients['clinic-a']!, lot.id));
    expect(p.status).toBe(201);
    const recall = await t.http.post(`/v1/lots/${lot.id}/recall`).set('authorization', `Bearer ${supplier}`).send({ reason: 'Mycoplasma positive on retain' });
    expect(recall.body).toMatchObject({ affectedRecipients: 1, affectedClinics: 2 });

    const notices = (await t.http.get(`/v1/lots/${lot.id}/recall-notices`).set('authorization', `Bearer ${supplier}`)).body.items;
    expect(notices.map((n: { clinicId: string; acknowledged: boolean }) => [n.clinicId, n.acknowledged])).toEqual([
      ['clinic-a', false],
      ['clinic-b', false],
    ]);
    const noticeA = notices[0];
    expect((await t.http.post(`/v1/lots/${lot.id}/recall-notices/${noticeA.id}/acknowledge`).set('authorization', `Bearer ${clinic['clinic-b']}`)).status).toBe(404);
    expect((await t.http.post(`/v1/lots/${lot.id}/recall-notices/${noticeA.id}/acknowledge`).set('authorization', `Bearer ${supplier}`)).status).toBe(403);
    const ack = await t.http.post(`/v1/lots/${lot.id}/recall-notices/${noticeA.id}/acknowledge`).set('authorization', `Bearer ${clinic['clinic-a']}`);
    expect(ack.status).toBe(200);
    expect(ack.body).toMatchObject({ acknowledged: true, acknowledgedBy: 'dr-clinic-a', recallReason: 'Mycoplasma positive on retain' });
    const again = await t.http.post(`/v1/lots/${lot.id}/recall-notices/${noticeA.id}/acknowledge`).set('authorization', `Bearer ${clinic['clinic-a']}`);
    expect(again.body.acknowledgedAt).toBe(ack.body.acknowledgedAt);

    const seenByB = (await t.http.get(`/v1/lots/${lot.id}/recall-notices`).set('authorization', `Bearer ${clinic['clinic-b']}`)).body.items;
    expect(seenByB.map((n: { clinicId: string }) => n.clinicId)).toEqual(['clinic-b']);
    const overview = (await t.http.get(`/v1/lots/${lot.id}/recall-notices`).set('authorization', `Bearer ${supplier}`)).body.items;
    expect(overview.filter((n: { acknowledged: boolean }) => !n.acknowledged).map((n: { clinicId: string }) => n.clinicId)).toEqual(['clinic-b']);
  });
});

describe('the reports of a lot with 6,000 more recipients', () => {
  beforeAll(async () => {
    // Copies of one procedure a minute apart: enough recipients that a report outgrows the socket buffers.
    const { rows } = await t.pool.query('SELECT id FROM procedures WHERE lot_id = $1 ORDER BY id LIMIT 1', [lotId]);
    await t.pool.query(
      `INSERT INTO procedures (id, clinic_id, patient_id, lot_id, performed_at, performer, indication, route, imaging_guidance, dose_particles, dose_volume_ml, vials_used, created_by)
       SELECT gen_random_uuid(), clinic_id, patient_id, lot_id, performed_at + make_interval(mins => g % 997), performer, indication, route, imaging_guidance, dose_particles, dose_volume_ml, vials_used, 'bulk'
       FROM procedures p, generate_series(1, 6000) g WHERE p.id = $1`,
      [rows[0].id],
    );
  });

  const exportsOf = async (resourceId: string) =>
    (await t.pool.query("SELECT details FROM audit_events WHERE action = 'export' AND resource_id = $1 ORDER BY id", [resourceId])).rows.map(
      (r: { details: { format: string; recipients?: number } }) => r.details,
    );

  it('writes every recipient in time order as it reads them (chunked), each clinic its own, with the count audited', async () => {
    for (const [token, clinicId] of [[inspector, null], [reportsOf['clinic-a']!, 'clinic-a'], [reportsOf['clinic-b']!, 'clinic-b']] as const) {
      const expected = (
        await t.pool.query('SELECT id FROM procedures WHERE lot_id = $1 AND ($2::text IS NULL OR clinic_id = $2) ORDER BY performed_at, id', [lotId, clinicId])
      ).rows.map((r: { id: string }) => r.id);
      const res = await get(`/v1/reports/lot-traceability/${lotId}`, token);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(res.headers['transfer-encoding']).toBe('chunked');
      const body = res.body as { lot: { id: string }; recipients: { procedureId: string; clinicId: string }[]; adverseEvents: unknown[]; outcomeSummary: unknown[] };
      expect(Object.keys(body)).toEqual(['generatedAt', 'requestedBy', 'lot', 'donors', 'vialAccounting', 'recipients', 'adverseEvents', 'outcomeSummary']);
      expect(body.lot.id).toBe(lotId);
      expect(body.recipients.map((r) => r.procedureId)).toEqual(expected);
      if (clinicId) expect(new Set(body.recipients.map((r) => r.clinicId))).toEqual(new Set([clinicId]));
      expect((await exportsOf(lotId)).at(-1)).toMatchObject({ format: 'json', recipients: expected.length });
    }
  });

  it('lists the same recipients in the donor lookback, with the count audited', async () => {
    const lot = await get(`/v1/reports/lot-traceability/${lotId}`, inspector);
    const res = await get(`/v1/reports/donor-lookback/${donorId}`, inspector);
    expect(res.status).toBe(200);
    expect(res.headers['transfer-encoding']).toBe('chunked');
    expect(res.body.lots).toHaveLength(1);
    expect(res.body.lots[0].recipients).toEqual(lot.body.recipients);
    expect((await exportsOf(donorId)).at(-1)).toMatchObject({ format: 'json', lots: 1, recipients: lot.body.recipients.length });
  });

  it('gives the connection back when the client goes away mid-download, and records the export as incomplete', async () => {
    const port = await listening();
    const incomplete = async (resourceId: string) =>
      (await t.pool.query<{ details: { format: string; reason: string } }>(
        "SELECT details FROM audit_events WHERE action = 'export' AND outcome = 'incomplete' AND resource_id = $1 ORDER BY id",
        [resourceId],
      )).rows.map((r) => r.details);
    const logged = () => t.logLines.filter((l) => l.includes('report download ended before its last row'));
    for (const [path, accept, resourceId, format] of [
      [`/v1/reports/lot-traceability/${lotId}`, 'text/csv', lotId, 'csv'],
      [`/v1/reports/lot-traceability/${lotId}`, 'application/json', lotId, 'json'],
      [`/v1/reports/donor-lookback/${donorId}`, 'application/json', donorId, 'json'],
      [`/v1/reports/donor-lookback/${donorId}`, 'text/csv', donorId, 'csv'],
    ] as const) {
      const [before, lines] = [(await incomplete(resourceId)).length, logged().length];
      await abandonDownload(port, path, { authorization: `Bearer ${inspector}`, accept });
      expect(await checkedOutAfter(t.pool), `${path} as ${accept}`).toBe(0);
      const deadline = Date.now() + 3000;
      while ((await incomplete(resourceId)).length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      expect((await incomplete(resourceId)).slice(before), `${path} as ${accept}`).toEqual([expect.objectContaining({ format })]);
      expect(logged().length).toBe(lines + 1);
    }
    // The warning names the report, never the lot, donor or anything from the request.
    for (const line of logged()) {
      expect(line).not.toContain(lotId);
      expect(line).not.toContain(donorId);
    }
    // A download read to its end is not incomplete.
    const whole = (await incomplete(lotId)).length;
    expect((await get(`/v1/reports/lot-traceability/${lotId}`, inspector)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 200));
    expect((await incomplete(lotId)).length).toBe(whole);
  });

  it('answers 503 report-downloads-busy past the instance\'s share of the pool, while the rest of the API answers', async () => {
    const port = await listening();
    const http = await import('node:http');
    // 50,000 more recipients (about 25 MB of JSON), more than the loopback socket buffers take: a client that
    // reads the first piece and then stops holds its report stream open.
    const { rows } = await t.pool.query('SELECT id FROM procedures WHERE lot_id = $1 ORDER BY id LIMIT 1', [lotId]);
    await t.pool.query(
      `INSERT INTO procedures (id, clinic_id, patient_id, lot_id, performed_at, performer, indication, route, imaging_guidance, dose_particles, dose_volume_ml, vials_used, created_by)
       SELECT gen_random_uuid(), clinic_id, patient_id, lot_id, performed_at + make_interval(secs => g), performer, indication, route, imaging_guidance, dose_particles, dose_volume_ml, vials_used, 'bulk'
       FROM procedures p, generate_series(1, 50000) g WHERE p.id = $1`,
      [rows[0].id],
    );
    const stalled: import('node:http').ClientRequest[] = [];
    const slots = Math.floor(20 / 4); // the test pool has 20 connections: a quarter may stream reports
    for (let i = 0; i < slots; i++) {
      await new Promise<void>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: `/v1/reports/lot-traceability/${lotId}`, headers: { authorization: `Bearer ${inspector}` } }, (res) => {
          expect(res.statusCode).toBe(200);
          res.once('data', () => {
            res.pause();
            resolve();
          });
        });
        req.on('error', reject);
        stalled.push(req);
      });
    }
    try {
      const busy = await get(`/v1/reports/donor-lookback/${donorId}`, inspector, 'text/csv');
      expect(busy.status).toBe(503);
      expect(busy.body).toMatchObject({ code: 'report-downloads-busy' });
      expect(busy.headers['retry-after']).toBeDefined();
      expect((await get(`/v1/reports/lot-traceability/${lotId}`, inspector)).status).toBe(503);
      // Everything else still has connections.
      expect((await get(`/v1/lots/${lotId}`, supplier)).status).toBe(200);
    } finally {
      for (const req of stalled) req.destroy();
    }
    expect(await checkedOutAfter(t.pool)).toBe(0);
    expect((await get(`/v1/reports/lot-traceability/${lotId}`, inspector)).status).toBe(200);
  });
});

describe('a report download\'s connection and audit, at the edges', () => {
  const incompleteOf = async (resourceId: string) =>
    (await t.pool.query("SELECT count(*)::int AS n FROM audit_events WHERE action = 'export' AND outcome = 'incomplete' AND resource_id = $1", [resourceId])).rows[0].n as number;

  it('holds no connection for a donor with no lots, and records it as delivered', async () => {
    const lonely = await createDonor(t.http, supplier);
    for (const accept of ['application/json', 'text/csv']) {
      const res = await get(`/v1/reports/donor-lookback/${lonely.id}`, inspector, accept);
      expect(res.status).toBe(200);
      if (accept === 'application/json') expect(res.body.lots).toEqual([]);
      expect(await checkedOutAfter(t.pool, 1000), accept).toBe(0);
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(await incompleteOf(lonely.id)).toBe(0);
  });

  it('gives the connection back at once when the client leaves before the first byte', async () => {
    const port = await listening();
    const http = await import('node:http');
    for (const accept of ['application/json', 'text/csv', 'application/pdf', 'text/html']) {
      // The export's audit entry waits on a lock, so the client is gone before the response starts.
      const locker = await t.pool.connect();
      await locker.query('BEGIN; LOCK TABLE audit_events IN EXCLUSIVE MODE');
      const req = http.get({ host: '127.0.0.1', port, path: `/v1/reports/lot-traceability/${lotId}`, headers: { authorization: `Bearer ${inspector}`, accept } });
      req.on('error', () => undefined);
      await new Promise((r) => setTimeout(r, 300));
      req.destroy();
      await locker.query('COMMIT');
      locker.release();
      expect(await checkedOutAfter(t.pool, 3000), accept).toBe(0);
    }
  });

  it('records no incomplete delivery for an export whose audit entry could not be written', async () => {
    // The audit entry of this lot's exports fails (a trigger, for this test only): the client gets an error body.
    const { lot } = await releasedLot(t.http, supplier);
    await t.pool.query(`CREATE FUNCTION refuse_export() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        IF NEW.action = 'export' AND NEW.resource_id = '${lot.id}' THEN RAISE EXCEPTION 'refused for the test'; END IF; RETURN NEW; END $$`);
    await t.pool.query('CREATE TRIGGER refuse_export BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_export()');
    try {
      for (const accept of ['application/json', 'text/csv', 'application/pdf']) {
        const res = await get(`/v1/reports/lot-traceability/${lot.id}`, inspector, accept);
        expect(res.status, accept).toBeGreaterThanOrEqual(500);
        expect(await checkedOutAfter(t.pool, 1000), accept).toBe(0);
      }
    } finally {
      await t.pool.query('DROP TRIGGER refuse_export ON audit_events; DROP FUNCTION refuse_export()');
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(await incompleteOf(lot.id)).toBe(0);
    // And the lot's report works again once its entry can be written.
    expect((await get(`/v1/reports/lot-traceability/${lot.id}`, inspector)).status).toBe(200);
  });
});
