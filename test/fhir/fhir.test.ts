import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { clinicSetup, procedureBody } from '../support/fixtures.js';
import { validateR4 } from './validator.js';

let t: TestApp;
let s: Awaited<ReturnType<typeof clinicSetup>>;
let reader: string;
let procedureId: string;
const ehrIdentifier = { system: 'https://ehr.example-clinic.org/patient-id', value: '' };

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- FHIR resources are checked by the validator, not by types
type Bundle = { resourceType: string; type: string; total: number; link: { relation: string; url: string }[]; entry: { fullUrl: string; resource: Record<string, any>; search: { mode: string } }[] };

beforeAll(async () => {
  t = await createTestApp();
  s = await clinicSetup(t);
  reader = await t.token({ scope: 'patients:read clinical:read lots:read', clinic: 'clinic-a', sub: 'ehr-integration' });
  const patient = (await t.http.get(`/v1/patients/${s.patientId}`).set('authorization', `Bearer ${s.clinician}`)).body;
  ehrIdentifier.value = patient.identifiers[0].value;
  const p = await t.http
    .post('/v1/procedures')
    .set('authorization', `Bearer ${s.clinician}`)
    .send(procedureBody(s.patientId, s.lot.id, { performedAt: '2026-03-10T10:00:00Z', dose: { particles: 15_000_000_000, volumeMl: 0.06 }, vialsUsed: 2, notes: 'Tolerated well' }));
  procedureId = p.body.id;
  const ivPatient = await t.http
    .post('/v1/procedures')
    .set('authorization', `Bearer ${s.clinician}`)
    .send(procedureBody(s.patientId, s.lot.id, { route: 'intravenous', site: undefined, imagingGuidance: 'none', performedAt: '2026-03-12T10:00:00Z' }));
  expect(ivPatient.status).toBe(201);
  for (const [instrument, timepoint, score, assessedAt] of [
    ['nrs-pain', 'baseline', 7, '2026-03-01T10:00:00Z'],
    ['nrs-pain', 'week-6', 3, '2026-04-21T10:00:00Z'],
    ['koos-qol', 'week-6', 62.5, '2026-04-21T10:00:00Z'],
    ['womac', 'month-3', 30, '2026-06-08T10:00:00Z'],
  ] as const) {
    const o = await t.http.post('/v1/outcomes').set('authorization', `Bearer ${s.clinician}`).send({ procedureId, instrument, timepoint, score, assessedAt });
    expect(o.status).toBe(201);
  }
  for (const ae of [
    { severityGrade: 2, serious: false, seriousnessCriteria: [], relatedness: 'probable', outcome: 'recovering' },
    { severityGrade: 3, serious: true, seriousnessCriteria: ['hospitalization'], relatedness: 'not-related', outcome: 'resolved-with-sequelae' },
  ]) {
    const res = await t.http.post('/v1/adverse-events').set('authorization', `Bearer ${s.clinician}`).send({ procedureId, onsetAt: '2026-03-11T08:00:00Z', description: 'Knee effusion', ...ae });
    expect(res.status).toBe(201);
  }
});
afterAll(() => t.close());

const fhirGet = (path: string, token = reader) => t.http.get(`/fhir/R4${path}`).set('authorization', `Bearer ${token}`);

