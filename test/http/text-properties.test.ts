import fc from 'fast-check';
import type { Response } from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { clinicSetup, consentBody, createDonor, lotBody, patientBody, procedureBody, uniq } from '../support/fixtures.js';

/**
 * Generated text at every text field of the creating routes (contract: "Input and output rules"): whatever
 * is sent, the answer is never a 5xx; a 2xx stores exactly the NFC form of what was sent (read back through
 * the API); a 400 names the field. Text that breaks no rule is accepted.
 */
let t: TestApp;
let s: Awaited<ReturnType<typeof clinicSetup>>;
let procedureId: string;
let donorId: string;

beforeAll(async () => {
  t = await createTestApp();
  s = await clinicSetup(t, { vials: 500, lot: { vialCount: 500 } });
  const proc = await t.http.post('/v1/procedures').set('authorization', `Bearer ${s.clinician}`).send(procedureBody(s.patientId, s.lot.id));
  expect(proc.status).toBe(201);
  procedureId = proc.body.id;
  donorId = (await createDonor(t.http, s.supplier)).id;
});
afterAll(() => t.close());

/** Pieces that break each rule, and text from every corner of Unicode that should pass. */
const piece = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 4 }) },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      '\u0000', '\u0001', '\u0007', '\u001b', '\u001f', '\t', '\n', '\r', ' ', '\u00a0', '\u2028', '\ufeff', // controls, white space
      '\ud800', '\udfff', '\ud83d', // lone surrogates
      '\u0301', '\u0308', '\u0327', 'e\u0301', 'A\u030a', 'Å', 'é', '\u2126', '\u1100\u1161', // combining marks, NFC changes
      '😀', '👩‍⚕️', '🇩🇪', '𝔘', // emoji, astral
      'مرحبا', 'שלום', '\u202e', '\u200f', '\u200b', // RTL, bidi controls, zero width
      'Zoë', 'Ngũgĩ', '한국어', 'Łódź', '=1+2', '"quoted"', '\\', 'a',
    ),
  },
);
const text = fc.array(piece, { minLength: 1, maxLength: 5 }).map((parts) => parts.join(''));

const C0 = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;
const LONE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
type Kind = { kind: 'line' | 'free' | 'any'; max: number };
/** Whether `v` breaks no input rule for a field of this kind (then it must be accepted). */
function clean(v: string, { kind, max }: Kind): boolean {
  const n = v.normalize('NFC');
  if (C0.test(v) || LONE.test(v) || n.length > max) return false;
  if (kind === 'line') return n.length >= 1 && !/[\t\n\r\u2028\u2029]/.test(n) && /^\S(?:[\s\S]*\S)?$/.test(n);
  if (kind === 'free') return /\S/.test(n);
  return true;
}

interface Target extends Kind {
  name: string;
  field: string;
  /** Natural keys may also answer 409 (the generated value was taken already). */
  naturalKey?: boolean;
  send(value: string): Promise<Response>;
  read(res: Response): Promise<unknown>;
}

const auth = (token: string) => ['authorization', `Bearer ${token}`] as const;
const get = async (path: string, token = s.clinician) => {
  const res = await t.http.get(path).set(...auth(token));
  expect(res.status, path).toBe(200);
  return res.body;
};

