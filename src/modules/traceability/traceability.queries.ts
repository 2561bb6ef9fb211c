import type { Readable } from 'node:stream';
import { sql, type SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import type pg from 'pg';
import type QueryStream from 'pg-query-stream';
import type { Executor } from '../../db/client.js';
import { parsePgTimestamp } from '../../db/columns.js';
import { openReadSnapshot, type ReadSnapshot } from '../../db/read-snapshot.js';
import { ServiceUnavailable } from '../../shared/errors.js';

/**
 * The traceability read model: SQL across the supply and clinical tables. It owns no tables and writes
 * nothing. A null clinic means every clinic (a supplier or inspector token).
 */
const clinicFilter = (column: string, clinicId: string | null) => (clinicId ? sql`and ${sql.raw(column)} = ${clinicId}` : sql``);

/** Lot ids as one uuid[] parameter: the statement text stays the same whatever the count (one prepared statement). */
const anyLot = (ids: string[]) => sql`any(${sql.param(ids)}::uuid[])`;

export interface RecipientRow {
  procedure_id: string;
  clinic_id: string;
  patient_id: string;
  mrn: string;
  lot_id: string;
  /** RFC 3339 in UTC with milliseconds, as the API writes instants (rendered by PostgreSQL: no Date per row). */
  performed_at: string;
  route: string;
  body_site: string | null;
  laterality: string | null;
  imaging_guidance: string;
  dose_particles: number;
  dose_volume_ml: string;
  vials_used: number;
  vial_barcodes: string[];
  status: string;
}

/** The barcodes of the vials a procedure `p` uses, in sequence order (text[]): for one procedure at a time. */
const vialBarcodes = sql`array(select v.barcode from vials v where v.procedure_id = p.id order by v.sequence) as vial_barcodes`;

/** An instant as the API writes it (`2026-03-10T08:30:00.000Z`); the service accepts none outside 1900..9999. */
const isoInstant = (column: string) => sql.raw(`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`);

const recipientColumns = (iso: boolean) => sql`p.id as procedure_id, p.clinic_id, p.patient_id, pt.mrn, p.lot_id, ${iso ? sql`${isoInstant('p.performed_at')} as performed_at` : sql`p.performed_at`}, p.route, p.body_site,
  p.laterality, p.imaging_guidance, p.dose_particles, p.dose_volume_ml, p.vials_used, coalesce(vb.barcodes, '{}') as vial_barcodes, p.status`;

/**
 * The barcodes of every used vial of these lots by procedure, in one pass over the lots' vials (a subquery per
 * recipient cost 100 ms on the 10,000-recipient drill; this join costs about 25).
 */
const usedBarcodes = (lotIds: string[]) => sql`left join (
    select procedure_id, array_agg(barcode order by sequence) as barcodes from vials
    where lot_id = ${anyLot(lotIds)} and procedure_id is not null group by procedure_id
  ) vb on vb.procedure_id = p.id`;

/**
 * The one recipients query: the procedures of these lots with their patients' MRNs (of one clinic, or all), in
 * `order`; the CSV export adds each lot's number.
 */
function recipientsSelect(lotIds: string[], clinicId: string | null, opts: { lotNumber: boolean; order: SQL }): SQL {
  return sql`
    select ${opts.lotNumber ? sql`l.lot_number, ` : sql``}${recipientColumns(!opts.lotNumber)}
    from procedures p join patients pt on pt.id = p.patient_id${opts.lotNumber ? sql` join lots l on l.id = p.lot_id` : sql``}
    ${usedBarcodes(lotIds)}
    where p.lot_id = ${anyLot(lotIds)} ${clinicFilter('p.clinic_id', clinicId)}
    order by ${opts.order}`;
}

export interface AdverseEventRow {
  id: string;
  procedure_id: string;
  patient_id: string;
  clinic_id: string;
  lot_id: string;
  onset_at: Date;
  severity_grade: number;
  serious: boolean;
  seriousness_criteria: string[];
  relatedness: string;
  outcome: string;
}

export async function adverseEventsOfLots(exec: Executor, lotIds: string[], clinicId: string | null): Promise<AdverseEventRow[]> {
  if (lotIds.length === 0) return [];
  const result = await exec.execute(sql`
    select a.id, a.procedure_id, a.patient_id, a.clinic_id, a.lot_id, a.onset_at, a.severity_grade, a.serious, a.seriousness_criteria, a.relatedness, a.outcome
    from adverse_events a
    where a.lot_id = ${anyLot(lotIds)} ${clinicFilter('a.clinic_id', clinicId)}
    order by a.onset_at, a.id`);
  return (result.rows as unknown as (Omit<AdverseEventRow, 'onset_at'> & { onset_at: string })[]).map((a) => ({ ...a, onset_at: parsePgTimestamp(a.onset_at) }));
}

/** `n` follow-up scores of one instrument and timepoint with the same score and the same baseline. */
export interface ScoreRow {
  instrument: string;
  timepoint: string;
  score: number;
  baseline: number | null;
  n: number;
}

/**
 * `with s, b`: the scores of the lot's completed procedures (of one clinic, or all) as `s`, and per procedure and
 * instrument its latest baseline as `b`, for the statements below to pair. `= any(array(...))` makes PostgreSQL
 * look outcomes up by procedure (index) instead of hashing the table.
 */
function scoresWithBaselines(lotId: string, clinicId: string | null): SQL {
  return sql`
    with s as (
      select o.procedure_id, o.instrument, o.timepoint, o.score::float8 as score, o.assessed_at, o.id
      from outcomes o
      where o.procedure_id = any (array(select id from procedures where lot_id = ${lotId} and status = 'completed' ${clinicFilter('clinic_id', clinicId)}))
    ),
    b as (
      select distinct on (procedure_id, instrument) procedure_id, instrument, score
      from s where timepoint = 'baseline'
      order by procedure_id, instrument, assessed_at desc, id desc
    )`;
}

/**
 * The follow-up scores of the lot's completed procedures, each with that procedure's latest baseline on the
 * same instrument, counted by (instrument, timepoint, score, baseline): scores take few values, so tens of
 * thousands of outcomes come back as a few hundred rows, and the rules of instruments.ts summarize them.
 */
export async function followUpScores(exec: Executor, lotId: string, clinicId: string | null): Promise<ScoreRow[]> {
  const result = await exec.execute(sql`
    ${scoresWithBaselines(lotId, clinicId)}
    select s.instrument, s.timepoint, s.score, b.score as baseline, count(*)::int as n
    from s left join b on b.procedure_id = s.procedure_id and b.instrument = s.instrument
    where s.timepoint <> 'baseline'
    group by 1, 2, 3, 4`);
  return result.rows as unknown as ScoreRow[];
}

export async function lotIdsOf(exec: Executor, donorId: string): Promise<string[]> {
  const result = await exec.execute(sql`select lot_id from lot_donors where donor_id = ${donorId} order by lot_id`);
  return (result.rows as { lot_id: string }[]).map((r) => r.lot_id);
}

export interface ExposureRow {
  procedure_id: string;
  performed_at: Date;
  route: string;
  body_site: string | null;
  laterality: string | null;
  dose_particles: number;
  vials_used: number;
  vial_barcodes: string[];
  status: string;
  lot_id: string;
}

export async function exposuresOfPatient(exec: Executor, patientId: string): Promise<ExposureRow[]> {
  const result = await exec.execute(sql`
    select p.id as procedure_id, p.performed_at, p.route, p.body_site, p.laterality, p.dose_particles, p.vials_used, ${vialBarcodes}, p.status, p.lot_id
    from procedures p where p.patient_id = ${patientId} order by p.performed_at, p.id`);
  return (result.rows as unknown as (Omit<ExposureRow, 'performed_at'> & { performed_at: string })[]).map((e) => ({ ...e, performed_at: parsePgTimestamp(e.performed_at) }));
}

/** How long a report download may take in all (30 min), and may leave rows unread (60 s). */
export const STREAM_LIMITS = { totalMs: 30 * 60_000, idleMs: 60_000 };
export type StreamLimits = typeof STREAM_LIMITS;

/**
 * Report streams open at once per pool: a quarter of its connections, at least one. Each holds a connection for
 * as long as its client takes to download, so without a cap a few slow or stalled clients would take every
 * connection and the rest of the API (and /health/ready) would answer 503.
 */
const openStreams = new WeakMap<pg.Pool, number>();
export const streamSlots = (pool: pg.Pool) => Math.max(1, Math.floor((pool.options.max ?? 10) / 4));

/** A report's rows as they are read, and what `first` answered in the same snapshot just before the cursor opened. */
export interface RowStream {
  rows: Readable;
  first: Record<string, unknown>[];
}

/**
 * Streams query rows from a dedicated connection (a server-side cursor, 500 rows at a time, in a REPEATABLE READ
 * read-only transaction of its own, so `opts.first`, a count say, sees exactly the rows the cursor will read):
 * memory stays flat whatever the row count. The connection goes back to the pool when the stream ends or is
 * destroyed, and is discarded when it failed. If it is lost mid-stream (a restart, pg_terminate_backend), the
 * stream fails at once: the response, whose status has gone out, is cut short rather than left hanging.
 *
 * Limits: at most `streamSlots(pool)` streams are open at once; another one is refused before the first byte
 * (503 `report-downloads-busy`, with Retry-After). The rows are read as fast as the client takes the text, so a
 * slow client's download outlives the pool's timeouts (a suspended cursor keeps its statement's timer running,
 * and pg's read timeout covers the whole cursor): a stream has `limits.totalMs` in all instead, and is destroyed
 * (its connection released) when rows it has read have waited `limits.idleMs` for its reader, so a client that
 * stopped reading holds a connection for a minute, not for good. A slow database does not count as idle.
 */
export async function streamRows(
  pool: pg.Pool,
  query: { text: string; values: unknown[] },
  opts: { limits?: StreamLimits; first?: { text: string; values: unknown[] } } = {},
): Promise<RowStream> {
  const limits = opts.limits ?? STREAM_LIMITS;
  const open = openStreams.get(pool) ?? 0;
  if (open >= streamSlots(pool)) {
    throw new ServiceUnavailable('Too many report downloads are in progress on this instance; try again shortly.', 'report-downloads-busy');
  }
  openStreams.set(pool, open + 1);
  let slot = true;
  const freeSlot = () => {
    if (!slot) return;
    slot = false;
    openStreams.set(pool, (openStreams.get(pool) ?? 1) - 1);
  };
  const live: { rows?: QueryStream } = {};
  // Destroying the stream closes its cursor, which waits for the server's reply; a lost connection sends
  // none, and the stream would never finish being destroyed. Once the connection is gone, stop waiting.
  let giveUp: ((err: Error) => void) | undefined;
  let snap: ReadSnapshot;
  let first: Record<string, unknown>[] = [];
  try {
    snap = await openReadSnapshot(pool, {
      statementTimeoutMs: limits.totalMs,
      idleInTransactionMs: limits.idleMs * 2,
      onLost: (err) => {
        giveUp?.(err);
        live.rows?.destroy(err);
      },
    });
  } catch (err) {
    freeSlot();
    throw err;
  }
  try {
    if (opts.first) first = (await snap.client.query(opts.first.text, opts.first.values)).rows as Record<string, unknown>[];
  } catch (err) {
    await snap.close({ err: err as Error });
    freeSlot();
    throw err;
  }
  const rows = snap.cursor(query.text, query.values, { batchSize: 500, readTimeoutMs: limits.totalMs });
  live.rows = rows;
  // Idle: rows are waiting for the reader (the stream's buffer is full) and it has not asked for more. The
  // timer starts when the buffer fills (or at once: nobody has read yet) and stops when the reader asks.
  let idle: NodeJS.Timeout | undefined;
  const waitForReader = () => {
    clearTimeout(idle);
    idle = setTimeout(() => rows.destroy(Object.assign(new Error(`rows waited ${limits.idleMs} ms for the reader`), { code: 'reader-idle' })), limits.idleMs);
    idle.unref();
  };
  const read = rows._read.bind(rows);
  rows._read = (size: number) => {
    clearTimeout(idle);
    read(size);
  };
  const push = rows.push.bind(rows);
  rows.push = (chunk: unknown, encoding?: BufferEncoding) => {
    const more = push(chunk, encoding);
    if (!more && chunk !== null) waitForReader();
    return more;
  };
  waitForReader();
  type Destroy = (err: Error | null, done: (error?: Error | null) => void) => void;
  const closeCursor = rows._destroy.bind(rows) as Destroy;
  const destroy: Destroy = (err, done) => {
    if (snap.lost) return done(err ?? snap.lost);
    let finished = false;
    const finish = (e: Error | null) => {
      if (finished) return;
      finished = true;
      done(err ?? e);
    };
    giveUp = finish;
    closeCursor(err, (e) => finish(e ?? null));
  };
  rows._destroy = destroy;
  let ended = false;
  // Read to the end: committed; stopped early (destroyed): rolled back; failed or lost: discarded (ReadSnapshot.close).
  const release = (err?: Error) => {
    clearTimeout(idle);
    freeSlot();
    void snap.close({ commit: ended, err });
  };
  rows.once('end', () => {
    ended = true;
    release();
  });
  rows.once('error', (err) => release(err));
  rows.once('close', () => release());
  return { rows, first };
}

const dialect = new PgDialect();

/**
 * The recipient procedures of these lots (of one clinic, or all) for the JSON reports and the dossier, streamed (a
 * batch of rows in memory at a time) by lot, then time, then id: `RecipientRow`s with `performed_at` as the API
 * writes it; `counts` from the same snapshot, so an audit entry names exactly the rows the stream holds.
 */
export async function streamLotRecipients(pool: pg.Pool, lotIds: string[], clinicId: string | null): Promise<{ rows: Readable; counts: RecipientCountsRow }> {
  const query = dialect.sqlToQuery(recipientsSelect(lotIds, clinicId, { lotNumber: false, order: sql`p.lot_id, p.performed_at, p.id` }));
  const counts = dialect.sqlToQuery(recipientCountsSelect(lotIds, clinicId));
  const { rows, first } = await streamRows(pool, { text: query.sql, values: query.params }, { first: { text: counts.sql, values: counts.params } });
  return { rows, counts: first[0] as unknown as RecipientCountsRow };
}

/** How many procedures of these lots there are (of one clinic, or all), for how many patients at how many clinics. */
export interface RecipientCountsRow {
  procedures: number;
  patients: number;
  clinics: number;
  entered_in_error: number;
}

const recipientCountsSelect = (lotIds: string[], clinicId: string | null) => sql`
    select count(*)::int as procedures, count(distinct p.patient_id)::int as patients, count(distinct p.clinic_id)::int as clinics,
      count(*) filter (where p.status = 'entered-in-error')::int as entered_in_error
    from procedures p
    where p.lot_id = ${anyLot(lotIds)} ${clinicFilter('p.clinic_id', clinicId)}`;

/** The CSV export's rows, streamed: the recipients query with each lot's number, by lot, then time. */
export async function streamRecipients(pool: pg.Pool, lotIds: string[], clinicId: string | null): Promise<Readable> {
  const query = dialect.sqlToQuery(recipientsSelect(lotIds, clinicId, { lotNumber: true, order: sql`p.lot_id, p.performed_at, p.id` }));
  return (await streamRows(pool, { text: query.sql, values: query.params })).rows;
}

/**
 * Change from baseline per instrument and follow-up timepoint, over the lot's completed procedures (of one clinic,
 * or all): `n` scores with a baseline, their mean change and its sample standard deviation (null below 2), each
 * score against that procedure's latest baseline on the same instrument, as `followUpScores` pairs them. What a
 * t-interval needs, computed where the rows are.
 */
export interface ChangeStatsRow {
  instrument: string;
  timepoint: string;
  n: number;
  mean: number;
  sd: number | null;
}

export async function changeFromBaselineStats(exec: Executor, lotId: string, clinicId: string | null): Promise<ChangeStatsRow[]> {
  const result = await exec.execute(sql`
    ${scoresWithBaselines(lotId, clinicId)}
    select s.instrument, s.timepoint, count(*)::int as n, avg(s.score - b.score)::float8 as mean, stddev_samp(s.score - b.score)::float8 as sd
    from s join b on b.procedure_id = s.procedure_id and b.instrument = s.instrument
    where s.timepoint <> 'baseline'
    group by 1, 2
    order by 1, 2`);
  return result.rows as unknown as ChangeStatsRow[];
}

/** An adverse event as the dossier lists it: the report's fields, what happened, and its reporting clock. */
export interface DossierAdverseEventRow {
  id: string;
  clinic_id: string;
  procedure_id: string;
  mrn: string;
  /** Instants as RFC 3339 UTC text (isoInstant); null where not set. */
  onset_at: string;
  description: string;
  term: string | null;
  severity_grade: number;
  serious: boolean;
  seriousness_criteria: string[];
  relatedness: string;
  outcome: string;
  expectedness: string;
  aware_at: string;
  report_due_at: string | null;
  reported_at: string | null;
  report_reference: string | null;
}

export async function dossierAdverseEvents(exec: Executor, lotId: string, clinicId: string | null): Promise<DossierAdverseEventRow[]> {
  const result = await exec.execute(sql`
    select a.id, a.clinic_id, a.procedure_id, pt.mrn, ${isoInstant('a.onset_at')} as onset_at, a.description, a.term, a.severity_grade, a.serious,
      a.seriousness_criteria, a.relatedness, a.outcome, a.expectedness, ${isoInstant('a.aware_at')} as aware_at,
      ${isoInstant('a.report_due_at')} as report_due_at, ${isoInstant('a.reported_at')} as reported_at, a.report_reference
    from adverse_events a join patients pt on pt.id = a.patient_id
    where a.lot_id = ${lotId} ${clinicFilter('a.clinic_id', clinicId)}
    order by a.onset_at, a.id`);
  return result.rows as unknown as DossierAdverseEventRow[];
}

/**
 * A run of the lot's vials that went to no recipient: consecutive sequence numbers (no vial between them left out)
 * in the same state, at the same clinic, with the same last movement. Each vial is in exactly one run.
 */
export interface UnusedVialRunRow {
  first_sequence: number;
  last_sequence: number;
  vials: number;
  first_barcode: string;
  last_barcode: string;
  /** The stored status, or `expired` for vials still at a clinic past the lot's expiry (as the inventory counts it). */
  status: string;
  clinic_id: string | null;
  moved_action: string | null;
  moved_at: string | null;
  moved_reason: string | null;
}

/**
 * The lot's vials that no procedure used, as runs in sequence order (gaps and islands: within one state, a
 * sequence minus its rank is constant along a run of consecutive vials). A clinic token sees those at or last held
 * by its clinic (as the vials module shows them), others every one, unshipped stock included.
 */
export async function unusedVialRuns(exec: Executor, lotId: string, clinicId: string | null, today: string): Promise<UnusedVialRunRow[]> {
  const result = await exec.execute(sql`
    with v as (
      select v.sequence, v.barcode,
        case when v.status = 'at-clinic' and l.expires_on < ${today}::date then 'expired' else v.status end as status,
        v.clinic_id, v.moved_action, v.moved_at, v.moved_reason
      from vials v join lots l on l.id = v.lot_id
      where v.lot_id = ${lotId} and v.status <> 'administered' ${clinicFilter('v.clinic_id', clinicId)}
    ),
    runs as (
      select v.*, v.sequence - row_number() over (
        partition by v.status, v.clinic_id, v.moved_action, v.moved_at, v.moved_reason order by v.sequence) as run
      from v
    )
    select min(sequence) as first_sequence, max(sequence) as last_sequence, count(*)::int as vials,
      (array_agg(barcode order by sequence))[1] as first_barcode, (array_agg(barcode order by sequence desc))[1] as last_barcode,
      status, clinic_id, moved_action, ${isoInstant('moved_at')} as moved_at, moved_reason
    from runs
    group by run, status, clinic_id, moved_action, moved_at, moved_reason
    order by first_sequence`);
  return result.rows as unknown as UnusedVialRunRow[];
}

/** The lot's recall notices (one per notified clinic) and their acknowledgement. */
export interface NoticeRow {
  clinic_id: string;
  recalled_at: string;
  created_at: string;
  acknowledged_at: string | null;
  acknowledged_by: string | null;
  barcodes: number;
}

export async function recallNoticesOf(exec: Executor, lotId: string, clinicId: string | null): Promise<NoticeRow[]> {
  const result = await exec.execute(sql`
    select n.clinic_id, ${isoInstant('n.recalled_at')} as recalled_at, ${isoInstant('n.created_at')} as created_at,
      ${isoInstant('n.acknowledged_at')} as acknowledged_at, n.acknowledged_by, cardinality(n.barcodes) as barcodes
    from recall_notices n
    where n.lot_id = ${lotId} ${clinicFilter('n.clinic_id', clinicId)}
    order by n.clinic_id`);
  return result.rows as unknown as NoticeRow[];
}
