import { and, asc, eq, gt, sql, type SQL } from 'drizzle-orm';
import type { Executor, Tx } from '../../db/client.js';
import type { PageRequest } from '../../http/pagination.js';
import { adverseEvents } from './adverse-events.table.js';

export type AdverseEventRow = typeof adverseEvents.$inferSelect;

export async function insertAdverseEvent(tx: Tx, row: typeof adverseEvents.$inferInsert): Promise<AdverseEventRow> {
  const [created] = await tx.insert(adverseEvents).values(row).returning();
  return created!;
}

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

export async function listAdverseEvents(
  exec: Executor,
  clinicId: string,
  f: { procedureId?: string; lotId?: string; serious?: boolean },
  page: PageRequest,
): Promise<AdverseEventRow[]> {
  const where: (SQL | undefined)[] = [eq(adverseEvents.clinicId, clinicId)];
  if (page.after) where.push(gt(adverseEvents.id, page.after));
  if (f.procedureId) where.push(eq(adverseEvents.procedureId, f.procedureId));
  if (f.lotId) where.push(eq(adverseEvents.lotId, f.lotId));
  if (f.serious !== undefined) where.push(eq(adverseEvents.serious, f.serious));
  return exec
    .select()
    .from(adverseEvents)
    .where(and(...where))
    .orderBy(asc(adverseEvents.id))
    .limit(page.limit + 1);
}

export async function updateAdverseEvent(tx: Tx, id: string, changes: Partial<typeof adverseEvents.$inferInsert>): Promise<AdverseEventRow> {
  const [row] = await tx
    .update(adverseEvents)
    .set({ ...changes, version: sql`${adverseEvents.version} + 1` })
    .where(eq(adverseEvents.id, id))
    .returning();
  return row!;
}
