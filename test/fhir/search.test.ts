import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { clinicSetup, createLot, eligibleDonor, uniq } from '../support/fixtures.js';
import { validateR4 } from './validator.js';
import { auth, esc, fhir, includeEntries, matchIds, nextOf, pathOf, qs, selfOf, sleep, sorted, writer, type Bundle } from './search-support.js';

/**
 * FHIR R4 search (issue #13; contract.md "FHIR R4: search"; R4 search §3.1.1) on every resource that has each
 * parameter: Patient, Procedure, Observation, AdverseEvent, BiologicallyDerivedProduct.
 */

const tag = uniq();
const EHR = 'https://ehr.example-clinic.org/patient-id';
const GENDER = 'http://hl7.org/fhir/administrative-gender';
const EVENT_STATUS = 'http://hl7.org/fhir/event-status';
const LOINC = 'http://loinc.org';
const INSTRUMENT = 'urn:exosome-records:fhir:CodeSystem:outcome-instrument';
const SERIOUSNESS = 'http://terminology.hl7.org/CodeSystem/adverse-event-seriousness';
const DIN = 'urn:exosome-records:fhir:identifier:isbt128-din';
const MRN = (clinic: string) => `urn:exosome-records:fhir:identifier:mrn:${clinic}`;
const LOT = (manufacturer: string) => `urn:exosome-records:fhir:identifier:lot-number:${encodeURIComponent(manufacturer)}`;

let t: TestApp;
let f: ReturnType<typeof fhir>;
let a: Awaited<ReturnType<typeof clinicSetup>>;
let b: Awaited<ReturnType<typeof clinicSetup>>;
let reader: string;
let readerB: string;

/** Searches answering 200, reduced to the match ids that belong to `group` (other tests' rows do not interfere). */
async function found(path: string, group: readonly string[], token = reader): Promise<string[]> {
  const ids = matchIds(await f.search(path, token));
  return sorted(ids.filter((id) => group.includes(id)));
}

// ---- data (all created in beforeAll) ----
const str = {} as Record<'mullerNfc' | 'mullerNfd' | 'mullins' | 'schmuller' | 'strasse' | 'strasse2' | 'oster' | 'elodie' | 'comma' | 'name' | 'special', string>;
const special = 'Back\\Slash|Pipe$Dollar';
const sysA = `https://ehr.example.org/${tag}/a`;
const sysB = `https://lab.example.org/${tag}/b`;
const odd = 'a|b,c$d\\e';
const tok = {} as Record<'x' | 'y' | 'xy' | 'odd' | 'x2', { id: string; mrn: string }>;
const K = { patient: '', completed: [] as string[], eie: '', nrs: '', koos: '', womac: '', serious: [] as string[], nonSerious: '' };
const lots = { m1: `Acme|Bio, Inc. $${tag}\\x`, m2: `Other Maker ${tag}`, lot1No: `L|1,2$3\\4-${tag}`, lot2No: `L2-${tag}`, lot1: '', lot2: '', lot3: '', din1: '', din2: '' };
const D = { patient: '', P: [] as string[], O: [] as string[], A: [] as string[], B: [] as string[], family: `Datefam${tag}`, lots: [] as string[], clockMaker: `Clock Maker ${tag}` };
const S = { patient: '', procs: [] as string[], obs: [] as string[], aes: [] as string[] };
const R = { r1: '', r2: '', r1Value: `r1|a,b$c\\d-${tag}`, r2Value: `R2-${tag}`, r1Mrn: '', procs1: [] as string[], procs2: [] as string[], obs1: '', obs2: '', ae1: '', ae2: '' };
const Bc = { procedure: '', observation: '', adverseEvent: '', ehr: { system: '', value: '' }, mrn: '' };

beforeAll(async () => {
  t = await createTestApp();
  f = fhir(t);
  a = await clinicSetup(t, { vials: 80 });
  b = await clinicSetup(t, { clinic: 'clinic-b' });
  reader = await t.token({ scope: 'patients:read clinical:read lots:read', clinic: 'clinic-a', sub: `fhir-search-${tag}` });
  readerB = await t.token({ scope: 'patients:read clinical:read lots:read', clinic: 'clinic-b', sub: `fhir-search-b-${tag}` });
  const w = writer(t, a.clinician);
  const wb = writer(t, b.clinician);

  // String search.
  const names: [keyof typeof str, string, string][] = [
    ['mullerNfc', 'Müller', 'Anna'],
    ['mullerNfd', 'Mu\u0308ller', 'Bert'],
    ['mullins', 'Mullins', 'Carl'],
    ['schmuller', 'Schmüller', 'Dora'],
    ['strasse', 'Straße', 'Emil'],
    ['strasse2', 'Strasse', 'Frida'],
    ['oster', 'Østergaard', 'Gunnar'],
    ['elodie', 'Zed', 'E\u0301lodie'],
    ['comma', 'Comma,Name', 'Hans'],
    ['name', 'Name', 'Ida'],
    ['special', special, 'Jon'],
  ];
  for (const [key, familyName, givenName] of names) str[key] = (await w.patient({ familyName, givenName })).id;

  // Token search: identifiers and gender.
  for (const [key, identifiers, sex] of [
    ['x', [{ system: sysA, value: 'X' }], 'male'],
    ['y', [{ system: sysA, value: 'Y' }], 'female'],
    ['xy', [{ system: sysA, value: 'X,Y' }], 'other'],
    ['odd', [{ system: sysA, value: odd }, { system: sysB, value: 'L-1' }], 'unknown'],
    ['x2', [{ system: sysB, value: 'X' }], 'male'],
  ] as const) {
    const p = await w.patient({ identifiers, sex, familyName: `Tokenfam${tag}` });
    tok[key] = { id: p.id, mrn: p.mrn };
  }

  // Procedure status, Observation code, AdverseEvent seriousness: patient K.
  K.patient = (await w.patient({ familyName: `Kay${tag}` }, { consent: true })).id;
  for (const at of ['2026-03-05T09:00:00Z', '2026-03-06T09:00:00Z']) K.completed.push(await w.procedure(K.patient, a.lot.id, at));
  K.eie = await w.procedure(K.patient, a.lot.id, '2026-03-07T09:00:00Z');
  const eie = await t.http.post(`/v1/procedures/${K.eie}/entered-in-error`).set(...auth(a.clinician)).set('if-match', '"1"').send({ reason: 'Wrong patient selected', vialsReturned: 1 });
  expect(eie.status, JSON.stringify(eie.body)).toBe(200);
  K.nrs = await w.outcome(K.completed[0]!, 'nrs-pain', '2026-03-20T10:00:00Z', 4);
  K.koos = await w.outcome(K.completed[0]!, 'koos-qol', '2026-03-20T10:00:00Z', 60);
  K.womac = await w.outcome(K.completed[0]!, 'womac', '2026-03-20T10:00:00Z', 30);
  K.serious.push(await w.adverseEvent(K.completed[0]!, '2026-03-06T08:00:00Z', true));
  K.serious.push(await w.adverseEvent(K.completed[1]!, '2026-03-07T08:00:00Z', true));
  K.nonSerious = await w.adverseEvent(K.completed[0]!, '2026-03-08T08:00:00Z', false);

  // BiologicallyDerivedProduct identifiers: two lots of one donor by a manufacturer with | , $ \ in its name,
  // and the second lot number again at another manufacturer with another donor.
  const d1 = await eligibleDonor(t.http, a.supplier);
  const d2 = await eligibleDonor(t.http, a.supplier);
  lots.din1 = d1.din;
  lots.din2 = d2.din;
  lots.lot1 = (await createLot(t.http, a.supplier, [d1.id], { manufacturer: lots.m1, lotNumber: lots.lot1No })).id;
  lots.lot2 = (await createLot(t.http, a.supplier, [d1.id], { manufacturer: lots.m1, lotNumber: lots.lot2No })).id;
  lots.lot3 = (await createLot(t.http, a.supplier, [d2.id], { manufacturer: lots.m2, lotNumber: lots.lot2No })).id;

  // Dates: patient D's procedures, observations and adverse events on day boundaries, patients by birth date,
  // lots made one after another (for _lastUpdated). Pauses keep each lastUpdated distinct.
  D.patient = (await w.patient({ familyName: `Dee${tag}` }, { consent: true })).id;
  for (const at of ['2026-03-10T00:00:00.000Z', '2026-03-10T23:59:59.999Z', '2026-03-11T00:00:00.000Z', '2026-03-10T10:00:30Z', '2026-04-05T12:00:00Z']) {
    D.P.push(await w.procedure(D.patient, a.lot.id, at));
    await sleep(3);
  }
  for (const at of ['2026-04-10T00:00:00.000Z', '2026-04-10T23:59:59.999Z', '2026-04-11T00:00:00.000Z', '2026-04-12T12:00:00Z']) {
    D.O.push(await w.outcome(D.P[0]!, 'nrs-pain', at));
    await sleep(3);
  }
  for (const at of ['2026-05-01T00:00:00.000Z', '2026-05-01T23:59:59.999Z', '2026-05-02T00:00:00.000Z']) {
    D.A.push(await w.adverseEvent(D.P[0]!, at));
    await sleep(3);
  }
  for (const birthDate of ['1961-04-16', '1961-04-17', '1961-04-18', '1961-05-01', '1962-01-01']) {
    D.B.push((await w.patient({ familyName: D.family, birthDate })).id);
    await sleep(3);
  }
  for (let i = 0; i < 3; i++) {
    D.lots.push((await createLot(t.http, a.supplier, [a.donor.id], { manufacturer: D.clockMaker })).id);
    await sleep(3);
  }

  // Sorting and paging: patient S, dates out of order with ties.
  S.patient = (await w.patient({ familyName: `Ess${tag}` }, { consent: true })).id;
  for (const at of ['2026-03-20T09:00:00Z', '2026-03-05T09:00:00Z', '2026-03-15T09:00:00Z', '2026-03-15T09:00:00Z', '2026-03-25T09:00:00Z', '2026-03-03T09:00:00Z', '2026-03-18T09:00:00Z', '2026-03-22T09:00:00Z']) {
    S.procs.push(await w.procedure(S.patient, a.lot.id, at));
    await sleep(2);
  }
  for (const at of ['2026-04-02T10:00:00Z', '2026-03-21T10:00:00Z', '2026-05-01T10:00:00Z', '2026-03-21T10:00:00Z', '2026-04-15T10:00:00Z']) S.obs.push(await w.outcome(S.procs[0]!, 'nrs-pain', at));
  for (const at of ['2026-03-28T10:00:00Z', '2026-03-21T10:00:00Z', '2026-04-03T10:00:00Z', '2026-03-21T10:00:00Z']) S.aes.push(await w.adverseEvent(S.procs[0]!, at));

  // References and chains: R1 has an EHR identifier with | , $ \ in it.
  const r1 = await w.patient({ familyName: `Arr${tag}`, identifiers: [{ system: EHR, value: R.r1Value }] }, { consent: true });
  const r2 = await w.patient({ familyName: `Arr${tag}`, identifiers: [{ system: EHR, value: R.r2Value }] }, { consent: true });
  R.r1 = r1.id;
  R.r1Mrn = r1.mrn;
  R.r2 = r2.id;
  for (const at of ['2026-03-12T09:00:00Z', '2026-03-13T09:00:00Z']) {
    R.procs1.push(await w.procedure(R.r1, a.lot.id, at));
    R.procs2.push(await w.procedure(R.r2, a.lot.id, at));
  }
  R.obs1 = await w.outcome(R.procs1[0]!, 'nrs-pain', '2026-03-20T10:00:00Z');
  R.obs2 = await w.outcome(R.procs2[0]!, 'nrs-pain', '2026-03-20T10:00:00Z');
  R.ae1 = await w.adverseEvent(R.procs1[0]!, '2026-03-14T10:00:00Z');
  R.ae2 = await w.adverseEvent(R.procs2[0]!, '2026-03-14T10:00:00Z');

  // Clinic B: one patient (also "Maria Lopez") with a procedure, an outcome and an adverse event.
  const bPatient = (await t.http.get(`/v1/patients/${b.patientId}`).set(...auth(b.clinician))).body;
  Bc.ehr = bPatient.identifiers[0];
  Bc.mrn = bPatient.mrn;
  Bc.procedure = await wb.procedure(b.patientId, b.lot.id, '2026-03-12T09:00:00Z');
  Bc.observation = await wb.outcome(Bc.procedure, 'nrs-pain', '2026-03-20T10:00:00Z');
  Bc.adverseEvent = await wb.adverseEvent(Bc.procedure, '2026-03-14T10:00:00Z', true);
}, 120_000);
afterAll(() => t?.close());

