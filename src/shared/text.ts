import type { FieldError } from './errors.js';

/**
 * The text rules every value from a request passes before anything reads it (contract: "Input and output
 * rules"). Pure functions over parsed JSON or a parsed query: the HTTP layer (http/input.ts) applies them
 * to bodies, query strings and path parameters alike.
 *
 * - Every string becomes Unicode NFC (UAX #15), so canonically equal text is equal when it is validated,
 *   stored, compared or searched.
 * - U+0000 is refused everywhere (PostgreSQL cannot store it in text or jsonb); so is every other C0 control,
 *   except tab, line feed and carriage return where `allowLineBreaks` (body strings: free text may hold them;
 *   single-line fields refuse them in their own schema, see shared/schemas.ts `NonEmpty`), and DEL and the C1
 *   controls (U+0080..U+009F), which no clinical text holds: they are what mis-decoded Windows-1252 looks like.
 * - A lone surrogate (JSON allows `"\ud800"`) is refused: UTF-8 cannot encode it, and the driver would store
 *   U+FFFD in its place, a character the client never sent.
 */
export interface TextRules {
  /** Tab, LF and CR pass (body strings); otherwise they are refused like any other C0 control. */
  allowLineBreaks: boolean;
  /** POST semantics: an object member whose value is null is absent (contract: "null"). */
  nullIsAbsent: boolean;
}

const C0 = /[\u0000-\u001f\u007f-\u009f]/;
const C0_BUT_LINE_BREAKS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;
/** Printable ASCII only: already NFC, no control, well formed; the common case skips the rest. */
const PLAIN = /^[\u0020-\u007e]*$/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

const hex = (c: string) => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

/** Why `s` is refused, or undefined when it passes. */
export function textProblem(s: string, allowLineBreaks: boolean): string | undefined {
  if (PLAIN.test(s)) return undefined;
  if (s.includes('\u0000')) return 'contains U+0000 (NUL), which is not allowed';
  const control = (allowLineBreaks ? C0_BUT_LINE_BREAKS : C0).exec(s);
  if (control) return `contains the control character ${hex(control[0])}, which is not allowed`;
  if (LONE_SURROGATE.test(s)) return 'is not well-formed Unicode (it holds a lone surrogate)';
  return undefined;
}

export function nfc(s: string): string {
  return PLAIN.test(s) ? s : s.normalize('NFC');
}

/**
 * `value` with every string in NFC (object keys too) and, under `nullIsAbsent`, null members left out;
 * each refused string is named in `errors` by its path (`body.identifiers.0.value`).
 */
export function normalizeInput(value: unknown, path: string, rules: TextRules, errors: FieldError[]): unknown {
  if (typeof value === 'string') {
    const problem = textProblem(value, rules.allowLineBreaks);
    if (problem) {
      errors.push({ path, message: problem });
      return value;
    }
    return nfc(value);
  }
  if (Array.isArray(value)) return value.map((item, i) => normalizeInput(item, `${path}.${i}`, rules, errors));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [rawKey, member] of Object.entries(value)) {
      const keyProblem = textProblem(rawKey, false);
      if (keyProblem) {
        errors.push({ path, message: `a member name ${keyProblem}` });
        continue;
      }
      if (rawKey === '__proto__') {
        errors.push({ path, message: 'a member may not be named __proto__' });
        continue;
      }
      const key = nfc(rawKey);
      // Absent, but still named: validation refuses it when the member is not one the body has (unknown field).
      if (member === null && rules.nullIsAbsent) {
        out[key] = undefined;
        continue;
      }
      out[key] = normalizeInput(member, `${path}.${key}`, rules, errors);
    }
    return out;
  }
  return value;
}
