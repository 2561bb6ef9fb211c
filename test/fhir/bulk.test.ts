import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { clinicSetup, consentBody, patientBody, procedureBody } from '../support/fixtures.js';
import { validateR4 } from './validator.js';

/**
 * FHIR Bulk Data 2.0 through HTTP: kick-off, status, manifest, files, cancel, Group/{lotId}; jobs run by the
 * app's worker, driven here with tick()/idle() (no polling), at most 2 at once.
 */
let t: TestApp;
const auth = (token: string) => ['authorization', `Bearer ${token}`] as const;
const ASYNC = ['prefer', 'respond-async'] as const;

let lotId: string;
let otherLotId: string;
let supplier: string;
/** Clinic A: recipients (a1 twice), a2 whose only procedure was entered in error, a3 with another lot's procedure. */
const ids = { a1: '', a2: '', a3: '', a4: '', b1: '' };
const procedureIds: { a1: string[]; a2: string[]; a3: string[]; b1: string[] } = { a1: [], a2: [], a3: [], b1: [] };
let tokenA: string; // clinic-a: everything it may read, reports too
let tokenB: string;
let auditor: string; // no clinic: every clinic

async function newPatient(clinician: string) {
  const p = await t.http.post('/v1/patients').set(...auth(clinician)).send(patientBody());
  expect(p.status).toBe(201);
  const c = await t.http.post(`/v1/patients/${p.body.id}/consents`).set(...auth(clinician)).send(consentBody({ signedAt: '2026-02-15T09:00:00Z' }));
  expect(c.status).toBe(201);
  return p.body.id as string;
}

async function procedure(clinician: string, patientId: string, lot: string) {
  const res = await t.http.post('/v1/procedures').set(...auth(clinician)).send(procedureBody(patientId, lot));
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id as string;
}

beforeAll(async () => {
  t = await createTestApp({ bulk: { maxConcurrentJobs: 2, leaseMs: 5000 } });
  const a = await clinicSetup(t, { clinic: 'clinic-a', vials: 20 });
  supplier = a.supplier;
  lotId = a.lot.id;
  const other = await clinicSetup(t, { clinic: 'clinic-a', vials: 5 });
  otherLotId = other.lot.id;
  ids.a4 = other.patientId; // clinic-a, no procedure
  const shipped = await t.http.post(`/v1/lots/${lotId}/shipments`).set(...auth(supplier)).send({ clinicId: 'clinic-b', vials: 10, shippedAt: '2026-03-02T08:00:00Z' });
  expect(shipped.status).toBe(201);
  const clinicianB = await t.token({ scope: 'patients:read patients:write clinical:read clinical:write lots:read', clinic: 'clinic-b', sub: 'dr-clinic-b' });
  ids.a1 = a.patientId;
  ids.a2 = await newPatient(a.clinician);
  ids.a3 = await newPatient(a.clinician);
  ids.b1 = await newPatient(clinicianB);
  procedureIds.a1.push(await procedure(a.clinician, ids.a1, lotId), await procedure(a.clinician, ids.a1, lotId));
  procedureIds.a2.push(await procedure(a.clinician, ids.a2, lotId));
  const eie = await t.http.post(`/v1/procedures/${procedureIds.a2[0]}/entered-in-error`).set(...auth(a.clinician)).send({ reason: 'Wrong patient' });
  expect(eie.status).toBe(200);
  procedureIds.a3.push(await procedure(a.clinician, ids.a3, otherLotId));
  procedureIds.b1.push(await procedure(clinicianB, ids.b1, lotId));
  const outcome = await t.http.post('/v1/outcomes').set(...auth(a.clinician)).send({ procedureId: procedureIds.a1[0], instrument: 'nrs-pain', score: 7, assessedAt: '2026-03-09T09:00:00Z', timepoint: 'baseline' });
  expect([201, 422]).toContain(outcome.status);
  const recall = await t.http.post(`/v1/lots/${lotId}/recall`).set(...auth(supplier)).send({ reason: 'Endotoxin excursion' });
  expect(recall.status).toBe(200);
  tokenA = await t.token({ scope: 'patients:read clinical:read lots:read reports:read', clinic: 'clinic-a', sub: 'exporter-a' });
  tokenB = await t.token({ scope: 'patients:read clinical:read lots:read reports:read', clinic: 'clinic-b', sub: 'exporter-a' });
  auditor = await t.token({ scope: 'patients:read clinical:read lots:read reports:read', clinic: null, sub: 'auditor' });
}, 60_000);
afterAll(async () => {
  await t.app.bulkWorker.idle();
  await t.close();
});