const allStr = () => Object.values(str);

describe('string search: family, given, name (R4 §3.1.1.4.8)', () => {
  it('matches a prefix ignoring case, accents and Unicode form: family=muller finds Müller sent composed and decomposed', async () => {
    for (const q of ['muller', 'MULLER', 'Müller', 'mu\u0308ller', 'mülle']) {
      expect(await found(`/Patient?${qs(['family', q])}`, allStr()), q).toEqual(sorted([str.mullerNfc, str.mullerNfd]));
    }
    for (const q of ['mul', 'MÜL', 'Mu\u0308l', 'müll']) {
      expect(await found(`/Patient?${qs(['family', q])}`, allStr()), q).toEqual(sorted([str.mullerNfc, str.mullerNfd, str.mullins]));
    }
  });

  it('folds ß to ss and Ø to o, in stored names and in the query', async () => {
    for (const q of ['strasse', 'Straße', 'STRASS', 'stras']) {
      expect(await found(`/Patient?${qs(['family', q])}`, allStr()), q).toEqual(sorted([str.strasse, str.strasse2]));
    }
    for (const q of ['oster', 'Øster', 'østergaard', 'OSTERGAARD']) {
      expect(await found(`/Patient?${qs(['family', q])}`, allStr()), q).toEqual([str.oster]);
    }
  });

  it('a prefix never matches in the middle of a name; :contains matches anywhere, still ignoring case and accents', async () => {
    expect(await found(`/Patient?family=ller`, allStr())).toEqual([]);
    expect(await found(`/Patient?family=gaard`, allStr())).toEqual([]);
    expect(await found(`/Patient?${qs(['given', 'lodie'])}`, allStr())).toEqual([]);
    for (const q of ['ULLE', 'üLLE', 'u\u0308lle']) {
      expect(await found(`/Patient?${qs(['family:contains', q])}`, allStr()), q).toEqual(sorted([str.mullerNfc, str.mullerNfd, str.schmuller]));
    }
    expect(await found(`/Patient?${qs(['family:contains', 'ERGAA'])}`, allStr())).toEqual([str.oster]);
    expect(await found(`/Patient?${qs(['given:contains', 'LODI'])}`, allStr())).toEqual([str.elodie]);
    expect(await found(`/Patient?${qs(['name:contains', 'lodi'])}`, allStr())).toEqual([str.elodie]);
  });

  it(':exact compares the whole name after NFC, case- and accent-sensitive', async () => {
    for (const q of ['Müller', 'Mu\u0308ller']) {
      expect(await found(`/Patient?${qs(['family:exact', q])}`, allStr()), q).toEqual(sorted([str.mullerNfc, str.mullerNfd]));
    }
    for (const q of ['müller', 'MÜLLER', 'Muller', 'Mülle', 'Müllers']) {
      expect(await found(`/Patient?${qs(['family:exact', q])}`, allStr()), q).toEqual([]);
    }
    expect(await found(`/Patient?${qs(['family:exact', 'Straße'])}`, allStr())).toEqual([str.strasse]);
    expect(await found(`/Patient?${qs(['given:exact', 'Élodie'])}`, allStr())).toEqual([str.elodie]);
    expect(await found(`/Patient?${qs(['given:exact', 'Elodie'])}`, allStr())).toEqual([]);
    expect(await found(`/Patient?${qs(['name:exact', 'Zed'])}`, allStr())).toEqual([str.elodie]);
  });

  it('given and name (family or given); a comma is OR, a repeated parameter is AND', async () => {
    for (const q of ['elo', 'ÉLO', 'e\u0301l']) expect(await found(`/Patient?${qs(['given', q])}`, allStr()), q).toEqual([str.elodie]);
    expect(await found(`/Patient?family=elo`, allStr())).toEqual([]);
    expect(await found(`/Patient?name=elo`, allStr())).toEqual([str.elodie]);
    expect(await found(`/Patient?name=zed`, allStr())).toEqual([str.elodie]);
    expect(await found(`/Patient?name=bert`, allStr())).toEqual([str.mullerNfd]);
    expect(await found(`/Patient?family=muller,oster`, allStr())).toEqual(sorted([str.mullerNfc, str.mullerNfd, str.oster]));
    expect(await found(`/Patient?family=muller&given=anna`, allStr())).toEqual([str.mullerNfc]);
    expect(await found(`/Patient?name=muller&name=bert`, allStr())).toEqual([str.mullerNfd]);
    expect(await found(`/Patient?family=muller&family=oster`, allStr())).toEqual([]);
  });

  it('escaped \\, \\| \\$ \\\\ are literal characters in string values, an unescaped comma separates values', async () => {
    expect(await found(`/Patient?${qs(['family', 'comma\\,name'])}`, allStr())).toEqual([str.comma]);
    expect(await found(`/Patient?${qs(['family', 'comma,name'])}`, allStr())).toEqual(sorted([str.comma, str.name]));
    expect(await found(`/Patient?${qs(['family:exact', 'Comma\\,Name'])}`, allStr())).toEqual([str.comma]);
    expect(await found(`/Patient?${qs(['family', esc(special.toLowerCase())])}`, allStr())).toEqual([str.special]);
    expect(await found(`/Patient?${qs(['family:exact', esc(special)])}`, allStr())).toEqual([str.special]);
    expect(await found(`/Patient?${qs(['family:contains', '\\|pipe\\$'])}`, allStr())).toEqual([str.special]);
    expect(await found(`/Patient?${qs(['name', 'back\\\\sl'])}`, allStr())).toEqual([str.special]);
  });

  it('finds a renamed patient under the new name only', async () => {
    const w = writer(t, a.clinician);
    const p = await w.patient({ familyName: `Oldname${tag}` });
    expect(await found(`/Patient?family=oldname${tag}`, [p.id])).toEqual([p.id]);
    const patch = await t.http.patch(`/v1/patients/${p.id}`).set(...auth(a.clinician)).set('if-match', '"1"').send({ familyName: `Névname${tag}` });
    expect(patch.status, JSON.stringify(patch.body)).toBe(200);
    expect(await found(`/Patient?family=oldname${tag}`, [p.id])).toEqual([]);
    expect(await found(`/Patient?family=nevname${tag}`, [p.id])).toEqual([p.id]);
    expect(await found(`/Patient?${qs(['family:exact', `Névname${tag}`])}`, [p.id])).toEqual([p.id]);
  });

  it('an unsupported modifier is a 400 OperationOutcome, whatever the handling preference', async () => {
    for (const headers of [{}, { prefer: 'handling=lenient' }, { prefer: 'handling=strict' }] as Record<string, string>[]) {
      await f.refused(`/Patient?${qs(['family:phonetic', 'muller'])}`, reader, 400, undefined, headers);
    }
    await f.refused(`/Patient?${qs(['given:text', 'anna'])}`, reader, 400);
    await f.refused(`/Patient?${qs(['birthdate:exact', '1961'])}`, reader, 400);
    await f.refused(`/Procedure?${qs(['date:contains', '2026'])}`, reader, 400);
  });
});

