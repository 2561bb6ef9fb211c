import { and, asc, desc, eq, gt, gte, lte, or, sql, type SQL, type SQLWrapper } from 'drizzle-orm';
import type { Db, Executor } from '../../db/client.js';
import { builder, part, sqlOf, type Part } from '../../db/statement.js';
import type { Actor } from '../../auth/principal.js';
import type { AuditEntry } from './audit.entry.js';
import type { PageRequest } from '../../shared/paging.js';
import { auditChain, auditEvents } from './audit.table.js';

export interface AuditFilters {
  resourceType?: string;
  resourceId?: string;
  actor?: string;
  clinicId?: string;
  from?: string;
  to?: string;
}

export async function listAuditEvents(exec: Executor, visibleClinic: string | null, f: AuditFilters, page: PageRequest<number>) {
  const where: (SQL | undefined)[] = [];
  if (visibleClinic) where.push(or(eq(auditEvents.clinicId, visibleClinic), eq(auditEvents.actorClinicId, visibleClinic)));
  if (page.after !== undefined) where.push(gt(auditEvents.id, page.after));
  if (f.resourceType) where.push(eq(auditEvents.resourceType, f.resourceType));
  if (f.resourceId) where.push(eq(auditEvents.resourceId, f.resourceId));
  if (f.actor) where.push(eq(auditEvents.actorSub, f.actor));
  if (f.clinicId) where.push(eq(auditEvents.clinicId, f.clinicId));
  if (f.from) where.push(gte(auditEvents.occurredAt, new Date(f.from)));
  if (f.to) where.push(lte(auditEvents.occurredAt, new Date(f.to)));
  return exec
    .select({ event: auditEvents, seq: auditChain.seq, hash: auditChain.hash })
    .from(auditEvents)
    .leftJoin(auditChain, eq(auditChain.eventId, auditEvents.id))
    .where(and(...where))
    .orderBy(asc(auditEvents.id))
    .limit(page.limit + 1);
}

const SEALER_LOCK = 7314201119; // the advisory lock audit_seal() takes (migrations/0007)

/**
 * Seals queued entries in batches until the queue is empty. By default it gives way when another instance
 * is sealing (that one will finish the job); with `wait` it queues for the sealer lock, so that when it
 * returns every entry committed before the call is in the chain (verify needs that).
 */
export async function sealAll(db: Db, opts: { batch?: number; wait?: boolean } = {}): Promise<number> {
  const batch = opts.batch ?? 5000;
  let total = 0;
  for (;;) {
    const n = await db.transaction(async (tx) => {
      if (opts.wait) await tx.execute(sql`select pg_advisory_xact_lock(${SEALER_LOCK})`);
      const result = await tx.execute(sql`select audit_seal(${batch}) as n`);
      return Number((result.rows[0] as { n: number }).n);
    });
    if (n <= 0) return total;
    total += n;
    if (n < batch) return total;
  }
}

export type ChainFault = 'entry-altered' | 'broken-link' | 'sequence-gap' | 'entry-missing';

export interface ChainCheck {
  checked: number;
  firstInvalid: { chainSeq: number; auditEventId: number; reason: ChainFault } | null;
  notInChain: number;
}

/**
 * Recomputes the chain over [from, to] (by entry time) set-wise: every link's prev_hash is the previous
 * link's hash, every hash recomputes from its entry as it is now, seq has no gap, no entry is missing.
 */
