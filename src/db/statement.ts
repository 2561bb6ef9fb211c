import { Param, Placeholder, SQL, StringChunk, getTableColumns, sql, type SQLWrapper, type Table } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import { drizzle } from 'drizzle-orm/node-postgres';
import { poolOf, rowTypes, statementName, type Db, type Executor } from './client.js';

/**
 * The statement mechanism (docs/adr/0003): SQL built once per shape with drizzle's public placeholders,
 * rendered once to text by drizzle's public dialect, then run with the request's values as parameters: on
 * the pool through pg's `query` with the statement's name (PostgreSQL parses and plans it once per
 * connection), in a transaction through drizzle's public `execute` on that transaction.
 *
 * A statement or part declares the values it takes (`keys`), and its builder receives placeholders for
 * exactly those: `p.id` is the placeholder "id", `p.row.id` is "row.id". Declared, not guessed: there is
 * no stand-in object and nothing reads a library's private fields.
 */

const dialect = new PgDialect();

/** A drizzle instance with no connection: query builders for statements built at module level. */
export const builder: Db = drizzle.mock();

/** Which values a statement takes: `true` for a value, nested keys for an object whose fields are values. */
export type Keys<V> = {
  readonly [K in keyof V]-?: NonNullable<V[K]> extends Date | readonly unknown[] | string | number | boolean | bigint ? true : true | Keys<NonNullable<V[K]>>;
};

/** Keys for every column of a table's row: `{ row: columnKeys(procedures) }` writes a whole row. */
export function columnKeys<T extends Table>(table: T): Keys<T['$inferSelect']> {
  return Object.fromEntries(Object.keys(getTableColumns(table)).map((k) => [k, true])) as Keys<T['$inferSelect']>;
}

/** The placeholders of `keys`, typed as the values they stand for (so query builders accept them). */
function placeholders<V>(keys: Keys<V>, prefix: string): V {
  const out: Record<string, unknown> = {};
  for (const [key, sub] of Object.entries(keys as Record<string, unknown>)) {
    out[key] = sub === true ? sql.placeholder(prefix + key) : placeholders(sub as Keys<unknown>, `${prefix}${key}.`);
  }
  return out as V;
}

/**
 * A named, typed piece of SQL a module's queries file defines and another module's queries compose (a
 * select to gather, a write or a guard of a change): opaque outside db/, so services hand over a typed
 * handle, never SQL. `present` names the values set in a request; a part that branches on it (a search's
 * optional filters) is compiled once per set of present values.
 */
export interface Part<V> {
  readonly keys: Keys<V>;
  /** @internal for db/ and queries files: the SQL with placeholders under `prefix`. */
  readonly build: (p: V, present: ReadonlySet<string>) => SQLWrapper;
  /** Whether the SQL depends on which values are present. */
  readonly shaped: boolean;
}

/** A part whose SQL is the same for every request. */
export function part<V>(keys: Keys<V>, build: (p: V) => SQLWrapper): Part<V> {
  return { keys, build: (p) => build(p), shaped: false };
}

/** A part whose SQL has a condition per optional value: `present.has('lotId')` when the request sets lotId. */
export function shapedPart<V>(keys: Keys<V>, build: (p: V, present: ReadonlySet<string>) => SQLWrapper): Part<V> {
  return { keys, build, shaped: true };
}

/**
 * The SQL of `part` with its placeholders under `prefix` (a composite's name for it, ending in "."), for
 * composing parts in db/ and queries files. Prefixes nest: called while a composite builds, `prefix` is
 * under the composite's own. `present` is the composite's, and the part sees its own share.
 */
export function sqlOf(part: AnyPart, prefix: string, present: ReadonlySet<string> = EMPTY): SQL {
  const build = part.build as (p: unknown, present: ReadonlySet<string>) => SQLWrapper;
  const outer = framePrefix;
  framePrefix = outer + prefix;
  try {
    return build(placeholders(part.keys as Keys<unknown>, framePrefix), part.shaped ? within(present, prefix) : EMPTY).getSQL();
  } finally {
    framePrefix = outer;
  }
}

/** The prefix of the part being built (builds are synchronous, so one frame at a time per process). */
let framePrefix = '';

const EMPTY: ReadonlySet<string> = new Set();

function within(present: ReadonlySet<string>, prefix: string): ReadonlySet<string> {
  const out = new Set<string>();
  for (const path of present) if (path.startsWith(prefix)) out.add(path.slice(prefix.length));
  return out;
}

/** The paths of the values that are set ("lotId", "v.lotId"): the shape a shaped statement is compiled for. */
function presentIn(values: unknown, prefix = '', out = new Set<string>()): Set<string> {
  for (const [k, v] of Object.entries(values as Record<string, unknown>)) {
    if (v === undefined) continue;
    out.add(prefix + k);
    if (v !== null && typeof v === 'object' && !(v instanceof Date) && !Array.isArray(v)) presentIn(v, `${prefix}${k}.`, out);
  }
  return out;
}

interface Compiled {
  text: string;
  /** The prepared statement's name (client.ts), undefined past the cap. */
  name: string | undefined;
  /** The text split around its parameters: segments.length === params.length + 1. */
  segments: StringChunk[];
  /** Each parameter: a fixed value, or where to read it from the values (and how to encode it). */
  params: ((values: unknown) => unknown)[];
}

function compile(query: SQLWrapper): Compiled {
  const { sql: text, params } = dialect.sqlToQuery(query.getSQL());
  const segments = text.split(/\$\d+\b/);
  const numbers = [...text.matchAll(/\$(\d+)\b/g)].map((m) => Number(m[1]));
  if (numbers.length !== params.length || numbers.some((n, i) => n !== i + 1)) {
    throw new Error('statement: a literal "$<digits>" in the SQL text; write it as a parameter');
  }
  return { text, name: statementName(text), segments: segments.map((s) => new StringChunk(s)), params: params.map(filler) };
}

