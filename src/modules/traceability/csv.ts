import { Transform } from 'node:stream';

/** RFC 4180 CSV: fields with a comma, quote or line break are quoted, quotes doubled; CRLF line ends. */
export function csvField(value: string | number | boolean | Date | null | undefined | object): string {
  if (value === null || value === undefined) return '';
  const s = value instanceof Date ? value.toISOString() : typeof value === 'object' ? JSON.stringify(value) : String(value);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvLine(values: Parameters<typeof csvField>[0][]): string {
  return `${values.map(csvField).join(',')}\r\n`;
}

/** Rows (objects) in, CSV text out, header first; one row in memory at a time. */
export function toCsv(columns: string[]): Transform {
  let headerSent = false;
  return new Transform({
    writableObjectMode: true,
    transform(row: Record<string, unknown>, _enc, done) {
      const head = headerSent ? '' : csvLine(columns);
      headerSent = true;
      done(null, head + csvLine(columns.map((c) => row[c] as Parameters<typeof csvField>[0])));
    },
    flush(done) {
      done(null, headerSent ? '' : csvLine(columns));
    },
  });
}
