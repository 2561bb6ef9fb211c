import { and, asc, eq, getTableColumns, gt, inArray, lte, sql, type SQL } from 'drizzle-orm';
import type { Executor, Tx } from '../../db/client.js';
import { pgCode, pgConstraint } from '../../db/errors.js';
import { shapedPart } from '../../db/statement.js';
import type { PageRequest } from '../../shared/paging.js';
import { lots } from '../lots/lots.table.js';
import { discards, shipments, vialCustody, vialReturns, vials } from './vials.table.js';

export type VialRow = typeof vials.$inferSelect;
export type ShipmentRow = typeof shipments.$inferSelect;
export type DiscardRow = typeof discards.$inferSelect;
export type ReturnRow = typeof vialReturns.$inferSelect;
export type CustodyRow = typeof vialCustody.$inferSelect;

/** A vial as a movement answers it. */
export interface VialRef {
  id: string;
  barcode: string;
  sequence: number;
}

/** Statuses a vial can be taken from, by movement. */
export const IN_STOCK = ['in-stock'] as const;
/** Vials a clinic holds: usable, or recalled and waiting to be given back, destroyed, or recorded as given before the recall. */
export const AT_CLINIC = ['at-clinic', 'recalled'] as const;

/** How the vials of a movement are chosen: named by id or barcode, or a number (lowest sequences first). */
export type Selection = { vialIds: string[] } | { barcodes: string[] } | { count: number };

/** A movement's record: what, when (effective), by whom, why, and the record it belongs to. */
export interface Movement {
  action: 'released' | 'shipped' | 'received' | 'administered' | 'discarded' | 'returned' | 'recalled';
  at: Date;
  by: string;
  reason?: string | null;
  movementId?: string | null;
}

/**
 * A lot's vials all at once (made, released, recalled) can be a million rows: this transaction may take longer
 * than the pool's statement timeout meant for requests (a recall must not fail because a lot is large).
 */
async function allowBulk(tx: Tx) {
  await tx.execute(sql`set local statement_timeout = '600s'`);
}

const moved = (m: Movement) => sql`moved_action = ${m.action}, moved_at = ${m.at}, moved_by = ${m.by}, moved_reason = ${m.reason ?? null}, movement_id = ${m.movementId ?? null}`;

/**
 * The id of a lot's vial: the lot's base uuid with its last 20 bits replaced by the sequence (at most 1,000,000
 * < 2^20). A lot's vials are neighbours in every index on id (the primary key, the custody's vial index), so
 * claiming consecutive vials touches a few index pages, not one random page per vial.
 */
export const vialIdSql = (base: unknown, sequence: SQL) => sql`overlay(${base}::text placing lpad(to_hex(${sequence}), 5, '0') from 32 for 5)::uuid`;

/**
 * A new lot's vials, sequences 1..count, in one statement: barcodes as given (the lot's label list, in sequence
 * order) or `{lotNumber}-{sequence, at least 4 digits}`; ids from `baseId` (vialIdSql).
 */
export async function insertForLot(
  tx: Tx,
  lot: { id: string; manufacturer: string; lotNumber: string; vialCount: number },
  baseId: string,
  barcodes?: string[],
): Promise<'ok' | 'barcode-taken'> {
  const barcode = barcodes
    ? sql`(${sql.param(barcodes)}::text[])[s]`
    : sql`${lot.lotNumber} || '-' || lpad(s::text, greatest(4, length(s::text)), '0')`;
  if (lot.vialCount > 10_000) await allowBulk(tx);
  try {
    await tx.execute(sql`
      insert into ${vials} (id, lot_id, manufacturer, sequence, barcode, status)
      select ${vialIdSql(baseId, sql`s`)}, ${lot.id}, ${lot.manufacturer}, s, ${barcode}, 'in-stock'
      from generate_series(1, ${lot.vialCount}::int) s`);
    return 'ok';
  } catch (err) {
    // Another vial of the manufacturer carries one of the barcodes (a label list, or a default that a label took).
    if (pgCode(err) === '23505' && pgConstraint(err) === 'vials_barcode_uq') return 'barcode-taken';
    throw err;
  }
}

