import { and, asc, desc, eq, gt, inArray, sql, type SQL } from 'drizzle-orm';
import type { Executor, Tx } from '../../db/client.js';
import { builder, part } from '../../db/statement.js';
import { pgCode, pgConstraint } from '../../db/errors.js';
import { fromRaw } from '../../db/raw.js';
import type { PageRequest } from '../../shared/paging.js';
import { Conflict } from '../../shared/errors.js';
import type { LotFilters } from './lots.schemas.js';
import { lotDonors, lotStatusChanges, lots } from './lots.table.js';
import { searchable } from '../../db/search.js';
import type { Match } from '../../shared/search.js';

export type LotRow = typeof lots.$inferSelect;
export type StatusChangeRow = typeof lotStatusChanges.$inferSelect;

export async function insertLot(tx: Tx, row: typeof lots.$inferInsert, donorIds: string[]): Promise<LotRow> {
  try {
    const [created] = await tx.insert(lots).values(row).returning();
    await tx.insert(lotDonors).values(donorIds.map((donorId) => ({ lotId: created!.id, donorId })));
    return created!;
  } catch (err) {
    if (pgCode(err) === '23505' && pgConstraint(err) === 'lots_manufacturer_number_uq') {
      throw new Conflict('This manufacturer already has a lot with this number.', 'duplicate-lot-number');
    }
    throw err;
  }
}

/** One lot, as a named query (supplier records: any lots:read token may read them). */
export const byId = part<{ id: string }>({ id: true }, (p) => builder.select().from(lots).where(eq(lots.id, p.id)).limit(1));

export async function findLot(exec: Executor, id: string): Promise<LotRow | undefined> {
  const [row] = await exec.select().from(lots).where(eq(lots.id, id)).limit(1);
  return row;
}

export async function findLots(exec: Executor, ids: string[]): Promise<LotRow[]> {
  return exec.select().from(lots).where(inArray(lots.id, ids)).orderBy(asc(lots.id));
}

/** These lots with their donors' ids (ordered), in one statement: rows as LotRow plus `donorIds`. */
export async function findLotsWithDonors(exec: Executor, ids: string[]): Promise<(LotRow & { donorIds: string[] })[]> {
  if (ids.length === 0) return [];
  const result = await exec.execute(sql`
    select ${lots}.*, array(select d.donor_id from ${lotDonors} d where d.lot_id = ${lots.id} order by d.donor_id) as donor_ids
    from ${lots} where ${inArray(lots.id, ids)}`);
  return result.rows.map((r) => ({ ...fromRaw(lots, r), donorIds: (r.donor_ids as string[]).map(String) }));
}

/** Serializes status changes and shipments of one lot across every instance. */
export async function lockLot(tx: Tx, id: string): Promise<LotRow | undefined> {
  const [row] = await tx.select().from(lots).where(eq(lots.id, id)).for('update').limit(1);
  return row;
}

/** The lot's status in force at `at`: its latest change effective by then (null before the first). */
export const statusAtSql = (id: string, at: Date) =>
  // Parameters, not column objects: drizzle renders columns unqualified in a select list, which would bind to `s`.
  sql<string | null>`(select s.status from ${lotStatusChanges} s where s.lot_id = ${id} and s.effective_at <= ${at}
    order by s.effective_at desc, s.recorded_at desc, s.id desc limit 1)`;

/** The lot with its status at `at`, unexecuted (rows map with withStatusFromRaw). */
export function selectWithStatusAt(exec: Executor, id: string, at: Date) {
  return exec.select({ lot: lots, statusAt: statusAtSql(id, at).as('status_at') }).from(lots).where(eq(lots.id, id)).limit(1);
}

export const withStatusFromRaw = (raw: Record<string, unknown>) => ({ lot: fromRaw(lots, raw), statusAt: (raw.status_at as string | null) ?? null });


/**
 * Holds when the lot was released at `at`, share-locking the lot row: procedures on it are written side by
 * side, while a status change (which takes the row FOR UPDATE) waits for them and they for it.
 */
export const releasedAt = (id: string, at: Date) => sql`coalesce((select ${statusAtSql(id, at)} = 'released' from ${lots} where ${lots.id} = ${id} for share), false)`;

/** The lot with its status at `at`, as a named part for another module's statement (rows map with withStatusFromRaw). */
export const forUseAtPart = part<{ lotId: string; at: Date }>({ lotId: true, at: true }, (p) => selectWithStatusAt(builder, p.lotId, p.at));

/** releasedAt as a guard part of a change written in one statement (share-locks the lot row). */
export const releasedAtPart = part<{ lotId: string; at: Date }>({ lotId: true, at: true }, (p) => releasedAt(p.lotId, p.at));

