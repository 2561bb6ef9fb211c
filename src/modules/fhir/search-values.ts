/**
 * FHIR R4 search values (§3.1.1.5.7 "Escaping search parameters", §3.1.1.4.9 token): `\|`, `\,`, `\$` and
 * `\\` stand for the character itself; an unescaped `,` separates values that are ORed; in a token an
 * unescaped `|` separates the system from the code.
 */

/** Splits `raw` at unescaped occurrences of `separator`, leaving escapes in place. */
export function splitUnescaped(raw: string, separator: ',' | '|'): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '\\' && i + 1 < raw.length) {
      current += c + raw[i + 1];
      i++;
    } else if (c === separator) {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  parts.push(current);
  return parts;
}

/** The text an escaped search value stands for; undefined when a backslash escapes nothing it may. */
export function unescapeValue(raw: string): string | undefined {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const next = raw[i + 1];
    if (next !== '|' && next !== ',' && next !== '$' && next !== '\\') return undefined;
    out += next;
    i++;
  }
  return out;
}

/** The escaped form of `text`, as a client writes it into a search value. */
export function escapeValue(text: string): string {
  return text.replace(/[\\|,$]/g, (c) => `\\${c}`);
}

/**
 * One token (no OR): `system|code`, `system|` (any code in the system), `|code` (a code with no system:
 * `system` is null) or `code` (any system). Undefined when it is malformed (more than one unescaped `|`, a
 * bad escape, nothing at all).
 */
export interface Token {
  system?: string | null;
  code?: string;
}

export function parseToken(raw: string): Token | undefined {
  const parts = splitUnescaped(raw, '|');
  if (parts.length > 2) return undefined;
  const [first, second] = parts.map(unescapeValue);
  if (first === undefined || (parts.length === 2 && second === undefined)) return undefined;
  if (parts.length === 1) return first === '' ? undefined : { code: first };
  if (first === '' && second === '') return undefined;
  return { system: first === '' ? null : first, ...(second === '' ? {} : { code: second }) };
}
