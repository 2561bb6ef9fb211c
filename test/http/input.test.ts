import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { clinicSetup, consentBody, createDonor, createLot, eligibleDonor, lotBody, patientBody, procedureBody, uniq } from '../support/fixtures.js';

/**
 * The input rules of the contract ("Input and output rules"), tried through HTTP on several routes each:
 * charset and UTF-8, NFC, NUL and control characters, surrounding white space, dates and years, null.
 */
let t: TestApp;
let clinician: string;
let supplier: string;
let auditor: string;

beforeAll(async () => {
  t = await createTestApp();
  clinician = await t.token({ scope: 'patients:read patients:write clinical:read clinical:write lots:read reports:read', clinic: 'clinic-a' });
  supplier = await t.token({ scope: 'lots:read lots:write', clinic: null, sub: 'qa-unit' });
  auditor = await t.token({ scope: 'audit:read', clinic: null });
});
afterAll(() => t.close());

const auth = (token: string) => ['authorization', `Bearer ${token}`] as const;
const count = async (table: string) => (await t.pool.query(`select count(*)::int as n from ${table}`)).rows[0].n as number;
/** superagent would JSON-encode a Buffer sent as application/json: send its bytes as they are. */
const asIs = (b: unknown) => b as string;
const paths = (body: { errors?: { path: string }[] }) => (body.errors ?? []).map((e) => e.path);

async function newPatient(overrides: Record<string, unknown> = {}) {
  const res = await t.http.post('/v1/patients').set(...auth(clinician)).send(patientBody(overrides));
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; version: number; familyName: string; givenName: string; mrn: string };
}

describe('bodies are UTF-8 JSON (RFC 8259 §8.1)', () => {
  const latin1 = (json: string) => Buffer.from(json, 'latin1');

  it.each([
    ['/v1/patients', 'application/json; charset=iso-8859-1'],
    ['/v1/patients', 'application/json; charset="windows-1252"'],
    ['/v1/donors', 'application/json;charset=UTF-16'],
    ['/v1/lots', 'application/json; charset=us-ascii'],
  ])('POST %s declaring %s is 415, and nothing is stored', async (path, contentType) => {
    const before = await count('patients');
    const body = JSON.stringify(patientBody({ givenName: 'José' }));
    const token = path === '/v1/patients' ? clinician : supplier;
    const res = await t.http.post(path).set(...auth(token)).set('content-type', contentType).serialize(asIs).send(latin1(body));
    expect(res.status).toBe(415);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status: 415, code: 'unsupported-charset' });
    expect(await count('patients')).toBe(before);
  });

  it('a merge patch declaring another charset is 415 and leaves the version as it was', async () => {
    const p = await newPatient();
    const res = await t.http
      .patch(`/v1/patients/${p.id}`)
      .set(...auth(clinician))
      .set('if-match', '"1"')
      .set('content-type', 'application/merge-patch+json; charset=iso-8859-1')
      .serialize(asIs).send(latin1('{"givenName":"José"}'));
    expect(res.status).toBe(415);
    const got = await t.http.get(`/v1/patients/${p.id}`).set(...auth(clinician));
    expect(got.body).toMatchObject({ version: 1, givenName: p.givenName });
  });

  it.each([
    ['Latin-1 é with no charset', () => latin1(JSON.stringify(patientBody({ givenName: 'José' })))],
    ['a truncated UTF-8 sequence', () => Buffer.concat([Buffer.from('{"givenName":"Jos'), Buffer.from([0xc3]), Buffer.from('"}')])],
    ['an overlong encoding of "/"', () => Buffer.concat([Buffer.from('{"mrn":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')])],
    ['an encoded surrogate (CESU-8)', () => Buffer.concat([Buffer.from('{"mrn":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')])],
  ])('bytes that are not UTF-8 (%s) are 400 invalid-utf8, and no U+FFFD is stored', async (_name, bytes) => {
    const before = await count('patients');
    const res = await t.http.post('/v1/patients').set(...auth(clinician)).set('content-type', 'application/json').serialize(asIs).send(bytes());
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ status: 400, code: 'invalid-utf8' });
    expect(await count('patients')).toBe(before);
    const replaced = await t.pool.query(`select count(*)::int as n from patients where given_name like '%' || chr(65533) || '%' or mrn like '%' || chr(65533) || '%'`);
    expect(replaced.rows[0].n).toBe(0);
  });

  it('invalid UTF-8 in a PATCH body and a lot body is 400 too', async () => {
    const p = await newPatient();
    const patch = await t.http
      .patch(`/v1/patients/${p.id}`)
      .set(...auth(clinician))
      .set('if-match', '"1"')
      .set('content-type', 'application/merge-patch+json')
      .serialize(asIs).send(Buffer.concat([Buffer.from('{"familyName":"M'), Buffer.from([0xfc]), Buffer.from('ller"}')]));
    expect(patch.status).toBe(400);
    expect(patch.body.code).toBe('invalid-utf8');
    const lot = await t.http
      .post('/v1/lots')
      .set(...auth(supplier))
      .set('content-type', 'application/json')
      .serialize(asIs).send(Buffer.from(JSON.stringify(lotBody([], { productName: 'Exosomes für Knie' })), 'latin1'));
    expect(lot.status).toBe(400);
    expect(lot.body.code).toBe('invalid-utf8');
  });

  it('utf-8 declared in any spelling is accepted and stored exactly', async () => {
    for (const contentType of ['application/json; charset=utf-8', 'application/json; charset=UTF-8', 'application/json;charset="utf-8"', 'application/json']) {
      const body = patientBody({ givenName: 'José', familyName: 'Ñúñez' });
      const res = await t.http.post('/v1/patients').set(...auth(clinician)).set('content-type', contentType).serialize(asIs).send(Buffer.from(JSON.stringify(body), 'utf8'));
      expect(res.status, contentType).toBe(201);
      expect(res.body).toMatchObject({ givenName: 'José', familyName: 'Ñúñez' });
    }
  });
});

