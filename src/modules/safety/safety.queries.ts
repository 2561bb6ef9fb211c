import { sql, type SQL } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import type { Executor, Pool, Tx } from '../../db/client.js';

/**
 * The safety read model and the monitor's counts. Reads the clinical tables by their SQL names (like the
 * traceability read model); writes only its own tables (safety.table.ts).
 */

/** The event types that change the counts. */
export const COUNTED_EVENT_TYPES = ['procedure.created', 'procedure.entered-in-error', 'adverse-event.created', 'adverse-event.updated', 'outcome.created'];

/** An instrument's responder rule as SQL takes it (outcomes/instruments.ts, those with an MCID). */
export interface ResponderRule {
  instrument: string;
  lower: boolean;
  points: number | null;
  fraction: number | null;
}

export interface Position {
  tx: string;
  seq: number;
}

const uuids = (ids: readonly string[]) => sql`${sql.param([...ids])}::uuid[]`;

/**
 * Runs `fn` in a REPEATABLE READ transaction (one snapshot for every read of a pass) while this connection holds the
 * monitor's session advisory lock, taken before BEGIN so the snapshot is never older than the previous holder's
 * commit. Answers undefined, without waiting, when another connection (another instance) holds it. The lock goes
 * with the connection if the process dies. No xid is taken until the pass writes, so the pass does not hold back
 * the feed's settled horizon while it reads.
 */
export async function withMonitorClaim<T>(pool: Pool, fn: (tx: Tx) => Promise<T>): Promise<T | undefined> {
  const client = await pool.connect();
  let failed: Error | undefined;
  const onError = (err: Error) => {
    failed = err;
  };
  client.on('error', onError);
  try {
    const got = await client.query<{ ok: boolean }>("select pg_try_advisory_lock(hashtextextended('safety-monitor', 0)) as ok");
    if (!got.rows[0]?.ok) return undefined;
    try {
      return await drizzle(client).transaction(
        async (tx) => {
          // A rebuild of a lot with a quarter of a million procedures outlasts the pool's per-query limit.
          await tx.execute(sql`set local statement_timeout = '600s'`);
          return fn(tx);
        },
        { isolationLevel: 'repeatable read' },
      );
    } finally {
      await client.query("select pg_advisory_unlock(hashtextextended('safety-monitor', 0))").catch((err: Error) => onError(err));
    }
  } catch (err) {
    failed ??= err as Error;
    throw err;
  } finally {
    client.removeListener('error', onError);
    client.release(failed);
  }
}

/**
 * Whether a settled counting event waits after the monitor's cursor: one read-only index probe, so a report that
 * finds nothing to count takes no lock and writes nothing.
 */
export async function pendingToCount(pool: Pool): Promise<boolean> {
  const result = await pool.query<{ pending: boolean }>(
    `select exists (
       select 1 from safety_monitor m cross join lateral (
         select 1 from events e
         where (e.tx, e.seq) > (m.cursor_tx, m.cursor_seq) and e.tx < pg_snapshot_xmin(pg_current_snapshot()) and e.type = any($1::text[])
         order by e.tx, e.seq limit 1
       ) x
       where m.id = 1
     ) as pending`,
    [COUNTED_EVENT_TYPES],
  );
  return result.rows[0]?.pending ?? false;
}

export async function cursorOf(tx: Tx): Promise<Position> {
  const result = await tx.execute(sql`select cursor_tx::text as tx, cursor_seq as seq from safety_monitor where id = 1`);
  const row = result.rows[0] as { tx: string; seq: string | number } | undefined;
  if (!row) throw new Error('safety_monitor has no row (migration 0022 makes it)');
  return { tx: row.tx, seq: Number(row.seq) };
}

export interface FeedEvent {
  type: string;
  clinic_id: string | null;
  subject_id: string;
  lot_id: string | null;
  procedure_id: string | null;
}

const feedColumns = sql`type, clinic_id, subject_id, lot_ids[1] as lot_id, (data->>'procedureId')::uuid as procedure_id`;

/**
 * The settled events after `after` that change the counts, in feed order, at most `limit`; and where the monitor
 * stands once they are applied: the last one when the batch is full, else the oldest running transaction (nothing
 * before it can still appear), as the webhook fan-out moves.
 */
