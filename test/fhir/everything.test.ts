import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { clinicSetup, releasedLot, uniq } from '../support/fixtures.js';
import { auth, fhir, includeEntries, qs, sleep, sorted, writer, type Bundle, type Entry } from './search-support.js';

/**
 * `GET /fhir/R4/Patient/{id}/$everything` (R4 OperationDefinition Patient-everything; contract "FHIR R4: search"):
 * paged by `_count` with `next` links that resume where the page ended, `_since`, `_type`.
 */

const tag = uniq();
const PRODUCT_LOT = 'urn:exosome-records:fhir:StructureDefinition:procedure-product-lot';
const ORDER = ['Patient', 'Procedure', 'Observation', 'AdverseEvent'];

let t: TestApp;
let f: ReturnType<typeof fhir>;
let a: Awaited<ReturnType<typeof clinicSetup>>;
let reader: string;
let lot2 = '';
const E = { patient: '', procs: [] as string[], obs: [] as string[], aes: [] as string[] };
const F = { patient: '', before: [] as string[], after: [] as string[] };
let otherProcedure = '';

const primary = (b: Bundle) => (b.entry ?? []).filter((e) => e.search?.mode !== 'include');
const key = (e: Entry) => `${e.resource.resourceType}/${e.resource.id}`;

beforeAll(async () => {
  t = await createTestApp();
  f = fhir(t);
  a = await clinicSetup(t, { vials: 40 });
  reader = await t.token({ scope: 'patients:read clinical:read lots:read', clinic: 'clinic-a', sub: `fhir-everything-${tag}` });
  const second = await releasedLot(t.http, a.supplier);
  lot2 = second.lot.id;
  const shipped = await t.http.post(`/v1/lots/${lot2}/shipments`).set(...auth(a.supplier)).send({ clinicId: 'clinic-a', vials: 10, shippedAt: '2026-03-02T08:00:00Z' });
  expect(shipped.status, JSON.stringify(shipped.body)).toBe(201);
  const w = writer(t, a.clinician);

  // Patient E: 7 procedures from two lots, 5 observations, 3 adverse events.
  E.patient = a.patientId;
  const dates = ['2026-03-20T09:00:00Z', '2026-03-05T09:00:00Z', '2026-03-15T09:00:00Z', '2026-03-15T09:00:00Z', '2026-03-25T09:00:00Z', '2026-03-03T09:00:00Z', '2026-03-18T09:00:00Z'];
  for (const [i, at] of dates.entries()) E.procs.push(await w.procedure(E.patient, i % 2 ? lot2 : a.lot.id, at));
  for (const [i, at] of ['2026-04-02T10:00:00Z', '2026-03-21T10:00:00Z', '2026-05-01T10:00:00Z', '2026-03-26T10:00:00Z', '2026-04-15T10:00:00Z'].entries()) {
    E.obs.push(await w.outcome(E.procs[i]!, 'nrs-pain', at));
  }
  for (const [i, at] of ['2026-03-28T10:00:00Z', '2026-03-21T10:00:00Z', '2026-04-03T10:00:00Z'].entries()) E.aes.push(await w.adverseEvent(E.procs[i]!, at, i === 0));

  // Another patient of the same clinic: nothing of theirs may appear in E's $everything.
  const other = await w.patient({ familyName: `Other${tag}` }, { consent: true });
  otherProcedure = await w.procedure(other.id, a.lot.id, '2026-03-20T09:00:00Z');
  await w.outcome(otherProcedure, 'nrs-pain', '2026-04-02T10:00:00Z');
  await w.adverseEvent(otherProcedure, '2026-03-28T10:00:00Z');

  // Patient F: records written before and after a pause (for _since).
  F.patient = (await w.patient({ familyName: `Since${tag}` }, { consent: true })).id;
  const p1 = await w.procedure(F.patient, a.lot.id, '2026-03-10T09:00:00Z');
  F.before.push(`Procedure/${p1}`);
  F.before.push(`Observation/${await w.outcome(p1, 'nrs-pain', '2026-03-20T10:00:00Z')}`);
  F.before.push(`AdverseEvent/${await w.adverseEvent(p1, '2026-03-11T10:00:00Z')}`);
  await sleep(50);
  const p2 = await w.procedure(F.patient, a.lot.id, '2026-03-12T09:00:00Z');
  F.after.push(`Procedure/${p2}`);
  F.after.push(`Observation/${await w.outcome(p1, 'womac', '2026-04-20T10:00:00Z', 20)}`);
  F.after.push(`AdverseEvent/${await w.adverseEvent(p2, '2026-03-13T10:00:00Z')}`);
}, 120_000);
afterAll(() => t?.close());

