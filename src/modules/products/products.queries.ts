import { eq, sql } from 'drizzle-orm';
import type { Executor, Tx } from '../../db/client.js';
import { builder, part } from '../../db/statement.js';
import { lots } from '../lots/lots.table.js';
import { productExpectedReactions } from './products.table.js';

export type ExpectedReactionsRow = typeof productExpectedReactions.$inferSelect;

export async function findList(exec: Executor, productName: string): Promise<ExpectedReactionsRow | undefined> {
  const [row] = await exec.select().from(productExpectedReactions).where(eq(productExpectedReactions.productName, productName)).limit(1);
  return row;
}

/** The list, locked for the rest of the transaction (a PUT's read-compare-write). */
export async function lockList(tx: Tx, productName: string): Promise<ExpectedReactionsRow | undefined> {
  const [row] = await tx.select().from(productExpectedReactions).where(eq(productExpectedReactions.productName, productName)).for('update').limit(1);
  return row;
}

/** The first list of a product; undefined when another transaction created it first. */
export async function insertList(tx: Tx, row: typeof productExpectedReactions.$inferInsert): Promise<ExpectedReactionsRow | undefined> {
  const [created] = await tx.insert(productExpectedReactions).values(row).onConflictDoNothing({ target: productExpectedReactions.productName }).returning();
  return created;
}

export async function updateList(tx: Tx, productName: string, changes: { reactions: string[]; updatedAt: Date; updatedBy: string }): Promise<ExpectedReactionsRow> {
  const [row] = await tx
    .update(productExpectedReactions)
    .set({ ...changes, version: sql`${productExpectedReactions.version} + 1` })
    .where(eq(productExpectedReactions.productName, productName))
    .returning();
  return row!;
}

/** The list as a named query for history reads (record_versions keyed by its `id`). */
export const byName = part<{ productName: string }>({ productName: true }, (p) =>
  builder.select().from(productExpectedReactions).where(eq(productExpectedReactions.productName, p.productName)).limit(1),
);

/**
 * The expected reactions of a lot's product as the transaction sees them: the list of the lot's `product_name`,
 * [] when the product has none; undefined for an unknown lot.
 */
export async function expectedForLot(exec: Executor, lotId: string): Promise<string[] | undefined> {
  const [row] = await exec
    .select({ reactions: sql<string[]>`coalesce(${productExpectedReactions.reactions}, '[]'::jsonb)` })
    .from(lots)
    .leftJoin(productExpectedReactions, eq(productExpectedReactions.productName, lots.productName))
    .where(eq(lots.id, lotId))
    .limit(1);
  return row?.reactions;
}
