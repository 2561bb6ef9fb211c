import { and, eq, or, sql, type AnyColumn, type SQL, type Table } from 'drizzle-orm';
import type { Executor } from './client.js';
import type { Condition, DateMatch, Match, SearchQuery, StringMatch } from '../shared/search.js';

/**
 * How a module's searchable field is written in SQL:
 * - `string`: a text column; prefix and contains compare `search_fold()` of both sides (lower case, no accents,
 *   NFC; migration 0014), indexed per module with `text_pattern_ops` (prefix) and `gin_trgm_ops` (contains);
 *   exact compares the column itself.
 * - `instant`: a timestamptz column, a point in time.
 * - `day`: a date column, the whole day (a birth date): compared with day-aligned date values only.
 * - `value`: equality (ids, codes of the field's own vocabulary, flags).
 * - `custom`: the module writes the condition itself (a jsonb probe, say).
 */
export type FieldSql =
  | { type: 'string'; column: AnyColumn }
  | { type: 'instant'; column: AnyColumn }
  | { type: 'day'; column: AnyColumn }
  | { type: 'value'; column: AnyColumn }
  | { type: 'custom'; build: (m: Match) => SQL };

export type Fields<F extends string> = Record<F, FieldSql>;

/** LIKE's own characters in a value taken literally. */
const likeLiteral = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

function stringSql(column: AnyColumn, m: StringMatch): SQL {
  switch (m.mode) {
    case 'exact':
      return eq(column, m.value);
    case 'prefix':
      return sql`search_fold(${column}) like (search_fold(${likeLiteral(m.value)}) || '%')`;
    case 'contains':
      return sql`search_fold(${column}) like ('%' || search_fold(${likeLiteral(m.value)}) || '%')`;
  }
}

/**
 * A date value against a field (FHIR R4 §3.1.1.4.2 with the precision rules): the field's range is a point
 * (an instant) or a whole day, the value's is `[start, end)`. For both, with the field's start `t`:
 * eq `start <= t < end` · ne its negation · lt/eb `t < start` · gt/sa `t >= end` · le `t < end` · ge `t >= start`
 * (a day-aligned value's bounds fall on day boundaries, so a day compares as its first instant does).
 */
function dateSql(t: SQL, m: DateMatch, cast: 'timestamptz' | 'date'): SQL {
  const bound = (v: string) => (cast === 'date' ? sql`${v === 'infinity' ? v : v.slice(0, 10)}::date` : sql`${v}::timestamptz`);
  const start = bound(m.start);
  const end = bound(m.end);
  switch (m.prefix) {
    case 'eq':
      return sql`(${t} >= ${start} and ${t} < ${end})`;
    case 'ne':
      return sql`not (${t} >= ${start} and ${t} < ${end})`;
    case 'lt':
    case 'eb':
      return sql`${t} < ${start}`;
    case 'gt':
    case 'sa':
      return sql`${t} >= ${end}`;
    case 'le':
      return sql`${t} < ${end}`;
    case 'ge':
      return sql`${t} >= ${start}`;
  }
}

function matchSql(field: FieldSql, m: Match): SQL {
  if (field.type === 'custom') return field.build(m);
  if (field.type === 'string' && m.kind === 'string') return stringSql(field.column, m);
  if (field.type === 'instant' && m.kind === 'date') return dateSql(sql`${field.column}`, m, 'timestamptz');
  if (field.type === 'day' && m.kind === 'date' && m.dayAligned) return dateSql(sql`${field.column}`, m, 'date');
  if (field.type === 'value' && m.kind === 'value') return eq(field.column, m.value);
  // The facade maps each parameter to a field of the right kind; anything else is a programming error.
  throw new Error(`a ${m.kind} match cannot be applied to a ${field.type} field`);
}

/** The WHERE of `where`: every condition (AND), each any of its matches (OR); an empty OR is false. */
function whereSql<F extends string>(fields: Fields<F>, where: Condition<F>[]): SQL | undefined {
  const conditions = where.map((c) => (c.anyOf.length === 0 ? sql`false` : or(...c.anyOf.map(({ field, match }) => matchSql(fields[field], match)))!));
  return conditions.length ? and(...conditions) : undefined;
}

