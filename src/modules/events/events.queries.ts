import { sql, type SQL } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { builder, part } from '../../db/statement.js';
import { fromRaw } from '../../db/raw.js';
import { events } from './events.table.js';

export type EventRow = typeof events.$inferSelect;

/** An event as written: the id is the service's; position, transaction and time are the database's. */
export interface EventInsert {
  id: string;
  type: string;
  clinicId: string | null;
  subjectType: string;
  subjectId: string;
  lotIds: string[];
  data: Record<string, unknown>;
}

/**
 * The insert of events. A supplier event's audience is the clinics its lots had been shipped to, read in the
 * writing transaction by the database's `event_audience` (migration 0018); a clinic's own events need none.
 */
export function eventsInsert(exec: Executor, rows: EventInsert[]) {
  return exec.insert(events).values(
    rows.map((r) =>
      r.clinicId === null && r.lotIds.length
        ? {
            ...r,
            audience: sql`event_audience(${sql.param(r.lotIds)}::uuid[])`,
          }
        : r,
    ),
  );
}

/** One event as a part of a change written in one statement (UnitOfWork.once): values `{ event }`. */
export const eventPart = part<{ event: EventInsert }>(
  { event: { id: true, type: true, clinicId: true, subjectType: true, subjectId: true, lotIds: true, data: true } },
  (p) => eventsInsert(builder, [p.event]),
);

/**
 * Only events of transactions older than every transaction still running: nothing can commit later at a
 * position before them (events.table.ts).
 */
export const SETTLED = sql`${events.tx} < pg_snapshot_xmin(pg_current_snapshot())`;

/** Where an event is for a reader of `clinicId` (null: every event); the rule is the database's `event_visible_to`, fixed at write time. */
export const visibleTo = (clinicId: SQL | string | null): SQL => sql`event_visible_to(${events}, ${clinicId}::text)`;

/** The feed position of an event the reader may see, or undefined. */
export async function positionOf(exec: Executor, id: string, clinicId: string | null): Promise<{ tx: string; seq: number } | undefined> {
  const result = await exec.execute(sql`
    select ${events.tx}::text as tx, ${events.seq} as seq from ${events}
    where ${events.id} = ${id} and ${visibleTo(clinicId)}`);
  const row = result.rows[0] as { tx: string; seq: string | number } | undefined;
  return row ? { tx: row.tx, seq: Number(row.seq) } : undefined;
}

/** The feed after a position, in order, settled events only, at most `limit` rows. */
export async function feed(
  exec: Executor,
  q: { clinicId: string | null; after?: { tx: string; seq: number }; types?: string[]; limit: number },
): Promise<EventRow[]> {
  const after = q.after ? sql`and (${events.tx}, ${events.seq}) > (${q.after.tx}::xid8, ${q.after.seq}::bigint)` : sql``;
  const types = q.types?.length ? sql`and ${events.type} = any(${sql.param(q.types)}::text[])` : sql``;
  const clinic = q.clinicId === null ? sql`` : sql`and ${visibleTo(q.clinicId)}`;
  const result = await exec.execute(sql`
    select * from ${events}
    where ${SETTLED} ${after} ${types} ${clinic}
    order by ${events.tx}, ${events.seq}
    limit ${q.limit}`);
  return result.rows.map((r) => fromRaw(events, r));
}