describe('FHIR R4 facade', () => {
  it('serves a CapabilityStatement without auth, listing exactly the supported interactions', async () => {
    const res = await t.http.get('/fhir/R4/metadata');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
    validateR4(res.body);
    const resources = Object.fromEntries(
      res.body.rest[0].resource.map((r: { type: string; interaction: { code: string }[]; operation?: { name: string }[] }) => [
        r.type,
        [...r.interaction.map((i) => i.code), ...(r.operation ?? []).map((o) => `$${o.name}`)].sort(),
      ]),
    );
    expect(resources).toEqual({
      Patient: ['$everything', '$export', 'history-instance', 'read', 'search-type', 'vread'],
      Procedure: ['history-instance', 'read', 'search-type', 'vread'],
      Observation: ['history-instance', 'read', 'search-type', 'vread'],
      AdverseEvent: ['history-instance', 'read', 'search-type', 'vread'],
      BiologicallyDerivedProduct: ['history-instance', 'read', 'search-type', 'vread'],
      // A lot's recipients (Bulk Data's Group export): derived, so read without versions.
      Group: ['$export', 'read'],
    });
  });

  it('reads a Patient that validates, with the MRN and EHR identifiers', async () => {
    const res = await fhirGet(`/Patient/${s.patientId}`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
    validateR4(res.body);
    expect(res.body).toMatchObject({ resourceType: 'Patient', id: s.patientId, gender: 'female', birthDate: '1961-04-17', meta: { versionId: '1' } });
    expect(res.body.identifier).toContainEqual(ehrIdentifier);
    expect(res.body.identifier[0].type.coding[0]).toMatchObject({ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' });
  });

  it('searches Patients by identifier (EHR and MRN) into a searchset Bundle with total', async () => {
    const res = await fhirGet(`/Patient?identifier=${encodeURIComponent(`${ehrIdentifier.system}|${ehrIdentifier.value}`)}`);
    expect(res.status).toBe(200);
    validateR4(res.body);
    const b = res.body as Bundle;
    expect(b).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 1 });
    expect(b.entry[0]!.resource.id).toBe(s.patientId);
    expect(b.entry[0]!.fullUrl).toMatch(new RegExp(`/fhir/R4/Patient/${s.patientId}$`));
    const mrnIdentifier = (await fhirGet(`/Patient/${s.patientId}`)).body.identifier[0];
    const byMrn = await fhirGet(`/Patient?identifier=${encodeURIComponent(`${mrnIdentifier.system}|${mrnIdentifier.value}`)}`);
    expect((byMrn.body as Bundle).entry.map((e) => e.resource.id)).toEqual([s.patientId]);
  });

  it('pages with _count and next links over the same cursor', async () => {
    for (let i = 0; i < 4; i++) {
      await t.http.post('/v1/patients').set('authorization', `Bearer ${s.clinician}`).send({ mrn: `FHIR-${i}-${Date.now()}`, givenName: 'Page', familyName: 'Fhirpager', birthDate: '1980-01-01', sex: 'male' });
    }
    const seen: string[] = [];
    let url: string | undefined = '/fhir/R4/Patient?family=fhirpager&_count=3';
    let pages = 0;
    while (url) {
      const res = await t.http.get(url).set('authorization', `Bearer ${reader}`);
      const b = res.body as Bundle;
      expect(b.total).toBe(4);
      seen.push(...b.entry.map((e) => e.resource.id as string));
      const next = b.link.find((l) => l.relation === 'next');
      url = next ? new URL(next.url).pathname + new URL(next.url).search : undefined;
      pages++;
    }
    expect(pages).toBe(2);
    expect(new Set(seen).size).toBe(4);
  });

  it('maps a Procedure with SNOMED route, site and laterality, ICD-10-CM reason, lot reference and a particle Quantity', async () => {
    const res = await fhirGet(`/Procedure/${procedureId}`);
    expect(res.status).toBe(200);
    validateR4(res.body);
    const p = res.body;
    expect(p).toMatchObject({ resourceType: 'Procedure', status: 'completed', subject: { reference: `Patient/${s.patientId}` }, performedDateTime: '2026-03-10T10:00:00.000Z' });
    expect(p.reasonCode[0].coding[0]).toEqual({ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'M17.11', display: 'Unilateral primary osteoarthritis, right knee' });
    expect(p.bodySite[0].coding[0]).toMatchObject({ system: 'http://snomed.info/sct', code: '49076000' });
    expect(p.bodySite[0].extension[0].valueCodeableConcept.coding[0]).toMatchObject({ system: 'http://snomed.info/sct', code: '24028007' });
    const ext = Object.fromEntries(p.extension.map((e: { url: string }) => [e.url.split(':').pop(), e]));
    expect(ext['procedure-route'].valueCodeableConcept.coding[0]).toMatchObject({ system: 'http://snomed.info/sct', code: '12130007' });
    expect(ext['procedure-product-lot'].valueReference).toEqual({ reference: `BiologicallyDerivedProduct/${s.lot.id}` });
    expect(ext['procedure-dose-particles'].valueQuantity).toEqual({ value: 15_000_000_000, unit: 'particles', system: 'http://unitsofmeasure.org', code: '{particles}' });
    expect(ext['procedure-vials-used'].valueInteger).toBe(2);
  });

  it('searches Procedures, Observations and AdverseEvents of a patient; each resource validates', async () => {
    const procs = (await fhirGet(`/Procedure?patient=Patient/${s.patientId}`)).body as Bundle;
    expect(procs.total).toBe(2);
    const obs = (await fhirGet(`/Observation?patient=${s.patientId}`)).body as Bundle;
    expect(obs.total).toBe(4);
    const aes = (await fhirGet(`/AdverseEvent?subject=Patient/${s.patientId}`)).body as Bundle;
    expect(aes.total).toBe(2);
    for (const b of [procs, obs, aes]) {
      validateR4(b);
      for (const e of b.entry) validateR4(e.resource);
    }
    const nrs = obs.entry.map((e) => e.resource).find((o) => o.code.coding[0].code === '72514-3')!;
    expect(nrs).toMatchObject({ status: 'final', partOf: [{ reference: `Procedure/${procedureId}` }] });
    expect(nrs.category[0].coding[0].code).toBe('survey');
    const koos = obs.entry.map((e) => e.resource).find((o) => o.code.coding.some((c: { code: string }) => c.code === 'koos-qol'))!;
    expect(koos.code.coding).toEqual([{ system: 'urn:exosome-records:fhir:CodeSystem:outcome-instrument', code: 'koos-qol', display: 'KOOS quality of life' }]);
    expect(koos.valueQuantity.value).toBe(62.5);
    const serious = aes.entry.map((e) => e.resource).find((a) => a.seriousness.coding[0].code === 'Serious')!;
    expect(serious.severity.coding[0].code).toBe('severe');
    expect(serious.outcome.coding[0].code).toBe('resolvedWithSequelae');
    expect(serious.suspectEntity[0]).toMatchObject({ instance: { reference: `Procedure/${procedureId}` } });
    expect(serious.suspectEntity[0].causality[0].assessment.coding[0].system).toBe('urn:exosome-records:fhir:CodeSystem:ae-relatedness');
    const mild = aes.entry.map((e) => e.resource).find((a) => a.seriousness.coding[0].code === 'Non-serious')!;
    expect(mild.suspectEntity[0].causality[0].assessment.coding[0]).toEqual({ system: 'http://terminology.hl7.org/CodeSystem/adverse-event-causality-assess', code: 'Probably-Likely' });
  });

  it('reads a lot as a BiologicallyDerivedProduct: vial count as quantity, DIN identifier, no donor identity', async () => {
    const res = await fhirGet(`/BiologicallyDerivedProduct/${s.lot.id}`);
    expect(res.status).toBe(200);
    validateR4(res.body);
    expect(res.body).toMatchObject({ resourceType: 'BiologicallyDerivedProduct', productCategory: 'biologicalAgent', status: 'available', quantity: 100 });
    expect(res.body.identifier).toContainEqual({ system: 'urn:exosome-records:fhir:identifier:isbt128-din', value: s.donor.din });
    expect(res.body.collection).toBeUndefined();
    expect(res.body.storage[0]).toMatchObject({ temperature: -80, scale: 'celsius' });
  });

  it('returns everything about a patient: the patient, procedures, observations, adverse events and lots used', async () => {
    const res = await fhirGet(`/Patient/${s.patientId}/$everything`);
    expect(res.status).toBe(200);
    validateR4(res.body);
    const b = res.body as Bundle;
    const count = (type: string) => b.entry.filter((e) => e.resource.resourceType === type).length;
    expect([count('Patient'), count('Procedure'), count('Observation'), count('AdverseEvent'), count('BiologicallyDerivedProduct')]).toEqual([1, 2, 4, 2, 1]);
    expect(b.entry.find((e) => e.resource.resourceType === 'BiologicallyDerivedProduct')!.search.mode).toBe('include');
    for (const e of b.entry) validateR4(e.resource);
  });

  it('answers errors as OperationOutcome: another clinic\'s patient 404, no token 401, missing scope 403, bad search 400', async () => {
    const other = await t.token({ scope: 'patients:read clinical:read lots:read', clinic: 'clinic-b' });
    const hidden = await fhirGet(`/Patient/${s.patientId}`, other);
    expect(hidden.status).toBe(404);
    expect(hidden.headers['content-type']).toMatch(/^application\/fhir\+json/);
    validateR4(hidden.body);
    expect(hidden.body).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] });
    expect((await fhirGet(`/Patient/${s.patientId}/$everything`, other)).status).toBe(404);
    expect(((await fhirGet(`/Procedure?patient=${s.patientId}`, other)).body as Bundle).total).toBe(0);
    expect(((await fhirGet(`/Observation?patient=${s.patientId}`, other)).body as Bundle).total).toBe(0);

    const anonymous = await t.http.get(`/fhir/R4/Patient/${s.patientId}`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.issue[0].code).toBe('login');
    const noScope = await fhirGet(`/Procedure/${procedureId}`, await t.token({ scope: 'patients:read', clinic: 'clinic-a' }));
    expect(noScope.status).toBe(403);
    expect(noScope.body.issue[0].code).toBe('forbidden');
    const bad = await fhirGet('/Procedure?patient=not-a-reference');
    expect(bad.status).toBe(400);
    validateR4(bad.body);
    expect(bad.body.issue[0]).toMatchObject({ code: 'invalid', expression: ['querystring.patient'] });
    const unknownType = await fhirGet('/Medication/123');
    expect(unknownType.status).toBe(404);
    expect(unknownType.body.resourceType).toBe('OperationOutcome');
  });

  it('uses a validator that does refuse malformed R4 (so the checks above can fail)', () => {
    expect(() => validateR4({ resourceType: 'Procedure', status: 'completed' })).toThrow(/subject/);
    expect(() => validateR4({ resourceType: 'Patient', birthDate: '17-04-1961' })).toThrow();
    expect(() => validateR4({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, valueQuantity: { value: '3' } })).toThrow();
  });

  it('audits FHIR reads like the rest', async () => {
    await fhirGet(`/Patient/${s.patientId}`);
    const { rows } = await t.pool.query("SELECT action FROM audit_events WHERE actor_sub = 'ehr-integration' AND resource_type = 'patient' AND resource_id = $1", [s.patientId]);
    expect(rows.length).toBeGreaterThan(0);
  });
});

