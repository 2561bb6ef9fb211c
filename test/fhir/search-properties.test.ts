import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { clinicSetup, createLot, uniq } from '../support/fixtures.js';
import { auth, esc, fhir, matchIds, qs, writer } from './search-support.js';

/**
 * Properties of FHIR search (issue #13): string search is a case-, accent- and Unicode-form-insensitive prefix
 * match (ß = ss, Ø = o), and a token value with | , $ \ in it is found by its escaped form (R4 §3.1.1.5.7).
 */

const tag = uniq();
let t: TestApp;
let f: ReturnType<typeof fhir>;
let a: Awaited<ReturnType<typeof clinicSetup>>;
let reader: string;

beforeAll(async () => {
  t = await createTestApp();
  f = fhir(t);
  a = await clinicSetup(t, { vials: 400, lot: { vialCount: 500 } });
  reader = await t.token({ scope: 'patients:read clinical:read lots:read', clinic: 'clinic-a', sub: `fhir-properties-${tag}` });
}, 60_000);
afterAll(() => t?.close());

/** What the search ignores: Unicode form, accents (combining marks), case; ß is ss and ø is o. */
const fold = (s: string) =>
  s
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/ß/g, 'ss')
    .replace(/ø/g, 'o');

const MARKS = ['\u0300', '\u0301', '\u0302', '\u0303', '\u0308', '\u030A', '\u030C', '\u0327'];
/** A letter: ASCII base in either case, maybe with an accent, sent composed (NFC) or decomposed. */
const letter = fc
  .record({
    base: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz'),
    upper: fc.boolean(),
    mark: fc.option(fc.constantFrom(...MARKS), { nil: undefined }),
    composed: fc.boolean(),
  })
  .map(({ base, upper, mark, composed }) => {
    const s = (upper ? base.toUpperCase() : base) + (mark ?? '');
    return composed ? s.normalize('NFC') : s;
  });
const name = fc.array(fc.oneof({ arbitrary: letter, weight: 6 }, { arbitrary: fc.constantFrom('ß', 'ø', 'Ø'), weight: 1 }), { minLength: 1, maxLength: 10 }).map((us) => us.join(''));

/** Token values with the characters that need escaping, and a few that do not. */
const tokenValue = fc
  .string({ unit: fc.constantFrom('a', 'B', '7', '|', ',', '$', '\\', '-', '.', ' ', 'é', 'e\u0301', 'ß'), minLength: 1, maxLength: 16 })
  .filter((v) => v.trim() === v && v.length > 0);

describe('string search properties', () => {
  it('every prefix of the folded name finds the patient, in any case; a longer string does not; :exact takes the NFC name', async () => {
    await fc.assert(
      fc.asyncProperty(name, async (familyName) => {
        const res = await t.http.post('/v1/patients').set(...auth(a.clinician)).send({ mrn: `P-${uniq()}`, givenName: `Prop${tag}`, familyName, birthDate: '1970-01-01', sex: 'other' });
        expect(res.status, JSON.stringify(res.body)).toBe(201);
        const id = res.body.id as string;
        const ids = async (q: string) => matchIds(await f.search(`/Patient?${q}&_id=${id}`, reader));
        const folded = fold(familyName);
        for (let k = 1; k <= folded.length; k++) {
          const prefix = folded.slice(0, k);
          expect(await ids(qs(['family', prefix])), `family=${prefix} for ${JSON.stringify(familyName)}`).toEqual([id]);
        }
        for (const q of [folded.toUpperCase(), familyName, familyName.normalize('NFD'), familyName.normalize('NFC')]) {
          expect(await ids(qs(['family', q])), `family=${JSON.stringify(q)} for ${JSON.stringify(familyName)}`).toEqual([id]);
          expect(await ids(qs(['name', q])), `name=${JSON.stringify(q)} for ${JSON.stringify(familyName)}`).toEqual([id]);
        }
        expect(await ids(qs(['family', `${folded}q`])), `family=${folded}q`).toEqual([]);
        expect(await ids(qs(['family', `q${folded}`])), `family=q${folded}`).toEqual([]);
        for (const q of [familyName.normalize('NFC'), familyName.normalize('NFD')]) {
          expect(await ids(qs(['family:exact', q])), `family:exact=${JSON.stringify(q)}`).toEqual([id]);
        }
        const swapped = [...familyName.normalize('NFC')].map((c) => (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase())).join('');
        if (swapped.normalize('NFC') !== familyName.normalize('NFC')) {
          expect(await ids(qs(['family:exact', swapped])), `family:exact=${JSON.stringify(swapped)} (case differs)`).toEqual([]);
        }
      }),
      { numRuns: 30 },
    );
  });
});