export async function settledAfter(tx: Tx, after: Position, limit: number): Promise<{ events: FeedEvent[]; next: Position }> {
  const result = await tx.execute(sql`
    select ${feedColumns}, tx::text as tx, seq from events
    where (tx, seq) > (${after.tx}::xid8, ${after.seq}::bigint)
      and tx < pg_snapshot_xmin(pg_current_snapshot())
      and type = any(${sql.param(COUNTED_EVENT_TYPES)}::text[])
    order by tx, seq
    limit ${limit}`);
  const events = result.rows as unknown as (FeedEvent & { tx: string; seq: string | number })[];
  if (events.length >= limit) {
    const last = events.at(-1)!;
    return { events, next: { tx: last.tx, seq: Number(last.seq) } };
  }
  const horizon = await tx.execute(sql`select pg_snapshot_xmin(pg_current_snapshot())::text as tx`);
  const tx0 = (horizon.rows[0] as { tx: string }).tx;
  // Never backwards (a horizon below the cursor cannot happen in one snapshot, but the cursor is the truth).
  const next = compare({ tx: tx0, seq: 0 }, after) > 0 ? { tx: tx0, seq: 0 } : after;
  return { events, next };
}

function compare(a: Position, b: Position): number {
  const ta = BigInt(a.tx);
  const tb = BigInt(b.tx);
  return ta === tb ? a.seq - b.seq : ta < tb ? -1 : 1;
}

/**
 * The counting events this snapshot can see after `after` (committed, not yet settled, or beyond a full batch):
 * their changes are visible in the records but not yet in the counts, so reads of the records leave them out.
 */
export async function visibleAfter(tx: Tx, after: Position): Promise<FeedEvent[]> {
  const result = await tx.execute(sql`
    select ${feedColumns} from events
    where (tx, seq) > (${after.tx}::xid8, ${after.seq}::bigint) and type = any(${sql.param(COUNTED_EVENT_TYPES)}::text[])`);
  return result.rows as unknown as FeedEvent[];
}

export async function moveCursor(tx: Tx, to: Position): Promise<void> {
  await tx.execute(sql`update safety_monitor set cursor_tx = ${to.tx}::xid8, cursor_seq = ${to.seq}, updated_at = now() where id = 1`);
}

/**
 * How the records are read as the counts stand: `completedAnyway` procedures whose entered-in-error is not yet
 * counted, `notYet` procedures and `excludedOutcomes` scores whose creation is not yet counted.
 */
export interface AsCounted {
  completedAnyway: readonly string[];
  notYet: readonly string[];
  excludedOutcomes: readonly string[];
}

export type Scope = { procedureIds: readonly string[] } | { lotIds: readonly string[] };

const inScope = (scope: Scope, alias: string) =>
  'lotIds' in scope ? sql`${sql.raw(alias)}.lot_id = any(${uuids(scope.lotIds)})` : sql`${sql.raw(alias)}.id = any(${uuids(scope.procedureIds)})`;

/** The procedures of the scope that count: completed (as counted) and created as counted. */
const countedProcedures = (scope: Scope, as: AsCounted) => sql`
  select p.id, p.lot_id, p.clinic_id from procedures p
  where ${inScope(scope, 'p')}
    and (p.status = 'completed' or p.id = any(${uuids(as.completedAnyway)}))
    and not (p.id = any(${uuids(as.notYet)}))`;

export interface CountRow {
  lot_id: string;
  clinic_id: string;
  n: number;
}

/** Completed procedures per lot and clinic (a rebuild). */
export async function procedureCounts(exec: Executor, lotIds: readonly string[], as: AsCounted): Promise<CountRow[]> {
  const result = await exec.execute(sql`
    select c.lot_id, c.clinic_id, count(*)::int as n from (${countedProcedures({ lotIds }, as)}) c group by 1, 2`);
  return result.rows as unknown as CountRow[];
}

/** Adds to the completed procedures of lot and clinic pairs (a pass's procedure.created and entered-in-error). */
export async function addProcedures(tx: Tx, deltas: { lotId: string; clinicId: string; delta: number }[]): Promise<void> {
  if (deltas.length === 0) return;
  await tx.execute(sql`
    insert into lot_safety_counts (lot_id, clinic_id, procedures)
    select d.lot_id, d.clinic_id, d.delta from jsonb_to_recordset(${JSON.stringify(deltas.map((d) => ({ lot_id: d.lotId, clinic_id: d.clinicId, delta: d.delta })))}::jsonb)
      as d(lot_id uuid, clinic_id text, delta int)
    on conflict (lot_id, clinic_id) do update set procedures = lot_safety_counts.procedures + excluded.procedures`);
}

/** The counted procedures of the scope with at least one adverse event not judged not-related (as recorded now). */
const withEvent = (scope: Scope, as: AsCounted) => sql`
  select c.id as procedure_id, c.lot_id, c.clinic_id from (${countedProcedures(scope, as)}) c
  where exists (select 1 from adverse_events a where a.procedure_id = c.id and a.relatedness <> 'not-related')`;

