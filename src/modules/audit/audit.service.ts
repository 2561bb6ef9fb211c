import type { Executor } from '../../db/client.js';
import { write } from '../../db/unit-of-work.js';
import { statement, type Part } from '../../db/statement.js';
import type { Actor } from '../../auth/principal.js';
import type { Searchable } from '../../db/search.js';
import { pageOf, type SearchQuery, type SearchResult } from '../../shared/search.js';
import { auditedRead, auditedSearch, entriesInsert, entryPart, orderedSearchSql, type ReadEntry } from './audit.queries.js';

import type { AuditEntry } from './audit.entry.js';

export type { AuditAction, AuditEntry } from './audit.entry.js';

export interface AuditLog {
  /** Appends entries with the caller's executor, so they commit or roll back with the change they describe. */
  record(exec: Executor, actor: Actor, ...entries: AuditEntry[]): Promise<void>;
  /** One entry as a part of a change written in one statement (UnitOfWork.once): values `{ actor, entry }`. */
  entry: typeof entryPart;
  /**
   * A read and its audit entries in one statement, built once (db/statement.ts): `select` is the module's
   * named query (rows with `id` and `clinic_id`); each call runs it with the request's values and appends a
   * read entry for each row it returns, so an entry exists exactly when its row was returned. `details`
   * names columns of the row to copy into the entry. Rows come back as PostgreSQL named them.
   */
  readStatement<V extends object>(entry: ReadEntry, select: Part<V>): (exec: Executor, actor: Actor, values: V) => Promise<Record<string, unknown>[]>;
  /**
   * A search (rows with `id`, at most limit + 1) and one search entry naming the filters (names, never
   * values) and the ids returned, in one statement built once per set of filters a request has. Rows in id
   * order, or with `order: '_ord'` in the order of the select's `_ord` column.
   */
  searchStatement<V extends object>(
    resourceType: string,
    select: Part<V>,
    order?: 'id' | '_ord',
  ): (exec: Executor, actor: Actor, entry: { clinicId: string | null; filters: string[]; limit: number }, values: V) => Promise<Record<string, unknown>[]>;
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
    entry: entryPart,

    readStatement<V extends object>(entry: ReadEntry, select: Part<V>) {
      const read = statement(auditedRead(entry, select));
      return (exec: Executor, actor: Actor, values: V) => read.run(exec, { actor, v: values });
    },

    searchStatement<V extends object>(resourceType: string, select: Part<V>, order: 'id' | '_ord' = 'id') {
      const search = statement(auditedSearch(resourceType, select, order));
      return (exec: Executor, actor: Actor, entry: { clinicId: string | null; filters: string[]; limit: number }, values: V) =>
        search.run(exec, { actor, entry: { clinicId: entry.clinicId, filters: JSON.stringify(entry.filters), limit: entry.limit }, v: values });
    },

    async page(exec, actor, entry, searchable, search, map) {
      const query = searchable.select(search, entry.clinicId ?? undefined);
      const result = await exec.execute(orderedSearchSql(actor, { ...entry, limit: search.limit }, query));
      return pageOf(result.rows, search.limit, map);
    },

  };
}