/** Which of `barcodes` another vial of the manufacturer already carries (at most 10). */
export async function barcodesTaken(exec: Executor, manufacturer: string, barcodes: string[]): Promise<string[]> {
  const rows = await exec
    .select({ barcode: vials.barcode })
    .from(vials)
    .where(and(eq(vials.manufacturer, manufacturer), inArray(vials.barcode, barcodes)))
    .limit(10);
  return rows.map((r) => r.barcode);
}

/** Records a movement of every vial of the lot in one of `from` (released, recalled): answers the vials moved. */
export async function moveAllOfLot(tx: Tx, lotId: string, from: readonly string[], m: Movement, status?: string): Promise<{ clinicId: string | null; barcode: string }[]> {
  await allowBulk(tx);
  const result = await tx.execute(sql`
    update ${vials} set ${status ? sql`status = ${status}, ` : sql``}${moved(m)}
    where lot_id = ${lotId} and status = any(${sql.param([...from])}::text[])
    returning clinic_id, barcode`);
  return (result.rows as { clinic_id: string | null; barcode: string }[]).map((r) => ({ clinicId: r.clinic_id, barcode: r.barcode }));
}

/** The vials of a lot a movement names, or the lowest `count` it may take, locked (FOR UPDATE) in sequence order. */
export async function lockSelected(
  tx: Tx,
  lotId: string,
  from: readonly string[],
  clinicId: string | null,
  selection: Selection,
  shippedBy?: Date,
): Promise<(VialRef & { status: string; clinicId: string | null; shippedAt: Date | null })[]> {
  const named: SQL | undefined =
    'vialIds' in selection ? inArray(vials.id, selection.vialIds) : 'barcodes' in selection ? inArray(vials.barcode, selection.barcodes) : undefined;
  const q = tx
    .select({ id: vials.id, barcode: vials.barcode, sequence: vials.sequence, status: vials.status, clinicId: vials.clinicId, shippedAt: vials.shippedAt })
    .from(vials)
    .where(
      and(
        eq(vials.lotId, lotId),
        named ??
          and(
            inArray(vials.status, [...from]),
            clinicId === null ? sql`${vials.clinicId} is null` : eq(vials.clinicId, clinicId),
            shippedBy ? lte(vials.shippedAt, shippedBy) : undefined,
          ),
      ),
    )
    .orderBy(asc(vials.sequence))
    .for('update');
  return 'count' in selection ? q.limit(selection.count) : q;
}

/** Moves the vials `ids` (already locked by the caller): new status, clinic and procedure, and the movement. */
export async function moveVials(tx: Tx, ids: string[], set: { status: string; clinicId?: string | null; procedureId?: string | null }, m: Movement) {
  await tx.execute(sql`
    update ${vials} set status = ${set.status},
      ${set.clinicId !== undefined ? sql`clinic_id = ${set.clinicId}, ` : sql``}
      ${set.procedureId !== undefined ? sql`procedure_id = ${set.procedureId}, ` : sql``}
      ${m.action === 'shipped' ? sql`shipped_at = ${m.at}, ` : sql``}
      ${moved(m)}
    where id = any(${sql.param(ids)}::uuid[])`);
}

/** Marks a clinic's receipt of one vial (no change of status): the movement `received`. */
export async function markReceived(tx: Tx, id: string, m: Movement) {
  await tx.execute(sql`update ${vials} set received_at = ${m.at}, ${moved(m)} where id = ${id}`);
}

/** One vial, locked, if the clinic may see it (null clinic: any). */
export async function lockVial(tx: Tx, id: string, clinicId: string | null) {
  const [row] = await tx
    .select()
    .from(vials)
    .where(and(eq(vials.id, id), clinicId ? eq(vials.clinicId, clinicId) : undefined))
    .for('update');
  return row;
}

/** The shipment that last took the vial to a clinic, and its effective time. */
export async function lastShipment(exec: Executor, vialId: string): Promise<{ at: Date; shipmentId: string | null } | undefined> {
  const [row] = await exec
    .select({ at: vialCustody.at, shipmentId: vialCustody.shipmentId })
    .from(vialCustody)
    .where(and(eq(vialCustody.vialId, vialId), eq(vialCustody.action, 'shipped')))
    .orderBy(sql`${vialCustody.id} desc`)
    .limit(1);
  return row;
}

