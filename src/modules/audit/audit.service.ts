import type { SQL, SQLWrapper } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { write } from '../../db/unit-of-work.js';
import { compiled, type Compiled } from '../../db/compiled.js';
import type { Actor } from '../../auth/principal.js';
import type { Searchable } from '../../db/search.js';
import { pageOf, type SearchQuery, type SearchResult } from '../../shared/search.js';
import { entriesInsert, orderedSearchSql, readThroughSql, searchThroughSql } from './audit.queries.js';

export type AuditAction = 'create' | 'read' | 'search' | 'update' | 'state-change' | 'export';

export interface AuditEntry {
  action: AuditAction;
  resourceType: string;
  resourceId?: string | null;
  /** The clinic the record belongs to (null for supplier records such as donors and lots). */
  clinicId?: string | null;
  outcome?: 'success';
  details?: Record<string, unknown>;
}

export interface AuditLog {
  /** Appends entries with the caller's executor, so they commit or roll back with the change they describe. */
  record(exec: Executor, actor: Actor, ...entries: AuditEntry[]): Promise<void>;
  /** The same insert as a statement, for a change written in one statement (UnitOfWork.once). */
  statement(exec: Executor, actor: Actor, ...entries: AuditEntry[]): ReturnType<typeof entriesInsert>;
  /**
   * A read and its audit entries in one statement, compiled once (see compiled()): `build` makes the query
   * (rows with `id` and `clinic_id` columns) from stand-in values; each call runs it with the request's values
   * and appends a read entry for each row it returns, so an entry exists exactly when its row was returned.
   * `details` is a jsonb expression over the returned row `r`. Rows come back as PostgreSQL named them.
   */
  readStatement<V extends object>(
    entry: { resourceType: string; details?: SQL },
    build: (v: V) => SQLWrapper,
  ): (exec: Executor, actor: Actor, values: V) => Promise<Record<string, unknown>[]>;
  /**
   * A search (rows with `id`, at most limit + 1) and one search entry naming the ids returned, in one
   * statement compiled once per `shape` (which filters a request has, see shapeOf): `build` makes the search
   * from stand-in values for that shape.
   */
  searchStatement<V extends object>(
    resourceType: string,
    build: (shape: string, v: V) => SQLWrapper,
  ): (exec: Executor, actor: Actor, entry: { shape: string; clinicId: string | null; filters: string[]; limit: number }, values: V) => Promise<Record<string, unknown>[]>;
  /**
   * One page of a module's search (db/search.ts) and one search entry naming the criteria (`filters`: names,
   * never values) and the ids returned, in one statement; rows are mapped by `map` in the page's order.
   */
  page<T, F extends string, S extends string>(
    exec: Executor,
    actor: Actor,
    entry: { resourceType: string; clinicId: string | null; filters: string[] },
    searchable: Searchable<F, S>,
    search: SearchQuery<F, S>,
    map: (raw: Record<string, unknown>) => T,
  ): Promise<SearchResult<T>>;
}

export function createAuditLog(): AuditLog {
  return {
    async record(exec, actor, ...entries) {
      if (entries.length === 0) return;
      await write(exec, entriesInsert(exec, actor, ...entries));
    },
    statement: entriesInsert,

    readStatement<V extends object>(entry: { resourceType: string; details?: SQL }, build: (v: V) => SQLWrapper) {
      const statement = compiled<{ actor: Actor; v: V }>(({ actor, v }) => readThroughSql(actor, entry, build(v)));
      return (exec: Executor, actor: Actor, values: V) => statement.run(exec, { actor, v: values });
    },

    searchStatement<V extends object>(resourceType: string, build: (shape: string, v: V) => SQLWrapper) {
      type Values = { actor: Actor; entry: { clinicId: string | null; filters: string; limit: number }; v: V };
      const statements = new Map<string, Compiled<Values>>();
      return (exec: Executor, actor: Actor, entry: { shape: string; clinicId: string | null; filters: string[]; limit: number }, values: V) => {
        let statement = statements.get(entry.shape);
        if (!statement) {
          statement = compiled<Values>((x) =>
            searchThroughSql(x.actor, { resourceType, clinicId: x.entry.clinicId, filters: x.entry.filters, limit: x.entry.limit }, build(entry.shape, x.v)),
          );
          statements.set(entry.shape, statement);
        }
        return statement.run(exec, { actor, entry: { clinicId: entry.clinicId, filters: JSON.stringify(entry.filters), limit: entry.limit }, v: values });
      };
    },

    async page(exec, actor, entry, searchable, search, map) {
      const query = searchable.select(search, entry.clinicId ?? undefined);
      const result = await exec.execute(orderedSearchSql(actor, { ...entry, limit: search.limit }, query));
      return pageOf(result.rows, search.limit, map);
    },

  };
}