export async function verifyChain(exec: Executor, from?: string, to?: string): Promise<ChainCheck> {
  const rangeFrom = from ? sql`and e.occurred_at >= ${from}` : sql``;
  const rangeTo = to ? sql`and e.occurred_at <= ${to}` : sql``;
  const result = await exec.execute(sql`
    with bounds as (
      select coalesce(min(c.seq), 1) as lo, coalesce(max(c.seq), 0) as hi
      from audit_chain c join audit_events e on e.id = c.event_id
      where true ${rangeFrom} ${rangeTo}
    ),
    links as (
      select c.seq, c.event_id, c.prev_hash, c.hash, e.id as entry_id,
             lag(c.hash) over (order by c.seq) as prior_hash,
             lag(c.seq) over (order by c.seq) as prior_seq,
             case when e.id is null then null else audit_link_hash(c.prev_hash, e) end as recomputed
      from audit_chain c
      left join audit_events e on e.id = c.event_id
      cross join bounds b
      where c.seq between b.lo - 1 and b.hi
    ),
    judged as (
      select l.seq, l.event_id,
        case
          when l.entry_id is null then 'entry-missing'
          when l.seq = 1 and l.prev_hash <> repeat('0', 64) then 'broken-link'
          when l.seq > 1 and l.prior_seq is null and l.seq > (select lo from bounds) then 'sequence-gap'
          when l.prior_seq is not null and l.prior_seq <> l.seq - 1 then 'sequence-gap'
          when l.prior_seq is not null and l.prev_hash <> l.prior_hash then 'broken-link'
          when l.hash <> l.recomputed then 'entry-altered'
        end as reason
      from links l cross join bounds b
      where l.seq >= b.lo
    )
    select
      (select count(*) from judged)::int as checked,
      (select row_to_json(x) from (select seq, event_id, reason from judged where reason is not null order by seq limit 1) x) as first_invalid,
      (select count(*) from audit_events e
        where not exists (select 1 from audit_chain c where c.event_id = e.id)
          and not exists (select 1 from audit_unsealed u where u.event_id = e.id)
          ${rangeFrom} ${rangeTo})::int as not_in_chain
  `);
  const row = result.rows[0] as { checked: number; first_invalid: { seq: number; event_id: number; reason: ChainFault } | null; not_in_chain: number };
  return {
    checked: row.checked,
    firstInvalid: row.first_invalid ? { chainSeq: Number(row.first_invalid.seq), auditEventId: Number(row.first_invalid.event_id), reason: row.first_invalid.reason } : null,
    notInChain: row.not_in_chain,
  };
}

/** The chain's last link (highest seq): its entry, hash and when it was sealed; null while nothing is sealed. */
export async function chainHead(exec: Executor): Promise<{ seq: number; hash: string; auditEventId: number; sealedAt: Date } | null> {
  const [row] = await exec
    .select({ seq: auditChain.seq, hash: auditChain.hash, auditEventId: auditChain.eventId, sealedAt: auditChain.sealedAt })
    .from(auditChain)
    .orderBy(desc(auditChain.seq))
    .limit(1);
  return row ?? null;
}

export async function queuedCount(exec: Executor): Promise<number> {
  const result = await exec.execute(sql`select count(*)::int as n from audit_unsealed`);
  return (result.rows[0] as { n: number }).n;
}

/** The columns every audit insert written as SQL text fills, in this order (the drizzle insert fills the same). */
const AUDIT_COLUMNS = sql.raw('(actor_sub, actor_clinic_id, action, resource_type, resource_id, clinic_id, request_id, outcome, details)');

/** Who an entry is by: the fields of the principal an audit entry records. */
export type AuditActor = Pick<Actor, 'sub' | 'clinicId' | 'requestId'>;

