import { sql } from 'drizzle-orm';
import { index, pgTable, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { instant } from '../../db/columns.js';
import { lots } from '../lots/lots.table.js';

/** One notice per clinic that received vials of a recalled lot; acknowledged by that clinic. */
export const recallNotices = pgTable(
  'recall_notices',
  {
    id: uuid('id').primaryKey(),
    lotId: uuid('lot_id')
      .notNull()
      .references(() => lots.id),
    clinicId: text('clinic_id').notNull(),
    recallReason: text('recall_reason').notNull(),
    recalledAt: instant('recalled_at').notNull(),
    /** The clinic's vials the recall marked, to quarantine: what the clinic was told, kept as told. */
    barcodes: text('barcodes').array().notNull().default(sql`'{}'::text[]`),
    createdAt: instant('created_at').notNull().default(sql`now()`),
    acknowledgedAt: instant('acknowledged_at'),
    acknowledgedBy: text('acknowledged_by'),
  },
  (t) => [uniqueIndex('recall_notices_lot_clinic_uq').on(t.lotId, t.clinicId), index('recall_notices_clinic_idx').on(t.clinicId)],
);
