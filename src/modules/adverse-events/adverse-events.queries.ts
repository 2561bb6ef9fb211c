import { and, asc, eq, getTableColumns, gt, sql, type SQL } from 'drizzle-orm';
import type { Executor, Tx } from '../../db/client.js';
import type { PageRequest } from '../../shared/paging.js';
import { fromRaw } from '../../db/raw.js';
import { builder, part, presentEqualities, setKeys, shapedPart } from '../../db/statement.js';
import { adverseEvents } from './adverse-events.table.js';
import { searchable } from '../../db/search.js';

export type AdverseEventRow = typeof adverseEvents.$inferSelect;

export async function insertAdverseEvent(tx: Tx, row: typeof adverseEvents.$inferInsert): Promise<AdverseEventRow> {
  const [created] = await tx.insert(adverseEvents).values(row).returning();
  return created!;
}

/** One adverse event of the clinic, as a named query (AuditLog.readStatement audits it). */
export const byId = part<{ clinicId: string; id: string }>({ clinicId: true, id: true }, (p) =>
  builder
    .select()
    .from(adverseEvents)
    .where(and(eq(adverseEvents.id, p.id), eq(adverseEvents.clinicId, p.clinicId)))
    .limit(1),
);

/** What a read's audit entry records of the row read: the patient. */
export const readDetails = { patientId: 'patient_id' };

export const adverseEventFromRaw = (r: Record<string, unknown>): AdverseEventRow => fromRaw(adverseEvents, r);

export async function lockAdverseEvent(tx: Tx, clinicId: string, id: string): Promise<AdverseEventRow | undefined> {
  const [row] = await tx
    .select()
    .from(adverseEvents)
    .where(and(eq(adverseEvents.id, id), eq(adverseEvents.clinicId, clinicId)))
    .for('update')
    .limit(1);
  return row;
}

export interface AdverseEventFilters {
  procedureId?: string;
  lotId?: string;
  patientId?: string;
  serious?: boolean;
  /** An instant (ISO 8601): only events with a clock, not yet reported, due before it; ordered by due time, then id. */
  reportDueBefore?: string;
}

/** A search's values as the SQL takes them. */
export interface AdverseEventSearchValues extends AdverseEventFilters {
  clinicId: string;
  after?: string;
  /** With reportDueBefore: the due time (ISO 8601) of the item `after` names (the order is due time, then id). */
  afterDue?: string;
  limit: number;
}

/** A page position: the last id seen and, for a due-time order, its due time. */
export interface AdverseEventPosition {
  id: string;
  due?: string;
}

export function adverseEventSearchValues(clinicId: string, f: AdverseEventFilters, page?: PageRequest<AdverseEventPosition>): AdverseEventSearchValues {
  return {
    clinicId,
    procedureId: f.procedureId,
    lotId: f.lotId,
    patientId: f.patientId,
    serious: f.serious,
    reportDueBefore: f.reportDueBefore,
    after: page?.after?.id,
    afterDue: page?.after?.due,
    limit: (page?.limit ?? 0) + 1,
  };
}

/** Due and not yet reported (the partial index adverse_events_report_due_idx). */
const reportDue = (before: string) =>
  sql`${adverseEvents.reportDueAt} is not null and ${adverseEvents.reportedAt} is null and ${adverseEvents.reportDueAt} < ${before}::timestamptz`;

/** The conditions of a search: one per value `present` names. */
function adverseEventWhere(p: AdverseEventSearchValues, present: ReadonlySet<string>): (SQL | undefined)[] {
  return [
    eq(adverseEvents.clinicId, p.clinicId),
    ...presentEqualities(p, present, { procedureId: adverseEvents.procedureId, lotId: adverseEvents.lotId, patientId: adverseEvents.patientId, serious: adverseEvents.serious }),
    present.has('reportDueBefore') ? reportDue(p.reportDueBefore!) : undefined,
  ];
}

/**
 * The clinic's adverse events by filters, as a named query (AuditLog.searchStatement audits it, order '_ord'): in id order, or,
 * with reportDueBefore, in due-time order (then id), continuing after the position (afterDue, after).
 */
export const search = shapedPart<AdverseEventSearchValues>(
  { clinicId: true, procedureId: true, lotId: true, patientId: true, serious: true, reportDueBefore: true, after: true, afterDue: true, limit: true },
  (p, present) => {
    const byDue = present.has('reportDueBefore');
    const after = !present.has('after')
      ? undefined
      : byDue
        ? sql`(${adverseEvents.reportDueAt}, ${adverseEvents.id}) > (${p.afterDue}::timestamptz, ${p.after}::uuid)`
        : gt(adverseEvents.id, p.after!);
    // `_ord`: the page order, for the audited search (AuditLog.searchStatement with order '_ord').
    const ord = byDue ? sql`row_number() over (order by ${adverseEvents.reportDueAt}, ${adverseEvents.id})` : sql`${adverseEvents.id}`;
    return builder
      .select({ ...getTableColumns(adverseEvents), _ord: ord.as('_ord') })
      .from(adverseEvents)
      .where(and(...adverseEventWhere(p, present), after))
      .orderBy(...(byDue ? [asc(adverseEvents.reportDueAt), asc(adverseEvents.id)] : [asc(adverseEvents.id)]))
      .limit(p.limit);
  },
);

export async function countAdverseEvents(exec: Executor, clinicId: string, f: AdverseEventFilters): Promise<number> {
  const v = adverseEventSearchValues(clinicId, f);
  const [row] = await exec.select({ n: sql<number>`count(*)::int` }).from(adverseEvents).where(and(...adverseEventWhere(v, setKeys(v))));
  return row?.n ?? 0;
}

/** What an adverse event can be searched by (shared/search.ts criteria), and how each is written in SQL. */
export type AdverseEventField = 'id' | 'patientId' | 'onsetAt' | 'serious' | 'updatedAt';
export type AdverseEventSort = 'onsetAt' | 'updatedAt';

/** The clinic's adverse events as search criteria see them (db/search.ts). */
export const adverseEventSearch = searchable<AdverseEventField, AdverseEventSort>({
  table: adverseEvents,
  id: adverseEvents.id,
  clinic: adverseEvents.clinicId,
  fields: {
    id: { type: 'value', column: adverseEvents.id },
    patientId: { type: 'value', column: adverseEvents.patientId },
    onsetAt: { type: 'instant', column: adverseEvents.onsetAt },
    serious: { type: 'value', column: adverseEvents.serious },
    updatedAt: { type: 'instant', column: adverseEvents.updatedAt },
  },
  sortColumns: { onsetAt: adverseEvents.onsetAt, updatedAt: adverseEvents.updatedAt },
});

export async function updateAdverseEvent(tx: Tx, id: string, changes: Partial<typeof adverseEvents.$inferInsert>): Promise<AdverseEventRow> {
  const [row] = await tx
    .update(adverseEvents)
    .set({ ...changes, version: sql`${adverseEvents.version} + 1` })
    .where(eq(adverseEvents.id, id))
    .returning();
  return row!;
}