/** Checks one walk: primary entries each once, in type order, pages of at most `count`; includes are the page's products. */
function checkWalk(pages: Bundle[], count: number, label: string) {
  const all = pages.flatMap(primary);
  const keys = all.map(key);
  expect(keys.length, `${label}: no resource twice`).toBe(new Set(keys).size);
  const ranks = all.map((e) => ORDER.indexOf(e.resource.resourceType as string));
  expect(ranks.every((r) => r >= 0), `${label}: only Patient, Procedure, Observation, AdverseEvent as matches`).toBe(true);
  expect(ranks, `${label}: type order`).toEqual([...ranks].sort((x, y) => x - y));
  for (const [i, p] of pages.entries()) {
    const prim = primary(p);
    expect(prim.length, `${label}: page ${i + 1} size`).toBeLessThanOrEqual(count);
    expect(prim.length, `${label}: page ${i + 1} not empty`).toBeGreaterThan(0);
    for (const e of prim) expect(e.search?.mode, `${label}: ${key(e)}`).toBe('match');
    const inc = includeEntries(p);
    expect(inc.every((e) => e.resource.resourceType === 'BiologicallyDerivedProduct'), `${label}: page ${i + 1} includes are products`).toBe(true);
    expect(inc.map(key).length, `${label}: page ${i + 1} includes once`).toBe(new Set(inc.map(key)).size);
    const lotsOfPage = new Set(
      prim
        .filter((e) => e.resource.resourceType === 'Procedure')
        .map((e) => (e.resource.extension as { url: string; valueReference?: { reference: string } }[]).find((x) => x.url === PRODUCT_LOT)!.valueReference!.reference),
    );
    for (const ref of lotsOfPage) expect(inc.map(key), `${label}: page ${i + 1} includes ${ref}`).toContain(ref);
  }
  return keys;
}