describe('reads carry their version (conditional read)', () => {
  it('Patient, Procedure and BiologicallyDerivedProduct: ETag W/"<versionId>", Last-Modified, If-None-Match → 304', async () => {
    for (const path of [`/Patient/${s.patientId}`, `/Procedure/${procedureId}`, `/BiologicallyDerivedProduct/${s.lot.id}`]) {
      const first = await fhirGet(path);
      expect(first.status, path).toBe(200);
      expect(first.headers.etag, path).toBe(`W/"${first.body.meta.versionId}"`);
      expect(new Date(first.headers['last-modified']!).toISOString().slice(0, 19), path).toBe(new Date(first.body.meta.lastUpdated).toISOString().slice(0, 19));
      for (const tag of [first.headers.etag, `"${first.body.meta.versionId}"`, `W/"999", ${first.headers.etag}`, '*']) {
        const again = await fhirGet(path).set('if-none-match', tag!);
        expect(again.status, `${path} ${tag}`).toBe(304);
        expect(again.text ?? '', path).toBe('');
        expect(again.headers.etag).toBe(first.headers.etag);
      }
      expect((await fhirGet(path).set('if-none-match', 'W/"999"')).status, path).toBe(200);
    }
  });

  it('a new version is a new ETag: the old one no longer gives 304', async () => {
    const before = await fhirGet(`/Patient/${s.patientId}`);
    const version = Number(before.body.meta.versionId);
    const patch = await t.http
      .patch(`/v1/patients/${s.patientId}`)
      .set('authorization', `Bearer ${s.clinician}`)
      .set('if-match', `"${version}"`)
      .set('content-type', 'application/merge-patch+json')
      .send(JSON.stringify({ givenName: `Renamed${version}` }));
    expect(patch.status).toBe(200);
    const after = await fhirGet(`/Patient/${s.patientId}`).set('if-none-match', before.headers.etag!);
    expect(after.status).toBe(200);
    expect(after.headers.etag).toBe(`W/"${version + 1}"`);
  });
});