const targets: Target[] = [
  { name: 'patient mrn', field: 'mrn', kind: 'line', max: 64, naturalKey: true, send: (v) => t.http.post('/v1/patients').set(...auth(s.clinician)).send(patientBody({ mrn: v })), read: async (r) => (await get(`/v1/patients/${r.body.id}`)).mrn },
  { name: 'patient givenName', field: 'givenName', kind: 'line', max: 100, send: (v) => t.http.post('/v1/patients').set(...auth(s.clinician)).send(patientBody({ givenName: v })), read: async (r) => (await get(`/v1/patients/${r.body.id}`)).givenName },
  { name: 'patient familyName', field: 'familyName', kind: 'line', max: 100, send: (v) => t.http.post('/v1/patients').set(...auth(s.clinician)).send(patientBody({ familyName: v })), read: async (r) => (await get(`/v1/patients/${r.body.id}`)).familyName },
  {
    name: 'patient identifier value',
    field: 'identifiers.0.value',
    kind: 'line',
    max: 200,
    naturalKey: true,
    send: (v) => t.http.post('/v1/patients').set(...auth(s.clinician)).send(patientBody({ identifiers: [{ system: 'urn:oid:1.2.3', value: v }] })),
    read: async (r) => (await get(`/v1/patients/${r.body.id}`)).identifiers[0].value,
  },
  {
    name: 'consent documentVersion',
    field: 'documentVersion',
    kind: 'line',
    max: 100,
    send: (v) => t.http.post(`/v1/patients/${s.patientId}/consents`).set(...auth(s.clinician)).send(consentBody({ documentVersion: v })),
    read: async (r) => (await get(`/v1/patients/${s.patientId}/consents?limit=200`)).items.find((c: { id: string }) => c.id === r.body.id).documentVersion,
  },
  {
    name: 'consent withdrawal reason',
    field: 'reason',
    kind: 'free',
    max: 1000,
    send: async (v) => {
      const c = await t.http.post(`/v1/patients/${s.patientId}/consents`).set(...auth(s.clinician)).send(consentBody({ signedAt: '2026-01-01T09:00:00Z' }));
      return t.http.post(`/v1/patients/${s.patientId}/consents/${c.body.id}/withdraw`).set(...auth(s.clinician)).send({ reason: v, withdrawnAt: '2026-11-01T09:00:00Z' });
    },
    read: async (r) => (await get(`/v1/patients/${s.patientId}/consents?limit=200`)).items.find((c: { id: string }) => c.id === r.body.id).withdrawalReason,
  },
  { name: 'procedure performer', field: 'performer', kind: 'line', max: 200, send: (v) => t.http.post('/v1/procedures').set(...auth(s.clinician)).send(procedureBody(s.patientId, s.lot.id, { performer: v })), read: async (r) => (await get(`/v1/procedures/${r.body.id}`)).performer },
  { name: 'procedure notes', field: 'notes', kind: 'any', max: 4000, send: (v) => t.http.post('/v1/procedures').set(...auth(s.clinician)).send(procedureBody(s.patientId, s.lot.id, { notes: v })), read: async (r) => (await get(`/v1/procedures/${r.body.id}`)).notes },
  {
    name: 'procedure indication display',
    field: 'indication.display',
    kind: 'line',
    max: 300,
    send: (v) => t.http.post('/v1/procedures').set(...auth(s.clinician)).send(procedureBody(s.patientId, s.lot.id, { indication: { code: 'M17.11', display: v } })),
    read: async (r) => (await get(`/v1/procedures/${r.body.id}`)).indication.display,
  },
  {
    name: 'adverse event description',
    field: 'description',
    kind: 'free',
    max: 4000,
    send: (v) =>
      t.http.post('/v1/adverse-events').set(...auth(s.clinician)).send({ procedureId, onsetAt: '2026-03-11T08:00:00Z', description: v, severityGrade: 1, serious: false, relatedness: 'possible', outcome: 'recovering' }),
    read: async (r) => (await get(`/v1/adverse-events/${r.body.id}`)).description,
  },
  { name: 'lot productName', field: 'productName', kind: 'line', max: 200, send: (v) => t.http.post('/v1/lots').set(...auth(s.supplier)).send(lotBody([donorId], { productName: v })), read: async (r) => (await get(`/v1/lots/${r.body.id}`, s.supplier)).productName },
  { name: 'lot lotNumber', field: 'lotNumber', kind: 'line', max: 64, naturalKey: true, send: (v) => t.http.post('/v1/lots').set(...auth(s.supplier)).send(lotBody([donorId], { lotNumber: v })), read: async (r) => (await get(`/v1/lots/${r.body.id}`, s.supplier)).lotNumber },
  {
    name: 'lot positive marker',
    field: 'characterization.positiveMarkers.0',
    kind: 'line',
    max: 50,
    send: (v) => t.http.post('/v1/lots').set(...auth(s.supplier)).send(lotBody([donorId], { characterization: { ...lotBody([]).characterization, positiveMarkers: [v] } })),
    read: async (r) => (await get(`/v1/lots/${r.body.id}`, s.supplier)).characterization.positiveMarkers[0],
  },
  {
    name: 'screening test laboratory',
    field: 'laboratory',
    kind: 'line',
    max: 200,
    send: (v) => t.http.post(`/v1/donors/${donorId}/tests`).set(...auth(s.supplier)).send({ marker: 'hiv-1-nat', method: 'nat', result: 'non-reactive', testedOn: '2026-01-14', laboratory: v }),
    read: async (r) => (await get(`/v1/donors/${donorId}`, s.supplier)).tests?.find((x: { id: string }) => x.id === r.body.id)?.laboratory ?? r.body.laboratory,
  },
];

describe('generated text at every text field of the creating routes', () => {
  it.each(targets.map((x) => [x.name, x] as const))('%s: no 5xx; stored as its NFC form, or a 400 naming the field', async (_name, target) => {
    await fc.assert(
      fc.asyncProperty(text, async (value) => {
        const res = await target.send(value);
        expect(res.status, JSON.stringify(res.body)).toBeLessThan(500);
        if (res.status === 400) {
          expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(`body.${target.field}`);
          expect(clean(value, target), `refused although clean: ${JSON.stringify(value)} ${JSON.stringify(res.body.errors)}`).toBe(false);
          return;
        }
        if (res.status === 409 && target.naturalKey) return;
        expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
        expect(await target.read(res)).toBe(value.normalize('NFC'));
      }),
      { numRuns: 25 },
    );
  });

  it('the generator does reach both sides: some values are refused and some stored', () => {
    const sample = fc.sample(text, { numRuns: 300, seed: 42 });
    const kind: Kind = { kind: 'line', max: 100 };
    expect(sample.filter((v) => clean(v, kind)).length).toBeGreaterThan(30);
    expect(sample.filter((v) => !clean(v, kind)).length).toBeGreaterThan(30);
    expect(sample.some((v) => v.normalize('NFC') !== v && clean(v, kind))).toBe(true);
    expect(uniq()).toMatch(/^[0-9a-f]{8}$/);
  });
});
