import { sql, type SQL, type SQLWrapper } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { write } from '../../db/unit-of-work.js';
import { compiled, type Compiled } from '../../db/compiled.js';
import type { Actor } from '../../auth/principal.js';
import { auditEvents } from './audit.table.js';

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
   * A search built per request (db/search.ts searchSelect: rows with `id` and `_ord`, at most limit + 1) and one
   * search entry naming the ids returned, in one statement; rows come back in `_ord` order, as PostgreSQL named them.
   */
  search(
    exec: Executor,
    actor: Actor,
    entry: { resourceType: string; clinicId: string | null; filters: string[]; limit: number },
    query: SQLWrapper,
  ): Promise<Record<string, unknown>[]>;
}

function entriesInsert(exec: Executor, actor: Actor, ...entries: AuditEntry[]) {
  return exec.insert(auditEvents).values(
    entries.map((e) => ({
      actorSub: actor.sub,
      actorClinicId: actor.clinicId,
      action: e.action,
      resourceType: e.resourceType,
      resourceId: e.resourceId ?? null,
      clinicId: e.clinicId ?? null,
      requestId: actor.requestId,
      outcome: e.outcome ?? 'success',
      details: e.details ?? null,
    })),
  );
}

function readThroughSql(actor: Actor, entry: { resourceType: string; details?: SQL }, query: SQLWrapper): SQL {
  return sql`
    with r as (${query}),
    a as (
      insert into audit_events (actor_sub, actor_clinic_id, action, resource_type, resource_id, clinic_id, request_id, outcome, details)
      select ${actor.sub}, ${actor.clinicId}, 'read', ${entry.resourceType}, r.id::text, r.clinic_id, ${actor.requestId}, 'success',
             ${entry.details ?? sql`null::jsonb`} from r
    )
    select * from r`;
}

/** `filters` is the JSON text of the filter names. */
function searchThroughSql(actor: Actor, entry: { resourceType: string; clinicId: string | null; filters: string; limit: number }, query: SQLWrapper): SQL {
  return sql`
    with r as (${query}),
    a as (
      insert into audit_events (actor_sub, actor_clinic_id, action, resource_type, resource_id, clinic_id, request_id, outcome, details)
      values (${actor.sub}, ${actor.clinicId}, 'search', ${entry.resourceType}, null, ${entry.clinicId}, ${actor.requestId}, 'success',
        jsonb_build_object(
          'filters', ${entry.filters}::jsonb,
          'resultIds', coalesce((select jsonb_agg(x.id order by x.id) from (select id from r order by id limit ${entry.limit}) x), '[]'::jsonb)))
    )
    select * from r order by id`;
}

function orderedSearchSql(actor: Actor, entry: { resourceType: string; clinicId: string | null; filters: string[]; limit: number }, query: SQLWrapper): SQL {
  return sql`
    with r as (${query}),
    a as (
      insert into audit_events (actor_sub, actor_clinic_id, action, resource_type, resource_id, clinic_id, request_id, outcome, details)
      values (${actor.sub}, ${actor.clinicId}, 'search', ${entry.resourceType}, null, ${entry.clinicId}, ${actor.requestId}, 'success',
        jsonb_build_object(
          'filters', ${JSON.stringify(entry.filters)}::jsonb,
          'resultIds', coalesce((select jsonb_agg(x.id order by x._ord) from (select id, _ord from r order by _ord limit ${entry.limit}) x), '[]'::jsonb)))
    )
    select * from r order by _ord`;
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

    async search(exec, actor, entry, query) {
      const result = await exec.execute(orderedSearchSql(actor, entry, query));
      return result.rows;
    },

  };
}
