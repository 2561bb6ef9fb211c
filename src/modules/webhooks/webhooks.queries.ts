import { and, asc, eq, gt, inArray, sql } from 'drizzle-orm';
import type { Executor, Tx } from '../../db/client.js';
import { fromRaw } from '../../db/raw.js';
import type { PageRequest } from '../../shared/paging.js';
import { events } from '../events/events.table.js';
import { webhookAttempts, webhookDeliveries, webhookSubscriptions } from './webhooks.table.js';

export type SubscriptionRow = typeof webhookSubscriptions.$inferSelect;
export type DeliveryRow = typeof webhookDeliveries.$inferSelect;
export type AttemptRow = typeof webhookAttempts.$inferSelect;

/** Most events a subscription turns into deliveries per pass (the rest follow on the next pass). */
export const FAN_OUT_BATCH = 1000;

/**
 * A new subscription, starting at the oldest transaction still running: every event committed after it is
 * delivered (and a few committed just before, which at-least-once allows).
 */
export async function insertSubscription(tx: Tx, row: Omit<SubscriptionRow, 'cursorTx' | 'cursorSeq' | 'version' | 'failingSince' | 'disabledReason' | 'previousSecrets'>) {
  const [inserted] = await tx
    .insert(webhookSubscriptions)
    .values({ ...row, cursorTx: sql`pg_snapshot_xmin(pg_current_snapshot())`, cursorSeq: 0 })
    .returning();
  return inserted!;
}

