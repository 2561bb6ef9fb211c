import { sql } from 'drizzle-orm';
import { bigint, boolean, check, index, integer, jsonb, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { instant } from '../../db/columns.js';
import { events, xid8 } from '../events/events.table.js';

/**
 * Where a clinic's (or the supplier's) system wants events pushed (Standard Webhooks). Never deleted: a
 * subscription is paused, or disabled by the service (410, or failing for days) with `disabled_reason`.
 * `cursor_tx`/`cursor_seq` is the feed position up to which events have become deliveries.
 */
export const webhookSubscriptions = pgTable(
  'webhook_subscriptions',
  {
    id: uuid('id').primaryKey(),
    /** The owning clinic: it receives only what that clinic may see; null receives every event. */
    clinicId: text('clinic_id'),
    url: text('url').notNull(),
    types: text('types').array().notNull(),
    description: text('description'),
    parallel: boolean('parallel').notNull().default(false),
    status: text('status').notNull(),
    disabledReason: text('disabled_reason'),
    secret: text('secret').notNull(),
    /** Secrets replaced by rotations, each signing beside the current one until its `expiresAt` (ISO 8601). */
    previousSecrets: jsonb('previous_secrets').$type<{ secret: string; expiresAt: string }[]>().notNull().default(sql`'[]'::jsonb`),
    cursorTx: xid8('cursor_tx').notNull(),
    cursorSeq: bigint('cursor_seq', { mode: 'number' }).notNull(),
    failingSince: instant('failing_since'),
    version: integer('version').notNull().default(1),
    createdAt: instant('created_at').notNull(),
    createdBy: text('created_by').notNull(),
    updatedAt: instant('updated_at').notNull(),
    updatedBy: text('updated_by').notNull(),
  },
  (t) => [
    index('webhook_subscriptions_clinic_idx').on(t.clinicId, t.id),
    check('webhook_subscriptions_status_ck', sql`${t.status} in ('active','paused','disabled')`),
  ],
);

/**
 * One event to one subscription. `seq` orders a subscription's deliveries (an ordered subscription sends its
 * next only when the one before has succeeded or finally failed). An attempt in flight holds a lease
 * (`lease_token`, `lease_until`): no other instance takes it before the lease ends, and a process killed
 * mid-attempt leaves a lease that simply expires, so the delivery is tried again with the same `webhook-id`.
 */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: uuid('id').primaryKey(),
    seq: bigint('seq', { mode: 'number' }).notNull().generatedAlwaysAsIdentity(),
    subscriptionId: uuid('subscription_id')
      .notNull()
      .references(() => webhookSubscriptions.id),
    eventId: uuid('event_id')
      .notNull()
      .references(() => events.id),
    /** `event` (from the feed), `replay` (asked for a range), `retry` (asked for one). */
    cause: text('cause').notNull(),
    status: text('status').notNull(),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: instant('next_attempt_at').notNull(),
    leaseToken: uuid('lease_token'),
    leaseUntil: instant('lease_until'),
    lastStatusCode: integer('last_status_code'),
    lastError: text('last_error'),
    createdAt: instant('created_at').notNull().default(sql`now()`),
    completedAt: instant('completed_at'),
  },
  (t) => [
    index('webhook_deliveries_subscription_idx').on(t.subscriptionId, t.seq),
    // A subscription's next delivery (in order), and its due ones (parallel).
    index('webhook_deliveries_pending_idx').on(t.subscriptionId, t.seq).where(sql`${t.status} = 'pending'`),
    index('webhook_deliveries_due_idx').on(t.subscriptionId, t.nextAttemptAt).where(sql`${t.status} = 'pending'`),
    // A subscription's attempts in flight (leased; the lease is cleared when the attempt is recorded).
    index('webhook_deliveries_leased_idx').on(t.subscriptionId).where(sql`${t.leaseToken} is not null`),
    check('webhook_deliveries_status_ck', sql`${t.status} in ('pending','succeeded','failed')`),
    check('webhook_deliveries_cause_ck', sql`${t.cause} in ('event','replay','retry')`),
  ],
);

/** Every attempt of a delivery, as it went (append-only): when, the receiver's status code, latency, error. */
export const webhookAttempts = pgTable(
  'webhook_attempts',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    deliveryId: uuid('delivery_id')
      .notNull()
      .references(() => webhookDeliveries.id),
    attempt: integer('attempt').notNull(),
    at: instant('at').notNull(),
    statusCode: integer('status_code'),
    latencyMs: integer('latency_ms').notNull(),
    error: text('error'),
    succeeded: boolean('succeeded').notNull(),
  },
  (t) => [index('webhook_attempts_delivery_idx').on(t.deliveryId, t.id)],
);