/**
 * The vials a procedure uses, claimed in its statement (UnitOfWork.once; db/statement.ts): named by id or by
 * barcode (locked FOR UPDATE, in sequence order), or the `count` lowest sequences the clinic holds that no
 * concurrent request has locked (FOR UPDATE SKIP LOCKED: concurrent procedures on one lot never wait on each
 * other, and no two take the same vial). Each must be of the lot, at the clinic and unused. It updates
 * nothing unless it got all `count`; it returns the claimed vials `{ id, barcode, sequence }`, none when short.
 */
export interface AdministeredValues {
  lotId: string;
  clinicId: string;
  count: number;
  procedureId: string;
  at: Date;
  by: string;
  vialIds?: string[];
  barcodes?: string[];
  /**
   * Set when `count` is 1 (most procedures): the claim then says `limit 1`. With a parameter as its LIMIT,
   * PostgreSQL's generic plan guesses a tenth of a clinic's vials and costs the statement ten times its custom
   * plan, so it planned the whole statement again on every call (0.74 ms; pg_stat_statements, bench one lot).
   */
  one?: true;
}

/** The values of administeredPart for a procedure using `count` vials, named or not. */
export function administeredValues(v: Omit<AdministeredValues, 'one'>): AdministeredValues {
  return { ...v, one: v.count === 1 ? true : undefined };
}

export const administeredPart = shapedPart<AdministeredValues>(
  { lotId: true, clinicId: true, count: true, procedureId: true, at: true, by: true, vialIds: true, barcodes: true, one: true },
  (p, present) => {
    const named = present.has('vialIds') ? sql` and id = any(${p.vialIds}::uuid[])` : present.has('barcodes') ? sql` and barcode = any(${p.barcodes}::text[])` : sql``;
    const lock = present.has('vialIds') || present.has('barcodes') ? sql`for update` : sql`for update skip locked`;
    const limit = present.has('one') ? sql`1` : p.count;
    const all = present.has('one') ? sql`1` : p.count;
    return sql`
      with picked as materialized (
        select id from ${vials}
        where lot_id = ${p.lotId} and clinic_id = ${p.clinicId} and status in ('at-clinic', 'recalled') and shipped_at <= ${p.at}${named}
        order by sequence limit ${limit} ${lock}
      )
      update ${vials} v set status = 'administered', procedure_id = ${p.procedureId}, moved_action = 'administered', moved_at = ${p.at},
        moved_by = ${p.by}, moved_reason = null, movement_id = ${p.procedureId}
      from picked where v.id = picked.id and (select count(*) from picked) = ${all}
      returning v.id, v.barcode, v.sequence`;
  },
);

/** The vials a clinic could give at `at`, lowest sequence first, at most `limit`: waits for concurrent claims to end (FOR SHARE). */
export async function claimableCount(exec: Executor, lotId: string, clinicId: string, at: Date, limit: number): Promise<number> {
  const result = await exec.execute(sql`
    select count(*)::int as n from (
      select 1 from ${vials} where lot_id = ${lotId} and clinic_id = ${clinicId} and status in ('at-clinic', 'recalled') and shipped_at <= ${at}
      order by sequence limit ${limit} for share) s`);
  return (result.rows[0] as { n: number }).n;
}

/** Of the named vials, those the clinic cannot give from this lot at `at`: unknown, of another lot or clinic, used, or not yet shipped. */
export async function unavailable(exec: Executor, lotId: string, clinicId: string, at: Date, selection: { vialIds: string[] } | { barcodes: string[] }): Promise<string[]> {
  const byId = 'vialIds' in selection;
  const wanted = byId ? selection.vialIds : selection.barcodes;
  const found = await exec
    .select({ id: vials.id, barcode: vials.barcode })
    .from(vials)
    .where(
      and(
        eq(vials.lotId, lotId),
        eq(vials.clinicId, clinicId),
        inArray(vials.status, [...AT_CLINIC]),
        lte(vials.shippedAt, at),
        byId ? inArray(vials.id, wanted) : inArray(vials.barcode, wanted),
      ),
    );
  const ok = new Set(found.map((r) => (byId ? r.id : r.barcode)));
  return wanted.filter((w) => !ok.has(w));
}

