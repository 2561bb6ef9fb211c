import { sql } from 'drizzle-orm';
import { bigint, index, jsonb, pgTable, text, uniqueIndex } from 'drizzle-orm/pg-core';
import { instant } from '../../db/columns.js';

/** Append-only (a trigger refuses UPDATE and DELETE). One row per read or write of patient data. */
export const auditEvents = pgTable(
  'audit_events',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    occurredAt: instant('occurred_at').notNull().default(sql`clock_timestamp()`),
    actorSub: text('actor_sub').notNull(),
    actorClinicId: text('actor_clinic_id'),
    action: text('action').notNull(),
    resourceType: text('resource_type').notNull(),
    resourceId: text('resource_id'),
    clinicId: text('clinic_id'),
    requestId: text('request_id'),
    outcome: text('outcome').notNull(),
    details: jsonb('details').$type<Record<string, unknown>>(),
  },
  (t) => [
    index('audit_resource_idx').on(t.resourceType, t.resourceId, t.id),
    // Kept few: every read writes an entry. Searches by actor scan in id order; times use a BRIN index.
    index('audit_clinic_idx').on(t.clinicId, t.id),
    index('audit_occurred_brin').using('brin', t.occurredAt),
  ],
);

/**
 * The hash chain over audit_events, in sealing order (docs/adr/0001-audit-hash-chain.md). Insert-only;
 * written by the SQL function audit_seal().
 */
export const auditChain = pgTable(
  'audit_chain',
  {
    seq: bigint('seq', { mode: 'number' }).primaryKey(),
    // No foreign key (migration 0011): verification reports a link whose entry is gone as entry-missing.
    eventId: bigint('event_id', { mode: 'number' }).notNull(),
    prevHash: text('prev_hash').notNull(),
    hash: text('hash').notNull(),
    sealedAt: instant('sealed_at').notNull().default(sql`now()`),
  },
  (t) => [uniqueIndex('audit_chain_event_uq').on(t.eventId)],
);

/** Work queue of entries not yet in the chain (operational, not evidence: the sealer deletes from it). */
export const auditUnsealed = pgTable('audit_unsealed', {
  eventId: bigint('event_id', { mode: 'number' }).primaryKey(),
  queuedAt: instant('queued_at').notNull().default(sql`now()`),
});