describe('token search: forms and escaping (R4 §3.1.1.4.9, §3.1.1.5.7)', () => {
  const group = () => Object.values(tok).map((p) => p.id);

  it('Patient identifier: system|value, |value, system| and value', async () => {
    const q = async (v: string) => found(`/Patient?${qs(['identifier', v])}`, group());
    expect(await q(`${sysA}|X`)).toEqual([tok.x.id]);
    expect(await q(`${sysB}|X`)).toEqual([tok.x2.id]);
    expect(await q('X')).toEqual(sorted([tok.x.id, tok.x2.id]));
    expect(await q(`${sysA}|`)).toEqual(sorted([tok.x.id, tok.y.id, tok.xy.id, tok.odd.id]));
    expect(await q('|X')).toEqual([]);
    expect(await q(`${sysA}|x`)).toEqual([]); // identifier values are case-sensitive
    expect(await q(`${MRN('clinic-a')}|${tok.y.mrn}`)).toEqual([tok.y.id]);
    expect(await q(tok.y.mrn)).toEqual([tok.y.id]);
    expect(await q(`${MRN('clinic-b')}|${tok.y.mrn}`)).toEqual([]);
  });

  it('Patient identifier: escaped \\| \\, \\$ \\\\ in values, comma OR, repeated AND', async () => {
    const q = async (...vs: string[]) => found(`/Patient?${vs.map((v) => qs(['identifier', v])).join('&')}`, group());
    expect(await q(`${sysA}|X\\,Y`)).toEqual([tok.xy.id]);
    expect(await q(`${sysA}|X,${sysA}|Y`)).toEqual(sorted([tok.x.id, tok.y.id]));
    expect(await q(`${sysA}|X,Y`)).toEqual(sorted([tok.x.id, tok.y.id]));
    expect(await q(`${sysA}|${esc(odd)}`)).toEqual([tok.odd.id]);
    expect(await q(esc(odd))).toEqual([tok.odd.id]);
    expect(await q(`${sysA}|a`)).toEqual([]); // a token is not a prefix
    expect(await q(`${sysA}|${esc(odd)}`, `${sysB}|L-1`)).toEqual([tok.odd.id]);
    expect(await q(`${sysA}|X`, `${sysB}|X`)).toEqual([]);
  });

  it('Patient gender: code, system|code, system|, a foreign system, OR, AND, escaped separators', async () => {
    const q = async (...vs: string[]) => found(`/Patient?${vs.map((v) => qs(['gender', v])).join('&')}&family=tokenfam${tag}`, group());
    expect(await q('male')).toEqual(sorted([tok.x.id, tok.x2.id]));
    expect(await q(`${GENDER}|female`)).toEqual([tok.y.id]);
    expect(await q(`${GENDER}|`)).toEqual(sorted(group()));
    expect(await q('http://example.org/sex|male')).toEqual([]);
    expect(await q('other,unknown')).toEqual(sorted([tok.xy.id, tok.odd.id]));
    expect(await q('male', 'female')).toEqual([]);
    expect(await q('male\\,female')).toEqual([]);
    expect(await q(`${GENDER}\\|male`)).toEqual([]);
  });

  it('Procedure status: completed | entered-in-error in every token form', async () => {
    const all = [...K.completed, K.eie];
    const q = async (...vs: string[]) => found(`/Procedure?patient=${K.patient}&${vs.map((v) => qs(['status', v])).join('&')}`, all);
    expect(await q('completed')).toEqual(sorted(K.completed));
    expect(await q('entered-in-error')).toEqual([K.eie]);
    expect(await q(`${EVENT_STATUS}|completed`)).toEqual(sorted(K.completed));
    expect(await q(`${EVENT_STATUS}|`)).toEqual(sorted(all));
    expect(await q('http://example.org/status|completed')).toEqual([]);
    expect(await q('completed,entered-in-error')).toEqual(sorted(all));
    expect(await q('completed', 'entered-in-error')).toEqual([]);
    expect(await q('completed\\,entered-in-error')).toEqual([]);
    expect(await q(`${EVENT_STATUS}\\|completed`)).toEqual([]);
  });

  it('Observation code: LOINC or the instrument code system, in every token form', async () => {
    const all = [K.nrs, K.koos, K.womac];
    const q = async (...vs: string[]) => found(`/Observation?patient=${K.patient}&${vs.map((v) => qs(['code', v])).join('&')}`, all);
    expect(await q(`${LOINC}|72514-3`)).toEqual([K.nrs]);
    expect(await q('72514-3')).toEqual([K.nrs]);
    expect(await q(`${INSTRUMENT}|nrs-pain`)).toEqual([K.nrs]);
    expect(await q(`${INSTRUMENT}|koos-qol`)).toEqual([K.koos]);
    expect(await q('koos-qol')).toEqual([K.koos]);
    expect(await q(`${LOINC}|`)).toEqual(sorted([K.nrs, K.womac]));
    expect(await q(`${INSTRUMENT}|`)).toEqual(sorted(all));
    expect(await q('|72514-3')).toEqual([]);
    expect(await q(`${LOINC}|koos-qol`)).toEqual([]);
    expect(await q('72514-3,koos-qol')).toEqual(sorted([K.nrs, K.koos]));
    expect(await q(`${LOINC}|`, `${INSTRUMENT}|nrs-pain`)).toEqual([K.nrs]);
    expect(await q(`${LOINC}|72514-3`, 'koos-qol')).toEqual([]);
    expect(await q('72514-3\\,koos-qol')).toEqual([]);
    expect(await q(`${LOINC}\\|72514-3`)).toEqual([]);
  });

  it('AdverseEvent seriousness: Serious | Non-serious in every token form', async () => {
    const all = [...K.serious, K.nonSerious];
    const q = async (...vs: string[]) => found(`/AdverseEvent?subject=${K.patient}&${vs.map((v) => qs(['seriousness', v])).join('&')}`, all);
    expect(await q('Serious')).toEqual(sorted(K.serious));
    expect(await q(`${SERIOUSNESS}|Non-serious`)).toEqual([K.nonSerious]);
    expect(await q(`${SERIOUSNESS}|`)).toEqual(sorted(all));
    expect(await q('|Serious')).toEqual([]);
    expect(await q('http://example.org/seriousness|Serious')).toEqual([]);
    expect(await q('Serious,Non-serious')).toEqual(sorted(all));
    expect(await q('Serious', 'Non-serious')).toEqual([]);
    expect(await q('Serious\\,Non-serious')).toEqual([]);
    expect(await q(`${SERIOUSNESS}\\|Serious`)).toEqual([]);
  });

  it('BiologicallyDerivedProduct identifier: lot number under its manufacturer\'s system, donor DIN, escaping, OR and AND', async () => {
    const all = [lots.lot1, lots.lot2, lots.lot3];
    const q = async (...vs: string[]) => found(`/BiologicallyDerivedProduct?${vs.map((v) => qs(['identifier', v])).join('&')}`, all);
    expect(await q(`${LOT(lots.m1)}|${esc(lots.lot1No)}`)).toEqual([lots.lot1]);
    expect(await q(esc(lots.lot1No))).toEqual([lots.lot1]);
    expect(await q(`${LOT(lots.m1)}|${lots.lot2No}`)).toEqual([lots.lot2]);
    expect(await q(`${LOT(lots.m2)}|${lots.lot2No}`)).toEqual([lots.lot3]);
    expect(await q(lots.lot2No)).toEqual(sorted([lots.lot2, lots.lot3]));
    expect(await q(`${LOT(lots.m1)}|`)).toEqual(sorted([lots.lot1, lots.lot2]));
    expect(await q(`|${lots.lot2No}`)).toEqual([]);
    expect(await q(`${LOT(lots.m1)}|L\\|1`)).toEqual([]); // not a prefix
    expect(await q(`${DIN}|${lots.din1}`)).toEqual(sorted([lots.lot1, lots.lot2]));
    expect(await q(lots.din2)).toEqual([lots.lot3]);
    expect(await q(`${DIN}|`)).toEqual(sorted(all));
    expect(await q(`${LOT(lots.m1)}|${lots.lot2No},${DIN}|${lots.din2}`)).toEqual(sorted([lots.lot2, lots.lot3]));
    expect(await q(`${DIN}|${lots.din1}`, lots.lot2No)).toEqual([lots.lot2]);
    expect(await q(`${DIN}|${lots.din1}`, `${DIN}|${lots.din2}`)).toEqual([]);
    expect(await found(`/BiologicallyDerivedProduct?_id=${lots.lot1},${lots.lot3}`, all)).toEqual(sorted([lots.lot1, lots.lot3]));
  });
});

