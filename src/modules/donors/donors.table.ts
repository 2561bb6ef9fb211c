import { sql } from 'drizzle-orm';
import { check, date, index, integer, pgTable, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { instant } from '../../db/columns.js';

/** Donors carry no personal identity: the DIN is the only identifier (21 CFR 1271.290). */
export const donors = pgTable(
  'donors',
  {
    id: uuid('id').primaryKey(),
    din: text('din').notNull(),
    dinCheckCharacter: text('din_check_character').notNull(),
    sourceTissue: text('source_tissue').notNull(),
    sex: text('sex').notNull(),
    ageAtDonationYears: integer('age_at_donation_years').notNull(),
    collectedOn: date('collected_on', { mode: 'string' }).notNull(),
    version: integer('version').notNull().default(1),
    createdAt: instant('created_at').notNull().default(sql`now()`),
    createdBy: text('created_by').notNull(),
    updatedAt: instant('updated_at').notNull().default(sql`now()`),
  },
  (t) => [
    uniqueIndex('donors_din_uq').on(t.din),
    check('donors_age_ck', sql`${t.ageAtDonationYears} between 0 and 120`),
  ],
);

/** Screening results, append-only: a retest is a new row. */
export const donorTests = pgTable(
  'donor_tests',
  {
    id: uuid('id').primaryKey(),
    donorId: uuid('donor_id')
      .notNull()
      .references(() => donors.id),
    marker: text('marker').notNull(),
    method: text('method').notNull(),
    result: text('result').notNull(),
    testedOn: date('tested_on', { mode: 'string' }).notNull(),
    laboratory: text('laboratory').notNull(),
    recordedAt: instant('recorded_at').notNull().default(sql`now()`),
    recordedBy: text('recorded_by').notNull(),
  },
  (t) => [index('donor_tests_donor_idx').on(t.donorId, t.id)],
);

/** Every eligibility determination, append-only; the current one is the latest by `determined_at`. */
export const donorEligibility = pgTable(
  'donor_eligibility',
  {
    id: uuid('id').primaryKey(),
    donorId: uuid('donor_id')
      .notNull()
      .references(() => donors.id),
    status: text('status').notNull(),
    determinedBy: text('determined_by').notNull(),
    determinedAt: instant('determined_at').notNull(),
    reason: text('reason'),
    recordedAt: instant('recorded_at').notNull().default(sql`now()`),
    recordedBy: text('recorded_by').notNull(),
  },
  (t) => [
    index('donor_eligibility_donor_idx').on(t.donorId, t.determinedAt, t.id),
    check('donor_eligibility_reason_ck', sql`${t.status} <> 'ineligible' or ${t.reason} is not null`),
  ],
);
