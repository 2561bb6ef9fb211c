import { sql } from 'drizzle-orm';
import { integer, jsonb, pgTable, primaryKey, text, uuid } from 'drizzle-orm/pg-core';
import { instant } from '../../db/columns.js';

/**
 * Every version of every mutable record, as the API showed it. Written in the same transaction as the
 * change; never updated or deleted (a trigger refuses it). `GET .../{id}/history` reads from here.
 */
export const recordVersions = pgTable(
  'record_versions',
  {
    resourceType: text('resource_type').notNull(),
    resourceId: uuid('resource_id').notNull(),
    version: integer('version').notNull(),
    clinicId: text('clinic_id'),
    body: jsonb('body').$type<Record<string, unknown>>().notNull(),
    recordedAt: instant('recorded_at').notNull().default(sql`now()`),
    recordedBy: text('recorded_by').notNull(),
  },
  (t) => [primaryKey({ columns: [t.resourceType, t.resourceId, t.version] })],
);