describe('date search: prefixes and precision (R4 §3.1.1.4.3, §3.1.1.5.6)', () => {
  const P = (...i: number[]) => sorted(i.map((n) => D.P[n - 1]!));
  const O = (...i: number[]) => sorted(i.map((n) => D.O[n - 1]!));
  const A = (...i: number[]) => sorted(i.map((n) => D.A[n - 1]!));
  const B = (...i: number[]) => sorted(i.map((n) => D.B[n - 1]!));
  const dates = (...vs: string[]) => vs.map((v) => qs(['date', v])).join('&');

  it('Procedure date (performed instant): every prefix, and the day as the whole UTC day', async () => {
    // P1 03-10T00:00:00.000Z · P2 03-10T23:59:59.999Z · P3 03-11T00:00:00.000Z (the end of the 10th: not on it) · P4 03-10T10:00:30Z · P5 04-05T12:00Z
    const cases: [string[], string[]][] = [
      [['2026-03-10'], P(1, 2, 4)],
      [['eq2026-03-10'], P(1, 2, 4)],
      [['eq2026-03-11'], P(3)],
      [['ne2026-03-10'], P(3, 5)],
      [['lt2026-03-10'], []],
      [['le2026-03-10'], P(1, 2, 4)],
      [['gt2026-03-10'], P(3, 5)],
      [['ge2026-03-10'], P(1, 2, 3, 4, 5)],
      [['ge2026-03-11'], P(3, 5)],
      [['sa2026-03-10'], P(3, 5)],
      [['sa2026-03-11'], P(5)],
      [['eb2026-03-11'], P(1, 2, 4)],
      [['eb2026-03-10'], []],
      [['2026-03'], P(1, 2, 3, 4)],
      [['ne2026-03'], P(5)],
      [['lt2026-04'], P(1, 2, 3, 4)],
      [['ge2026-04'], P(5)],
      [['2026'], P(1, 2, 3, 4, 5)],
      [['ge2026-03-10', 'lt2026-03-11'], P(1, 2, 4)],
      [['2026-03-11,2026-04'], P(3, 5)],
    ];
    for (const [vs, expected] of cases) expect(await found(`/Procedure?patient=${D.patient}&${dates(...vs)}`, D.P), vs.join('&')).toEqual(expected);
    expect(await found(`/Procedure?subject=Patient/${D.patient}&${dates('2026-03-10')}`, D.P)).toEqual(P(1, 2, 4));
  });

  it('Procedure date to the minute and the second, with an offset, and at the last millisecond of a day', async () => {
    const cases: [string, string[]][] = [
      ['2026-03-10T10:00Z', P(4)],
      ['2026-03-10T11:00+01:00', P(4)],
      ['2026-03-10T10:01Z', []],
      ['2026-03-10T10:00:30Z', P(4)],
      ['2026-03-10T10:00:29Z', []],
      ['lt2026-03-10T10:00:30Z', P(1)],
      ['le2026-03-10T10:00:30Z', P(1, 4)],
      ['gt2026-03-10T10:00:30Z', P(2, 3, 5)],
      ['ge2026-03-10T10:00:30Z', P(2, 3, 4, 5)],
      ['2026-03-10T23:59:59Z', P(2)],
      ['2026-03-10T23:59:59.999Z', P(2)],
      ['2026-03-10T23:59Z', P(2)],
      ['eq2026-03-11T00:00:00Z', P(3)],
      ['lt2026-03-11T00:00:00Z', P(1, 2, 4)],
      ['ge2026-03-11T00:00:00Z', P(3, 5)],
      ['2026-03-11T00:00:00+01:00', []], // 2026-03-10T23:00:00Z: nothing of D's in that second
      ['2026-03-11T00:59:59.999+01:00', P(2)], // 2026-03-10T23:59:59.999Z
    ];
    for (const [v, expected] of cases) expect(await found(`/Procedure?patient=${D.patient}&${dates(v)}`, D.P), v).toEqual(expected);
  });

  it('Observation date (effective instant): day boundaries, le/ge inclusive, ne, sa/eb', async () => {
    // O1 04-10T00:00Z · O2 04-10T23:59:59.999Z · O3 04-11T00:00Z · O4 04-12T12:00Z
    const cases: [string[], string[]][] = [
      [['2026-04-10'], O(1, 2)],
      [['eq2026-04-11'], O(3)],
      [['ne2026-04-10'], O(3, 4)],
      [['lt2026-04-10'], []],
      [['le2026-04-10'], O(1, 2)],
      [['gt2026-04-10'], O(3, 4)],
      [['ge2026-04-11'], O(3, 4)],
      [['sa2026-04-10'], O(3, 4)],
      [['eb2026-04-11'], O(1, 2)],
      [['2026-04-10T23:59Z'], O(2)],
      [['2026-04'], O(1, 2, 3, 4)],
      [['ge2026-04-10', 'lt2026-04-12'], O(1, 2, 3)],
    ];
    for (const [vs, expected] of cases) expect(await found(`/Observation?patient=${D.patient}&${dates(...vs)}`, D.O), vs.join('&')).toEqual(expected);
  });

  it('AdverseEvent date (onset): day boundaries, le/ge inclusive, ne, sa/eb', async () => {
    // A1 05-01T00:00Z · A2 05-01T23:59:59.999Z · A3 05-02T00:00Z
    const cases: [string[], string[]][] = [
      [['2026-05-01'], A(1, 2)],
      [['eq2026-05-02'], A(3)],
      [['ne2026-05-01'], A(3)],
      [['lt2026-05-01'], []],
      [['le2026-05-01'], A(1, 2)],
      [['gt2026-05-01'], A(3)],
      [['ge2026-05-02'], A(3)],
      [['sa2026-05-01'], A(3)],
      [['eb2026-05-02'], A(1, 2)],
      [['2026-05-01T00:00:00Z'], A(1)],
      [['2026-05-01,2026-05-02'], A(1, 2, 3)],
    ];
    for (const [vs, expected] of cases) expect(await found(`/AdverseEvent?subject=${D.patient}&${dates(...vs)}`, D.A), vs.join('&')).toEqual(expected);
  });

  it('Patient birthdate (a date): every prefix at day, month and year precision', async () => {
    // B1 1961-04-16 · B2 1961-04-17 · B3 1961-04-18 · B4 1961-05-01 · B5 1962-01-01
    const cases: [string[], string[]][] = [
      [['1961-04-17'], B(2)],
      [['eq1961-04-17'], B(2)],
      [['ne1961-04-17'], B(1, 3, 4, 5)],
      [['lt1961-04-17'], B(1)],
      [['le1961-04-17'], B(1, 2)],
      [['gt1961-04-17'], B(3, 4, 5)],
      [['ge1961-04-17'], B(2, 3, 4, 5)],
      [['sa1961-04-17'], B(3, 4, 5)],
      [['eb1961-04-17'], B(1)],
      [['1961-04'], B(1, 2, 3)],
      [['1961'], B(1, 2, 3, 4)],
      [['ge1961-05'], B(4, 5)],
      [['lt1962'], B(1, 2, 3, 4)],
      [['sa1961'], B(5)],
      [['eb1961-05'], B(1, 2, 3)],
      [['1961-04-16,1962'], B(1, 5)],
      [['ge1961-04-17', 'le1961-05-01'], B(2, 3, 4)],
    ];
    for (const [vs, expected] of cases) {
      expect(await found(`/Patient?family=${D.family}&${vs.map((v) => qs(['birthdate', v])).join('&')}`, D.B), vs.join('&')).toEqual(expected);
    }
    for (const v of ['2024-02-29', '1900-01-01', '9999-12-31']) expect((await f.get(`/Patient?birthdate=${v}`, reader)).status, v).toBe(200);
  });

  it('impossible dates, years before 1900, malformed values and a time on birthdate are a 400 OperationOutcome naming the parameter', async () => {
    for (const v of ['2023-02-30', '2023-02-29', '2023-04-31', '2023-13-01', '1899-12-31', '1899', 'lt1899-06', '1961-04-17T10:00:00Z', '1961-04-17T10:00Z', '1961-4-17', 'xx1961', '10000-01-01']) {
      await f.refused(`/Patient?${qs(['birthdate', v])}`, reader, 400, ['querystring.birthdate']);
    }
    for (const [type, v] of [['Procedure', '2023-02-30'], ['Procedure', '2026-03-10T24:00:00Z'], ['Observation', '1899-01-01'], ['AdverseEvent', '2026-02-30T10:00:00Z'], ['AdverseEvent', 'ge1899']] as const) {
      await f.refused(`/${type}?${qs(['date', v])}`, reader, 400, ['querystring.date']);
    }
    for (const type of ['Patient', 'Procedure', 'Observation', 'AdverseEvent', 'BiologicallyDerivedProduct']) {
      await f.refused(`/${type}?_lastUpdated=2026-02-30`, reader, 400, ['querystring._lastUpdated']);
      await f.refused(`/${type}?_lastUpdated=lt1899-12-31`, reader, 400, ['querystring._lastUpdated']);
    }
  });

  it('_lastUpdated on every resource type: each prefix around one record\'s own meta.lastUpdated', async () => {
    for (const [type, base, ids] of [
      ['Patient', `family=${D.family}`, D.B],
      ['Procedure', `patient=${D.patient}`, D.P],
      ['Observation', `patient=${D.patient}`, D.O],
      ['AdverseEvent', `subject=${D.patient}`, D.A],
      ['BiologicallyDerivedProduct', qs(['identifier', `${LOT(D.clockMaker)}|`]), D.lots],
    ] as const) {
      const all = await f.search(`/${type}?${base}&_count=200`, reader);
      const lu = new Map((all.entry ?? []).map((e) => [e.resource.id as string, e.resource.meta.lastUpdated as string]));
      expect(sorted([...lu.keys()].filter((id) => ids.includes(id))), type).toEqual(sorted(ids));
      const ms = (id: string) => Date.parse(lu.get(id)!);
      expect(new Set(ids.map(ms)).size, `${type}: distinct lastUpdated`).toBe(ids.length);
      const byTime = [...ids].sort((x, y) => ms(x) - ms(y));
      const pivot = byTime[Math.floor(byTime.length / 2)]!;
      const at = lu.get(pivot)!;
      const pm = ms(pivot);
      const second = Math.floor(pm / 1000) * 1000;
      const cases: [string, string[]][] = [
        [`ge${at}`, ids.filter((id) => ms(id) >= pm)],
        [`gt${at}`, ids.filter((id) => ms(id) > pm)],
        [`le${at}`, ids.filter((id) => ms(id) <= pm)],
        [`lt${at}`, ids.filter((id) => ms(id) < pm)],
        [`eq${at}`, [pivot]],
        [at, [pivot]],
        [`ne${at}`, ids.filter((id) => id !== pivot)],
        [new Date(second).toISOString().replace('.000Z', 'Z'), ids.filter((id) => ms(id) >= second && ms(id) < second + 1000)],
        [at.slice(0, 10), ids.filter((id) => lu.get(id)!.slice(0, 10) === at.slice(0, 10))],
        ['lt2000-01-01', []],
        ['ge2000', ids],
      ];
      for (const [v, expected] of cases) expect(await found(`/${type}?${base}&${qs(['_lastUpdated', v])}`, ids), `${type} _lastUpdated=${v}`).toEqual(sorted(expected));
    }
  });
});