/**
 * Re-judges these procedures' membership of the with-event set and moves the counts by what changed: a set, so
 * judging a procedure twice never counts it twice.
 */
export async function rejudgeWithEvent(tx: Tx, procedureIds: readonly string[], as: AsCounted): Promise<void> {
  if (procedureIds.length === 0) return;
  await tx.execute(sql`
    with q as (${withEvent({ procedureIds }, as)}),
    del as (
      delete from safety_procedures_with_event s
      where s.procedure_id = any(${uuids(procedureIds)}) and s.procedure_id not in (select procedure_id from q)
      returning s.lot_id, s.clinic_id
    ),
    ins as (
      insert into safety_procedures_with_event (procedure_id, lot_id, clinic_id) select procedure_id, lot_id, clinic_id from q
      on conflict (procedure_id) do nothing returning lot_id, clinic_id
    ),
    d as (select lot_id, clinic_id, -1 as delta from del union all select lot_id, clinic_id, 1 from ins)
    insert into lot_safety_counts (lot_id, clinic_id, procedures_with_event)
    select lot_id, clinic_id, sum(delta)::int from d group by 1, 2
    on conflict (lot_id, clinic_id) do update set procedures_with_event = lot_safety_counts.procedures_with_event + excluded.procedures_with_event`);
}

export interface ResponderRow {
  lot_id: string;
  clinic_id: string;
  instrument: string;
  timepoint: string;
  n: number;
  responders: number;
}

/**
 * Responders of the scope's counted procedures, per lot, clinic, instrument and follow-up timepoint: for each
 * procedure, instrument (with an MCID) and timepoint, its latest score there against its latest baseline (by
 * assessment time, then id, as the outcomes module reads them); a responder improves by at least the MCID in the
 * instrument's better direction (the same float comparison as instruments.ts isResponder).
 * `= any(array(...))` looks scores up by procedure (index) instead of hashing the outcomes table.
 */
export async function responderCounts(exec: Executor, scope: Scope, as: AsCounted, rules: ResponderRule[]): Promise<ResponderRow[]> {
  if (('lotIds' in scope ? scope.lotIds : scope.procedureIds).length === 0) return [];
  const result = await exec.execute(sql`
    with m as (
      select * from jsonb_to_recordset(${JSON.stringify(rules)}::jsonb) as m(instrument text, lower boolean, points float8, fraction float8)
    ),
    p as (${countedProcedures(scope, as)}),
    o as (
      select o.procedure_id, o.instrument, o.timepoint, o.score::float8 as score, o.assessed_at, o.id from outcomes o
      where o.procedure_id = any(array(select id from p))
        and o.instrument in (select instrument from m)
        and not (o.id = any(${uuids(as.excludedOutcomes)}))
    ),
    b as (
      select distinct on (procedure_id, instrument) procedure_id, instrument, score from o
      where timepoint = 'baseline' order by procedure_id, instrument, assessed_at desc, id desc
    ),
    f as (
      select distinct on (procedure_id, instrument, timepoint) procedure_id, instrument, timepoint, score from o
      where timepoint <> 'baseline' order by procedure_id, instrument, timepoint, assessed_at desc, id desc
    )
    select p.lot_id, p.clinic_id, f.instrument, f.timepoint, count(*)::int as n,
           count(*) filter (
             where (case when m.lower then b.score - f.score else f.score - b.score end)
                   >= coalesce(m.points, m.fraction * b.score) - 1e-9
           )::int as responders
    from f join b on b.procedure_id = f.procedure_id and b.instrument = f.instrument
    join m on m.instrument = f.instrument
    join p on p.id = f.procedure_id
    group by 1, 2, 3, 4`);
  return result.rows as unknown as ResponderRow[];
}

/** Adds to the responder counts (a pass's change: after minus before). */
export async function addResponders(tx: Tx, rows: ResponderRow[]): Promise<void> {
  if (rows.length === 0) return;
  await tx.execute(sql`
    insert into lot_responder_counts (lot_id, clinic_id, instrument, timepoint, n, responders)
    select * from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
      as d(lot_id uuid, clinic_id text, instrument text, timepoint text, n int, responders int)
    on conflict (lot_id, clinic_id, instrument, timepoint) do update
      set n = lot_responder_counts.n + excluded.n, responders = lot_responder_counts.responders + excluded.responders`);
}

