import { sql } from 'drizzle-orm';
import { bigint, check, index, integer, pgTable, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { instant } from '../../db/columns.js';
import { lots } from '../lots/lots.table.js';

/**
 * A lot's vials, one row each, made with the lot (21 CFR 1271.290: every unit tracked from the donor to the
 * consignee and back). `status` is where the vial is in its life; `clinic_id` the consignee that holds or last
 * held it; `procedure_id` the procedure that used it. Every UPDATE of a row is a movement: the statement trigger
 * `vials_custody` (migration 0015) appends one vial_custody row per changed vial from its `moved_*` columns,
 * so no vial moves without a custody entry. Expired is derived from the lot's expiresOn, never stored.
 */
export const vials = pgTable(
  'vials',
  {
    id: uuid('id').primaryKey(),
    lotId: uuid('lot_id')
      .notNull()
      .references(() => lots.id),
    manufacturer: text('manufacturer').notNull(),
    sequence: integer('sequence').notNull(),
    barcode: text('barcode').notNull(),
    status: text('status').notNull().default('in-stock'),
    clinicId: text('clinic_id'),
    /** The procedure that used it. References procedures (foreign key declared in migration 0015, not here: vials sit below procedures). */
    procedureId: uuid('procedure_id'),
    /** When it left for its clinic (the shipment's effective time): nothing done to it there can be earlier. */
    shippedAt: instant('shipped_at'),
    receivedAt: instant('received_at'),
    /** The last movement: what, when (its effective time), by whom, why, and the record it belongs to. */
    movedAction: text('moved_action'),
    movedAt: instant('moved_at'),
    movedBy: text('moved_by'),
    movedReason: text('moved_reason'),
    movementId: uuid('movement_id'),
  },
  (t) => [
    uniqueIndex('vials_lot_sequence_uq').on(t.lotId, t.sequence),
    uniqueIndex('vials_barcode_uq').on(t.barcode, t.manufacturer),
    // The vials a clinic may give or move, lowest sequence first: what a claim scans (FOR UPDATE SKIP LOCKED).
    index('vials_on_hand_idx').on(t.lotId, t.clinicId, t.sequence).where(sql`${t.status} in ('at-clinic', 'recalled')`),
    index('vials_in_stock_idx').on(t.lotId, t.sequence).where(sql`${t.status} = 'in-stock'`),
    index('vials_procedure_idx').on(t.procedureId).where(sql`${t.procedureId} is not null`),
    index('vials_clinic_idx').on(t.lotId, t.clinicId, t.status),
    check('vials_status_ck', sql`${t.status} in ('in-stock','at-clinic','administered','discarded','returned','recalled')`),
    check('vials_sequence_ck', sql`${t.sequence} >= 1`),
    check('vials_used_ck', sql`(${t.status} = 'administered') = (${t.procedureId} is not null)`),
    check('vials_barcode_nfc_ck', sql`${t.barcode} is nfc normalized`),
  ],
);

/** Append-only: one row per movement of a vial (trigger-written from vials.moved_*; never updated or deleted). */
export const vialCustody = pgTable(
  'vial_custody',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    vialId: uuid('vial_id')
      .notNull()
      .references(() => vials.id),
    at: instant('at').notNull(),
    action: text('action').notNull(),
    clinicId: text('clinic_id'),
    by: text('by').notNull(),
    procedureId: uuid('procedure_id'),
    shipmentId: uuid('shipment_id'),
    discardId: uuid('discard_id'),
    returnId: uuid('return_id'),
    reason: text('reason'),
    recordedAt: instant('recorded_at').notNull().default(sql`now()`),
  },
  (t) => [
    index('vial_custody_vial_idx').on(t.vialId, t.id),
    check('vial_custody_action_ck', sql`${t.action} in ('released','shipped','received','administered','discarded','returned','recalled')`),
  ],
);

/** Vials of a lot on their way to and at clinics: shipments (the vials each carried, lowest sequence first). */
export const shipments = pgTable(
  'shipments',
  {
    id: uuid('id').primaryKey(),
    lotId: uuid('lot_id')
      .notNull()
      .references(() => lots.id),
    clinicId: text('clinic_id').notNull(),
    vials: integer('vials').notNull(),
    vialIds: uuid('vial_ids').array().notNull(),
    shippedAt: instant('shipped_at').notNull(),
    recordedBy: text('recorded_by').notNull(),
    recordedAt: instant('recorded_at').notNull().default(sql`now()`),
  },
  (t) => [index('shipments_lot_idx').on(t.lotId, t.id), check('shipments_vials_ck', sql`${t.vials} > 0`)],
);

export const discards = pgTable(
  'discards',
  {
    id: uuid('id').primaryKey(),
    lotId: uuid('lot_id')
      .notNull()
      .references(() => lots.id),
    clinicId: text('clinic_id').notNull(),
    vials: integer('vials').notNull(),
    vialIds: uuid('vial_ids').array().notNull(),
    reason: text('reason').notNull(),
    discardedAt: instant('discarded_at').notNull(),
    recordedBy: text('recorded_by').notNull(),
    recordedAt: instant('recorded_at').notNull().default(sql`now()`),
  },
  (t) => [index('discards_lot_idx').on(t.lotId, t.id), check('discards_vials_ck', sql`${t.vials} > 0`)],
);

/** Unused vials a clinic sent back to the manufacturer. */
export const vialReturns = pgTable(
  'vial_returns',
  {
    id: uuid('id').primaryKey(),
    lotId: uuid('lot_id')
      .notNull()
      .references(() => lots.id),
    clinicId: text('clinic_id').notNull(),
    vials: integer('vials').notNull(),
    vialIds: uuid('vial_ids').array().notNull(),
    reason: text('reason').notNull(),
    returnedAt: instant('returned_at').notNull(),
    recordedBy: text('recorded_by').notNull(),
    recordedAt: instant('recorded_at').notNull().default(sql`now()`),
  },
  (t) => [index('vial_returns_lot_idx').on(t.lotId, t.id), check('vial_returns_vials_ck', sql`${t.vials} > 0`)],
);