describe('result parameters: _sort, _count, _summary, _total (R4 §3.1.1.5)', () => {
  const dateOf: Record<string, string> = { Procedure: 'performedDateTime', Observation: 'effectiveDateTime', AdverseEvent: 'date' };

  it('_sort=date and -date order the matches; walking the next links returns each exactly once, in order, with the total on every page', async () => {
    for (const [type, base, ids] of [
      ['Procedure', `patient=${S.patient}`, S.procs],
      ['Observation', `patient=${S.patient}`, S.obs],
      ['AdverseEvent', `subject=${S.patient}`, S.aes],
    ] as const) {
      for (const sort of ['date', '-date']) {
        const pages = await f.walk(`/${type}?${base}&_sort=${sort}&_count=3`, reader);
        expect(pages.length, `${type} ${sort}`).toBe(Math.ceil(ids.length / 3));
        for (const p of pages) expect(p.total, `${type} ${sort}`).toBe(ids.length);
        const entries = pages.flatMap((p) => p.entry ?? []);
        const seen = entries.map((e) => e.resource.id as string);
        expect(seen.length, `${type} ${sort}: no duplicates`).toBe(new Set(seen).size);
        expect(sorted(seen), `${type} ${sort}: every match`).toEqual(sorted(ids));
        const times = entries.map((e) => Date.parse(e.resource[dateOf[type]!]));
        const ordered = [...times].sort((x, y) => (sort === 'date' ? x - y : y - x));
        expect(times, `${type} ${sort}`).toEqual(ordered);
      }
    }
  });

  it('_sort=_lastUpdated and -_lastUpdated order by when records were written, across pages', async () => {
    for (const [type, base, ids] of [
      ['Patient', `family=${D.family}`, D.B],
      ['Procedure', `patient=${S.patient}`, S.procs],
      ['BiologicallyDerivedProduct', qs(['identifier', `${LOT(D.clockMaker)}|`]), D.lots],
    ] as const) {
      for (const sort of ['_lastUpdated', '-_lastUpdated']) {
        const pages = await f.walk(`/${type}?${base}&_sort=${sort}&_count=2`, reader);
        const seen = pages.flatMap((p) => matchIds(p));
        expect(seen, `${type} ${sort}`).toEqual(sort === '_lastUpdated' ? ids : [...ids].reverse());
      }
    }
  });

  it('a filter and a sort survive paging: every page follows the same criteria', async () => {
    const pages = await f.walk(`/Procedure?patient=${S.patient}&date=ge2026-03-15&_sort=-date&_count=2`, reader);
    const entries = pages.flatMap((p) => p.entry ?? []);
    expect(entries.map((e) => e.resource.performedDateTime)).toEqual([
      '2026-03-25T09:00:00.000Z',
      '2026-03-22T09:00:00.000Z',
      '2026-03-20T09:00:00.000Z',
      '2026-03-18T09:00:00.000Z',
      '2026-03-15T09:00:00.000Z',
      '2026-03-15T09:00:00.000Z',
    ]);
    expect(new Set(entries.map((e) => e.resource.id)).size).toBe(6);
    for (const p of pages) expect(p.total).toBe(6);
  });

  it('_count 0 answers the total only; 1..200 pages; 201, negative or not a number is a 400', async () => {
    for (const path of [`/Patient?family=${D.family}`, `/BiologicallyDerivedProduct?${qs(['identifier', `${LOT(D.clockMaker)}|`])}`, `/AdverseEvent?subject=${S.patient}`]) {
      const full = await f.search(path, reader);
      const zero = await f.search(`${path}&_count=0`, reader);
      expect(zero.total, path).toBe(full.total);
      expect(zero.entry, path).toBeUndefined();
      expect(nextOf(zero), path).toBeUndefined();
    }
    const two = await f.search(`/Patient?family=${D.family}&_count=2`, reader);
    expect([two.total, two.entry?.length, Boolean(nextOf(two))]).toEqual([5, 2, true]);
    const max = await f.search(`/Patient?family=${D.family}&_count=200`, reader);
    expect([max.total, max.entry?.length, nextOf(max)]).toEqual([5, 5, undefined]);
    for (const v of ['201', '-1', 'abc', '1.5']) await f.refused(`/Patient?family=${D.family}&_count=${v}`, reader, 400);
  });

  it('_summary=count answers the total only, on every resource type', async () => {
    for (const [path, total] of [
      [`/Patient?family=${D.family}`, 5],
      [`/Procedure?patient=${S.patient}`, 8],
      [`/Observation?patient=${S.patient}`, 5],
      [`/AdverseEvent?subject=${S.patient}`, 4],
      [`/BiologicallyDerivedProduct?${qs(['identifier', `${LOT(D.clockMaker)}|`])}`, 3],
    ] as const) {
      const res = await f.search(`${path}&_summary=count`, reader);
      expect(res.total, path).toBe(total);
      expect(res.entry, path).toBeUndefined();
    }
  });

  it('_total=none leaves the total out (paging still works); _total=accurate gives it', async () => {
    const pages = await f.walk(`/Procedure?patient=${S.patient}&_total=none&_count=3`, reader);
    expect(pages.length).toBe(3);
    for (const p of pages) expect(p).not.toHaveProperty('total');
    expect(sorted(pages.flatMap(matchIds))).toEqual(sorted(S.procs));
    for (const path of [`/Observation?patient=${S.patient}`, `/Patient?family=${D.family}`]) {
      expect(await f.search(`${path}&_total=none`, reader), path).not.toHaveProperty('total');
    }
    const accurate = await f.search(`/Procedure?patient=${S.patient}&_total=accurate&_count=3`, reader);
    expect(accurate.total).toBe(8);
    expect(accurate.entry).toHaveLength(3);
  });
});