describe('text is NFC: canonically equal text is equal', () => {
  const composed = 'Müller';
  const decomposed = 'Mu\u0308ller';

  it('a composed name is found by the decomposed search, and a decomposed one is stored composed', async () => {
    const a = await newPatient({ familyName: composed });
    const found = await t.http.get(`/v1/patients?familyName=${encodeURIComponent(decomposed)}`).set(...auth(clinician));
    expect(found.status).toBe(200);
    expect(found.body.items.map((p: { id: string }) => p.id)).toContain(a.id);

    const b = await newPatient({ familyName: decomposed, givenName: 'Zoe\u0308' });
    expect(b.familyName).toBe(composed);
    expect(b.givenName).toBe('Zoë');
    const stored = await t.pool.query('select family_name, given_name from patients where id = $1', [b.id]);
    expect(stored.rows[0]).toEqual({ family_name: composed, given_name: 'Zoë' });
  });

  it('an MRN is unique after normalization (409), and an identifier is searched after normalization', async () => {
    const tag = uniq();
    const first = await newPatient({ mrn: `MRN-Å-${tag}`, identifiers: [{ system: 'urn:oid:1.2.3', value: `Ünal-${tag}` }] });
    const twin = await t.http.post('/v1/patients').set(...auth(clinician)).send(patientBody({ mrn: `MRN-A\u030a-${tag}` }));
    expect(twin.status).toBe(409);
    const byMrn = await t.http.get(`/v1/patients?mrn=${encodeURIComponent(`MRN-A\u030a-${tag}`)}`).set(...auth(clinician));
    expect(byMrn.body.items.map((p: { id: string }) => p.id)).toEqual([first.id]);
    const byIdentifier = await t.http.get(`/v1/patients?identifier=${encodeURIComponent(`urn:oid:1.2.3|U\u0308nal-${tag}`)}`).set(...auth(clinician));
    expect(byIdentifier.body.items.map((p: { id: string }) => p.id)).toEqual([first.id]);
  });

  it('the database itself refuses a natural key that is not NFC (23514), as a second fence', async () => {
    const p = await newPatient();
    await expect(t.pool.query('update patients set mrn = $2 where id = $1', [p.id, 'MRN-A\u030a'])).rejects.toMatchObject({ code: '23514', constraint: 'patients_mrn_nfc_ck' });
  });

  it('a lot number is unique per manufacturer after normalization, and found by its other form', async () => {
    const donor = await createDonor(t.http, supplier);
    const lotNumber = `EVX-Ç-${uniq()}`;
    const lot = await createLot(t.http, supplier, [donor.id], { lotNumber });
    const twin = await t.http.post('/v1/lots').set(...auth(supplier)).send(lotBody([donor.id], { lotNumber: lotNumber.normalize('NFD') }));
    expect(twin.status).toBe(409);
    const found = await t.http.get(`/v1/lots?lotNumber=${encodeURIComponent(lotNumber.normalize('NFD'))}`).set(...auth(supplier));
    expect(found.body.items.map((l: { id: string }) => l.id)).toEqual([lot.id]);
  });

  it('the FHIR facade searches in NFC as well', async () => {
    const fhir = await t.token({ scope: 'patients:read clinical:read', clinic: 'clinic-a' });
    const name = `Gärtner${uniq()}`;
    const p = await newPatient({ familyName: name });
    const res = await t.http.get(`/fhir/R4/Patient?family=${encodeURIComponent(name.normalize('NFD'))}`).set(...auth(fhir));
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([p.id]);
  });
});

