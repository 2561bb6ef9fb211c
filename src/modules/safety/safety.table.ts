import { sql } from 'drizzle-orm';
import { bigint, boolean, check, doublePrecision, index, integer, pgTable, primaryKey, text, uuid } from 'drizzle-orm/pg-core';
import { instant } from '../../db/columns.js';
import { xid8 } from '../events/events.table.js';
import { lots } from '../lots/lots.table.js';

/**
 * The safety monitor's counts (safety.monitor.ts), per lot and clinic, as of its position in the event feed:
 * completed procedures (not entered in error) and those with at least one adverse event not judged `not-related`.
 * Kept by the monitor alone, from the feed, so no clinical write touches a counter row; a report sums them over
 * a product's lots in a few hundred rows instead of counting millions of procedures.
 */
export const lotSafetyCounts = pgTable(
  'lot_safety_counts',
  {
    lotId: uuid('lot_id')
      .notNull()
      .references(() => lots.id),
    clinicId: text('clinic_id').notNull(),
    procedures: integer('procedures').notNull().default(0),
    proceduresWithEvent: integer('procedures_with_event').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.lotId, t.clinicId] })],
);

/**
 * Responders per lot, clinic, instrument (those with an MCID) and follow-up timepoint, as of the monitor's position:
 * `n` completed procedures with a score at that timepoint and a baseline on the instrument (the latest of each),
 * `responders` those whose improvement reaches the MCID (outcomes/instruments.ts isResponder).
 */
export const lotResponderCounts = pgTable(
  'lot_responder_counts',
  {
    lotId: uuid('lot_id')
      .notNull()
      .references(() => lots.id),
    clinicId: text('clinic_id').notNull(),
    instrument: text('instrument').notNull(),
    timepoint: text('timepoint').notNull(),
    n: integer('n').notNull().default(0),
    responders: integer('responders').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.lotId, t.clinicId, t.instrument, t.timepoint] })],
);

/** The procedures counted in `procedures_with_event` (a set, so a re-evaluation never counts one twice). */
export const safetyProceduresWithEvent = pgTable(
  'safety_procedures_with_event',
  {
    procedureId: uuid('procedure_id').primaryKey(),
    lotId: uuid('lot_id').notNull(),
    clinicId: text('clinic_id').notNull(),
  },
  (t) => [index('safety_procedures_with_event_lot_idx').on(t.lotId, t.clinicId)],
);

/**
 * A lot's signal as the monitor last judged it over every clinic (Fisher's exact test against the product's other
 * lots). A row is written when a lot is first flagged, with the `lot.safety-signal` event it emitted; `flagged`
 * follows later judgements, and a lot flagged again after it cleared is told again (`event_id`: the latest).
 */
export const lotSafetySignals = pgTable('lot_safety_signals', {
  lotId: uuid('lot_id')
    .primaryKey()
    .references(() => lots.id),
  flagged: boolean('flagged').notNull(),
  pValue: doublePrecision('p_value').notNull(),
  firstFlaggedAt: instant('first_flagged_at').notNull(),
  changedAt: instant('changed_at').notNull(),
  eventId: uuid('event_id').notNull(),
});

/**
 * The monitor's position in the event feed (one row): every settled event before it is in the counts. Moved in
 * the transaction that applies the events, so a crash repeats a pass instead of losing or doubling it.
 */
export const safetyMonitor = pgTable(
  'safety_monitor',
  {
    id: integer('id').primaryKey(),
    cursorTx: xid8('cursor_tx').notNull(),
    cursorSeq: bigint('cursor_seq', { mode: 'number' }).notNull(),
    updatedAt: instant('updated_at').notNull().default(sql`now()`),
  },
  (t) => [check('safety_monitor_one_row_ck', sql`${t.id} = 1`)],
);

/**
 * Lots whose counts are to be rebuilt from the records (set when the counts began, and by anything that writes
 * procedures, outcomes or adverse events without the service: the bench seed). The monitor rebuilds a few per pass.
 */
export const lotSafetyRecount = pgTable('lot_safety_recount', {
  lotId: uuid('lot_id')
    .primaryKey()
    .references(() => lots.id),
  requestedAt: instant('requested_at').notNull().default(sql`now()`),
});