/**
 * Keyset paging of a sorted search: the ORDER BY (the sort column, a timestamptz, then id, both in the sort's
 * direction), the condition that resumes after `after`, and the text of each row's sort key (for the next
 * `SearchKey`; cast back to timestamptz, so it round-trips PostgreSQL's microseconds).
 */
function keyset<S extends string>(
  sortColumns: Record<S, AnyColumn>,
  id: AnyColumn,
  q: Pick<SearchQuery<string, S>, 'sort' | 'after'>,
): { orderBy: SQL; after: SQL | undefined; key: SQL } {
  if (!q.sort) {
    return { orderBy: sql`${id}`, after: q.after ? sql`${id} > ${q.after.id}` : undefined, key: sql`null::text` };
  }
  const column = sortColumns[q.sort.field];
  const dir = q.sort.descending ? sql`desc` : sql`asc`;
  const cmp = q.sort.descending ? sql`<` : sql`>`;
  const after = q.after && q.after.key !== null ? sql`(${column}, ${id}) ${cmp} (${q.after.key}::timestamptz, ${q.after.id}::uuid)` : undefined;
  return { orderBy: sql`${column} ${dir}, ${id} ${dir}`, after, key: sql`${column}::text` };
}

/** What a module declares to be searchable: its table, id, fields, timestamp sort columns and tenancy column. */
export interface SearchSpec<F extends string, S extends string> {
  table: Table;
  id: AnyColumn;
  /** The column a clinic's searches are limited to (none: supplier records, searched by anyone). */
  clinic?: AnyColumn;
  fields: Fields<F>;
  sortColumns: Record<S, AnyColumn>;
}

/** A module's search statements, from its SearchSpec. */
export interface Searchable<F extends string, S extends string> {
  /**
   * One page of rows matching `q` (limit + 1, every column), with `sort_key` (see keyset), `_ord` (their
   * position in the page's order, which AuditLog.page keeps) and `_total` (every match, when `withTotal`).
   */
  select(q: SearchQuery<F, S>, clinicId?: string): SQL;
  /** That page's rows, run as is (records whose reads are not audited: supplier lots). */
  rows(exec: Executor, q: SearchQuery<F, S>, clinicId?: string): Promise<Record<string, unknown>[]>;
  /** How many rows match `where` (a total after the last page's cursor). */
  count(exec: Executor, where: Condition<F>[], clinicId?: string): Promise<number>;
  /** Ids of the rows matching `where`, at most `max` (for a search chained through this one). */
  ids(exec: Executor, where: Condition<F>[], max: number, clinicId?: string): Promise<string[]>;
}

export function searchable<F extends string, S extends string>(spec: SearchSpec<F, S>): Searchable<F, S> {
  const matching = (where: Condition<F>[], clinicId: string | undefined) =>
    and(spec.clinic && clinicId !== undefined ? eq(spec.clinic, clinicId) : undefined, whereSql(spec.fields, where));
  const from = (condition: SQL | undefined) => sql`from ${spec.table}${condition ? sql` where ${condition}` : sql``}`;
  const select = (q: SearchQuery<F, S>, clinicId?: string): SQL => {
    const { orderBy, after, key } = keyset(spec.sortColumns, spec.id, q);
    const matches = matching(q.where, clinicId);
    // The total as an uncorrelated subquery: computed once, no round trip of its own.
    const total = q.withTotal ? sql`(select count(*)::int ${from(matches)})` : sql`null::int`;
    return sql`select *, ${key} as sort_key, row_number() over (order by ${orderBy}) as _ord, ${total} as _total ${from(and(matches, after))} order by ${orderBy} limit ${q.limit + 1}`;
  };
  return {
    select,
    async rows(exec, q, clinicId) {
      return (await exec.execute(select(q, clinicId))).rows;
    },
    async count(exec, where, clinicId) {
      const result = await exec.execute(sql`select count(*)::int as n ${from(matching(where, clinicId))}`);
      return (result.rows[0] as { n: number } | undefined)?.n ?? 0;
    },
    async ids(exec, where, max, clinicId) {
      const result = await exec.execute(sql`select ${spec.id} as id ${from(matching(where, clinicId))} limit ${max}`);
      return result.rows.map((r) => String(r.id));
    },
  };
}