describe('NUL and control characters are 400 naming the field, never a 500', () => {
  it.each([
    ['/v1/patients?mrn=%00', 'querystring.mrn', () => clinician],
    ['/v1/patients?familyName=Lo%01pez', 'querystring.familyName', () => clinician],
    ['/v1/patients?identifier=urn%3Aoid%3A1%7C%00', 'querystring.identifier', () => clinician],
    ['/v1/patients?birthDate=1961-04-17%0A', 'querystring.birthDate', () => clinician],
    ['/v1/lots?lotNumber=EVX%00', 'querystring.lotNumber', () => supplier],
    ['/v1/audit-events?actor=a%00b', 'querystring.actor', () => auditor],
    ['/v1/patients/%00', 'params.id', () => clinician],
    ['/v1/patients?%00=1', 'querystring', () => clinician],
  ])('GET %s', async (url, path, token) => {
    const res = await t.http.get(url).set(...auth(token()));
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(paths(res.body)).toContain(path);
  });

  it('a query escape that is not UTF-8 is 400 rather than searched as typed', async () => {
    const res = await t.http.get('/v1/patients?familyName=Jos%E9').set(...auth(clinician));
    expect(res.status).toBe(400);
    expect(paths(res.body)).toEqual(['querystring.familyName']);
  });

  it('the FHIR facade answers NUL in a search or a path with a 400 OperationOutcome', async () => {
    const fhir = await t.token({ scope: 'patients:read clinical:read', clinic: 'clinic-a' });
    for (const url of ['/fhir/R4/Patient?family=%00', '/fhir/R4/Patient?identifier=urn%3Aoid%3A1%7Ca%00', '/fhir/R4/Patient/%00', '/fhir/R4/Procedure?patient=%00']) {
      const res = await t.http.get(url).set(...auth(fhir));
      expect(res.status, url).toBe(400);
      expect(res.body.resourceType, url).toBe('OperationOutcome');
    }
  });

  it.each([
    ['givenName', { givenName: 'Ma\u0000ria' }, 'body.givenName'],
    ['an identifier value', { identifiers: [{ system: 'urn:oid:1.2.3', value: '\u0000' }] }, 'body.identifiers.0.value'],
    ['familyName with a bell', { familyName: 'Lo\u0007pez' }, 'body.familyName'],
    ['mrn with an escape', { mrn: `MRN\u001b[31m${uniq()}` }, 'body.mrn'],
    ['givenName with a tab (single-line)', { givenName: 'Ma\tria' }, 'body.givenName'],
    ['familyName with a line feed (single-line)', { familyName: 'Lo\npez' }, 'body.familyName'],
    ['givenName with a lone surrogate', { givenName: 'Ma\ud800ria' }, 'body.givenName'],
    ['givenName with a leading space (never trimmed)', { givenName: ' Maria' }, 'body.givenName'],
    ['mrn with a trailing no-break space', { mrn: `MRN-${uniq()}\u00a0` }, 'body.mrn'],
  ])('POST /v1/patients with %s → 400 naming it, nothing stored', async (_name, overrides, path) => {
    const before = await count('patients');
    const res = await t.http.post('/v1/patients').set(...auth(clinician)).send(patientBody(overrides));
    expect(res.status).toBe(400);
    expect(paths(res.body)).toContain(path);
    expect(await count('patients')).toBe(before);
  });

  it('free text keeps tab, line feed and carriage return exactly, but refuses NUL and other controls', async () => {
    const s = await clinicSetup(t);
    const proc = await t.http.post('/v1/procedures').set(...auth(s.clinician)).send(procedureBody(s.patientId, s.lot.id, { notes: '  Line one\r\n\tLine two  ' }));
    expect(proc.status, JSON.stringify(proc.body)).toBe(201);
    const got = await t.http.get(`/v1/procedures/${proc.body.id}`).set(...auth(s.clinician));
    expect(got.body.notes).toBe('  Line one\r\n\tLine two  ');

    const description = 'Swelling\n\tgrade 2\r\nresolved';
    const ae = await t.http.post('/v1/adverse-events').set(...auth(s.clinician)).send({
      procedureId: proc.body.id,
      onsetAt: '2026-03-11T08:00:00Z',
      description,
      severityGrade: 2,
      serious: false,
      relatedness: 'probable',
      outcome: 'recovering',
    });
    expect(ae.status, JSON.stringify(ae.body)).toBe(201);
    expect((await t.http.get(`/v1/adverse-events/${ae.body.id}`).set(...auth(s.clinician))).body.description).toBe(description);

    for (const [field, value] of [
      ['notes', 'a\u0000b'],
      ['notes', 'a\u0008b'],
      ['doseDeviationReason', 'x\u001fy'],
      ['performer', 'Dr.\u0000Rivera'],
    ] as const) {
      const before = await count('procedures');
      const res = await t.http.post('/v1/procedures').set(...auth(s.clinician)).send(procedureBody(s.patientId, s.lot.id, { [field]: value }));
      expect(res.status, field).toBe(400);
      expect(paths(res.body)).toContain(`body.${field}`);
      expect(await count('procedures')).toBe(before);
    }
    const patch = await t.http.patch(`/v1/adverse-events/${ae.body.id}`).set(...auth(s.clinician)).set('if-match', '"1"').set('content-type', 'application/merge-patch+json').send(JSON.stringify({ description: 'ok\u0000' }));
    expect(patch.status).toBe(400);
    expect(paths(patch.body)).toContain('body.description');
  });

  it('lot and donor bodies: NUL in a nested marker or a laboratory is 400 naming it', async () => {
    const lot = await t.http.post('/v1/lots').set(...auth(supplier)).send(lotBody([], { characterization: { ...lotBody([]).characterization, positiveMarkers: ['CD63', 'CD\u000081'] } }));
    expect(lot.status).toBe(400);
    expect(paths(lot.body)).toContain('body.characterization.positiveMarkers.1');
    const donor = await createDonor(t.http, supplier);
    const test = await t.http.post(`/v1/donors/${donor.id}/tests`).set(...auth(supplier)).send({ marker: 'hiv-1-nat', method: 'nat', result: 'non-reactive', testedOn: '2026-01-14', laboratory: 'Lab\u0000' });
    expect(test.status).toBe(400);
    expect(paths(test.body)).toContain('body.laboratory');
  });
});

