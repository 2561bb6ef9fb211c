import { sql } from 'drizzle-orm';
import { check, integer, jsonb, pgTable, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { instant } from '../../db/columns.js';

/**
 * A product's reference list of expected reactions (the investigator brochure's), CTCAE v5 terms, maintained by the
 * supplier per `productName` (the lots' `product_name`). One row per product, corrected in place with a new version
 * (record_versions keeps every one, under `id`); never deleted.
 */
export const productExpectedReactions = pgTable(
  'product_expected_reactions',
  {
    productName: text('product_name').primaryKey(),
    /** The record's id in record_versions and the audit log (a product name is not a uuid). */
    id: uuid('id').notNull(),
    reactions: jsonb('reactions').$type<string[]>().notNull(),
    version: integer('version').notNull().default(1),
    createdAt: instant('created_at').notNull().default(sql`now()`),
    createdBy: text('created_by').notNull(),
    updatedAt: instant('updated_at').notNull().default(sql`now()`),
    updatedBy: text('updated_by').notNull(),
  },
  (t) => [
    uniqueIndex('product_expected_reactions_id_uq').on(t.id),
    check('product_expected_reactions_name_nfc_ck', sql`${t.productName} is nfc normalized`),
    check('product_expected_reactions_array_ck', sql`jsonb_typeof(${t.reactions}) = 'array'`),
  ],
);
