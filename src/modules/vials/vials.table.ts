import { sql } from 'drizzle-orm';
import { check, index, integer, pgTable, primaryKey, text, uuid } from 'drizzle-orm/pg-core';
import { instant } from '../../db/columns.js';
import { lots } from '../lots/lots.table.js';

/** Vials of a lot on their way to and at clinics: shipments, discards and the stock they keep (per lot and clinic). */

export const shipments = pgTable(
  'shipments',
  {
    id: uuid('id').primaryKey(),
    lotId: uuid('lot_id')
      .notNull()
      .references(() => lots.id),
    clinicId: text('clinic_id').notNull(),
    vials: integer('vials').notNull(),
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
    reason: text('reason').notNull(),
    discardedAt: instant('discarded_at').notNull(),
    recordedBy: text('recorded_by').notNull(),
    recordedAt: instant('recorded_at').notNull().default(sql`now()`),
  },
  (t) => [index('discards_lot_idx').on(t.lotId, t.id), check('discards_vials_ck', sql`${t.vials} > 0`)],
);

/**
 * Vials per lot and clinic, kept by the writes that move them. The CHECK makes overselling impossible
 * even for a buggy writer: a conditional UPDATE that would go below zero simply fails.
 */
export const lotStock = pgTable(
  'lot_stock',
  {
    lotId: uuid('lot_id')
      .notNull()
      .references(() => lots.id),
    clinicId: text('clinic_id').notNull(),
    shipped: integer('shipped').notNull().default(0),
    administered: integer('administered').notNull().default(0),
    discarded: integer('discarded').notNull().default(0),
  },
  (t) => [
    primaryKey({ columns: [t.lotId, t.clinicId] }),
    check('lot_stock_ck', sql`${t.administered} >= 0 and ${t.discarded} >= 0 and ${t.administered} + ${t.discarded} <= ${t.shipped}`),
  ],
);