/** Lots whose counts are to be rebuilt, oldest request first. */
export async function recountRequests(exec: Executor, limit: number): Promise<string[]> {
  const result = await exec.execute(sql`select lot_id from lot_safety_recount order by requested_at, lot_id limit ${limit}`);
  return (result.rows as { lot_id: string }[]).map((r) => r.lot_id);
}

export interface Rebuilt {
  lotIds: string[];
  procedures: CountRow[];
  withEvent: { procedure_id: string; lot_id: string; clinic_id: string }[];
  responders: ResponderRow[];
}

/** Reads a rebuild of these lots' counts from the records, as counted (no write: the pass holds no xid yet). */
export async function rebuildOf(exec: Executor, lotIds: string[], as: AsCounted, rules: ResponderRule[]): Promise<Rebuilt> {
  const procedures = await procedureCounts(exec, lotIds, as);
  const withEventRows = (await exec.execute(withEvent({ lotIds }, as))).rows as unknown as Rebuilt['withEvent'];
  const responders = await responderCounts(exec, { lotIds }, as, rules);
  return { lotIds, procedures, withEvent: withEventRows, responders };
}

/** Replaces these lots' counts with a rebuild and closes their recount requests. */
export async function replaceCounts(tx: Tx, r: Rebuilt): Promise<void> {
  if (r.lotIds.length === 0) return;
  const lots = uuids(r.lotIds);
  await tx.execute(sql`delete from lot_safety_counts where lot_id = any(${lots})`);
  await tx.execute(sql`delete from lot_responder_counts where lot_id = any(${lots})`);
  await tx.execute(sql`delete from safety_procedures_with_event where lot_id = any(${lots})`);
  if (r.withEvent.length) {
    await tx.execute(sql`
      insert into safety_procedures_with_event (procedure_id, lot_id, clinic_id)
      select * from jsonb_to_recordset(${JSON.stringify(r.withEvent)}::jsonb) as d(procedure_id uuid, lot_id uuid, clinic_id text)`);
  }
  if (r.procedures.length || r.withEvent.length) {
    await tx.execute(sql`
      insert into lot_safety_counts (lot_id, clinic_id, procedures, procedures_with_event)
      select coalesce(c.lot_id, w.lot_id), coalesce(c.clinic_id, w.clinic_id), coalesce(c.n, 0), coalesce(w.n, 0)
      from jsonb_to_recordset(${JSON.stringify(r.procedures)}::jsonb) as c(lot_id uuid, clinic_id text, n int)
      full join (select lot_id, clinic_id, count(*)::int as n from safety_procedures_with_event where lot_id = any(${lots}) group by 1, 2) w
        on w.lot_id = c.lot_id and w.clinic_id = c.clinic_id`);
  }
  await addResponders(tx, r.responders);
  await tx.execute(sql`delete from lot_safety_recount where lot_id = any(${lots})`);
}

export interface LotTotals {
  lot_id: string;
  lot_number: string;
  product_name: string;
  procedures: number;
  with_event: number;
}

/**
 * Per lot of these products (or of every product): counted procedures and those with an event, over every
 * clinic or one. Lots without a count row are left out. Clamped to 0 <= with_event <= procedures: counts that drifted
 * (rows written around the service, before their rebuild) never make an impossible proportion.
 */
export async function lotTotals(exec: Executor, products: readonly string[] | null, clinicId: string | null): Promise<LotTotals[]> {
  const product: SQL = products ? sql`and l.product_name = any(${sql.param([...products])}::text[])` : sql``;
  const clinic: SQL = clinicId ? sql`and c.clinic_id = ${clinicId}` : sql``;
  const result = await exec.execute(sql`
    select lot_id, lot_number, product_name, procedures, least(greatest(with_event, 0), procedures) as with_event from (
      select c.lot_id, l.lot_number, l.product_name, greatest(sum(c.procedures), 0)::int as procedures, sum(c.procedures_with_event)::int as with_event
      from lot_safety_counts c join lots l on l.id = c.lot_id
      where true ${product} ${clinic}
      group by 1, 2, 3
    ) t`);
  return result.rows as unknown as LotTotals[];
}

export async function productsOf(exec: Executor, lotIds: readonly string[]): Promise<string[]> {
  if (lotIds.length === 0) return [];
  const result = await exec.execute(sql`select distinct product_name from lots where id = any(${uuids(lotIds)})`);
  return (result.rows as { product_name: string }[]).map((r) => r.product_name);
}

export interface SignalRow {
  lot_id: string;
  flagged: boolean;
}

