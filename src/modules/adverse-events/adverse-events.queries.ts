import { and, asc, eq, gt, sql, type SQL } from 'drizzle-orm';
import type { Executor, Tx } from '../../db/client.js';
import type { PageRequest } from '../../http/pagination.js';
import { fromRaw } from '../../db/raw.js';
import { adverseEvents } from './adverse-events.table.js';

export type AdverseEventRow = typeof adverseEvents.$inferSelect;

export async function insertAdverseEvent(tx: Tx, row: typeof adverseEvents.$inferInsert): Promise<AdverseEventRow> {
  const [created] = await tx.insert(adverseEvents).values(row).returning();
  return created!;
}

/** The select of one adverse event of the clinic, unexecuted (for AuditLog.readThrough). */
export function selectAdverseEvent(exec: Executor, clinicId: string, id: string) {
  return exec
    .select()
    .from(adverseEvents)
    .where(and(eq(adverseEvents.id, id), eq(adverseEvents.clinicId, clinicId)))
    .limit(1);
}

export const adverseEventFromRaw = (r: Record<string, unknown>): AdverseEventRow => fromRaw(adverseEvents, r);

export async function findAdverseEvent(exec: Executor, clinicId: string, id: string): Promise<AdverseEventRow | undefined> {
  const [row] = await exec
    .select()
    .from(adverseEvents)
    .where(and(eq(adverseEvents.id, id), eq(adverseEvents.clinicId, clinicId)))
    .limit(1);
  return row;
}

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
}

function adverseEventWhere(clinicId: string, f: AdverseEventFilters): (SQL | undefined)[] {
  const where: (SQL | undefined)[] = [eq(adverseEvents.clinicId, clinicId)];
  if (f.procedureId) where.push(eq(adverseEvents.procedureId, f.procedureId));
  if (f.lotId) where.push(eq(adverseEvents.lotId, f.lotId));
  if (f.patientId) where.push(eq(adverseEvents.patientId, f.patientId));
  if (f.serious !== undefined) where.push(eq(adverseEvents.serious, f.serious));
  return where;
}

/** The search, unexecuted (for AuditLog.searchThrough). */
export function selectAdverseEvents(exec: Executor, clinicId: string, f: AdverseEventFilters, page: PageRequest) {
  return exec
    .select()
    .from(adverseEvents)
    .where(and(...adverseEventWhere(clinicId, f), page.after ? gt(adverseEvents.id, page.after) : undefined))
    .orderBy(asc(adverseEvents.id))
    .limit(page.limit + 1);
}

export async function countAdverseEvents(exec: Executor, clinicId: string, f: AdverseEventFilters): Promise<number> {
  const [row] = await exec.select({ n: sql<number>`count(*)::int` }).from(adverseEvents).where(and(...adverseEventWhere(clinicId, f)));
  return row?.n ?? 0;
}

export async function updateAdverseEvent(tx: Tx, id: string, changes: Partial<typeof adverseEvents.$inferInsert>): Promise<AdverseEventRow> {
  const [row] = await tx
    .update(adverseEvents)
    .set({ ...changes, version: sql`${adverseEvents.version} + 1` })
    .where(eq(adverseEvents.id, id))
    .returning();
  return row!;
}
