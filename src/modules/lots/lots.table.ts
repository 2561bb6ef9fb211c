import { sql } from 'drizzle-orm';
import { check, date, index, integer, jsonb, numeric, pgTable, primaryKey, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { instant } from '../../db/columns.js';
import { donors } from '../donors/donors.table.js';

export interface Characterization {
  particlesPerMl: number;
  meanSizeNm: number;
  modeSizeNm?: number;
  d10Nm?: number;
  d90Nm?: number;
  sizeMethod: string;
  proteinUgPerMl?: number;
  positiveMarkers: string[];
  negativeMarkers: string[];
}

export interface ReleaseTests {
  sterility: 'pass' | 'fail' | 'pending';
  mycoplasma: 'pass' | 'fail' | 'pending';
  endotoxinEuPerMl: number | null;
}

export const lots = pgTable(
  'lots',
  {
    id: uuid('id').primaryKey(),
    lotNumber: text('lot_number').notNull(),
    manufacturer: text('manufacturer').notNull(),
    productName: text('product_name').notNull(),
    isolationMethod: text('isolation_method').notNull(),
    poolingJustification: text('pooling_justification'),
    characterization: jsonb('characterization').$type<Characterization>(),
    releaseTests: jsonb('release_tests').$type<ReleaseTests>().notNull(),
    manufacturedOn: date('manufactured_on', { mode: 'string' }).notNull(),
    expiresOn: date('expires_on', { mode: 'string' }).notNull(),
    storageTempC: numeric('storage_temp_c', { mode: 'number' }).notNull(),
    vialVolumeMl: numeric('vial_volume_ml', { mode: 'number' }).notNull(),
    vialCount: integer('vial_count').notNull(),
    vialsShipped: integer('vials_shipped').notNull().default(0),
    status: text('status').notNull().default('quarantine'),
    version: integer('version').notNull().default(1),
    createdAt: instant('created_at').notNull().default(sql`now()`),
    createdBy: text('created_by').notNull(),
    updatedAt: instant('updated_at').notNull().default(sql`now()`),
    updatedBy: text('updated_by').notNull(),
  },
  (t) => [
    uniqueIndex('lots_manufacturer_number_uq').on(t.manufacturer, t.lotNumber),
    check('lots_number_nfc_ck', sql`${t.lotNumber} is nfc normalized and ${t.manufacturer} is nfc normalized`),
    index('lots_status_idx').on(t.status, t.id),
    check('lots_status_ck', sql`${t.status} in ('quarantine','released','recalled')`),
    check('lots_vials_ck', sql`${t.vialCount} > 0 and ${t.vialsShipped} >= 0 and ${t.vialsShipped} <= ${t.vialCount}`),
    check('lots_dates_ck', sql`${t.expiresOn} > ${t.manufacturedOn}`),
  ],
);

export const lotDonors = pgTable(
  'lot_donors',
  {
    lotId: uuid('lot_id')
      .notNull()
      .references(() => lots.id),
    donorId: uuid('donor_id')
      .notNull()
      .references(() => donors.id),
  },
  (t) => [primaryKey({ columns: [t.lotId, t.donorId] }), index('lot_donors_donor_idx').on(t.donorId)],
);

/** The lot's dated status history: its status at any instant is the latest change effective by then. */
export const lotStatusChanges = pgTable(
  'lot_status_changes',
  {
    id: uuid('id').primaryKey(),
    lotId: uuid('lot_id')
      .notNull()
      .references(() => lots.id),
    status: text('status').notNull(),
    effectiveAt: instant('effective_at').notNull(),
    reason: text('reason'),
    cause: text('cause').notNull(),
    changedBy: text('changed_by').notNull(),
    recordedAt: instant('recorded_at').notNull().default(sql`now()`),
  },
  (t) => [index('lot_status_changes_lot_idx').on(t.lotId, t.effectiveAt, t.id)],
);