/** Locks the tenant's creates (an advisory lock on its name) and counts its subscriptions that are not disabled. */
export async function lockTenantAndCount(tx: Tx, clinicId: string | null): Promise<number> {
  await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`webhook-subscriptions:${clinicId ?? ''}`}, 0))`);
  const result = await tx.execute(sql`
    select count(*)::int as n from webhook_subscriptions
    where clinic_id is not distinct from ${clinicId}::text and status <> 'disabled'`);
  return Number((result.rows[0] as { n: number }).n);
}

const ownedBy = (clinicId: string | null) => (clinicId === null ? undefined : eq(webhookSubscriptions.clinicId, clinicId));

/** The subscription if the caller's clinic owns it (a token without clinic sees every one). */
export async function findSubscription(exec: Executor, id: string, clinicId: string | null, lock = false): Promise<SubscriptionRow | undefined> {
  const query = exec.select().from(webhookSubscriptions).where(and(eq(webhookSubscriptions.id, id), ownedBy(clinicId)));
  const [row] = lock ? await query.for('update') : await query;
  return row;
}

export function listSubscriptions(exec: Executor, clinicId: string | null, page: PageRequest) {
  return exec
    .select()
    .from(webhookSubscriptions)
    .where(and(ownedBy(clinicId), page.after ? gt(webhookSubscriptions.id, page.after) : undefined))
    .orderBy(asc(webhookSubscriptions.id))
    .limit(page.limit + 1);
}

export async function updateSubscription(tx: Tx, id: string, changes: Partial<SubscriptionRow>): Promise<SubscriptionRow> {
  const [row] = await tx
    .update(webhookSubscriptions)
    .set({ ...changes, version: sql`${webhookSubscriptions.version} + 1` })
    .where(eq(webhookSubscriptions.id, id))
    .returning();
  return row!;
}

/**
 * The fan-out, one statement for every active subscription no other instance is fanning out (SKIP LOCKED):
 * the settled events after each subscription's cursor that it wants (types) and may see (`event_visible_to`)
 * become pending deliveries in feed order, and the cursor moves past them: to the last one taken when the
 * batch was full, else to the oldest running transaction (nothing before it can still appear).
 *
 * The cursor only moves forward. A statement whose snapshot predates another instance's fan-out, committed
 * before this one locked the row, reads the row as that fan-out left it (READ COMMITTED locks and returns the
 * newest version) but has an older horizon: moving the cursor back to it would deliver the events in between again.
 */
export async function fanOut(exec: Executor): Promise<number> {
  const result = await exec.execute(sql`
    with subs as (
      select s.id, s.clinic_id, s.types, s.cursor_tx, s.cursor_seq from webhook_subscriptions s
      where s.status = 'active' for update skip locked
    ),
    picked as (
      select s.id as subscription_id, m.id as event_id, m.tx, m.seq
      from subs s cross join lateral (
        select e.id, e.tx, e.seq from events e
        where (e.tx, e.seq) > (s.cursor_tx, s.cursor_seq)
          and e.tx < pg_snapshot_xmin(pg_current_snapshot())
          and e.type = any(s.types)
          and event_visible_to(e, s.clinic_id)
        order by e.tx, e.seq
        limit ${FAN_OUT_BATCH}
      ) m
    ),
    inserted as (
      insert into webhook_deliveries (id, subscription_id, event_id, cause, status, next_attempt_at)
      select gen_random_uuid(), p.subscription_id, p.event_id, 'event', 'pending', now()
      from picked p order by p.subscription_id, p.tx, p.seq
      returning 1
    ),
    last_taken as (
      select distinct on (p.subscription_id) p.subscription_id, p.tx, p.seq, count(*) over (partition by p.subscription_id) as n
      from picked p order by p.subscription_id, p.tx desc, p.seq desc
    ),
    next_cursor as (
      select s.id, s.cursor_tx, s.cursor_seq,
             case when l.n >= ${FAN_OUT_BATCH} then l.tx else pg_snapshot_xmin(pg_current_snapshot()) end as tx,
             case when l.n >= ${FAN_OUT_BATCH} then l.seq else 0 end as seq
      from subs s left join last_taken l on l.subscription_id = s.id
    ),
    moved as (
      update webhook_subscriptions w set cursor_tx = c.tx, cursor_seq = c.seq
      from next_cursor c
      where w.id = c.id and (c.tx, c.seq) > (c.cursor_tx, c.cursor_seq)
      returning 1
    )
    select (select count(*) from inserted)::int as n, (select count(*) from moved)::int as m`);
  return Number((result.rows[0] as { n: number }).n);
}

/** A delivery claimed for one attempt, with what the attempt needs. */
export interface ClaimedDelivery {
  id: string;
  subscriptionId: string;
  attempt: number;
  leaseToken: string;
  url: string;
  secrets: string[];
  event: typeof events.$inferSelect;
}

/**
 * Claims up to `limit` due deliveries for one attempt each, under a lease of `leaseMs`. Per active subscription:
 * an ordered one offers only its first pending delivery (by `seq`), and only when it is due and not leased, so
 * nothing overtakes a delivery still being retried; a parallel one offers its due, unleased deliveries. The work
 * is per subscription through the partial indexes, however many deliveries wait behind a failing head. A
 * parallel subscription has at most `perSubscription` attempts in flight across instances, a tenant (a clinic, or
 * the supplier) at most `perTenant`, and healthy subscriptions go before failing ones. Row locks
 * with SKIP LOCKED, re-checked after locking, and the lease keep two instances from attempting one delivery at once.
 */
export async function claimDue(exec: Executor, limit: number, leaseMs: number, perSubscription: number, perTenant: number): Promise<ClaimedDelivery[]> {
  const result = await exec.execute(sql`
    with offered as (
      select o.id, o.next_attempt_at, o.seq, s.clinic_id, s.failing_since is not null as failing
      from webhook_subscriptions s
      cross join lateral (
        select h.id, h.next_attempt_at, h.seq from (
          select d.id, d.next_attempt_at, d.seq, d.lease_until from webhook_deliveries d
          where d.subscription_id = s.id and d.status = 'pending' and not s.parallel
          order by d.seq limit 1
        ) h
        where h.next_attempt_at <= now() and (h.lease_until is null or h.lease_until < now())
        union all
        select p.id, p.next_attempt_at, p.seq from (
          select d.id, d.next_attempt_at, d.seq, row_number() over (order by d.next_attempt_at, d.seq) as n
          from webhook_deliveries d
          where d.subscription_id = s.id and d.status = 'pending' and s.parallel
            and d.next_attempt_at <= now() and (d.lease_until is null or d.lease_until < now())
          order by d.next_attempt_at, d.seq limit ${perSubscription}
        ) p
        -- At most perSubscription in flight, on every instance together: a slow parallel receiver cannot take every slot.
        where p.n <= ${perSubscription} - (select count(*) from webhook_deliveries l
                                           where l.subscription_id = s.id and l.lease_token is not null and l.lease_until >= now())
      ) o
      where s.status = 'active'
    ),
    -- Attempts in flight per tenant (clinic, or the supplier's null), on every instance together.
    busy as (
      select s.clinic_id, count(*) as n from webhook_deliveries l join webhook_subscriptions s on s.id = l.subscription_id
      where l.lease_token is not null and l.lease_until >= now()
      group by s.clinic_id
    ),
    chosen as (
      select r.id from (
        select f.*, row_number() over (partition by f.clinic_id order by f.failing, f.next_attempt_at, f.seq) as n from offered f
      ) r
      left join busy b on b.clinic_id is not distinct from r.clinic_id
      -- At most perTenant in flight per tenant: one clinic's slow receivers leave the other slots to the others.
      where r.n <= ${perTenant} - coalesce(b.n, 0)
      -- Healthy subscriptions first: one whose receiver is failing waits for the slots the others leave.
      order by r.failing, r.next_attempt_at, r.seq
      limit ${limit}
    ),
    due as (
      select d.id from webhook_deliveries d
      where d.id in (select id from chosen) and d.status = 'pending' and (d.lease_until is null or d.lease_until < now())
      for update of d skip locked
    )
    update webhook_deliveries d
    set lease_token = gen_random_uuid(), lease_until = now() + ${leaseMs} * interval '1 millisecond', attempts = d.attempts + 1
    from due, webhook_subscriptions s, events e
    where d.id = due.id and s.id = d.subscription_id and e.id = d.event_id
    returning d.id, d.subscription_id, d.attempts, d.lease_token, s.url, s.secret,
      array(select p->>'secret' from jsonb_array_elements(s.previous_secrets) p where (p->>'expiresAt')::timestamptz > now()) as previous_secrets,
      to_jsonb(e) as event`);
  return result.rows.map((r) => ({
    id: r.id as string,
    subscriptionId: r.subscription_id as string,
    attempt: Number(r.attempts),
    leaseToken: r.lease_token as string,
    url: r.url as string,
    secrets: [r.secret as string, ...(r.previous_secrets as string[])],
    event: fromRaw(events, { ...(r.event as Record<string, unknown>), occurred_at: String((r.event as { occurred_at: string }).occurred_at) }),
  }));
}

/** How an attempt went, as the dispatcher judged it. */
export interface AttemptOutcome {
  at: Date;
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
  succeeded: boolean;
  /** When to try again; null when the delivery is done (succeeded, or failed for good). */
  retryAt: Date | null;
  /** The receiver said 410 Gone: the subscription is disabled. */
  gone: boolean;
}

/**
 * Records an attempt, and (if this attempt still holds the delivery's lease) the delivery's new state and the
 * subscription's health: a success clears `failing_since`; a failure sets it, and a 410 or failing since
 * before `disableBefore` disables the subscription, saying why. One transaction.
 */
export async function recordAttempt(exec: Executor, d: ClaimedDelivery, o: AttemptOutcome, disableBefore: Date): Promise<void> {
  const at = sql`${o.at.toISOString()}::timestamptz`;
  const status = o.succeeded ? 'succeeded' : o.retryAt ? 'pending' : 'failed';
  const reason = o.gone
    ? sql`'The receiver answered 410 Gone at ' || to_char(${at} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '.'`
    : sql`'Every delivery failed since ' || to_char(coalesce(s.failing_since, ${at}) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || ' (last: ' || ${o.error ?? 'error'}::text || ').'`;
  const disable = sql`(not ${o.succeeded} and (${o.gone} or coalesce(s.failing_since, ${at}) <= ${disableBefore.toISOString()}::timestamptz) and s.status = 'active')`;
  // One statement (one round trip, atomic without BEGIN/COMMIT): the attempt; the delivery's new state if this
  // attempt still holds its lease; the subscription's health then (a success clears failing_since).
  await exec.execute(sql`
    with attempt as (
      insert into webhook_attempts (delivery_id, attempt, at, status_code, latency_ms, error, succeeded)
      values (${d.id}, ${d.attempt}, ${at}, ${o.statusCode}, ${o.latencyMs}, ${o.error}, ${o.succeeded})
      returning 1
    ),
    held as (
      update webhook_deliveries set
        status = ${status},
        next_attempt_at = ${o.retryAt ? o.retryAt.toISOString() : o.at.toISOString()}::timestamptz,
        lease_token = null, lease_until = null,
        last_status_code = ${o.statusCode}, last_error = ${o.error},
        completed_at = case when ${status} = 'pending' then null else now() end
      where id = ${d.id} and lease_token = ${d.leaseToken}
      returning subscription_id
    )
    update webhook_subscriptions s set
      failing_since = case when ${o.succeeded} then null else coalesce(s.failing_since, ${at}) end,
      status = case when ${disable} then 'disabled' else s.status end,
      disabled_reason = case when ${disable} then ${reason} else s.disabled_reason end,
      version = case when ${disable} then s.version + 1 else s.version end
    from held
    where s.id = held.subscription_id and (not ${o.succeeded} or s.failing_since is not null)`);
}

/** A subscription's deliveries, newest first, each with its attempts (oldest first). */
export async function listDeliveries(exec: Executor, subscriptionId: string, status: string | undefined, page: PageRequest<number>) {
  const rows = await exec
    .select({ d: webhookDeliveries, eventType: events.type })
    .from(webhookDeliveries)
    .innerJoin(events, eq(events.id, webhookDeliveries.eventId))
    .where(
      and(
        eq(webhookDeliveries.subscriptionId, subscriptionId),
        status ? eq(webhookDeliveries.status, status) : undefined,
        page.after !== undefined ? sql`${webhookDeliveries.seq} < ${page.after}` : undefined,
      ),
    )
    .orderBy(sql`${webhookDeliveries.seq} desc`)
    .limit(page.limit + 1);
  const ids = rows.map((r) => r.d.id);
  const attempts = ids.length ? await exec.select().from(webhookAttempts).where(inArray(webhookAttempts.deliveryId, ids)).orderBy(asc(webhookAttempts.id)) : [];
  return { rows, attempts };
}

export async function findDelivery(exec: Executor, subscriptionId: string, deliveryId: string) {
  const [row] = await exec
    .select({ d: webhookDeliveries, eventType: events.type })
    .from(webhookDeliveries)
    .innerJoin(events, eq(events.id, webhookDeliveries.eventId))
    .where(and(eq(webhookDeliveries.id, deliveryId), eq(webhookDeliveries.subscriptionId, subscriptionId)));
  return row;
}

/** A new delivery of one event to one subscription, due now (a retry asked for, or one of a replay). */
export async function insertDelivery(tx: Tx, row: { id: string; subscriptionId: string; eventId: string; cause: 'retry' | 'replay' }) {
  const [inserted] = await tx.insert(webhookDeliveries).values({ ...row, status: 'pending', nextAttemptAt: sql`now()` }).returning();
  return inserted!;
}

/**
 * A replay: new deliveries, due now and in feed order, of the events after `after` (a position) up to the
 * subscription's cursor (later ones are delivered anyway) that it wants and may see; at most `limit`. Answers
 * how many and the last event id (to continue from when the limit was reached).
 */
export async function replay(tx: Tx, sub: SubscriptionRow, after: { tx: string; seq: number }, limit: number): Promise<{ count: number; lastEventId: string | null }> {
  const result = await tx.execute(sql`
    with picked as (
      select e.id, e.tx, e.seq from events e
      where (e.tx, e.seq) > (${after.tx}::xid8, ${after.seq}::bigint)
        and (e.tx, e.seq) <= (${sub.cursorTx}::xid8, ${sub.cursorSeq}::bigint)
        and e.tx < pg_snapshot_xmin(pg_current_snapshot())
        and e.type = any(${sql.param(sub.types)}::text[])
        and event_visible_to(e, ${sub.clinicId}::text)
      order by e.tx, e.seq
      limit ${limit}
    ),
    inserted as (
      insert into webhook_deliveries (id, subscription_id, event_id, cause, status, next_attempt_at)
      select gen_random_uuid(), ${sub.id}, p.id, 'replay', 'pending', now() from picked p order by p.tx, p.seq
      returning 1
    )
    select (select count(*) from inserted)::int as count,
           (select p.id from picked p order by p.tx desc, p.seq desc limit 1) as last_event_id`);
  const row = result.rows[0] as { count: number; last_event_id: string | null };
  return { count: Number(row.count), lastEventId: row.last_event_id };
}