describe('dates and instants lie between 1900-01-01 and 9999-12-31; impossible ones are 400', () => {
  it('a consent signed in year 0099 is 400, not stored as 1999', async () => {
    const p = await newPatient();
    const res = await t.http.post(`/v1/patients/${p.id}/consents`).set(...auth(clinician)).send(consentBody({ signedAt: '0099-10-01T09:00:00Z' }));
    expect(res.status).toBe(400);
    expect(paths(res.body)).toContain('body.signedAt');
    expect((await t.pool.query('select count(*)::int as n from consents where patient_id = $1', [p.id])).rows[0].n).toBe(0);
  });

  it.each([
    ['birthDate 1899-12-31', { birthDate: '1899-12-31' }, 'body.birthDate'],
    ['birthDate 0000-01-01', { birthDate: '0000-01-01' }, 'body.birthDate'],
    ['birthDate 2023-02-30', { birthDate: '2023-02-30' }, 'body.birthDate'],
    ['birthDate 2023-02-29 (not a leap year)', { birthDate: '2023-02-29' }, 'body.birthDate'],
    ['birthDate 10000-01-01', { birthDate: '10000-01-01' }, 'body.birthDate'],
  ])('POST /v1/patients with %s → 400', async (_name, overrides, path) => {
    const res = await t.http.post('/v1/patients').set(...auth(clinician)).send(patientBody(overrides));
    expect(res.status).toBe(400);
    expect(paths(res.body)).toContain(path);
  });

  it('the edges of the range are accepted: 1900-01-01 and 2024-02-29', async () => {
    for (const birthDate of ['1900-01-01', '2024-02-29']) expect((await newPatient({ birthDate })).id).toBeTruthy();
  });

  it('instants in other bodies: procedure, adverse event, lot dates, shipment and recall times', async () => {
    const s = await clinicSetup(t);
    const early = await t.http.post('/v1/procedures').set(...auth(s.clinician)).send(procedureBody(s.patientId, s.lot.id, { performedAt: '1899-12-31T23:59:59Z' }));
    expect(early.status).toBe(400);
    expect(paths(early.body)).toContain('body.performedAt');
    const impossible = await t.http.post('/v1/procedures').set(...auth(s.clinician)).send(procedureBody(s.patientId, s.lot.id, { performedAt: '2026-02-30T09:00:00Z' }));
    expect(impossible.status).toBe(400);
    const lot = await t.http.post('/v1/lots').set(...auth(supplier)).send(lotBody([s.donor.id], { manufacturedOn: '0026-02-01' }));
    expect(lot.status).toBe(400);
    expect(paths(lot.body)).toContain('body.manufacturedOn');
    const ship = await t.http.post(`/v1/lots/${s.lot.id}/shipments`).set(...auth(supplier)).send({ clinicId: 'clinic-a', vials: 1, shippedAt: '0099-03-02T08:00:00Z' });
    expect(ship.status).toBe(400);
    expect(paths(ship.body)).toContain('body.shippedAt');
    const recall = await t.http.post(`/v1/lots/${s.lot.id}/recall`).set(...auth(supplier)).send({ reason: 'test', recalledAt: '1066-10-14T09:00:00Z' });
    expect(recall.status).toBe(400);
    expect(paths(recall.body)).toContain('body.recalledAt');
  });

  it('an instant finer than a millisecond is refused (it would be stored truncated), unless the extra digits are zero', async () => {
    const p = await newPatient();
    const fine = await t.http.post(`/v1/patients/${p.id}/consents`).set(...auth(clinician)).send(consentBody({ signedAt: '2026-10-01T09:00:00.123456+02:00' }));
    expect(fine.status).toBe(400);
    expect(paths(fine.body)).toContain('body.signedAt');
    const zeros = await t.http.post(`/v1/patients/${p.id}/consents`).set(...auth(clinician)).send(consentBody({ signedAt: '2026-10-01T09:00:00.123000+02:00' }));
    expect(zeros.status).toBe(201);
    expect(zeros.body.signedAt).toBe('2026-10-01T07:00:00.123Z');
  });

  it.each([
    ['/v1/patients?birthDate=0099-01-01', 'querystring.birthDate', () => clinician],
    ['/v1/patients?birthDate=2023-02-30', 'querystring.birthDate', () => clinician],
    ['/v1/audit-events?from=0099-01-01T00:00:00Z', 'querystring.from', () => auditor],
    ['/v1/audit-events/verify?to=2023-04-31T00:00:00Z', 'querystring.to', () => auditor],
  ])('GET %s → 400', async (url, path, token) => {
    const res = await t.http.get(url).set(...auth(token()));
    expect(res.status).toBe(400);
    expect(paths(res.body)).toContain(path);
  });

  it('FHIR birthdate=2023-02-30 is a 400 OperationOutcome, and the searched date reaches no log line', async () => {
    const fhir = await t.token({ scope: 'patients:read clinical:read', clinic: 'clinic-a' });
    for (const value of ['2023-02-30', 'eq1899-12-31', '0000-01-01']) {
      const res = await t.http.get(`/fhir/R4/Patient?birthdate=${value}`).set(...auth(fhir));
      expect(res.status, value).toBe(400);
      expect(res.body.resourceType).toBe('OperationOutcome');
    }
    expect(t.logLines.join('\n')).not.toMatch(/2023-02-30|1899-12-31|0000-01-01/);
  });

  it('an instant stored with a year below 100 (legacy data) reads back exactly, not in the 1900s or 2000s', async () => {
    const p = await newPatient();
    const consent = await t.http.post(`/v1/patients/${p.id}/consents`).set(...auth(clinician)).send(consentBody());
    expect(consent.status).toBe(201);
    // As a row written before the range rule would be: copied with its year set to 0099 and 0010.
    for (const [year, id] of [['0099', crypto.randomUUID()], ['0010', crypto.randomUUID()]] as const) {
      await t.pool.query(
        `insert into consents (id, patient_id, clinic_id, kind, signed_at, document_version, version, created_at, created_by)
         select $2::uuid, patient_id, clinic_id, kind, $3::timestamptz, document_version, version, created_at, created_by from consents where id = $1`,
        [consent.body.id, id, `${year}-10-01T09:00:00Z`],
      );
    }
    const list = await t.http.get(`/v1/patients/${p.id}/consents`).set(...auth(clinician));
    expect(list.status).toBe(200);
    expect(list.body.items.map((c: { signedAt: string }) => c.signedAt).sort()).toEqual(['0010-10-01T09:00:00.000Z', '0099-10-01T09:00:00.000Z', '2026-10-01T07:00:00.000Z']);
  });
});