describe('the CapabilityStatement says how reads are versioned', () => {
  it('each resource with read: versioning versioned, conditionalRead not-match, and it still validates', async () => {
    const cap = (await t.http.get('/fhir/R4/metadata')).body;
    // Group (a lot's recipients) is derived from procedures: it has no versions of its own.
    const readable = cap.rest[0].resource.filter((r: { type: string; interaction: { code: string }[] }) => r.type !== 'Group' && r.interaction.some((i) => i.code === 'read'));
    expect(readable.map((r: { type: string }) => r.type).sort()).toEqual(['AdverseEvent', 'BiologicallyDerivedProduct', 'Observation', 'Patient', 'Procedure']);
    for (const r of readable) expect(r).toMatchObject({ versioning: 'versioned', conditionalRead: 'not-match' });
    expect(() => validateR4(cap)).not.toThrow();
  });
});

describe('count-only searches (_count=0, _summary=count)', () => {
  it('answer a searchset Bundle with the total and no entry, on every search', async () => {
    for (const path of [
      `/Procedure?patient=${s.patientId}`,
      `/Observation?patient=${s.patientId}`,
      `/AdverseEvent?subject=${s.patientId}`,
      `/Patient?identifier=${encodeURIComponent(`${ehrIdentifier.system}|${ehrIdentifier.value}`)}`,
    ]) {
      const full = (await fhirGet(path)).body as Bundle;
      expect(full.total, path).toBeGreaterThan(0);
      for (const only of ['_count=0', '_summary=count']) {
        const res = await fhirGet(`${path}&${only}`);
        expect(res.status, `${path} ${only}`).toBe(200);
        expect(res.body, `${path} ${only}`).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: full.total });
        expect(res.body.entry, `${path} ${only}`).toBeUndefined();
        expect(res.body.link.map((l: { relation: string }) => l.relation)).toEqual(['self']);
        validateR4(res.body);
      }
    }
  });

  it('refuses a page size over 200 and a summary it does not offer with a 400 OperationOutcome', async () => {
    for (const q of ['_count=201', '_count=-1', '_summary=text']) {
      const res = await fhirGet(`/Procedure?patient=${s.patientId}&${q}`);
      expect(res.status, q).toBe(400);
      expect(res.body.resourceType).toBe('OperationOutcome');
    }
  });
});