async function kickOff(path: string, token: string) {
  const res = await t.http.get(path).set(...auth(token)).set(...ASYNC).set('accept', 'application/fhir+json');
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  const location = res.headers['content-location'] as string;
  expect(location).toMatch(/^http:\/\/[^/]+\/fhir\/R4\/bulk-status\/[0-9a-f-]{36}$/);
  return new URL(location).pathname;
}

interface Manifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  output: { type: string; url: string; count: number }[];
  deleted: unknown[];
  error: { type: string; url: string }[];
}

/** Runs the queued jobs, then answers the manifest. */
async function complete(status: string, token: string): Promise<Manifest> {
  await t.app.bulkWorker.tick();
  await t.app.bulkWorker.idle();
  const res = await t.http.get(status).set(...auth(token));
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  return res.body as Manifest;
}

async function download(url: string, token: string) {
  const res = await t.http.get(new URL(url).pathname).set(...auth(token)).set('accept', 'application/fhir+ndjson').buffer(true).parse((r, cb) => {
    let text = '';
    r.setEncoding('utf8');
    r.on('data', (c: string) => (text += c));
    r.on('end', () => cb(null, text));
  });
  return res;
}

/** Every resource of the manifest's outputs, by type. */
type Resource = { id: string; resourceType: string } & Record<string, unknown>;
async function resources(m: Manifest, token: string): Promise<Resource[]> {
  const out: Resource[] = [];
  for (const o of m.output) {
    const res = await download(o.url, token);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/fhir\+ndjson/);
    const lines = (res.body as string).split('\n');
    expect(lines.at(-1)).toBe('');
    const parsed = lines.slice(0, -1).map((l) => JSON.parse(l) as Resource);
    expect(parsed).toHaveLength(o.count);
    for (const r of parsed) expect(r.resourceType).toBe(o.type);
    out.push(...parsed);
  }
  return out;
}
const byType = (rs: { resourceType: string; id: string }[], type: string) => rs.filter((r) => r.resourceType === type).map((r) => r.id).sort();