describe('Patient/{id}/$everything', () => {
  it('walks every page by _count: each resource exactly once, in order Patient, Procedure, Observation, AdverseEvent; products as include entries', async () => {
    const expected = sorted([`Patient/${E.patient}`, ...E.procs.map((id) => `Procedure/${id}`), ...E.obs.map((id) => `Observation/${id}`), ...E.aes.map((id) => `AdverseEvent/${id}`)]);
    expect(expected).toHaveLength(16);
    for (const count of [1, 4, 5, 7, 16, 100]) {
      const pages = await f.walk(`/Patient/${E.patient}/$everything?_count=${count}`, reader);
      expect(pages.length, `_count=${count}: pages`).toBe(Math.ceil(16 / count));
      const keys = checkWalk(pages, count, `_count=${count}`);
      expect(sorted(keys), `_count=${count}: every resource`).toEqual(expected);
      expect(keys[0], `_count=${count}: the Patient first`).toBe(`Patient/${E.patient}`);
      const products = new Set(pages.flatMap(includeEntries).map(key));
      expect(sorted([...products]), `_count=${count}: the products used`).toEqual(sorted([`BiologicallyDerivedProduct/${a.lot.id}`, `BiologicallyDerivedProduct/${lot2}`]));
      for (const e of pages.flatMap((p) => p.entry ?? [])) expect(e.fullUrl).toMatch(new RegExp(`/fhir/R4/${key(e)}$`));
    }
  });

  it('_since: only resources written at or after it (the instant of a record itself included), across pages', async () => {
    const whole = await f.walk(`/Patient/${F.patient}/$everything`, reader);
    const lastUpdated = new Map(whole.flatMap(primary).map((e) => [key(e), e.resource.meta.lastUpdated as string]));
    for (const k of [...F.before, ...F.after]) expect(lastUpdated.has(k), k).toBe(true);
    const since = F.after.map((k) => lastUpdated.get(k)!).sort()[0]!;
    expect(F.before.every((k) => lastUpdated.get(k)! < since)).toBe(true);
    for (const count of [1, 100]) {
      const pages = await f.walk(`/Patient/${F.patient}/$everything?${qs(['_since', since])}&_count=${count}`, reader);
      const keys = checkWalk(pages, count, `_since _count=${count}`);
      expect(sorted(keys), `_since=${since} _count=${count}`).toEqual(sorted(F.after));
      for (const e of pages.flatMap(primary)) expect(e.resource.meta.lastUpdated >= since, key(e)).toBe(true);
    }
    const later = await f.search(`/Patient/${F.patient}/$everything?${qs(['_since', new Date(Date.parse(since) + 3_600_000).toISOString()])}`, reader);
    expect(primary(later)).toEqual([]);
    const earlier = await f.walk(`/Patient/${F.patient}/$everything?${qs(['_since', '2000-01-01T00:00:00Z'])}`, reader);
    expect(sorted(earlier.flatMap(primary).map(key))).toEqual(sorted([`Patient/${F.patient}`, ...F.before, ...F.after]));
  });

  it('_type: only resources of those types, across pages', async () => {
    const cases: [string, string[]][] = [
      ['Procedure', E.procs.map((id) => `Procedure/${id}`)],
      ['Observation,AdverseEvent', [...E.obs.map((id) => `Observation/${id}`), ...E.aes.map((id) => `AdverseEvent/${id}`)]],
      ['Patient', [`Patient/${E.patient}`]],
      ['AdverseEvent,Patient', [`Patient/${E.patient}`, ...E.aes.map((id) => `AdverseEvent/${id}`)]],
    ];
    for (const [types, expected] of cases) {
      const allowed = types.split(',');
      for (const count of [3, 100]) {
        const pages = await f.walk(`/Patient/${E.patient}/$everything?_type=${types}&_count=${count}`, reader);
        const entries = pages.flatMap((p) => p.entry ?? []);
        expect(entries.filter((e) => !allowed.includes(e.resource.resourceType as string)).map(key), `_type=${types} _count=${count}: other types`).toEqual([]);
        const keys = entries.map(key);
        expect(keys.length, `_type=${types}: no resource twice`).toBe(new Set(keys).size);
        expect(sorted(keys), `_type=${types} _count=${count}`).toEqual(sorted(expected));
        const ranks = entries.map((e) => ORDER.indexOf(e.resource.resourceType as string));
        expect(ranks, `_type=${types}: type order`).toEqual([...ranks].sort((x, y) => x - y));
      }
    }
    const both = await f.walk(`/Patient/${F.patient}/$everything?_type=Procedure&${qs(['_since', '2000-01-01T00:00:00Z'])}&_count=1`, reader);
    expect(sorted(both.flatMap((p) => p.entry ?? []).map(key))).toEqual(sorted([...F.before, ...F.after].filter((k) => k.startsWith('Procedure/'))));
  });

  it('tenancy and scopes: another clinic 404, a token without patients:read or clinical:read 403; all OperationOutcome', async () => {
    const other = await t.token({ scope: 'patients:read clinical:read lots:read', clinic: 'clinic-b' });
    await f.refused(`/Patient/${E.patient}/$everything`, other, 404);
    await f.refused(`/Patient/${E.patient}/$everything?_count=2`, other, 404);
    const patientsOnly = await t.token({ scope: 'patients:read lots:read', clinic: 'clinic-a' });
    const clinicalOnly = await t.token({ scope: 'clinical:read lots:read', clinic: 'clinic-a' });
    for (const token of [patientsOnly, clinicalOnly]) {
      const res = await f.refused(`/Patient/${E.patient}/$everything`, token, 403);
      expect(res.body.issue[0].code).toBe('forbidden');
    }
    const mine = (await f.walk(`/Patient/${E.patient}/$everything`, reader)).flatMap((p) => p.entry ?? []).map(key);
    expect(mine).not.toContain(`Procedure/${otherProcedure}`);
  });

  it('refuses a bad _count, _since or _type with a 400 OperationOutcome', async () => {
    for (const q of ['_count=201', '_count=-1', '_count=abc', qs(['_since', '2023-02-30T00:00:00Z']), qs(['_since', '1899-12-31T00:00:00Z']), '_since=yesterday']) {
      await f.refused(`/Patient/${E.patient}/$everything?${q}`, reader, 400);
    }
  });
});
