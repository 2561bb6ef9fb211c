import { sql } from 'drizzle-orm';
import { bigint, index, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/** Append-only (a trigger refuses UPDATE and DELETE). One row per read or write of patient data. */
export const auditEvents = pgTable(
  'audit_events',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    occurredAt: timestamp('occurred_at', { withTimezone: true, mode: 'date' }).notNull().default(sql`clock_timestamp()`),
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
    index('audit_actor_idx').on(t.actorSub, t.id),
    index('audit_clinic_idx').on(t.clinicId, t.id),
    index('audit_occurred_idx').on(t.occurredAt),
  ],
);