/** How one rendered parameter gets its value: fixed, or a placeholder's value (encoded by its column, as drizzle would; null stays null). */
function filler(p: unknown): (values: unknown) => unknown {
  const placeholder: Placeholder<string> | undefined =
    p instanceof Placeholder ? (p as Placeholder<string>) : p instanceof Param && p.value instanceof Placeholder ? (p.value as Placeholder<string>) : undefined;
  if (!placeholder) return () => p;
  const path = placeholder.name.split('.');
  const encoder = p instanceof Param ? (p as Param<unknown, unknown>).encoder : undefined;
  return (values) => {
    let value = values;
    for (const key of path) value = (value as Record<string, unknown> | null | undefined)?.[key];
    if (value === undefined || value === null) return null;
    return encoder ? encoder.mapToDriverValue(value) : value;
  };
}

/**
 * A statement built once (per shape, for a shaped part) and run with each request's values. Rows come back
 * as PostgreSQL names their columns (map them with db/raw.ts fromRaw).
 */
export interface Statement<V> {
  run(exec: Executor, values: V): Promise<Record<string, unknown>[]>;
  /** The SQL text for these values' shape (tests, EXPLAIN). */
  text(values?: Partial<V>): string;
}

export function statement<V extends object>(source: Part<V>): Statement<V> {
  const byShape = new Map<string, Compiled>();
  const compiledFor = (values: object): Compiled => {
    const present: ReadonlySet<string> = source.shaped ? presentIn(values) : EMPTY;
    const key = source.shaped ? [...present].sort().join(',') : '';
    let c = byShape.get(key);
    if (!c) {
      c = compile(source.build(placeholders(source.keys, ''), present));
      byShape.set(key, c);
    }
    return c;
  };
  return {
    async run(exec, values) {
      const c = compiledFor(values);
      const params = c.params.map((fill) => fill(values));
      // On the pool, pg's public query API with the text rendered once (drizzle would render it again);
      // in a transaction, drizzle's public execute() on that transaction's connection.
      const pool = poolOf(exec);
      if (pool) return (await pool.query<Record<string, unknown>>({ name: c.name, text: c.text, values: params, types: rowTypes })).rows;
      const chunks: (StringChunk | Param)[] = [c.segments[0]!];
      for (let i = 0; i < params.length; i++) chunks.push(new Param(params[i]), c.segments[i + 1]!);
      return (await exec.execute(new SQL(chunks))).rows;
    },
    text: (values) => compiledFor(values ?? {}).text,
  };
}

/** `column = value` for each of `columns` whose value the request sets (a shaped part's optional filters). */
export function presentEqualities<V>(p: V, present: ReadonlySet<string>, columns: { [K in keyof V]?: SQLWrapper }): SQL[] {
  return (Object.keys(columns) as (keyof V & string)[]).filter((k) => present.has(k)).map((k) => sql`${columns[k]!} = ${p[k]}`);
}

/**
 * `source` with the value `key` written as the SQL `expr` makes of it (a json body merged with what a sibling
 * write of the same statement returned, say): the same keys and values; the build sees the expression where
 * the placeholder was.
 */
export function rewritten<V>(source: Part<V>, key: keyof V & string, expr: (value: unknown) => SQLWrapper): Part<V> {
  return { keys: source.keys, shaped: source.shaped, build: (p, present) => source.build({ ...p, [key]: expr(p[key]) }, present) };
}

/** The values a part takes. */
export type ValuesOf<P> = P extends Part<infer V> ? V : never;

/** A part of any values: a composite types each by its name. */
export interface AnyPart {
  readonly keys: object;
  readonly build: (p: never, present: ReadonlySet<string>) => SQLWrapper;
  readonly shaped: boolean;
}

type Gathered = Record<string, { one: AnyPart } | { many: AnyPart }>;
type PartOf<G> = G extends { one: infer P } ? P : G extends { many: infer P } ? P : never;

/**
 * One row with a json column per part, named by it: `one` is its first row as an object (null when none),
 * `many` its rows as an array. Reads from several modules in one round trip; values go under each name.
 */
export function gather<G extends Gathered>(parts: G): Part<{ [K in keyof G]: ValuesOf<PartOf<G[K]>> }> {
  const entries = Object.entries(parts).map(([name, g]) => [name, 'one' in g ? g.one : g.many, 'one' in g] as const);
  const keys = Object.fromEntries(entries.map(([name, p]) => [name, p.keys]));
  const shaped = entries.some(([, p]) => p.shaped);
  return {
    keys: keys as unknown as Keys<{ [K in keyof G]: ValuesOf<PartOf<G[K]>> }>,
    shaped,
    build: (_p, present) =>
      sql`select ${sql.join(
        entries.map(([name, p, one]) =>
          one
            ? sql`(select row_to_json(x) from (${sqlOf(p, `${name}.`, present)}) x) as ${sql.identifier(name)}`
            : sql`(select coalesce(json_agg(x), '[]'::json) from (${sqlOf(p, `${name}.`, present)}) x) as ${sql.identifier(name)}`,
        ),
        sql`, `,
      )}`,
  };
}

/** The keys of `values` that are set: `present` for running a shaped part's builder with real values (a count). */
export function setKeys(values: object): ReadonlySet<string> {
  return new Set(Object.entries(values).filter(([, v]) => v !== undefined).map(([k]) => k));
}