describe('null in a POST body means absent; a PATCH refuses null for what cannot be cleared', () => {
  it('an intravenous procedure with "site": null, echoed as responses show it, is recorded', async () => {
    const s = await clinicSetup(t);
    const body = procedureBody(s.patientId, s.lot.id, { route: 'intravenous', site: null, imagingGuidance: null, notes: null, doseDeviationReason: null });
    const res = await t.http.post('/v1/procedures').set(...auth(s.clinician)).send(body);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.site).toBeNull();
    expect(res.body.imagingGuidance).toBe('none');
  });

  it('optional members of other POST bodies, nested ones too, may be null', async () => {
    const p = await t.http.post('/v1/patients').set(...auth(clinician)).send(patientBody({ identifiers: null }));
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    expect(p.body.identifiers).toEqual([]);
    const c = await t.http.post(`/v1/patients/${p.body.id}/consents`).set(...auth(clinician)).send(consentBody({ indNumber: null, irbProtocol: null }));
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    expect(c.body).toMatchObject({ indNumber: null, irbProtocol: null });
    const donor = await eligibleDonor(t.http, supplier);
    const lot = await t.http.post('/v1/lots').set(...auth(supplier)).send(lotBody([donor.id], { poolingJustification: null, releaseTests: { sterility: 'pass', mycoplasma: 'pass', endotoxinEuPerMl: null } }));
    expect(lot.status, JSON.stringify(lot.body)).toBe(201);
    const release = await t.http.post(`/v1/lots/${lot.body.id}/release`).set(...auth(supplier)).send({ releasedAt: null, reason: null });
    // endotoxin not yet measured: refused by the release rule (422), not by the body (400).
    expect(release.status).toBe(422);
  });

  it('null for a required member is 400 naming it', async () => {
    const res = await t.http.post('/v1/patients').set(...auth(clinician)).send(patientBody({ givenName: null }));
    expect(res.status).toBe(400);
    expect(paths(res.body)).toContain('body.givenName');
  });

  it('PATCH: null for a member that cannot be cleared is 400 naming it, and the record keeps its version', async () => {
    const p = await newPatient();
    for (const field of ['familyName', 'birthDate', 'mrn']) {
      const res = await t.http
        .patch(`/v1/patients/${p.id}`)
        .set(...auth(clinician))
        .set('if-match', '"1"')
        .set('content-type', 'application/merge-patch+json')
        .send(JSON.stringify({ [field]: null }));
      expect(res.status, field).toBe(400);
      expect(paths(res.body)).toContain(`body.${field}`);
    }
    expect((await t.http.get(`/v1/patients/${p.id}`).set(...auth(clinician))).body.version).toBe(1);
  });
});

describe('a member named twice in one object is 400 naming it (RFC 8259 §4), and changes nothing', () => {
  /** The body as raw text: `JSON.stringify` cannot write a repeated member. */
  const raw = (body: object, extra: string) => `${JSON.stringify(body).slice(0, -1)},${extra}}`;

  it('in a POST body, at the top or nested, whichever value comes last', async () => {
    const s = await clinicSetup(t);
    const proc = await t.http.post('/v1/procedures').set(...auth(s.clinician)).send(procedureBody(s.patientId, s.lot.id));
    expect(proc.status, JSON.stringify(proc.body)).toBe(201);
    const ae = { procedureId: proc.body.id, onsetAt: new Date().toISOString(), description: 'Knee effusion', severityGrade: 2, serious: false, seriousnessCriteria: [], relatedness: 'not-related', outcome: 'recovering' };
    const before = { ae: await count('adverse_events'), patients: await count('patients'), procedures: await count('procedures') };
    const cases: [string, string, string][] = [
      ['/v1/adverse-events', raw(ae, '"serious":true'), 'body.serious'],
      ['/v1/adverse-events', raw(ae, '"relat\\u0065dness":"possible"'), 'body.relatedness'],
      ['/v1/patients', raw(patientBody(), '"mrn":"OTHER-1"'), 'body.mrn'],
      ['/v1/procedures', JSON.stringify(procedureBody(s.patientId, s.lot.id)).replace('"laterality"', '"bodySite":"hip-joint","laterality"'), 'body.site.bodySite'],
    ];
    for (const [path, text, field] of cases) {
      const res = await t.http.post(path).set(...auth(path === '/v1/patients' ? clinician : s.clinician)).set('content-type', 'application/json').send(text);
      expect(res.status, `${path} ${text}`).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(paths(res.body), path).toEqual([field]);
    }
    expect({ ae: await count('adverse_events'), patients: await count('patients'), procedures: await count('procedures') }).toEqual(before);
  });

  it('in a merge patch: the record keeps its version', async () => {
    const p = await newPatient();
    const res = await t.http
      .patch(`/v1/patients/${p.id}`)
      .set(...auth(clinician))
      .set('if-match', '"1"')
      .set('content-type', 'application/merge-patch+json')
      .send('{"familyName":"Keep","familyName":"Other"}');
    expect(res.status).toBe(400);
    expect(paths(res.body)).toEqual(['body.familyName']);
    expect((await t.http.get(`/v1/patients/${p.id}`).set(...auth(clinician))).body).toMatchObject({ version: 1, familyName: p.familyName });
  });

  it('a value named twice in a list that is a set (criteria, markers) is 400 too, not stored twice', async () => {
    const s = await clinicSetup(t);
    const proc = await t.http.post('/v1/procedures').set(...auth(s.clinician)).send(procedureBody(s.patientId, s.lot.id));
    const before = await count('adverse_events');
    const ae = { procedureId: proc.body.id, onsetAt: new Date().toISOString(), description: 'Sepsis', severityGrade: 5, serious: true, seriousnessCriteria: ['death', 'death'], relatedness: 'possible', outcome: 'fatal' };
    const res = await t.http.post('/v1/adverse-events').set(...auth(s.clinician)).send(ae);
    expect(res.status).toBe(400);
    expect(paths(res.body)).toEqual(['body.seriousnessCriteria']);
    expect(await count('adverse_events')).toBe(before);
    const donor = await eligibleDonor(t.http, supplier);
    const body = lotBody([donor.id]) as { characterization: Record<string, unknown> };
    const lot = await t.http.post('/v1/lots').set(...auth(supplier)).send({ ...body, characterization: { ...body.characterization, positiveMarkers: ['CD63', 'CD81', 'CD63'] } });
    expect(lot.status).toBe(400);
    expect(paths(lot.body)).toEqual(['body.characterization.positiveMarkers']);
  });

  it('the same name in different objects, or inside a string, is not a repeat', async () => {
    const res = await t.http.post('/v1/patients').set(...auth(clinician)).set('content-type', 'application/json')
      .send(JSON.stringify(patientBody({ givenName: '"mrn":"x","mrn":"y"', identifiers: [{ system: 'urn:a', value: '1' }, { system: 'urn:b', value: '1' }] })));
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  });
});