describe('unsupported parameters and the self link (R4 §3.1.1.5.9 / http.html#search)', () => {
  it('are ignored: same matches, and the self link shows exactly what was applied', async () => {
    const plain = await f.search(`/Procedure?patient=${S.patient}&_sort=date&_count=3`, reader);
    const noisy = await f.search(`/Procedure?patient=${S.patient}&foo=bar&code=xyz&performer=x&_sort=date&_count=3`, reader);
    expect(matchIds(noisy)).toEqual(matchIds(plain));
    expect(noisy.total).toBe(plain.total);
    const self = selfOf(noisy);
    expect(self.pathname).toBe('/fhir/R4/Procedure');
    expect(sorted([...new Set(self.searchParams.keys())])).toEqual(['_count', '_sort', 'patient']);
    expect(self.searchParams.get('patient')).toMatch(new RegExp(`${S.patient}$`));
    expect([self.searchParams.get('_count'), self.searchParams.get('_sort')]).toEqual(['3', 'date']);
    const again = await f.search(pathOf(self.toString()).replace(/^\/fhir\/R4/, ""), reader);
    expect(matchIds(again)).toEqual(matchIds(plain));

    const patients = await f.search(`/Patient?family=${D.family}&address=Main&foo=1`, reader);
    expect(sorted(matchIds(patients))).toEqual(sorted(D.B));
    expect(sorted([...new Set(selfOf(patients).searchParams.keys())])).toEqual(['family']);
    expect(selfOf(patients).searchParams.get('family')).toBe(D.family);

    const included = await f.search(`/Procedure?patient=${R.r1}&_include=Procedure:patient&foo=1`, reader);
    expect(selfOf(included).searchParams.getAll('_include')).toEqual(['Procedure:patient']);
    expect(selfOf(included).searchParams.has('foo')).toBe(false);
  });

  it('with Prefer: handling=strict an unsupported parameter is a 400 OperationOutcome; supported ones still answer', async () => {
    const strict = { prefer: 'handling=strict' };
    await f.refused(`/Procedure?patient=${S.patient}&foo=bar`, reader, 400, undefined, strict);
    await f.refused(`/Patient?family=${D.family}&address=Main`, reader, 400, undefined, strict);
    await f.refused(`/AdverseEvent?subject=${S.patient}&seriousness=Serious&severity=mild`, reader, 400, undefined, strict);
    const ok = await f.get(`/Procedure?patient=${S.patient}&_sort=date&_count=3`, reader).set(strict);
    expect(ok.status).toBe(200);
    validateR4(ok.body);
    expect(ok.body.total).toBe(8);
    const lenient = await f.get(`/Procedure?patient=${S.patient}&foo=bar`, reader).set('prefer', 'handling=lenient');
    expect(lenient.status).toBe(200);
    validateR4(lenient.body);
    expect(lenient.body.total).toBe(8);
  });
});

