import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { consentBody, createLot, eligibleDonor, patientBody, procedureBody, uniq } from '../support/fixtures.js';

/**
 * CSV injection: text a user typed (an MRN, a lot number, a clinic id) that a spreadsheet would run as a
 * formula goes out with a leading single quote in every CSV export; numbers the service writes do not.
 */
let t: TestApp;
let supplier: string;
let inspector: string;
let donorId: string;

interface Recipient {
  trigger: string;
  clinic: string;
  mrn: string;
  lotNumber: string;
  lotId: string;
  patientId: string;
}
const recipients: Recipient[] = [];

/** RFC 4180: records end with CRLF; quoted fields may hold commas, quotes ("") and line breaks. */
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
  expect(field === '' && record.length === 0, 'ends with CRLF').toBe(true);
  const [header, ...rows] = records;
  return rows.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i]!])));
}

beforeAll(async () => {
  t = await createTestApp();
  supplier = await t.token({ scope: 'lots:read lots:write reports:read', clinic: null, sub: 'qa-unit' });
  inspector = await t.token({ scope: 'reports:read', clinic: null, sub: 'inspector' });
  const auth = (token: string) => ['authorization', `Bearer ${token}`] as const;
  donorId = (await eligibleDonor(t.http, supplier)).id;
  // Through the API: = + - @ (tab and CR cannot get in any more, trimmed or refused; they are written below).
  for (const [i, trigger] of ['=', '+', '-', '@', '\t', '\r'].entries()) {
    const typed = trigger === '\t' || trigger === '\r' ? '' : trigger;
    const clinic = typed ? `${typed}2+5-clinic` : `clinic-${i}`;
    const lot = await createLot(t.http, supplier, [donorId], { lotNumber: `${typed}SUM(1+1)-${uniq()}` });
    expect((await t.http.post(`/v1/lots/${lot.id}/release`).set(...auth(supplier)).send({ releasedAt: '2026-03-01T09:00:00Z' })).status).toBe(200);
    expect((await t.http.post(`/v1/lots/${lot.id}/shipments`).set(...auth(supplier)).send({ clinicId: clinic, vials: 2, shippedAt: '2026-03-02T08:00:00Z' })).status).toBe(201);
    const clinician = await t.token({ scope: 'patients:read patients:write clinical:read clinical:write lots:read', clinic, sub: `dr-${i}` });
    const patient = await t.http.post('/v1/patients').set(...auth(clinician)).send(patientBody({ mrn: typed ? `${typed}2+5` : `MRN-${uniq()}` }));
    expect(patient.status).toBe(201);
    await t.http.post(`/v1/patients/${patient.body.id}/consents`).set(...auth(clinician)).send(consentBody({ signedAt: '2026-02-15T09:00:00Z' }));
    const proc = await t.http.post('/v1/procedures').set(...auth(clinician)).send(procedureBody(patient.body.id, lot.id));
    expect(proc.status).toBe(201);
    let mrn = patient.body.mrn as string;
    let lotNumber = (await t.http.get(`/v1/lots/${lot.id}`).set(...auth(supplier))).body.lotNumber as string;
    if (!typed) {
      // Stored before today's input rules (or by an import): the export must not trust what is in the table.
      mrn = `${trigger}=2+5`;
      lotNumber = `${trigger}=SUM(1+1)-${uniq()}`;
      await t.pool.query('UPDATE patients SET mrn = $1 WHERE id = $2', [mrn, patient.body.id]);
      await t.pool.query('UPDATE lots SET lot_number = $1 WHERE id = $2', [lotNumber, lot.id]);
    }
    recipients.push({ trigger, clinic, mrn, lotNumber, lotId: lot.id, patientId: patient.body.id });
  }
});
afterAll(() => t.close());

const csv = async (path: string) => {
  const res = await t.http.get(path).set('authorization', `Bearer ${inspector}`).set('accept', 'text/csv');
  expect(res.status, path).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/csv/);
  return parseCsv(res.text);
};

const numbersAsWritten = { dose_particles: '2500000000', dose_volume_ml: '0.01', vials_used: '1' };

describe('every CSV export neutralises a cell that begins with = + - @ tab or CR', () => {
  it('lot traceability: lot number, MRN and clinic get a leading quote, the dose and vial count stay numbers', async () => {
    for (const r of recipients) {
      const rows = await csv(`/v1/reports/lot-traceability/${r.lotId}`);
      expect(rows, JSON.stringify(r.trigger)).toEqual([
        expect.objectContaining({
          lot_number: `'${r.lotNumber}`,
          mrn: `'${r.mrn}`,
          clinic_id: r.clinic.startsWith('clinic-') ? r.clinic : `'${r.clinic}`,
          patient_id: r.patientId,
          route: 'intra-articular',
          body_site: 'knee-joint',
          laterality: 'right',
          ...numbersAsWritten,
        }),
      ]);
    }
  });

  it('donor lookback: every lot of the donor, every recipient, the same cells', async () => {
    const rows = await csv(`/v1/reports/donor-lookback/${donorId}`);
    expect(rows).toHaveLength(recipients.length);
    for (const r of recipients) {
      const row = rows.find((x) => x.patient_id === r.patientId);
      expect(row, JSON.stringify(r.trigger)).toMatchObject({ lot_number: `'${r.lotNumber}`, mrn: `'${r.mrn}`, ...numbersAsWritten });
    }
  });

  it('patient exposures: the MRN and the lot number', async () => {
    for (const r of recipients) {
      const rows = await csv(`/v1/reports/patient-exposures/${r.patientId}`);
      expect(rows, JSON.stringify(r.trigger)).toEqual([
        expect.objectContaining({ patient_id: r.patientId, mrn: `'${r.mrn}`, lot_id: r.lotId, lot_number: `'${r.lotNumber}`, route: 'intra-articular', lot_status: 'released' }),
      ]);
      expect(rows[0]!.din).toMatch(/^A9999/);
    }
    const audited = await t.pool.query(`select details->>'format' as format from audit_events where action = 'export' and resource_id = $1 order by id`, [recipients[0]!.patientId]);
    expect(audited.rows.map((r) => r.format)).toContain('csv');
  });

  it('leaves every cell that begins otherwise as it is, and JSON untouched', async () => {
    const rows = await csv(`/v1/reports/donor-lookback/${donorId}`);
    for (const row of rows) {
      for (const [column, cell] of Object.entries(row)) {
        if (['lot_number', 'mrn', 'clinic_id'].includes(column)) continue;
        expect(cell.startsWith("'"), `${column} ${cell}`).toBe(false);
      }
    }
    const json = await t.http.get(`/v1/reports/patient-exposures/${recipients[0]!.patientId}`).set('authorization', `Bearer ${inspector}`);
    expect(json.body.patient.mrn).toBe('=2+5');
    expect(json.body.exposures[0].lot.lotNumber).toBe(recipients[0]!.lotNumber);
  });
});