describe('token claims are incoming text too', () => {
  it('a clinic_id claim is compared in NFC: the decomposed and composed spellings are one clinic', async () => {
    const decomposed = await t.token({ scope: 'patients:read patients:write', clinic: 'Cli\u0301nica-Sur' });
    const composed = await t.token({ scope: 'patients:read', clinic: 'Clínica-Sur' });
    const p = await t.http.post('/v1/patients').set(...auth(decomposed)).send(patientBody());
    expect(p.status).toBe(201);
    expect(p.body.clinicId).toBe('Clínica-Sur');
    expect((await t.http.get(`/v1/patients/${p.body.id}`).set(...auth(composed))).status).toBe(200);
  });

  it('a sub or clinic_id claim with NUL or a control character is 401, never a 500 from the audit insert', async () => {
    for (const claims of [{ sub: 'dr\u0000x' }, { clinic: 'clinic\u0000a' }, { sub: 'dr\u001bx' }]) {
      const token = await t.token({ scope: 'patients:read', ...claims });
      const res = await t.http.get('/v1/patients').set(...auth(token));
      expect(res.status, JSON.stringify(claims)).toBe(401);
    }
  });
});

describe('claims and paths that Fastify or Node would refuse in their own shape', () => {
  it('a sub claim that is empty, padded or longer than 255 characters is 401 (it keys idempotency and the audit log)', async () => {
    for (const sub of ['', ' dr-x', 'dr-x ', 'x'.repeat(256), 'a'.repeat(6000)]) {
      const token = await t.token({ scope: 'patients:write', sub });
      const res = await t.http.post('/v1/patients').set(...auth(token)).set('idempotency-key', crypto.randomUUID()).send(patientBody());
      expect(res.status, `${sub.length}`).toBe(401);
    }
    const padded = await t.token({ scope: 'patients:read', clinic: ' clinic-a' });
    expect((await t.http.get('/v1/patients').set(...auth(padded))).status).toBe(401);
  });

  it('request log lines carry no token subject', async () => {
    const token = await t.token({ scope: 'patients:read', sub: 'Subject-Maria-Lopez-1961' });
    expect((await t.http.get('/v1/patients').set(...auth(token))).status).toBe(200);
    expect(t.logLines.join('\n')).not.toContain('Subject-Maria-Lopez-1961');
  });

  it('a path escape that is not UTF-8 is a 400 problem+json (OperationOutcome under /fhir/R4), not Fastify\'s own shape', async () => {
    for (const url of ['/v1/patients/%E9', '/v1/lots/%C3%28', '/v1/reports/patient-exposures/%FF']) {
      const res = await t.http.get(url).set(...auth(clinician));
      expect(res.status, url).toBe(400);
      expect(res.headers['content-type'], url).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ status: 400, code: 'invalid-path', errors: [{ path: 'path' }] });
      expect(res.headers['x-request-id']).toBeTruthy();
    }
    const fhir = await t.http.get('/fhir/R4/Patient/%E9').set(...auth(clinician));
    expect(fhir.status).toBe(400);
    expect(fhir.body.resourceType).toBe('OperationOutcome');
  });

  it('a request line or header Node cannot parse gets a problem+json 400 and the connection closes', async () => {
    const other = await t.another();
    await other.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = other.app.server.address() as import('node:net').AddressInfo;
    const { connect } = await import('node:net');
    for (const raw of [
      Buffer.concat([Buffer.from('GET /v1/patients?mrn='), Buffer.from([0xc3, 0xa9]), Buffer.from(' HTTP/1.1\r\nHost: x\r\n\r\n')]),
      Buffer.from('GET /v1/patients HTTP/1.1\r\nHost: x\r\nX-Foo: a\u0000b\r\n\r\n', 'latin1'),
      Buffer.from('GET /v1/patients HTTP/1.1\r\nHost: x\r\nIf-Match: "2\u0001"\r\n\r\n', 'latin1'),
    ]) {
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => socket.end(raw));
        let text = '';
        socket.on('data', (d) => (text += d.toString('latin1')));
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
      });
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      expect(answer).toMatch(/Content-Type: application\/problem\+json/);
      expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ status: 400, code: 'malformed-request' });
    }
  });
});

describe('merge patch merges: members not sent keep their values', () => {
  it('a lot PATCH of one release result keeps the others; of part of the characterization keeps the rest', async () => {
    const donor = await createDonor(t.http, supplier);
    const lot = await createLot(t.http, supplier, [donor.id], {
      characterization: { ...lotBody([]).characterization, modeSizeNm: 100, d10Nm: 60 },
      releaseTests: { sterility: 'pass', mycoplasma: 'pass', endotoxinEuPerMl: 0.1 },
    });
    const patch = (version: number, body: unknown) =>
      t.http.patch(`/v1/lots/${lot.id}`).set(...auth(supplier)).set('if-match', `"${version}"`).set('content-type', 'application/merge-patch+json').send(JSON.stringify(body));

    const r1 = await patch(1, { releaseTests: { endotoxinEuPerMl: 0.05 } });
    expect(r1.status, JSON.stringify(r1.body)).toBe(200);
    expect(r1.body.releaseTests).toEqual({ sterility: 'pass', mycoplasma: 'pass', endotoxinEuPerMl: 0.05 });

    const r2 = await patch(2, { characterization: { meanSizeNm: 110, d10Nm: null } });
    expect(r2.status, JSON.stringify(r2.body)).toBe(200);
    expect(r2.body.characterization).toMatchObject({ particlesPerMl: 250_000_000_000, meanSizeNm: 110, modeSizeNm: 100, positiveMarkers: ['CD63', 'CD81', 'TSG101'], negativeMarkers: ['calnexin'] });
    expect(r2.body.characterization).not.toHaveProperty('d10Nm');

    const r3 = await patch(3, { releaseTests: { endotoxinEuPerMl: null }, characterization: { positiveMarkers: null } });
    expect(r3.status, JSON.stringify(r3.body)).toBe(200);
    expect(r3.body.releaseTests).toEqual({ sterility: 'pass', mycoplasma: 'pass', endotoxinEuPerMl: null });
    expect(r3.body.characterization.positiveMarkers).toEqual([]);

    const r4 = await patch(4, { characterization: { particlesPerMl: null } });
    expect(r4.status).toBe(400);
    expect(paths(r4.body)).toContain('body.characterization.particlesPerMl');
    const got = await t.http.get(`/v1/lots/${lot.id}`).set(...auth(supplier));
    expect(got.body).toMatchObject({ version: 4, characterization: { particlesPerMl: 250_000_000_000, meanSizeNm: 110 } });
  });

  it('PATCH null clears a list that may be empty (a patient\'s identifiers)', async () => {
    const p = await newPatient();
    const res = await t.http.patch(`/v1/patients/${p.id}`).set(...auth(clinician)).set('if-match', '"1"').set('content-type', 'application/merge-patch+json').send('{"identifiers":null}');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ identifiers: [], version: 2 });
  });
});

