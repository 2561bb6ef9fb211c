import { sql } from 'drizzle-orm';
import { bigint, check, customType, index, jsonb, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { instant } from '../../db/columns.js';

/**
 * A transaction id (`xid8`, PostgreSQL 13+): 64 bits, never wraps. Read as text (a JS number would lose
 * precision past 2^53); compared in SQL only.
 */
export const xid8 = customType<{ data: string; driverData: string }>({ dataType: () => 'xid8' });

/**
 * The transactional outbox and the event feed (contract "Events and webhooks"): one row per change worth telling,
 * inserted in the change's own transaction. Append-only (a trigger refuses UPDATE, DELETE and TRUNCATE).
 *
 * Order: `(tx, seq)`, the writing transaction's id then the insert order. A reader takes only rows of
 * transactions older than every transaction still running (`tx < pg_snapshot_xmin(pg_current_snapshot())`), so
 * no event can later appear before a position a reader has passed: a cursor never skips a committed event.
 */
export const events = pgTable(
  'events',
  {
    id: uuid('id').primaryKey(),
    seq: bigint('seq', { mode: 'number' }).notNull().generatedAlwaysAsIdentity(),
    tx: xid8('tx').notNull().default(sql`pg_current_xact_id()`),
    occurredAt: instant('occurred_at').notNull().default(sql`now()`),
    type: text('type').notNull(),
    /** The clinic whose record changed; null for supplier events (lots, donors). */
    clinicId: text('clinic_id'),
    subjectType: text('subject_type').notNull(),
    subjectId: uuid('subject_id').notNull(),
    /** The lots the event is about. */
    lotIds: uuid('lot_ids').array().notNull().default(sql`'{}'::uuid[]`),
    /**
     * For a supplier event: the clinics its lots had been shipped to when it was written (fixed then, so who may
     * see an event never changes after it is settled: the feed and every subscription agree, and no event appears
     * behind a position a reader has passed).
     */
    audience: text('audience').array().notNull().default(sql`'{}'::text[]`),
    data: jsonb('data').$type<Record<string, unknown>>().notNull(),
  },
  (t) => [
    index('events_position_idx').on(t.tx, t.seq),
    index('events_clinic_position_idx').on(t.clinicId, t.tx, t.seq),
    check('events_type_ck', sql`${t.type} ~ '^[a-z-]+\\.[a-z-]+$'`),
  ],
);
