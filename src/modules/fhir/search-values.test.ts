import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { escapeValue, parseToken, splitUnescaped, unescapeValue } from './search-values.js';

describe('FHIR search values (R4 §3.1.1.5.7)', () => {
  it.each([
    ['urn:oid:1.2.3.4|AB\\|12', { system: 'urn:oid:1.2.3.4', code: 'AB|12' }],
    ['urn:oid:1.2.3.4|AB|12', undefined],
    ['http://x.org/id|', { system: 'http://x.org/id' }],
    ['|LOCAL-7', { system: null, code: 'LOCAL-7' }],
    ['EHR-1', { code: 'EHR-1' }],
    ['a\\\\b|c\\,d\\$e', { system: 'a\\b', code: 'c,d$e' }],
    ['bad\\q', undefined],
    ['|', undefined],
    ['', undefined],
  ])('token %j → %j', (raw, token) => {
    expect(parseToken(raw)).toEqual(token);
  });

  it('a comma separates OR values unless escaped', () => {
    expect(splitUnescaped('a|1,b\\,c|2', ',')).toEqual(['a|1', 'b\\,c|2']);
  });

  it('any system and code survive escaping and parsing (property)', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), (system, code) => {
        expect(parseToken(`${escapeValue(system)}|${escapeValue(code)}`)).toEqual({ system, code });
        expect(splitUnescaped(`${escapeValue(system)},${escapeValue(code)}`, ',').map((v) => unescapeValue(v))).toEqual([system, code]);
      }),
    );
  });
});