describe('an EHR identifier names one patient of a clinic, after normalization', () => {
  it('a second patient with the same system|value, in either Unicode form, or one list naming it twice, is 409', async () => {
    const value = `Ünal-${uniq()}`;
    const first = await newPatient({ identifiers: [{ system: 'https://ehr.example.org/id', value }] });
    for (const identifiers of [
      [{ system: 'https://ehr.example.org/id', value }],
      [{ system: 'https://ehr.example.org/id', value: value.normalize('NFD') }],
    ]) {
      const res = await t.http.post('/v1/patients').set(...auth(clinician)).send(patientBody({ identifiers }));
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('duplicate-identifier');
    }
    const twice = await t.http.post('/v1/patients').set(...auth(clinician)).send(patientBody({ identifiers: [{ system: 'urn:oid:9.9', value: 'X1' }, { system: 'urn:oid:9.9', value: 'X1' }] }));
    expect(twice.status).toBe(409);
    // Another clinic may know its own patient by the same value; the same patient may keep it across versions.
    const other = await t.token({ scope: 'patients:write', clinic: 'clinic-b' });
    expect((await t.http.post('/v1/patients').set(...auth(other)).send(patientBody({ identifiers: [{ system: 'https://ehr.example.org/id', value }] }))).status).toBe(201);
    const rename = await t.http.patch(`/v1/patients/${first.id}`).set(...auth(clinician)).set('if-match', '"1"').set('content-type', 'application/merge-patch+json').send(JSON.stringify({ familyName: 'Unal' }));
    expect(rename.status).toBe(200);
  });

  it('a PATCH that takes another patient\'s identifier is 409, and one that gives it up frees it', async () => {
    const a = await newPatient({ identifiers: [{ system: 'urn:oid:7.7', value: `A-${uniq()}` }] });
    const b = await newPatient({ identifiers: [] });
    const aIds = (await t.http.get(`/v1/patients/${a.id}`).set(...auth(clinician))).body.identifiers;
    const steal = await t.http.patch(`/v1/patients/${b.id}`).set(...auth(clinician)).set('if-match', '"1"').set('content-type', 'application/merge-patch+json').send(JSON.stringify({ identifiers: aIds }));
    expect(steal.status).toBe(409);
    expect(steal.body.code).toBe('duplicate-identifier');
    const release = await t.http.patch(`/v1/patients/${a.id}`).set(...auth(clinician)).set('if-match', '"1"').set('content-type', 'application/merge-patch+json').send('{"identifiers":null}');
    expect(release.status).toBe(200);
    const take = await t.http.patch(`/v1/patients/${b.id}`).set(...auth(clinician)).set('if-match', '"1"').set('content-type', 'application/merge-patch+json').send(JSON.stringify({ identifiers: aIds }));
    expect(take.status, JSON.stringify(take.body)).toBe(200);
  });
});

