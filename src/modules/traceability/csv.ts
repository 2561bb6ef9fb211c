import { Transform } from 'node:stream';

type CsvValue = string | number | bigint | boolean | Date | null | undefined | object;

/**
 * A spreadsheet reads a cell that begins with one of these as a formula (CSV injection): `=`, `+`, `-`, `@`,
 * tab, carriage return. OWASP's remedy is a leading single quote, which makes the cell text.
 */
const FORMULA_START = /^[=+\-@\t\r]/;

/** A number as PostgreSQL or JavaScript prints it: what a numeric column may hold, nothing a formula needs. */
const NUMBER_TEXT = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

const quoted = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** Text (anything a user may have typed): neutralised, then RFC 4180 quoted. */
export function csvText(s: string): string {
  return quoted(FORMULA_START.test(s) ? `'${s}` : s);
}

/**
 * RFC 4180 CSV: fields with a comma, quote or line break are quoted, quotes doubled; CRLF line ends.
 * Every string is text and neutralised; JavaScript numbers, booleans and dates are the service's own and
 * go out as they are. A number that arrives as a string (pg sends numeric and bigint as text) is declared by
 * its column: see `csvNumber` and `toCsv`'s `numeric`.
 */
export function csvField(value: CsvValue): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  if (value instanceof Date) return value.toISOString();
  return csvText(typeof value === 'object' ? JSON.stringify(value) : String(value));
}

/**
 * A value of a column the service declares numeric (a dose, a count): written as it is, a minus sign
 * included. Anything else found there is treated as text, so a mistaken declaration cannot let a formula out.
 */
export function csvNumber(value: CsvValue): string {
  if (typeof value === 'string' && NUMBER_TEXT.test(value)) return value;
  return csvField(value);
}

export function csvLine(values: CsvValue[]): string {
  return `${values.map(csvField).join(',')}\r\n`;
}

/**
 * Rows (objects) in, CSV text out, header first; one row in memory at a time. Whether a cell is a number
 * is decided by its column (`numeric`), never by how its text looks: an MRN `-2+3` stays text.
 */
export function toCsv(columns: readonly string[], numeric: ReadonlySet<string> = new Set()): Transform {
  const write = columns.map((c) => (numeric.has(c) ? csvNumber : csvField));
  let headerSent = false;
  return new Transform({
    writableObjectMode: true,
    transform(row: Record<string, unknown>, _enc, done) {
      const head = headerSent ? '' : csvLine([...columns]);
      headerSent = true;
      done(null, `${head}${columns.map((c, i) => write[i]!(row[c] as CsvValue)).join(',')}\r\n`);
    },
    flush(done) {
      done(null, headerSent ? '' : csvLine([...columns]));
    },
  });
}
