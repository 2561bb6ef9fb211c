import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { firstRepeatedMember } from './json-members.js';

describe('firstRepeatedMember (RFC 8259 §4: names within an object should be unique)', () => {
  it('names the first repeated member, at any depth, with escapes decoded and in NFC', () => {
    expect(firstRepeatedMember('{"serious":false,"serious":true}')).toBe('serious');
    expect(firstRepeatedMember('{"a":1,"site":{"bodySite":"knee-joint","laterality":"left","bodySite":"hip"}}')).toBe('site.bodySite');
    expect(firstRepeatedMember('{"items":[{"x":1},{"x":2,"y":"\\"x\\"","x":3}]}')).toBe('items.1.x');
    expect(firstRepeatedMember('{"serious":false,"ser\\u0069ous":true}')).toBe('serious');
    expect(firstRepeatedMember('{"caf\\u00e9":1,"cafe\\u0301":2}')).toBe('café');
    expect(firstRepeatedMember('[[{"a":1}],{"a":2,"b":{"a":3}}]')).toBeNull();
    expect(firstRepeatedMember('{"a":"{\\"a\\":1,\\"a\\":2}","b":"a"}')).toBeNull();
    expect(firstRepeatedMember('"a"')).toBeNull();
  });

  it('finds no repeat in what JSON.stringify writes, and finds any member written twice', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(firstRepeatedMember(JSON.stringify(value))).toBeNull();
      }),
    );
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue(), { minKeys: 1 }), fc.nat(), fc.jsonValue(), (object, pick, again) => {
        const names = Object.keys(object);
        const name = names[pick % names.length]!;
        // Distinct raw names may coincide in NFC (then that pair is the first repeat): keep to objects without such.
        if (new Set(names.map((n) => n.normalize('NFC'))).size !== names.length) return;
        const text = `${JSON.stringify(object).slice(0, -1)},${JSON.stringify(name)}:${JSON.stringify(again)}}`;
        expect(firstRepeatedMember(text)).toBe(name.normalize('NFC'));
      }),
    );
  });
});