export async function listLots(exec: Executor, f: LotFilters, page: PageRequest): Promise<LotRow[]> {
  const where: (SQL | undefined)[] = [];
  if (page.after) where.push(gt(lots.id, page.after));
  if (f.status) where.push(eq(lots.status, f.status));
  if (f.manufacturer) where.push(eq(lots.manufacturer, f.manufacturer));
  if (f.lotNumber) where.push(eq(lots.lotNumber, f.lotNumber));
  if (f.donorId) where.push(sql`exists (select 1 from ${lotDonors} where ${lotDonors.lotId} = ${lots.id} and ${lotDonors.donorId} = ${f.donorId})`);
  return exec
    .select()
    .from(lots)
    .where(and(...where))
    .orderBy(asc(lots.id))
    .limit(page.limit + 1);
}

/** What a lot can be searched by (shared/search.ts criteria), and how each is written in SQL. */
export type LotField = 'id' | 'lotNumber' | 'donorId' | 'updatedAt';

const lotNumberSql = (m: Match) => {
  // A token whose system is the manufacturer (undefined: any manufacturer; its code undefined: any number).
  if (m.kind !== 'token') throw new Error(`a ${m.kind} match on the lot number`);
  if (m.system === null) return sql`false`;
  return and(m.system !== undefined ? eq(lots.manufacturer, m.system) : undefined, m.code !== undefined ? eq(lots.lotNumber, m.code) : undefined) ?? sql`true`;
};

/** Lots as search criteria see them (db/search.ts): supplier records, no clinic scope. */
export const lotSearch = searchable<LotField, 'updatedAt'>({
  table: lots,
  id: lots.id,
  fields: {
    id: { type: 'value', column: lots.id },
    lotNumber: { type: 'custom', build: lotNumberSql },
    donorId: {
      type: 'custom',
      build: (m) => {
        if (m.kind !== 'value') throw new Error(`a ${m.kind} match on a donor id`);
        return sql`exists (select 1 from ${lotDonors} where ${lotDonors.lotId} = ${lots.id} and ${lotDonors.donorId} = ${m.value})`;
      },
    },
    updatedAt: { type: 'instant', column: lots.updatedAt },
  },
  sortColumns: { updatedAt: lots.updatedAt },
});

/** A lots row as PostgreSQL returns it from raw SQL. */
export const lotFromRaw = (r: Record<string, unknown>): LotRow => fromRaw(lots, r);

export async function donorIdsOf(exec: Executor, lotIds: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (lotIds.length === 0) return out;
  const rows = await exec.select().from(lotDonors).where(inArray(lotDonors.lotId, lotIds)).orderBy(asc(lotDonors.donorId));
  for (const r of rows) out.set(r.lotId, [...(out.get(r.lotId) ?? []), r.donorId]);
  return out;
}

export async function statusChangesOf(exec: Executor, lotIds: string[]): Promise<StatusChangeRow[]> {
  if (lotIds.length === 0) return [];
  return exec
    .select()
    .from(lotStatusChanges)
    .where(inArray(lotStatusChanges.lotId, lotIds))
    .orderBy(asc(lotStatusChanges.effectiveAt), asc(lotStatusChanges.recordedAt), asc(lotStatusChanges.id));
}

export async function lastStatusChange(exec: Executor, lotId: string): Promise<StatusChangeRow | undefined> {
  const [row] = await exec
    .select()
    .from(lotStatusChanges)
    .where(eq(lotStatusChanges.lotId, lotId))
    .orderBy(desc(lotStatusChanges.effectiveAt), desc(lotStatusChanges.recordedAt), desc(lotStatusChanges.id))
    .limit(1);
  return row;
}

/** The lot's status in force at `at`, from its dated history (undefined before its first record). */
export async function statusAt(exec: Executor, lotId: string, at: Date): Promise<string | undefined> {
  const result = await exec.execute<{ status: string | null }>(sql`select ${statusAtSql(lotId, at)} as status`);
  return result.rows[0]?.status ?? undefined;
}

export async function insertStatusChange(tx: Tx, row: typeof lotStatusChanges.$inferInsert): Promise<void> {
  await tx.insert(lotStatusChanges).values(row);
}

export async function updateLot(tx: Tx, id: string, changes: Partial<typeof lots.$inferInsert>): Promise<LotRow> {
  const [row] = await tx
    .update(lots)
    .set({ ...changes, version: sql`${lots.version} + 1` })
    .where(eq(lots.id, id))
    .returning();
  return row!;
}

/** The ids of every lot made from the donor, in id order. */
export async function lotIdsOfDonor(exec: Executor, donorId: string): Promise<string[]> {
  const rows = await exec.select({ lotId: lotDonors.lotId }).from(lotDonors).where(eq(lotDonors.donorId, donorId)).orderBy(asc(lotDonors.lotId));
  return rows.map((r) => r.lotId);
}

/** Released lots made from the donor, locked for a status change. */
export async function lockReleasedLotsOfDonor(tx: Tx, donorId: string): Promise<LotRow[]> {
  return tx
    .select()
    .from(lots)
    .where(and(eq(lots.status, 'released'), sql`${lots.id} in (select ${lotDonors.lotId} from ${lotDonors} where ${lotDonors.donorId} = ${donorId})`))
    .orderBy(asc(lots.id))
    .for('update');
}
