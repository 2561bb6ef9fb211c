/**
 * Search criteria a module's list answers, independent of HTTP and of FHIR: an AND of conditions, each an OR
 * of matches on the module's own searchable fields. The FHIR facade turns search parameters (R4 §3.1.1) into
 * these; a module's queries turn them into SQL (db/search.ts).
 */

/** String matching (FHIR R4 §3.1.1.4.3): `prefix` and `contains` ignore case, accents and Unicode form; `exact` compares NFC text. */
export interface StringMatch {
  kind: 'string';
  mode: 'prefix' | 'exact' | 'contains';
  value: string;
}

/** FHIR R4 §3.1.1.4.2 date prefixes. */
export const DATE_PREFIXES = ['eq', 'ne', 'lt', 'gt', 'le', 'ge', 'sa', 'eb'] as const;
export type DatePrefix = (typeof DATE_PREFIXES)[number];

/**
 * A date search value: the half-open range of instants `[start, end)` its precision covers (2026 covers the
 * year, 2026-03-10 the UTC day, 2026-03-10T10:00Z the minute), as ISO 8601 UTC text; `end` is `infinity` past
 * 9999-12-31. `dayAligned` when both bounds are UTC midnights (a date without a time), the only form a
 * date-only field (a birth date) compares with.
 */
export interface DateMatch {
  kind: 'date';
  prefix: DatePrefix;
  start: string;
  end: string;
  dayAligned: boolean;
}

/** A token (R4 §3.1.1.4.9): `system` undefined = any system, null = no system; `code` undefined = any code. */
export interface TokenMatch {
  kind: 'token';
  system?: string | null;
  code?: string;
}

/** Equality with one value of the field (an id, a code of the field's own vocabulary, a flag). */
export interface ValueMatch {
  kind: 'value';
  value: string | boolean;
}

export type Match = StringMatch | DateMatch | TokenMatch | ValueMatch;

/** Holds when any of its matches holds; an empty list holds for no row. */
export interface Condition<F extends string> {
  anyOf: { field: F; match: Match }[];
}

/** Where a page resumes: the sort key of the last row (as text, null when sorted by id only) and its id. */
export interface SearchKey {
  key: string | null;
  id: string;
}

export interface SearchQuery<F extends string, S extends string = never> {
  /** Every condition holds (AND). */
  where: Condition<F>[];
  /** Rows in this order, then by id; by id alone when null. */
  sort: { field: S; descending: boolean } | null;
  limit: number;
  after?: SearchKey;
  /** Also count every match (whatever `after` and `limit`), in the same statement: the result's `total`. */
  withTotal?: boolean;
}

export interface SearchResult<T> {
  items: T[];
  /** Where the next page starts, null on the last page. */
  next: SearchKey | null;
  /** Every match, when the query asked `withTotal` and the page has a row to carry it (else undefined). */
  total?: number;
}

/** Rows (limit + 1, as PostgreSQL named them) to a page and where the next one starts, from their `sort_key` and `id`. */
export function pageOf<T>(rows: Record<string, unknown>[], limit: number, map: (raw: Record<string, unknown>) => T): SearchResult<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  const next = rows.length > limit && last ? { key: (last.sort_key as string | null) ?? null, id: String(last.id) } : null;
  const total = typeof rows[0]?._total === 'number' ? rows[0]._total : undefined;
  return { items: items.map(map), next, ...(total !== undefined ? { total } : {}) };
}