export async function signalsOf(exec: Executor, lotIds: readonly string[]): Promise<SignalRow[]> {
  if (lotIds.length === 0) return [];
  const result = await exec.execute(sql`select lot_id, flagged from lot_safety_signals where lot_id = any(${uuids(lotIds)})`);
  return result.rows as unknown as SignalRow[];
}

/** A lot's first flag, with the event that told it. */
export async function insertSignal(tx: Tx, s: { lotId: string; pValue: number; eventId: string }): Promise<void> {
  await tx.execute(sql`
    insert into lot_safety_signals (lot_id, flagged, p_value, first_flagged_at, changed_at, event_id)
    values (${s.lotId}, true, ${s.pValue}, now(), now(), ${s.eventId})`);
}

/** A later judgement that changed a lot's state; a lot flagged again names the event that told it (`eventId`). */
export async function updateSignal(tx: Tx, s: { lotId: string; flagged: boolean; pValue: number; eventId?: string }): Promise<void> {
  await tx.execute(sql`
    update lot_safety_signals set flagged = ${s.flagged}, p_value = ${s.pValue}, changed_at = now(), event_id = coalesce(${s.eventId ?? null}::uuid, event_id)
    where lot_id = ${s.lotId}`);
}

export interface ResponderTotals {
  instrument: string;
  timepoint: string;
  lot_n: number;
  lot_responders: number;
  pool_n: number;
  pool_responders: number;
}

/**
 * Responders of the lot and of the product's other lots (one clinic's, or every clinic's), per instrument and
 * timepoint; clamped to 0 <= responders <= n like lotTotals.
 */
export async function responderTotals(exec: Executor, lotId: string, productName: string, clinicId: string | null): Promise<ResponderTotals[]> {
  const clinic: SQL = clinicId ? sql`and r.clinic_id = ${clinicId}` : sql``;
  const result = await exec.execute(sql`
    select instrument, timepoint, greatest(lot_n, 0) as lot_n, least(greatest(lot_responders, 0), greatest(lot_n, 0)) as lot_responders,
           greatest(pool_n, 0) as pool_n, least(greatest(pool_responders, 0), greatest(pool_n, 0)) as pool_responders
    from (
    select r.instrument, r.timepoint,
           coalesce(sum(r.n) filter (where r.lot_id = ${lotId}), 0)::int as lot_n,
           coalesce(sum(r.responders) filter (where r.lot_id = ${lotId}), 0)::int as lot_responders,
           coalesce(sum(r.n) filter (where r.lot_id <> ${lotId}), 0)::int as pool_n,
           coalesce(sum(r.responders) filter (where r.lot_id <> ${lotId}), 0)::int as pool_responders
    from lot_responder_counts r join lots l on l.id = r.lot_id
    where l.product_name = ${productName} ${clinic}
    group by 1, 2
    having sum(r.n) > 0
    ) t`);
  return result.rows as unknown as ResponderTotals[];
}

export interface AdverseEventBreakdown {
  total: number;
  serious: number;
  grade_1: number;
  grade_2: number;
  grade_3: number;
  grade_4: number;
  grade_5: number;
  by_relatedness: Record<string, number> | null;
  reports_overdue: number;
}

/**
 * The adverse events of the lot's completed procedures (one clinic's, or all), counted by grade, seriousness and
 * relatedness, with the IND safety reports overdue at `now` (due and not reported by then, or reported late).
 */
export async function adverseEventBreakdown(exec: Executor, lotId: string, clinicId: string | null, now: Date): Promise<AdverseEventBreakdown> {
  const clinic: SQL = clinicId ? sql`and a.clinic_id = ${clinicId}` : sql``;
  const result = await exec.execute(sql`
    with a as (
      select a.severity_grade, a.serious, a.relatedness, a.report_due_at, a.reported_at
      from adverse_events a join procedures p on p.id = a.procedure_id
      where a.lot_id = ${lotId} and p.status = 'completed' ${clinic}
    )
    select count(*)::int as total, count(*) filter (where serious)::int as serious,
           count(*) filter (where severity_grade = 1)::int as grade_1, count(*) filter (where severity_grade = 2)::int as grade_2,
           count(*) filter (where severity_grade = 3)::int as grade_3, count(*) filter (where severity_grade = 4)::int as grade_4,
           count(*) filter (where severity_grade = 5)::int as grade_5,
           (select jsonb_object_agg(relatedness, n) from (select relatedness, count(*)::int as n from a group by 1) r) as by_relatedness,
           count(*) filter (where coalesce(reported_at, ${now.toISOString()}::timestamptz) > report_due_at)::int as reports_overdue
    from a`);
  return result.rows[0] as unknown as AdverseEventBreakdown;
}
