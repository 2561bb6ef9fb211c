import { Placeholder, eq, getTableColumns, sql, type AnyColumn, type Query, type SQL, type SQLWrapper, type Table } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import { drizzle } from 'drizzle-orm/node-postgres';
import type { Db, Executor } from './client.js';

const dialect = new PgDialect();

/** A drizzle instance with no connection, for building the statements of compiled() at module level. */
export const builder: Db = drizzle.mock();

/**
 * A statement drizzle builds once, on first use, with a placeholder wherever `build` reads from its
 * argument, then runs as text and values. drizzle otherwise rebuilds a query's SQL on every execution:
 * profiling the hot paths (npm run bench -- --cpu-prof) put building and mapping at about half of the
 * service's own CPU per request.
 *
 * `build` receives a stand-in for the values: `v.id` is the placeholder "id"; `v.row.id` is "row.id", so a
 * whole row can be handed to an insert builder and each column gets its own placeholder (and its column's
 * encoding, as drizzle applies to placeholders). `build` must not branch on, spread, or call methods of
 * the values: it runs once, and its shape is the statement's for every later call.
 */
export interface Compiled<V> {
  /** Rows as PostgreSQL names them (see fromRaw), on any executor: the pool or a transaction. */
  run(exec: Executor, values: V): Promise<Record<string, unknown>[]>;
  /** The statement text (for tests and EXPLAIN). */
  text(): string;
}

export function compiled<V extends object>(build: (v: V) => SQLWrapper): Compiled<V> {
  let query: Query | undefined;
  const compile = (): Query => {
    query ??= dialect.sqlToQuery(build(standIn<V>('')).getSQL());
    return query;
  };
  return {
    async run(exec, values) {
      const q = compile();
      // Filled here rather than by drizzle, whose column encoders do not take null.
      const params = q.params.map((p) => {
        if (p === null || typeof p !== 'object') return p; // a value fixed when the statement was built
        const param = p as { value?: unknown; encoder?: { mapToDriverValue(v: unknown): unknown } };
        const placeholder = p instanceof Placeholder ? p : param.value instanceof Placeholder ? param.value : undefined;
        if (!placeholder) return p;
        let value: unknown = values;
        for (const key of (placeholder.name as string).split('.')) value = (value as Record<string, unknown> | null | undefined)?.[key];
        if (value === undefined || value === null) return null;
        return placeholder === p || !param.encoder ? value : param.encoder.mapToDriverValue(value);
      });
      const session = (exec as unknown as { _: { session: PreparingSession } })._.session;
      const result = await session.prepareQuery({ sql: q.sql, params }, undefined, undefined, false).execute({});
      return (result as { rows: Record<string, unknown>[] }).rows;
    },
    text: () => compile().sql,
  };
}

/**
 * A stand-in row with a placeholder for each of the table's columns, for an insert builder (which takes the
 * keys of the object it is given): `insert(t).values(columnsOf(t, v.row))`. Every column is written, so the
 * row passed at run time must be complete.
 */
export function columnsOf<R extends object>(table: Table, row: R): R {
  return Object.fromEntries(Object.keys(getTableColumns(table)).map((key) => [key, (row as Record<string, unknown>)[key]])) as R;
}

/** Which of `values` are set: the key a statement compiled per shape (say, per set of search filters) is kept under. */
export function shapeOf(values: object): string {
  return Object.entries(values)
    .filter(([, v]) => v !== undefined)
    .map(([k]) => k)
    .sort()
    .join(',');
}

/** A stand-in whose keys are those of `shape`: for `present.x !== undefined` tests while building that shape. */
export function presentIn<V>(shape: string): V {
  return Object.fromEntries(shape.split(',').filter(Boolean).map((k) => [k, ''])) as V;
}

/** `column = value` for each key of `columns` that `present` has, the value taken from `v` (a search's filters). */
export function equalities<V extends object>(v: V, present: V, columns: { [K in keyof V]?: AnyColumn }): SQL[] {
  return (Object.keys(columns) as (keyof V)[]).filter((k) => present[k] !== undefined).map((k) => eq(columns[k]!, v[k]));
}

interface PreparingSession {
  prepareQuery(query: Query, fields: undefined, name: undefined, arrayMode: boolean): { execute(values: Record<string, unknown>): Promise<unknown> };
}

/** What drizzle reads of a placeholder: a value passed to compiled() may not have a field of either name. */
const OWN = new Set(['name', 'getSQL']);

/** A placeholder named `path` whose other properties are placeholders named `path.property`. */
function standIn<V>(path: string): V {
  const placeholder: object = path ? sql.placeholder(path) : (Object.create(null) as object);
  return new Proxy(placeholder, {
    get(target, prop, receiver): unknown {
      if (typeof prop === 'symbol' || (path && OWN.has(prop))) return Reflect.get(target, prop, receiver) as unknown;
      return standIn<unknown>(path ? `${path}.${prop}` : prop);
    },
  }) as V;
}