describe('token search: escaping and forms (R4 §3.1.1.5.7, §3.1.1.4.9)', () => {
  it('finds identifiers whose values hold | , $ and \\ by their escaped forms, and every token form', async () => {
    const tag = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6)}`;
    const system = `urn:oid:1.2.3.4.${tag.length}`;
    const values = [`AB|12-${tag}`, `C,D$E\\F-${tag}`];
    const ids: string[] = [];
    for (const value of values) {
      const res = await t.http.post('/v1/patients').set('authorization', `Bearer ${s.clinician}`).send({
        mrn: `MRN-${tag}-${ids.length}`,
        identifiers: [{ system, value }],
        givenName: 'Token',
        familyName: 'Search',
        birthDate: '1970-01-01',
        sex: 'other',
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      ids.push(res.body.id);
    }
    const search = async (token: string) => {
      const res = await fhirGet(`/Patient?identifier=${encodeURIComponent(token)}`);
      expect(res.status, token).toBe(200);
      return (res.body as Bundle).entry?.map((e) => e.resource.id as string).sort() ?? [];
    };
    const esc = (v: string) => v.replace(/[\\|,$]/g, (c) => `\\${c}`);
    expect(await search(`${system}|${esc(values[0]!)}`)).toEqual([ids[0]]);
    expect(await search(`${system}|${esc(values[1]!)}`)).toEqual([ids[1]]);
    expect(await search(esc(values[1]!))).toEqual([ids[1]]); // any system
    expect(await search(`${system}|`)).toEqual([...ids].sort()); // any code in the system
    expect(await search(`|${esc(values[0]!)}`)).toEqual([]); // no system: none here
    for (const bad of [`${system}|${values[0]}`, `${system}|bad\\q`]) {
      const res = await fhirGet(`/Patient?identifier=${encodeURIComponent(bad)}`);
      expect(res.status, bad).toBe(400);
      expect(res.body.resourceType).toBe('OperationOutcome');
    }
  });
});
