import { and, asc, eq, gt, sql } from 'drizzle-orm';
import type { Executor, Tx } from '../../db/client.js';
import { builder, part } from '../../db/statement.js';
import type { PageRequest } from '../../shared/paging.js';
import { lots } from '../lots/lots.table.js';
import { discards, lotStock, shipments } from './vials.table.js';

export type ShipmentRow = typeof shipments.$inferSelect;
export type DiscardRow = typeof discards.$inferSelect;
export type StockRow = typeof lotStock.$inferSelect;

/** Adds shipped vials to the lot's total (never past vialCount) and to the clinic's stock. False when short. */
export async function addShipped(tx: Tx, lotId: string, clinicId: string, vials: number): Promise<boolean> {
  const updated = await tx
    .update(lots)
    .set({ vialsShipped: sql`${lots.vialsShipped} + ${vials}` })
    .where(and(eq(lots.id, lotId), sql`${lots.vialsShipped} + ${vials} <= ${lots.vialCount}`))
    .returning({ id: lots.id });
  if (updated.length === 0) return false;
  await tx
    .insert(lotStock)
    .values({ lotId, clinicId, shipped: vials })
    .onConflictDoUpdate({ target: [lotStock.lotId, lotStock.clinicId], set: { shipped: sql`${lotStock.shipped} + ${vials}` } });
  return true;
}

/**
 * Takes vials off a clinic's hand in one conditional statement: concurrent writers on any instance serialize
 * on the row, and none can take more than is on hand. False when the clinic holds too few.
 */
/** Takes vials off a clinic's stock, only if it holds that many: a statement returning the row it changed. */
export function takeFromStockStatement(exec: Executor, lotId: string, clinicId: string, vials: number, as: 'administered' | 'discarded') {
  const column = as === 'administered' ? lotStock.administered : lotStock.discarded;
  return exec
    .update(lotStock)
    .set({ [as]: sql`${column} + ${vials}` })
    .where(
      and(
        eq(lotStock.lotId, lotId),
        eq(lotStock.clinicId, clinicId),
        sql`${lotStock.shipped} - ${lotStock.administered} - ${lotStock.discarded} >= ${vials}`,
      ),
    )
    .returning({ lotId: lotStock.lotId });
}

/** Vials a procedure used, off the clinic's hand, as a named part of its statement: returns a row, none when short. */
export const administeredPart = part<{ lotId: string; clinicId: string; vials: number }>({ lotId: true, clinicId: true, vials: true }, (p) =>
  takeFromStockStatement(builder, p.lotId, p.clinicId, p.vials, 'administered'),
);

export async function takeFromStock(tx: Tx, lotId: string, clinicId: string, vials: number, as: 'administered' | 'discarded'): Promise<boolean> {
  const updated = await takeFromStockStatement(tx, lotId, clinicId, vials, as);
  return updated.length > 0;
}

/** Gives administered vials back to the clinic's stock (a procedure entered in error with vials returned). */
export async function returnAdministered(tx: Tx, lotId: string, clinicId: string, vials: number): Promise<boolean> {
  const updated = await tx
    .update(lotStock)
    .set({ administered: sql`${lotStock.administered} - ${vials}` })
    .where(and(eq(lotStock.lotId, lotId), eq(lotStock.clinicId, clinicId), sql`${lotStock.administered} >= ${vials}`))
    .returning({ lotId: lotStock.lotId });
  return updated.length > 0;
}

export async function stockOf(exec: Executor, lotId: string, clinicId?: string | null): Promise<StockRow[]> {
  return exec
    .select()
    .from(lotStock)
    .where(and(eq(lotStock.lotId, lotId), clinicId ? eq(lotStock.clinicId, clinicId) : undefined))
    .orderBy(asc(lotStock.clinicId));
}

export async function insertShipment(tx: Tx, row: typeof shipments.$inferInsert): Promise<ShipmentRow> {
  const [created] = await tx.insert(shipments).values(row).returning();
  return created!;
}

export async function insertDiscard(tx: Tx, row: typeof discards.$inferInsert): Promise<DiscardRow> {
  const [created] = await tx.insert(discards).values(row).returning();
  return created!;
}

export async function listShipments(exec: Executor, lotId: string, clinicId: string | null, page: PageRequest): Promise<ShipmentRow[]> {
  return exec
    .select()
    .from(shipments)
    .where(and(eq(shipments.lotId, lotId), clinicId ? eq(shipments.clinicId, clinicId) : undefined, page.after ? gt(shipments.id, page.after) : undefined))
    .orderBy(asc(shipments.id))
    .limit(page.limit + 1);
}

export async function listDiscards(exec: Executor, lotId: string, clinicId: string | null, page: PageRequest): Promise<DiscardRow[]> {
  return exec
    .select()
    .from(discards)
    .where(and(eq(discards.lotId, lotId), clinicId ? eq(discards.clinicId, clinicId) : undefined, page.after ? gt(discards.id, page.after) : undefined))
    .orderBy(asc(discards.id))
    .limit(page.limit + 1);
}