/**
 * Gives back to the clinic vials a procedure used (entered in error), named or the `count` highest sequences:
 * at-clinic, or recalled when the lot is recalled by now. Returns them (a named vial the procedure did not use
 * is not among them).
 */
export async function restock(tx: Tx, procedureId: string, which: Selection, m: Movement): Promise<(VialRef & { status: string; lotId: string; clinicId: string | null })[]> {
  const chosen =
    'vialIds' in which
      ? sql`and id = any(${sql.param(which.vialIds)}::uuid[]) order by sequence`
      : 'barcodes' in which
        ? sql`and barcode = any(${sql.param(which.barcodes)}::text[]) order by sequence`
        : sql`order by sequence desc limit ${which.count}`;
  const result = await tx.execute(sql`
    with picked as materialized (
      select id from ${vials} where procedure_id = ${procedureId} ${chosen} for update
    )
    update ${vials} v set status = case when l.status = 'recalled' then 'recalled' else 'at-clinic' end, procedure_id = null, ${moved(m)}
    from picked, ${lots} l where v.id = picked.id and l.id = v.lot_id
    returning v.id, v.barcode, v.sequence, v.status, v.lot_id as "lotId", v.clinic_id as "clinicId"`);
  return result.rows as unknown as (VialRef & { status: string; lotId: string; clinicId: string | null })[];
}

/** The vials each procedure uses now, in sequence order. */
export async function vialsOfProcedures(exec: Executor, procedureIds: string[]): Promise<Map<string, { id: string; barcode: string }[]>> {
  const out = new Map<string, { id: string; barcode: string }[]>();
  if (procedureIds.length === 0) return out;
  const rows = await exec
    .select({ procedureId: vials.procedureId, id: vials.id, barcode: vials.barcode })
    .from(vials)
    .where(inArray(vials.procedureId, procedureIds))
    .orderBy(asc(vials.procedureId), asc(vials.sequence));
  for (const r of rows) out.set(r.procedureId!, [...(out.get(r.procedureId!) ?? []), { id: r.id, barcode: r.barcode }]);
  return out;
}

/** The vials' barcodes by id (for a movement's record), in sequence order. */
export async function barcodesOf(exec: Executor, ids: string[]): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map();
  const rows = await exec.select({ id: vials.id, barcode: vials.barcode }).from(vials).where(inArray(vials.id, ids));
  return new Map(rows.map((r) => [r.id, r.barcode]));
}

const vialColumns = { ...getTableColumns(vials), lotNumber: lots.lotNumber, expiresOn: lots.expiresOn };
export type VialWithLot = VialRow & { lotNumber: string; expiresOn: string };

/** One vial with its lot's number and expiry, if the clinic may see it (null clinic: any). */
export async function findVial(exec: Executor, id: string, clinicId: string | null): Promise<VialWithLot | undefined> {
  const [row] = await exec
    .select(vialColumns)
    .from(vials)
    .innerJoin(lots, eq(lots.id, vials.lotId))
    .where(and(eq(vials.id, id), clinicId ? eq(vials.clinicId, clinicId) : undefined));
  return row;
}

/** The filters of a vial list: a lot, a barcode (the scan), a stored status or `expired` (derived at `today`), a clinic. */
export interface VialFilters {
  lotId?: string;
  barcode?: string;
  status?: string;
  clinicId?: string;
  today: string;
}

/** Vials by filters in (lot, sequence) order, a page at a time (the cursor is the last vial's id); a clinic token's own only. */
export async function listVials(exec: Executor, f: VialFilters, visibleTo: string | null, page: PageRequest): Promise<VialWithLot[]> {
  const status =
    f.status === undefined
      ? undefined
      : f.status === 'expired'
        ? and(inArray(vials.status, ['in-stock', 'at-clinic']), sql`${lots.expiresOn} < ${f.today}::date`)
        : f.status === 'in-stock' || f.status === 'at-clinic'
          ? and(eq(vials.status, f.status), sql`${lots.expiresOn} >= ${f.today}::date`)
          : eq(vials.status, f.status);
  const after = page.after
    ? sql`(${vials.lotId}, ${vials.sequence}) > (select lot_id, sequence from ${vials} where id = ${page.after})`
    : undefined;
  return exec
    .select(vialColumns)
    .from(vials)
    .innerJoin(lots, eq(lots.id, vials.lotId))
    .where(
      and(
        f.lotId ? eq(vials.lotId, f.lotId) : undefined,
        f.barcode !== undefined ? eq(vials.barcode, f.barcode) : undefined,
        f.clinicId ? eq(vials.clinicId, f.clinicId) : undefined,
        visibleTo ? eq(vials.clinicId, visibleTo) : undefined,
        status,
        after,
      ),
    )
    .orderBy(asc(vials.lotId), asc(vials.sequence))
    .limit(page.limit + 1);
}