describe('Bulk Data kick-off', () => {
  it('refuses a kick-off without Prefer: respond-async, an unknown _type, another _outputFormat, a _since that is not an instant, an unknown lot', async () => {
    const bad = async (path: string, withPrefer = true, token = tokenA) => {
      const req = t.http.get(path).set(...auth(token));
      const res = withPrefer ? await req.set(...ASYNC) : await req;
      expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
      expect(res.body.resourceType).toBe('OperationOutcome');
      validateR4(res.body);
      return res.status;
    };
    expect(await bad('/fhir/R4/$export', false)).toBe(400);
    expect(await bad('/fhir/R4/$export?_type=Patient,Medication')).toBe(400);
    expect(await bad('/fhir/R4/$export?_outputFormat=application/fhir%2Bjson')).toBe(400);
    expect(await bad('/fhir/R4/$export?_since=2026-01-01')).toBe(400);
    expect(await bad('/fhir/R4/$export?_since=yesterday')).toBe(400);
    expect(await bad(`/fhir/R4/Group/${'0193a5b2-7c1e-7d3a-9f10-2b4c6d8e0f12'}/$export`)).toBe(404);
    // A type the token may not read: 403.
    const lotsOnly = await t.token({ scope: 'lots:read', clinic: 'clinic-a', sub: 'exporter-a' });
    expect(await bad('/fhir/R4/$export?_type=Patient', true, lotsOnly)).toBe(403);
    // A Bulk Data parameter this server does not apply (it would narrow the export) is refused unless the client
    // says Prefer: handling=lenient; an empty _type or an empty member of it is refused.
    for (const q of ['_typeFilter=Patient%3Fgender%3Dfemale', '_elements=id', 'patient=Patient/x', '_type=', '_type=Patient,,']) {
      expect(await bad(`/fhir/R4/$export?${q}`), q).toBe(400);
    }
    const strict = await t.http.get('/fhir/R4/$export?_typeFilter=Patient%3Fgender%3Dfemale').set(...auth(tokenA)).set('prefer', 'respond-async, handling=strict');
    expect(strict.status).toBe(400);
    const lenient = await t.http.get('/fhir/R4/$export?_type=Patient&_typeFilter=Patient%3Fgender%3Dfemale').set(...auth(tokenA)).set('prefer', 'respond-async, handling=lenient');
    expect(lenient.status).toBe(202);
    await t.http.delete(new URL(lenient.headers['content-location']!).pathname).set(...auth(tokenA));
    // The abbreviations of the NDJSON format are accepted.
    for (const f of ['ndjson', 'application/ndjson', 'application/fhir%2Bndjson']) {
      const res = await t.http.get(`/fhir/R4/$export?_type=Patient&_outputFormat=${f}`).set(...auth(tokenA)).set(...ASYNC);
      expect(res.status).toBe(202);
      await t.http.delete(new URL(res.headers['content-location']!).pathname).set(...auth(tokenA));
    }
  });

  it('lists Group, the export operations and the Bulk Data CapabilityStatement in the CapabilityStatement', async () => {
    const res = await t.http.get('/fhir/R4/metadata');
    const cs = res.body;
    expect(cs.instantiates).toContain('http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data');
    expect(cs.rest[0].operation).toEqual([{ name: 'export', definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export' }]);
    const group = cs.rest[0].resource.find((r: { type: string }) => r.type === 'Group');
    expect(group.operation[0].name).toBe('export');
    expect(group.interaction).toEqual([{ code: 'read' }]);
    const patient = cs.rest[0].resource.find((r: { type: string }) => r.type === 'Patient');
    expect(patient.operation.map((o: { name: string }) => o.name)).toContain('export');
    validateR4(cs);
  });
});

describe('Group/{lotId}', () => {
  it('is the recalled lot\'s recipients: exactly the patients with a standing procedure of it; a clinic sees its own', async () => {
    const all = await t.http.get(`/fhir/R4/Group/${lotId}`).set(...auth(auditor));
    expect(all.status).toBe(200);
    validateR4(all.body);
    expect(all.body).toMatchObject({ resourceType: 'Group', id: lotId, type: 'person', actual: true, quantity: 2 });
    expect(all.body.member.map((m: { entity: { reference: string } }) => m.entity.reference).sort()).toEqual([`Patient/${ids.a1}`, `Patient/${ids.b1}`].sort());
    const a = await t.http.get(`/fhir/R4/Group/${lotId}`).set(...auth(tokenA));
    expect(a.body.member).toEqual([{ entity: { reference: `Patient/${ids.a1}` } }]);
    expect(a.body.quantity).toBe(1);
    expect((await t.http.get(`/fhir/R4/Group/${'0193a5b2-7c1e-7d3a-9f10-2b4c6d8e0f12'}`).set(...auth(auditor))).status).toBe(404);
  });
});

describe('Bulk Data export', () => {
  it('a Group export of the recalled lot holds exactly its recipients and their records; status 202 with X-Progress, then the manifest; NDJSON validates', async () => {
    const kicked = Date.now();
    const status = await kickOff(`/fhir/R4/Group/${lotId}/$export?_type=Patient,Procedure,Observation,BiologicallyDerivedProduct`, auditor);
    const queued = await t.http.get(status).set(...auth(auditor));
    expect(queued.status).toBe(202);
    expect(queued.headers['x-progress']).toBeTruthy();
    expect(Number(queued.headers['retry-after'])).toBeGreaterThan(0);
    const m = await complete(status, auditor);
    expect(m.requiresAccessToken).toBe(true);
    expect(m.request).toMatch(new RegExp(`/fhir/R4/Group/${lotId}/\\$export\\?_type=`));
    // The snapshot's time: when the job read, after the kick-off (the database's clock is this machine's).
    expect(Date.parse(m.transactionTime)).toBeGreaterThanOrEqual(kicked - 1000);
    expect(Date.parse(m.transactionTime)).toBeLessThanOrEqual(Date.now());
    expect(m.error).toEqual([]);
    expect(m.deleted).toEqual([]);
    const rs = await resources(m, auditor);
    for (const r of rs) validateR4(r);
    expect(byType(rs, 'Patient')).toEqual([ids.a1, ids.b1].sort());
    expect(byType(rs, 'Procedure')).toEqual([...procedureIds.a1, ...procedureIds.b1].sort());
    expect(byType(rs, 'BiologicallyDerivedProduct')).toEqual([lotId]);
    // Each line is the resource the FHIR read answers.
    const clinicianA = await t.token({ scope: 'patients:read clinical:read', clinic: 'clinic-a', sub: 'reader' });
    const read = await t.http.get(`/fhir/R4/Procedure/${procedureIds.a1[0]}`).set(...auth(clinicianA));
    expect(rs.find((r) => r.id === procedureIds.a1[0])).toEqual(read.body);
    const patient = await t.http.get(`/fhir/R4/Patient/${ids.a1}`).set(...auth(clinicianA));
    expect(rs.find((r) => r.id === ids.a1)).toEqual(patient.body);
    // Audited as an export naming who and what.
    const audit = await t.pool.query("select actor_sub, details from audit_events where action = 'export' and resource_type = 'bulk-export' order by id desc limit 1");
    expect(audit.rows[0].actor_sub).toBe('auditor');
    expect(audit.rows[0].details).toMatchObject({ kind: 'group', lotId, types: ['Patient', 'Procedure', 'Observation', 'BiologicallyDerivedProduct'], clinicId: null });
  });

  it('a clinic\'s system export holds its own patients and records only', async () => {
    const status = await kickOff('/fhir/R4/$export', tokenA);
    const m = await complete(status, tokenA);
    const rs = await resources(m, tokenA);
    for (const r of rs) validateR4(r);
    expect(byType(rs, 'Patient')).toEqual([ids.a1, ids.a2, ids.a3, ids.a4].sort());
    expect(byType(rs, 'Patient')).not.toContain(ids.b1);
    expect(byType(rs, 'Procedure')).toEqual([...procedureIds.a1, ...procedureIds.a2, ...procedureIds.a3].sort());
    for (const r of rs.filter((x) => 'subject' in x)) expect((r.subject as { reference: string }).reference).not.toBe(`Patient/${ids.b1}`);
    // Every lot, for a token with lots:read (supplier records, not a clinic's).
    expect(byType(rs, 'BiologicallyDerivedProduct')).toEqual(expect.arrayContaining([lotId, otherLotId]));
  });

  it('a file stored as many chunks, or with lines longer than a chunk, is byte for byte the file stored in 1 MiB chunks; every chunk holds whole lines', async () => {
    const types = 'Patient,Procedure,Observation,BiologicallyDerivedProduct';
    const texts = async (m: Manifest) => Promise.all(m.output.map(async (o) => ({ type: o.type, count: o.count, text: (await download(o.url, tokenA)).body as string })));
    const whole = await texts(await complete(await kickOff(`/fhir/R4/$export?_type=${types}`, tokenA), tokenA));
    expect(whole.find((f) => f.type === 'Procedure')!.count).toBe(4);
    // Another instance stores chunks of at most 5,000 bytes (a Procedure line here is ~2 kB: two a chunk, two
    // chunks for the four), then 64 bytes (shorter than any line: each line is a chunk of its own).
    for (const chunkBytes of [5000, 64]) {
      const small = await t.another({ bulk: { maxConcurrentJobs: 2, leaseMs: 5000, chunkBytes } });
      const status = await kickOff(`/fhir/R4/$export?_type=${types}`, tokenA);
      expect(await small.app.bulkWorker.tick()).toBe(1);
      await small.app.bulkWorker.idle();
      const res = await t.http.get(status).set(...auth(tokenA));
      expect(res.status).toBe(200);
      const m = res.body as Manifest;
      expect(await texts(m)).toEqual(whole);
      const jobId = status.split('/').at(-1);
      const files = await t.pool.query<{ id: string; type: string; count: number; chunks: number }>(
        "select f.id, f.type, f.count, f.chunks from bulk_export_files f join bulk_export_jobs j on j.id = f.job_id and j.attempt = f.attempt where j.id = $1 and f.kind = 'output'",
        [jobId],
      );
      expect(files.rows.map((f) => f.type).sort()).toEqual(whole.map((f) => f.type).sort());
      for (const f of files.rows) {
        const chunks = await t.pool.query<{ data: Buffer }>('select data from bulk_export_chunks where file_id = $1 order by seq', [f.id]);
        expect(chunks.rows).toHaveLength(f.chunks);
        for (const { data } of chunks.rows) {
          expect(data.at(-1), `${f.type} chunk ends a line`).toBe(0x0a);
          const lines = data.toString('utf8').split('\n').length - 1;
          // At most chunkBytes, unless it is one line longer than that.
          expect(data.length <= chunkBytes || lines === 1, `${f.type} chunk of ${data.length} bytes, ${lines} lines`).toBe(true);
        }
        if (chunkBytes === 64) expect(f.chunks, f.type).toBe(f.count);
      }
      if (chunkBytes === 5000) expect(files.rows.find((f) => f.type === 'Procedure')!.chunks).toBe(2);
    }
  });

  it('_type and _since filter', async () => {
    const m = await complete(await kickOff('/fhir/R4/Patient/$export?_type=Procedure', tokenA), tokenA);
    expect(m.output.map((o) => o.type)).toEqual(['Procedure']);
    const late = await complete(await kickOff(`/fhir/R4/$export?_type=Patient,Procedure&_since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`, tokenA), tokenA);
    expect(late.output).toEqual([]);
    const early = await complete(await kickOff('/fhir/R4/$export?_type=Patient&_since=2000-01-01T00:00:00Z', tokenA), tokenA);
    expect(early.output).toEqual([expect.objectContaining({ type: 'Patient', count: 4 })]);
  });

  it('status and files only for the token that started the job: another subject or clinic gets 404', async () => {
    const status = await kickOff('/fhir/R4/$export?_type=Patient', tokenA);
    const other = await t.token({ scope: 'patients:read clinical:read', clinic: 'clinic-a', sub: 'someone-else' });
    expect((await t.http.get(status).set(...auth(other))).status).toBe(404);
    expect((await t.http.get(status).set(...auth(tokenB))).status).toBe(404);
    const m = await complete(status, tokenA);
    const url = m.output[0]!.url;
    expect((await download(url, tokenA)).status).toBe(200);
    expect((await download(url, other)).status).toBe(404);
    expect((await download(url, tokenB)).status).toBe(404);
    expect((await t.http.delete(status).set(...auth(other))).status).toBe(404);
  });

  it('DELETE cancels a job: 202, then its status and files are 404', async () => {
    const queued = await kickOff('/fhir/R4/$export?_type=Patient', tokenA);
    const del = await t.http.delete(queued).set(...auth(tokenA));
    expect(del.status).toBe(202);
    expect((await t.http.get(queued).set(...auth(tokenA))).status).toBe(404);
    await t.app.bulkWorker.tick();
    await t.app.bulkWorker.idle();
    expect((await t.http.get(queued).set(...auth(tokenA))).status).toBe(404);
    // A completed one too: its files go.
    const done = await kickOff('/fhir/R4/$export?_type=Patient', tokenA);
    const m = await complete(done, tokenA);
    expect((await t.http.delete(done).set(...auth(tokenA))).status).toBe(202);
    expect((await download(m.output[0]!.url, tokenA)).status).toBe(404);
  });

  it('more than BULK_MAX_CONCURRENT_JOBS kicked off: the extra waits, queued, then completes', async () => {
    const jobs = [];
    for (let i = 0; i < 3; i++) jobs.push(await kickOff('/fhir/R4/$export?_type=Patient,Procedure', tokenA));
    // The patients table locked, so the two jobs started stay running (their counts wait for the lock).
    const blocker = await t.pool.connect();
    await blocker.query('begin');
    await blocker.query('lock table patients in access exclusive mode');
    const started = await t.app.bulkWorker.tick();
    expect(started).toBe(2);
    // Another instance may not start the third while two hold live leases.
    const other = await t.another({ bulk: { maxConcurrentJobs: 2, leaseMs: 5000 } });
    expect(await other.app.bulkWorker.tick()).toBe(0);
    const third = await t.http.get(jobs[2]!).set(...auth(tokenA));
    expect(third.status).toBe(202);
    expect(third.headers['x-progress']).toBe('queued');
    await blocker.query('rollback');
    blocker.release();
    await t.app.bulkWorker.idle();
    expect(await other.app.bulkWorker.tick()).toBe(1);
    await other.app.bulkWorker.idle();
    for (const j of jobs) expect((await t.http.get(j).set(...auth(tokenA))).status).toBe(200);
  });
});

describe('one requester cannot fill the export queue', () => {
  it('at most 5 of its exports queued or running: the 6th is 429 until one is cancelled; another requester is not affected', async () => {
    const busy = await t.token({ scope: 'patients:read', clinic: 'clinic-a', sub: `busy-${Date.now()}` });
    const started: string[] = [];
    for (let i = 0; i < 5; i++) started.push(await kickOff('/fhir/R4/$export?_type=Patient', busy));
    const sixth = await t.http.get('/fhir/R4/$export?_type=Patient').set(...auth(busy)).set(...ASYNC);
    expect(sixth.status).toBe(429);
    expect(sixth.body.resourceType).toBe('OperationOutcome');
    const other = await t.token({ scope: 'patients:read', clinic: 'clinic-a', sub: `other-${Date.now()}` });
    const theirs = await kickOff('/fhir/R4/$export?_type=Patient', other);
    expect((await t.http.delete(started[0]!).set(...auth(busy))).status).toBe(202);
    const again = await kickOff('/fhir/R4/$export?_type=Patient', busy);
    for (const path of [...started.slice(1), again]) await t.http.delete(path).set(...auth(busy));
    await t.http.delete(theirs).set(...auth(other));
  });
});