describe('references and chains (R4 §3.1.1.4.10, §3.1.1.4.13)', () => {
  it('patient and subject take the id or Patient/{id}; a comma is OR, a repeat is AND', async () => {
    const all = [...R.procs1, ...R.procs2];
    for (const param of ['patient', 'subject']) {
      for (const ref of [R.r1, `Patient/${R.r1}`]) expect(await found(`/Procedure?${param}=${ref}`, all), `${param}=${ref}`).toEqual(sorted(R.procs1));
      expect(await found(`/Procedure?${param}=${R.r1},Patient/${R.r2}`, all)).toEqual(sorted(all));
      expect(await found(`/Procedure?${param}=${R.r1}&${param}=${R.r2}`, all)).toEqual([]);
      for (const ref of [R.r2, `Patient/${R.r2}`]) expect(await found(`/Observation?${param}=${ref}`, [R.obs1, R.obs2]), `${param}=${ref}`).toEqual([R.obs2]);
      expect(await found(`/Observation?${param}=Patient/${R.r1},${R.r2}`, [R.obs1, R.obs2])).toEqual(sorted([R.obs1, R.obs2]));
    }
    for (const ref of [R.r1, `Patient/${R.r1}`]) expect(await found(`/AdverseEvent?subject=${ref}`, [R.ae1, R.ae2]), ref).toEqual([R.ae1]);
    expect(await found(`/AdverseEvent?subject=${R.r1},${R.r2}`, [R.ae1, R.ae2])).toEqual(sorted([R.ae1, R.ae2]));
  });

  it('an escaped comma in a reference is not a separator', async () => {
    const res = await f.get(`/Procedure?${qs(['patient', `${R.r1}\\,${R.r2}`])}`, reader);
    expect([200, 400]).toContain(res.status);
    if (res.status === 200) expect(res.body.total).toBe(0);
    else validateR4(res.body);
  });

  it('patient.identifier / subject.identifier find a patient\'s records by EHR identifier (escaped) and by MRN', async () => {
    const all = [...R.procs1, ...R.procs2];
    const r1Tokens = [`${EHR}|${esc(R.r1Value)}`, esc(R.r1Value), `${MRN('clinic-a')}|${R.r1Mrn}`];
    for (const chain of ['patient.identifier', 'subject.identifier']) {
      for (const v of r1Tokens) {
        expect(await found(`/Procedure?${qs([chain, v])}`, all), `Procedure ${chain}=${v}`).toEqual(sorted(R.procs1));
        expect(await found(`/Observation?${qs([chain, v])}`, [R.obs1, R.obs2]), `Observation ${chain}=${v}`).toEqual([R.obs1]);
      }
      expect(await found(`/Procedure?${qs([chain, `${EHR}|${esc(R.r1Value)},${EHR}|${R.r2Value}`])}`, all)).toEqual(sorted(all));
      expect(await found(`/Procedure?${qs([chain, `${EHR}|${R.r1Value.split('|')[0]}`])}`, all)).toEqual([]);
    }
    for (const v of r1Tokens) expect(await found(`/AdverseEvent?${qs(['subject.identifier', v])}`, [R.ae1, R.ae2]), v).toEqual([R.ae1]);
    expect(await found(`/AdverseEvent?${qs(['subject.identifier', `${EHR}|${R.r2Value}`])}`, [R.ae1, R.ae2])).toEqual([R.ae2]);
  });

  it('another clinic\'s patient yields no results, by id, by identifier or by MRN', async () => {
    const theirs = [Bc.procedure, Bc.observation, Bc.adverseEvent];
    const refs = [
      ['patient', b.patientId],
      ['patient', `Patient/${b.patientId}`],
      ['patient.identifier', `${Bc.ehr.system}|${Bc.ehr.value}`],
      ['patient.identifier', `${MRN('clinic-b')}|${Bc.mrn}`],
    ] as const;
    for (const [param, v] of refs) {
      for (const type of ['Procedure', 'Observation']) {
        const res = await f.search(`/${type}?${qs([param, v])}`, reader);
        expect([res.total, res.entry ?? []], `${type} ${param}=${v}`).toEqual([0, []]);
        // and clinic B itself finds its own record
        expect(await found(`/${type}?${qs([param, v])}`, theirs, readerB), `clinic-b ${type} ${param}=${v}`).toHaveLength(1);
      }
      const subject = param === 'patient' ? 'subject' : 'subject.identifier';
      const ae = await f.search(`/AdverseEvent?${qs([subject, v])}`, reader);
      expect([ae.total, ae.entry ?? []], `AdverseEvent ${subject}=${v}`).toEqual([0, []]);
      expect(await found(`/AdverseEvent?${qs([subject, v])}`, theirs, readerB)).toEqual([Bc.adverseEvent]);
    }
  });
});

describe('_include and _revinclude (R4 §3.1.1.5.4)', () => {
  it('_include=Procedure:patient adds each patient once as search.mode include; the total counts matches only', async () => {
    const res = await f.search(`/Procedure?patient=${R.r1},${R.r2}&_include=Procedure:patient`, reader);
    expect(res.total).toBe(4);
    expect(sorted(matchIds(res))).toEqual(sorted([...R.procs1, ...R.procs2]));
    const inc = includeEntries(res);
    expect(inc.map((e) => e.resource.resourceType)).toEqual(['Patient', 'Patient']);
    expect(sorted(inc.map((e) => e.resource.id))).toEqual(sorted([R.r1, R.r2]));
    expect(res.entry!.every((e) => e.search?.mode === 'match' || e.search?.mode === 'include')).toBe(true);
    expect(res.entry!.filter((e) => e.search?.mode === 'match').every((e) => e.resource.resourceType === 'Procedure')).toBe(true);
    for (const e of inc) expect(e.fullUrl).toMatch(new RegExp(`/fhir/R4/Patient/${e.resource.id}$`));
  });

  it('_include=Procedure:patient on each page of a paged search: the page\'s own subject', async () => {
    const pages = await f.walk(`/Procedure?patient=${R.r1},${R.r2}&_include=Procedure:patient&_count=1`, reader);
    expect(pages).toHaveLength(4);
    for (const p of pages) {
      expect(p.total).toBe(4);
      const [proc] = (p.entry ?? []).filter((e) => e.search?.mode === 'match');
      expect(matchIds(p)).toHaveLength(1);
      expect(includeEntries(p).map((e) => `Patient/${e.resource.id}`)).toEqual([proc!.resource.subject.reference]);
    }
  });

  it('_include=Observation:patient', async () => {
    const res = await f.search(`/Observation?patient=${R.r1},${R.r2}&_include=Observation:patient`, reader);
    expect(res.total).toBe(2);
    expect(sorted(matchIds(res))).toEqual(sorted([R.obs1, R.obs2]));
    expect(sorted(includeEntries(res).map((e) => `${e.resource.resourceType}/${e.resource.id}`))).toEqual(sorted([`Patient/${R.r1}`, `Patient/${R.r2}`]));
  });

  it('_revinclude=Procedure:patient on Patient adds the patients\' procedures as include entries', async () => {
    const res = await f.search(`/Patient?_id=${R.r1},${R.r2}&_revinclude=Procedure:patient`, reader);
    expect(res.total).toBe(2);
    expect(sorted(matchIds(res))).toEqual(sorted([R.r1, R.r2]));
    const inc = includeEntries(res);
    expect(inc.every((e) => e.resource.resourceType === 'Procedure')).toBe(true);
    expect(sorted(inc.map((e) => e.resource.id))).toEqual(sorted([...R.procs1, ...R.procs2]));
    const one = await f.search(`/Patient?family=Arr${tag}&given=maria&_revinclude=Procedure:patient&_count=1`, reader);
    expect(one.total).toBe(2);
    const [pat] = matchIds(one);
    expect(sorted(includeEntries(one).map((e) => e.resource.id))).toEqual(sorted(pat === R.r1 ? R.procs1 : R.procs2));
  });

  it('_include=Procedure:patient adds no Patient for a token without patients:read', async () => {
    const clinicalOnly = await t.token({ scope: 'clinical:read', clinic: 'clinic-a' });
    const inc = await f.get(`/Procedure?patient=${R.r1}&_include=Procedure:patient`, clinicalOnly);
    expect([200, 403]).toContain(inc.status);
    validateR4(inc.body);
    if (inc.status === 200) expect.soft((inc.body as Bundle).entry?.filter((e) => e.resource.resourceType === 'Patient').map((e) => e.resource.id) ?? [], '_include=Procedure:patient').toEqual([]);
    const obs = await f.get(`/Observation?patient=${R.r1}&_include=Observation:patient`, clinicalOnly);
    expect([200, 403]).toContain(obs.status);
    validateR4(obs.body);
    if (obs.status === 200) expect.soft((obs.body as Bundle).entry?.filter((e) => e.resource.resourceType === 'Patient').map((e) => e.resource.id) ?? [], '_include=Observation:patient').toEqual([]);
  });

  it('_revinclude=Procedure:patient adds no Procedure for a token without clinical:read', async () => {
    const patientsOnly = await t.token({ scope: 'patients:read', clinic: 'clinic-a' });
    const rev = await f.get(`/Patient?_id=${R.r1}&_revinclude=Procedure:patient`, patientsOnly);
    expect([200, 403]).toContain(rev.status);
    validateR4(rev.body);
    if (rev.status === 200) expect((rev.body as Bundle).entry?.filter((e) => e.resource.resourceType === 'Procedure').map((e) => e.resource.id) ?? [], '_revinclude=Procedure:patient').toEqual([]);
  });

  it('includes bring nothing of another clinic', async () => {
    const other = await f.search(`/Patient?_id=${R.r1}&_revinclude=Procedure:patient`, readerB);
    expect([other.total, other.entry ?? []]).toEqual([0, []]);
    const otherInc = await f.search(`/Procedure?date=2026-03-12&_include=Procedure:patient`, readerB);
    expect(sorted((otherInc.entry ?? []).map((e) => e.resource.id))).toEqual(sorted([Bc.procedure, b.patientId]));
    const mine = await f.search(`/Procedure?date=2026-03-12&_include=Procedure:patient`, reader);
    expect((mine.entry ?? []).map((e) => e.resource.id)).not.toContain(b.patientId);
    expect((mine.entry ?? []).map((e) => e.resource.id)).not.toContain(Bc.procedure);
  });
});

