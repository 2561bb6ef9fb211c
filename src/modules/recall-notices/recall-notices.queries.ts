import { and, asc, eq, gt, isNotNull, sql } from 'drizzle-orm';
import type { Executor, Tx } from '../../db/client.js';
import type { PageRequest } from '../../shared/paging.js';
import { recallNotices } from './recall-notices.table.js';
import { vials } from '../vials/vials.table.js';
import { lotStatusChanges } from '../lots/lots.table.js';

export type NoticeRow = typeof recallNotices.$inferSelect;

/** A notice as a write made it: what its event tells. */
export interface NoticeMade {
  id: string;
  clinicId: string;
  barcodes: string[];
}

/**
 * One notice per clinic that received vials of the lot, each listing the clinic's vials the recall marked
 * (to quarantine), as they stand in the recall's transaction. Answers how many clinics were notified and the
 * notices it made (a clinic that already had one keeps it).
 */
export async function createNotices(tx: Tx, lotId: string, reason: string, recalledAt: Date, ids: () => string): Promise<{ notified: number; created: NoticeMade[] }> {
  const clinics = await tx
    .select({
      clinicId: sql<string>`${vials.clinicId}`,
      barcodes: sql<string[]>`coalesce(array_agg(${vials.barcode} order by ${vials.sequence}) filter (where ${vials.status} = 'recalled'), '{}')`,
    })
    .from(vials)
    .where(and(eq(vials.lotId, lotId), isNotNull(vials.clinicId)))
    .groupBy(vials.clinicId)
    .orderBy(asc(vials.clinicId));
  if (clinics.length === 0) return { notified: 0, created: [] };
  const created = await tx
    .insert(recallNotices)
    .values(clinics.map((c) => ({ id: ids(), lotId, clinicId: c.clinicId, recallReason: reason, recalledAt, barcodes: c.barcodes })))
    .onConflictDoNothing()
    .returning({ id: recallNotices.id, clinicId: recallNotices.clinicId, barcodes: recallNotices.barcodes });
  return { notified: clinics.length, created };
}

/**
 * Recalled vials that reached a clinic after the recall was recorded (a shipment entered late, a procedure's
 * vial given back): added to the clinic's notice, which is made (with the lot's recall) if it had none.
 * Answers the notice made, or undefined when the clinic's notice existed (or the lot has no recall).
 */
export async function addToNotice(tx: Tx, lotId: string, clinicId: string, barcodes: string[], id: string): Promise<NoticeMade | undefined> {
  // `xmax = 0` holds for a row this statement inserted, not for one its ON CONFLICT updated.
  const result = await tx.execute(sql`
    insert into ${recallNotices} (id, lot_id, clinic_id, recall_reason, recalled_at, barcodes)
    select ${id}, ${lotId}, ${clinicId}, coalesce(c.reason, 'Recalled'), c.effective_at, ${sql.param(barcodes)}::text[]
    from ${lotStatusChanges} c where c.lot_id = ${lotId} and c.status = 'recalled'
    order by c.effective_at desc, c.id desc limit 1
    on conflict (lot_id, clinic_id) do update
      set barcodes = ${recallNotices.barcodes} || array(select b from unnest(excluded.barcodes) b where b <> all(${recallNotices.barcodes}))
    returning id, clinic_id, barcodes, (xmax = 0) as created`);
  const row = result.rows[0] as { id: string; clinic_id: string; barcodes: string[]; created: boolean } | undefined;
  return row?.created ? { id: row.id, clinicId: row.clinic_id, barcodes: row.barcodes } : undefined;
}

export async function listNotices(exec: Executor, lotId: string, clinicId: string | null, page: PageRequest): Promise<NoticeRow[]> {
  return exec
    .select()
    .from(recallNotices)
    .where(and(eq(recallNotices.lotId, lotId), clinicId ? eq(recallNotices.clinicId, clinicId) : undefined, page.after ? gt(recallNotices.id, page.after) : undefined))
    .orderBy(asc(recallNotices.id))
    .limit(page.limit + 1);
}

/** Acknowledges once: undefined when the notice is not this clinic's; `already` when acknowledged before. */
export async function acknowledge(tx: Tx, lotId: string, noticeId: string, clinicId: string, by: string, at: Date) {
  const [current] = await tx
    .select()
    .from(recallNotices)
    .where(and(eq(recallNotices.id, noticeId), eq(recallNotices.lotId, lotId), eq(recallNotices.clinicId, clinicId)))
    .for('update');
  if (!current) return undefined;
  if (current.acknowledgedAt) return { row: current, already: true };
  const [row] = await tx
    .update(recallNotices)
    .set({ acknowledgedAt: at, acknowledgedBy: by })
    .where(and(eq(recallNotices.id, noticeId), sql`${recallNotices.acknowledgedAt} is null`))
    .returning();
  return { row: row!, already: false };
}
