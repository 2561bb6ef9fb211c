import { customType } from 'drizzle-orm/pg-core';

/**
 * A `timestamptz` as PostgreSQL prints it (DateStyle ISO: `2026-10-01 09:00:00.123456+02`, `0099-10-01 09:00:00+00`,
 * `1900-01-01 00:00:00+00:19:32` for an old local-mean-time offset, ` BC` for years before 1) read without
 * JavaScript's legacy date parser, which takes a year below 100 for 19xx or 20xx (`new Date('0099-…')` is 1999).
 * Throws on text that is not a timestamp (`infinity`): no column of ours holds one.
 */
const PG_TIMESTAMP = /^(\d{4,})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:(Z)|([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?)?( BC)?$/;

export function parsePgTimestamp(text: string): Date {
  const m = PG_TIMESTAMP.exec(text);
  if (!m) throw new TypeError('PostgreSQL returned a timestamp this service cannot read');
  const [, y, mo, d, h, mi, s, frac, , sign, oh, om, os, bc] = m;
  const year = bc ? 1 - Number(y) : Number(y);
  const at = new Date(0);
  // setUTCFullYear takes the year as given; Date.UTC would move 0..99 to 1900..1999.
  at.setUTCFullYear(year, Number(mo) - 1, Number(d));
  at.setUTCHours(Number(h), Number(mi), Number(s), frac ? Number(frac.slice(0, 3).padEnd(3, '0')) : 0);
  if (sign) {
    const offsetMs = ((Number(oh) * 60 + Number(om ?? 0)) * 60 + Number(os ?? 0)) * 1000;
    at.setTime(at.getTime() - (sign === '+' ? offsetMs : -offsetMs));
  }
  return at;
}

/**
 * An instant: `timestamptz`, a JS Date in code, UTC `Z` in the API. Every time column of the schema is one.
 * Read with parsePgTimestamp; written as ISO 8601 with its offset. Default to the transaction's time with
 * `.default(sql\`now()\`)`.
 */
export const instant = customType<{ data: Date; driverData: string }>({
  dataType: () => 'timestamp with time zone',
  toDriver: (value) => value.toISOString(),
  fromDriver: (value) => ((value as unknown) instanceof Date ? (value as unknown as Date) : parsePgTimestamp(value)),
});