/** A vial's custody, oldest entry first (as recorded), a page at a time. */
export async function custodyOf(exec: Executor, vialId: string, page: PageRequest<number>): Promise<CustodyRow[]> {
  return exec
    .select()
    .from(vialCustody)
    .where(and(eq(vialCustody.vialId, vialId), page.after !== undefined ? gt(vialCustody.id, page.after) : undefined))
    .orderBy(asc(vialCustody.id))
    .limit(page.limit + 1);
}

/** Vial accounting per clinic, derived from the vials (expired: unused and past the lot's expiry at `today`). */
export interface ClinicCounts {
  clinicId: string;
  shipped: number;
  administered: number;
  discarded: number;
  returned: number;
  recalled: number;
  expired: number;
  onHand: number;
}

export async function countsPerClinic(exec: Executor, lotId: string, clinicId: string | null, today: string): Promise<ClinicCounts[]> {
  const result = await exec.execute(sql`
    select v.clinic_id as "clinicId", count(*)::int as shipped,
      count(*) filter (where v.status = 'administered')::int as administered,
      count(*) filter (where v.status = 'discarded')::int as discarded,
      count(*) filter (where v.status = 'returned')::int as returned,
      count(*) filter (where v.status = 'recalled')::int as recalled,
      count(*) filter (where v.status = 'at-clinic' and l.expires_on < ${today}::date)::int as expired,
      count(*) filter (where v.status = 'at-clinic' and l.expires_on >= ${today}::date)::int as "onHand"
    from ${vials} v join ${lots} l on l.id = v.lot_id
    where v.lot_id = ${lotId} and v.clinic_id is not null ${clinicId ? sql`and v.clinic_id = ${clinicId}` : sql``}
    group by v.clinic_id order by v.clinic_id`);
  return result.rows as unknown as ClinicCounts[];
}

export async function insertShipment(tx: Tx, row: typeof shipments.$inferInsert): Promise<ShipmentRow> {
  const [created] = await tx.insert(shipments).values(row).returning();
  return created!;
}

export async function insertDiscard(tx: Tx, row: typeof discards.$inferInsert): Promise<DiscardRow> {
  const [created] = await tx.insert(discards).values(row).returning();
  return created!;
}

export async function insertReturn(tx: Tx, row: typeof vialReturns.$inferInsert): Promise<ReturnRow> {
  const [created] = await tx.insert(vialReturns).values(row).returning();
  return created!;
}

/** Adds shipped vials to the lot's count of vials shipped. */
export async function addShipped(tx: Tx, lotId: string, count: number) {
  await tx.update(lots).set({ vialsShipped: sql`${lots.vialsShipped} + ${count}` }).where(eq(lots.id, lotId));
}

/** A record of vials moving: a shipment, a discard or a return. */
type MovementTable = typeof shipments | typeof discards | typeof vialReturns;

/** A lot's movements of one kind in id order, a page at a time; a clinic token's own clinic only. */
function listMovements<T extends MovementTable>(table: T) {
  // The three tables share the columns read here; drizzle cannot select from a union of tables.
  const t = table as unknown as typeof shipments;
  return (exec: Executor, lotId: string, clinicId: string | null, page: PageRequest): Promise<T['$inferSelect'][]> =>
    exec
      .select()
      .from(t)
      .where(and(eq(t.lotId, lotId), clinicId ? eq(t.clinicId, clinicId) : undefined, page.after ? gt(t.id, page.after) : undefined))
      .orderBy(asc(t.id))
      .limit(page.limit + 1);
}

export const listShipments = listMovements(shipments);
export const listDiscards = listMovements(discards);
export const listReturns = listMovements(vialReturns);

