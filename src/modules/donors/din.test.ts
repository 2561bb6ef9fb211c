import { describe, expect, it } from 'vitest';
import { DIN_PATTERN, dinCheckCharacter, isValidDin } from './din.js';

describe('ISBT 128 DIN check character (ISO 7064 MOD 37-2)', () => {
  const published: [string, string][] = [
    ['G123498654321', 'H'],
    ['A999914123456', 'N'],
    ['C000307001466', '6'],
    ['A999922123459', 'H'],
    ['A999922654321', 'S'],
    ['A999922123458', 'J'],
    ['A999922012346', '*'],
    ['A999522123456', '*'],
    ['G123417654321', 'A'],
    ['A999917123456', '9'],
    ['A999916123456', 'Q'],
  ];
  it.each(published)('%s has check character %s', (din, check) => {
    expect(dinCheckCharacter(din)).toBe(check);
    expect(isValidDin(din, check)).toBe(true);
  });

  it.each([
    ['A999915123456', 'N'],
    ['F123498654321', 'H'],
    ['A999920212346', '*'],
  ])('%s with %s fails', (din, check) => {
    expect(isValidDin(din, check)).toBe(false);
  });

  it('refuses lowercase, wrong lengths and the letter O in the facility code', () => {
    expect(isValidDin('a999922012346', '*')).toBe(false);
    expect(DIN_PATTERN.test('A99992201234')).toBe(false);
    expect(DIN_PATTERN.test('A9999220123467')).toBe(false);
    expect(DIN_PATTERN.test('O999922012346')).toBe(false);
  });
});