/** The insert of audit entries by `actor` (unexecuted: recorded with `write`, or composed by UnitOfWork.once). */
export function entriesInsert(exec: Executor, actor: AuditActor, ...entries: AuditEntry[]) {
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

const ACTOR_KEYS = { sub: true, clinicId: true, requestId: true } as const;

/** One audit entry as a part of a change written in one statement (UnitOfWork.once): values `{ actor, entry }`. */
export const entryPart = part<{ actor: AuditActor; entry: Required<Omit<AuditEntry, 'outcome'>> }>(
  { actor: ACTOR_KEYS, entry: { action: true, resourceType: true, resourceId: true, clinicId: true, details: true } },
  (p) => entriesInsert(builder, p.actor, p.entry),
);

/** What a read entry says besides who read which row: `details` names row columns to copy (`{ patientId: 'patient_id' }`). */
export interface ReadEntry {
  resourceType: string;
  details?: Record<string, string>;
  /** The row's column naming its clinic (default `clinic_id`); null for supplier records, which have none. */
  clinicColumn?: string | null;
}

/**
 * A read (`select`: rows with `id` and `clinic_id`) and, for each row it returns, one read entry, in one
 * statement: values `{ actor, v }` with `v` the select's values. Rows come back as PostgreSQL names them.
 */
export function auditedRead<V>(entry: ReadEntry, select: Part<V>): Part<{ actor: AuditActor; v: V }> {
  const details = entry.details
    ? sql`jsonb_build_object(${sql.join(Object.entries(entry.details).map(([key, column]) => sql`${key}::text, r.${sql.identifier(column)}`), sql`, `)})`
    : sql`null::jsonb`;
  const clinic = entry.clinicColumn === null ? sql`null` : sql`r.${sql.identifier(entry.clinicColumn ?? 'clinic_id')}`;
  return {
    keys: { actor: ACTOR_KEYS, v: select.keys } as Part<{ actor: AuditActor; v: V }>['keys'],
    shaped: select.shaped,
    build: (p, present) => sql`
      with r as (${sqlOf(select, 'v.', present)}),
      a as (
        insert into audit_events ${AUDIT_COLUMNS}
        select ${p.actor.sub}, ${p.actor.clinicId}, 'read', ${entry.resourceType}, r.id::text, ${clinic}, ${p.actor.requestId}, 'success', ${details} from r
      )
      select * from r`,
  };
}

/** A search entry's values: the clinic searched, the filter names (JSON text), and how many rows make the page. */
export interface SearchEntry {
  clinicId: string | null;
  filters: string;
  limit: number;
}

/**
 * A search (`select`: at most limit + 1 rows with `id`) and one search entry naming the filters and the ids
 * returned, in one statement, rows in id order, or with `order: '_ord'` in the order of the select's `_ord`
 * column (a search ordered by something else than id): values `{ actor, entry, v }`.
 */
export function auditedSearch<V>(resourceType: string, select: Part<V>, order: 'id' | '_ord' = 'id'): Part<{ actor: AuditActor; entry: SearchEntry; v: V }> {
  return {
    keys: { actor: ACTOR_KEYS, entry: { clinicId: true, filters: true, limit: true }, v: select.keys } as Part<{ actor: AuditActor; entry: SearchEntry; v: V }>['keys'],
    shaped: select.shaped,
    build: (p, present) => searchedThrough(sqlOf(select, 'v.', present), p.actor, { resourceType, clinicId: p.entry.clinicId, filters: p.entry.filters, limit: p.entry.limit }, order),
  };
}

/** A per-request search (rows with `id`, `_ord`) and one search entry naming the ids returned, in page order. */
export function orderedSearchSql(actor: AuditActor, entry: { resourceType: string; clinicId: string | null; filters: string[]; limit: number }, query: SQLWrapper): SQL {
  return searchedThrough(query, actor, { ...entry, filters: JSON.stringify(entry.filters) }, '_ord');
}

/**
 * A search's rows (`r`, in `order`) and its one search entry: the filter names (`filters`, JSON text) and the
 * ids of the first `limit` rows in that order. Values are placeholders (a statement built once) or real values.
 */
function searchedThrough(query: SQLWrapper, actor: AuditActor, entry: { resourceType: string; clinicId: string | null; filters: string; limit: number }, order: 'id' | '_ord'): SQL {
  const by = sql.raw(order);
  return sql`
    with r as (${query}),
    a as (
      insert into audit_events ${AUDIT_COLUMNS}
      values (${actor.sub}, ${actor.clinicId}, 'search', ${entry.resourceType}, null, ${entry.clinicId}, ${actor.requestId}, 'success',
        jsonb_build_object(
          'filters', ${entry.filters}::jsonb,
          'resultIds', coalesce((select jsonb_agg(x.id order by x.ord) from (select id, ${by} as ord from r order by ${by} limit ${entry.limit}) x), '[]'::jsonb)))
    )
    select * from r order by ${by}`;
}