describe('_format and Accept (contract "FHIR R4: search", R4 http.html#mime-type)', () => {
  const path = () => `/Patient?_id=${R.r1}`;

  it('JSON forms and */* answer application/fhir+json, with Vary: Accept', async () => {
    for (const fmt of ['json', 'application/json', 'application/fhir+json']) {
      const res = await f.get(`${path()}&${qs(['_format', fmt])}`, reader);
      expect.soft(res.status, fmt).toBe(200);
      expect.soft(res.headers['content-type'], `_format=${fmt}`).toMatch(/^application\/fhir\+json/);
      expect.soft(matchIds(res.body as Bundle), fmt).toEqual([R.r1]);
      validateR4(res.body);
    }
    for (const accept of ['*/*', 'application/json', 'application/fhir+json', 'application/fhir+xml;q=0.9, application/fhir+json;q=0.5', 'text/html, */*;q=0.1']) {
      const res = await f.get(path(), reader).set('accept', accept);
      expect.soft(res.status, accept).toBe(200);
      expect.soft(res.headers['content-type'], `Accept: ${accept}`).toMatch(/^application\/fhir\+json/);
      expect.soft(res.headers.vary ?? '', `Vary for Accept: ${accept}`).toMatch(/(^|,\s*)accept(\s*,|$)/i);
      expect.soft(matchIds(res.body as Bundle), accept).toEqual([R.r1]);
      validateR4(res.body);
    }
  });

  it('_format=xml, other formats, and an Accept with nothing JSON are a 406 OperationOutcome', async () => {
    for (const fmt of ['xml', 'application/fhir+xml', 'text/turtle']) await f.refused(`${path()}&${qs(['_format', fmt])}`, reader, 406);
    for (const accept of ['application/fhir+xml', 'application/xml', 'application/fhir+json;q=0']) {
      const res = await f.refused(path(), reader, 406, undefined, { accept });
      expect(res.headers.vary ?? '', accept).toMatch(/(^|,\s*)accept(\s*,|$)/i);
    }
    for (const type of ['Procedure', 'Observation', 'AdverseEvent']) await f.refused(`/${type}?patient=${R.r1}&_format=xml`.replace('AdverseEvent?patient', 'AdverseEvent?subject'), reader, 406);
    await f.refused(`/BiologicallyDerivedProduct?_id=${lots.lot1}&_format=xml`, reader, 406);
  });

  it('_format overrides the Accept header', async () => {
    const res = await f.get(`${path()}&_format=json`, reader).set('accept', 'application/fhir+xml');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
    expect(matchIds(res.body as Bundle)).toEqual([R.r1]);
  });
});

describe('tenancy and scopes', () => {
  it('a clinic-b token sees none of clinic-a\'s records in any search, not even in totals', async () => {
    const clinicA = [a.patientId, ...allStr(), ...Object.values(tok).map((p) => p.id), K.patient, D.patient, ...D.B, S.patient, R.r1, R.r2];
    const lopezA = await found(`/Patient?family=lopez`, [a.patientId, b.patientId]);
    const lopezB = await found(`/Patient?family=lopez`, [a.patientId, b.patientId], readerB);
    expect([lopezA, lopezB]).toEqual([[a.patientId], [b.patientId]]);
    const everyPatientB = matchIds(await f.search(`/Patient?_lastUpdated=ge2000&_count=200`, readerB));
    expect(everyPatientB).toEqual([b.patientId]);
    expect(everyPatientB.filter((id) => clinicA.includes(id))).toEqual([]);
    for (const [type, mine] of [
      ['Procedure', Bc.procedure],
      ['Observation', Bc.observation],
      ['AdverseEvent', Bc.adverseEvent],
    ] as const) {
      const res = await f.search(`/${type}?date=ge2026&_count=200`, readerB);
      expect(matchIds(res), type).toEqual([mine]);
      expect(res.total, type).toBe(1);
      expect((await f.search(`/${type}?_lastUpdated=ge2000&_summary=count`, readerB)).total, type).toBe(1);
    }
    expect((await f.search(`/Patient?_id=${a.patientId},${R.r1}`, readerB)).total).toBe(0);
    expect((await f.search(`/Procedure?_id=${R.procs1.join(',')}`, readerB)).total).toBe(0);
    expect((await f.search(`/Patient?${qs(['identifier', `${MRN('clinic-a')}|${R.r1Mrn}`])}`, readerB)).total).toBe(0);
    expect((await f.search(`/Patient?${qs(['identifier', `${EHR}|${esc(R.r1Value)}`])}`, readerB)).total).toBe(0);
    expect((await f.search(`/Observation?${qs(['code', `${LOINC}|72514-3`])}&_count=200`, readerB)).entry?.map((e) => e.resource.id)).toEqual([Bc.observation]);
    expect((await f.search(`/AdverseEvent?seriousness=Serious&_count=200`, readerB)).entry?.map((e) => e.resource.id)).toEqual([Bc.adverseEvent]);
  });

  it('each search needs its scope: 403 OperationOutcome (forbidden) without it, 401 without a token', async () => {
    const patientsOnly = await t.token({ scope: 'patients:read', clinic: 'clinic-a' });
    const clinicalOnly = await t.token({ scope: 'clinical:read lots:read', clinic: 'clinic-a' });
    const noLots = await t.token({ scope: 'patients:read clinical:read', clinic: 'clinic-a' });
    const cases: [string, string][] = [
      [`/Patient?family=lopez`, clinicalOnly],
      [`/Patient?_id=${R.r1}&_revinclude=Procedure:patient`, clinicalOnly],
      [`/Procedure?patient=${R.r1}`, patientsOnly],
      [`/Procedure?${qs(['patient.identifier', `${MRN('clinic-a')}|${R.r1Mrn}`])}`, patientsOnly],
      [`/Observation?patient=${R.r1}`, patientsOnly],
      [`/AdverseEvent?subject=${R.r1}`, patientsOnly],
      [`/BiologicallyDerivedProduct?identifier=${lots.lot2No}`, noLots],
    ];
    for (const [path, token] of cases) {
      const res = await f.refused(path, token, 403);
      expect(res.body.issue[0].code, path).toBe('forbidden');
    }
    const anonymous = await t.http.get(`/fhir/R4/Procedure?patient=${R.r1}`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.resourceType).toBe('OperationOutcome');
  });

  it('_id on every resource type: one id, several (OR), repeated (AND)', async () => {
    for (const [type, x, y] of [
      ['Patient', R.r1, R.r2],
      ['Procedure', R.procs1[0]!, R.procs2[0]!],
      ['Observation', R.obs1, R.obs2],
      ['AdverseEvent', R.ae1, R.ae2],
      ['BiologicallyDerivedProduct', lots.lot1, lots.lot2],
    ] as const) {
      expect(matchIds(await f.search(`/${type}?_id=${x}`, reader)), type).toEqual([x]);
      expect(sorted(matchIds(await f.search(`/${type}?_id=${x},${y}`, reader))), type).toEqual(sorted([x, y]));
      expect(matchIds(await f.search(`/${type}?_id=${x}&_id=${y}`, reader)), type).toEqual([]);
    }
  });
});