describe('token escaping properties', () => {
  it('Patient identifier: any value with | , $ \\ is found by its escaped form, with or without the system, and alone in an OR', async () => {
    await fc.assert(
      fc.asyncProperty(tokenValue, async (value) => {
        const system = `urn:x-prop:${uniq()}`;
        const res = await t.http
          .post('/v1/patients')
          .set(...auth(a.clinician))
          .send({ mrn: `P-${uniq()}`, identifiers: [{ system, value }], givenName: 'Token', familyName: `Prop${tag}`, birthDate: '1970-01-01', sex: 'other' });
        expect(res.status, JSON.stringify(res.body)).toBe(201);
        const id = res.body.id as string;
        const search = async (q: string) => matchIds(await f.search(`/Patient?${q}`, reader));
        expect(await search(qs(['identifier', `${system}|${esc(value)}`])), `${system}|${esc(value)}`).toEqual([id]);
        expect(await search(qs(['identifier', `${system}|${esc(value.normalize('NFD'))}`])), 'decomposed').toEqual([id]);
        expect(await search(`${qs(['identifier', esc(value)])}&_id=${id}`), esc(value)).toEqual([id]);
        expect(await search(qs(['identifier', `${system}|zz,${system}|${esc(value)}`])), 'OR').toEqual([id]);
        expect(await search(qs(['identifier', `${system}|${esc(value)}Q`])), 'longer value').toEqual([]);
      }),
      { numRuns: 40 },
    );
  });

  it('BiologicallyDerivedProduct identifier: any lot number with | , $ \\ is found by its escaped form under its manufacturer', async () => {
    await fc.assert(
      fc.asyncProperty(tokenValue, async (lotNumber) => {
        const manufacturer = `Prop Maker ${uniq()}`;
        const lot = await createLot(t.http, a.supplier, [a.donor.id], { manufacturer, lotNumber });
        const system = `urn:exosome-records:fhir:identifier:lot-number:${encodeURIComponent(manufacturer)}`;
        const search = async (q: string) => matchIds(await f.search(`/BiologicallyDerivedProduct?${q}`, reader));
        expect(await search(qs(['identifier', `${system}|${esc(lotNumber)}`])), `${system}|${esc(lotNumber)}`).toEqual([lot.id]);
        expect(await search(`${qs(['identifier', esc(lotNumber)])}&_id=${lot.id}`), esc(lotNumber)).toEqual([lot.id]);
      }),
      { numRuns: 25 },
    );
  });

  it('patient.identifier chain: a patient\'s procedures are found by the escaped EHR identifier', async () => {
    const w = writer(t, a.clinician);
    await fc.assert(
      fc.asyncProperty(tokenValue, async (value) => {
        const system = `urn:x-prop-chain:${uniq()}`;
        const p = await w.patient({ identifiers: [{ system, value }], familyName: `Chain${tag}` }, { consent: true });
        const procedureId = await w.procedure(p.id, a.lot.id, '2026-03-10T10:00:00Z');
        for (const chain of ['patient.identifier', 'subject.identifier']) {
          expect(matchIds(await f.search(`/Procedure?${qs([chain, `${system}|${esc(value)}`])}`, reader)), `${chain}=${system}|${esc(value)}`).toEqual([procedureId]);
        }
      }),
      { numRuns: 12, endOnFailure: true },
    );
  });
});
