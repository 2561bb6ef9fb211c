/**
 * ISBT 128 Donation Identification Number: 13 characters (facility 5, year 2, sequence 6), with a check
 * character computed by ISO/IEC 7064 MOD 37-2 over them.
 */
export const DIN_PATTERN = /^[A-NP-Z1-9][0-9]{4}[0-9]{2}[0-9]{6}$/;

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*';

function valueOf(ch: string): number {
  const v = ALPHABET.indexOf(ch);
  if (v < 0 || v === 36) throw new Error(`not a DIN character: ${ch}`);
  return v;
}

export function dinCheckCharacter(din: string): string {
  let p = 0;
  for (const ch of din) p = ((p + valueOf(ch)) * 2) % 37;
  return ALPHABET[(38 - p) % 37]!;
}

export function isValidDin(din: string, check: string): boolean {
  return DIN_PATTERN.test(din) && dinCheckCharacter(din) === check;
}