describe('second round: what a client sends, to the letter', () => {
  it('a sub that is not a string (number, list, null, object) is 401, never a 500; a clinic_id over 64 characters or with DEL or C1 controls too', async () => {
    const signed = (claims: Record<string, unknown>) => t.signer.raw({ scope: 'patients:read', ...claims });
    for (const claims of [{ sub: 42 }, { sub: ['ab'] }, { sub: null }, { sub: { toString: 'x' } }, { sub: true }, { sub: 'u\u0085x' }, { sub: 'u\u007fx' }, { sub: 'dr', clinic_id: 'c'.repeat(65) }, { sub: 'dr', clinic_id: 7 }]) {
      const res = await t.http.get('/v1/patients').set(...auth(await signed(claims)));
      expect(res.status, JSON.stringify(claims)).toBe(401);
    }
    expect((await t.http.get('/v1/patients').set(...auth(await signed({ sub: 'dr', clinic_id: 'c'.repeat(64) })))).status).toBe(200);
  });

  it('DEL, C1 controls and line separators are refused in single-line fields; C1 anywhere (mis-decoded text)', async () => {
    for (const [overrides, path] of [
      [{ givenName: 'Ma\u007fria' }, 'body.givenName'],
      [{ familyName: 'Lo\u0085pez' }, 'body.familyName'],
      [{ mrn: `MRN\u2028${uniq()}` }, 'body.mrn'],
      [{ familyName: 'MÃ\u0083¼ller' }, 'body.familyName'],
    ] as const) {
      const res = await t.http.post('/v1/patients').set(...auth(clinician)).send(patientBody(overrides));
      expect(res.status, JSON.stringify(overrides)).toBe(400);
      expect(paths(res.body)).toContain(path);
    }
  });

  it('an unknown member is refused even when its value is null', async () => {
    for (const body of [patientBody({ ssn: null }), patientBody({ identifiers: [{ system: 'urn:oid:1.2', value: `V-${uniq()}`, use: null }] })]) {
      const res = await t.http.post('/v1/patients').set(...auth(clinician)).send(body);
      expect(res.status).toBe(400);
      expect(res.body.errors.map((e: { message: string }) => e.message)).toContain('unknown field');
    }
  });

  it('search values are not trimmed: surrounding white space is a 400, not a silent match', async () => {
    const p = await newPatient();
    for (const url of [`/v1/patients?mrn=%20${p.mrn}`, `/v1/patients?mrn=${p.mrn}%20`, '/v1/patients?familyName=Lo%20']) {
      const res = await t.http.get(url).set(...auth(clinician));
      expect(res.status, url).toBe(400);
    }
  });

  it('an identifier system may not hold |, which searches split at', async () => {
    const res = await t.http.post('/v1/patients').set(...auth(clinician)).send(patientBody({ identifiers: [{ system: 'urn:a|b', value: 'c' }] }));
    expect(res.status).toBe(400);
    expect(paths(res.body)).toContain('body.identifiers.0.system');
  });

  it('a PATCH that changes nothing makes no new version (patient identifiers in another key order, adverse event, lot), and is still audited', async () => {
    const p = await newPatient({ identifiers: [{ system: 'urn:oid:5.5', value: `N-${uniq()}` }] });
    const ids = (await t.http.get(`/v1/patients/${p.id}`).set(...auth(clinician))).body.identifiers as { system: string; value: string }[];
    const same = await t.http
      .patch(`/v1/patients/${p.id}`)
      .set(...auth(clinician))
      .set('if-match', '"1"')
      .set('content-type', 'application/merge-patch+json')
      .send(JSON.stringify({ identifiers: ids.map((i) => ({ value: i.value, system: i.system })), givenName: p.givenName }));
    expect(same.status).toBe(200);
    expect(same.body.version).toBe(1);
    const audited = await t.pool.query(`select action, details from audit_events where resource_id = $1 order by id`, [p.id]);
    expect(audited.rows.map((r) => r.action)).toEqual(['create', 'read', 'update']);
    expect(audited.rows[2].details).toMatchObject({ changedFields: [] });

    const s = await clinicSetup(t);
    const proc = await t.http.post('/v1/procedures').set(...auth(s.clinician)).send(procedureBody(s.patientId, s.lot.id));
    const ae = await t.http.post('/v1/adverse-events').set(...auth(s.clinician)).send({ procedureId: proc.body.id, onsetAt: '2026-03-11T08:00:00Z', description: 'Swelling', severityGrade: 1, serious: false, relatedness: 'possible', outcome: 'recovering' });
    for (const body of [{ outcome: 'recovering' }, { seriousnessCriteria: null }, { onsetAt: '2026-03-11T09:00:00+01:00' }]) {
      const res = await t.http.patch(`/v1/adverse-events/${ae.body.id}`).set(...auth(s.clinician)).set('if-match', '"1"').set('content-type', 'application/merge-patch+json').send(JSON.stringify(body));
      expect(res.status, JSON.stringify(body)).toBe(200);
      expect(res.body.version, JSON.stringify(body)).toBe(1);
    }

    const donor = await createDonor(t.http, supplier);
    const lot = await createLot(t.http, supplier, [donor.id], { releaseTests: { sterility: 'pass', mycoplasma: 'pending', endotoxinEuPerMl: null } });
    for (const body of [{ releaseTests: {} }, { releaseTests: { sterility: 'pass' } }, { characterization: { modeSizeNm: null } }]) {
      const res = await t.http.patch(`/v1/lots/${lot.id}`).set(...auth(supplier)).set('if-match', '"1"').set('content-type', 'application/merge-patch+json').send(JSON.stringify(body));
      expect(res.status, JSON.stringify(body)).toBe(200);
      expect(res.body.version, JSON.stringify(body)).toBe(1);
    }
    const changed = await t.http.patch(`/v1/lots/${lot.id}`).set(...auth(supplier)).set('if-match', '"1"').set('content-type', 'application/merge-patch+json').send('{"releaseTests":{"mycoplasma":"pass"}}');
    expect(changed.body.version).toBe(2);
    const hist = await t.http.get(`/v1/lots/${lot.id}/history`).set(...auth(supplier));
    expect(hist.status).toBe(200);
    expect(hist.body.items.map((v: { version: number; resource: { releaseTests: { mycoplasma: string } } }) => [v.version, v.resource.releaseTests.mycoplasma])).toEqual([
      [1, 'pending'],
      [2, 'pass'],
    ]);
    expect((await t.http.get(`/v1/lots/${crypto.randomUUID()}/history`).set(...auth(supplier))).status).toBe(404);
  });
});

describe('answers given before a route runs', () => {
  it('Vary: Accept on 401 and 403 too, under /v1 and /fhir/R4', async () => {
    const noScope = await t.token({ scope: 'audit:read', clinic: 'clinic-a' });
    for (const res of [
      await t.http.get('/v1/patients'),
      await t.http.get('/v1/patients').set(...auth(noScope)),
      await t.http.get(`/fhir/R4/Patient/${crypto.randomUUID()}`),
      await t.http.get(`/fhir/R4/Patient/${crypto.randomUUID()}`).set(...auth(noScope)),
    ]) {
      expect([401, 403]).toContain(res.status);
      expect(res.headers.vary).toMatch(/accept/i);
    }
  });

  it('a request Node cannot parse under /fhir/R4 gets an OperationOutcome', async () => {
    const other = await t.another();
    await other.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = other.app.server.address() as import('node:net').AddressInfo;
    const { connect } = await import('node:net');
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.end('GET /fhir/R4/Patient HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n'));
      let text = '';
      socket.on('data', (d) => (text += d.toString('latin1')));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toMatch(/Content-Type: application\/fhir\+json/);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ resourceType: 'OperationOutcome' });
  });
});
