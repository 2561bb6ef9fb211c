import { and, asc, eq, ne, sql } from 'drizzle-orm';
import type pg from 'pg';
import { openReadSnapshot } from '../../db/read-snapshot.js';
import { rowTypes, type Executor, type Tx } from '../../db/client.js';
import { fromRaw } from '../../db/raw.js';
import { parsePgTimestamp } from '../../db/columns.js';
import { adverseEvents } from '../adverse-events/adverse-events.table.js';
import { outcomes } from '../outcomes/outcomes.table.js';
import { patients } from '../patients/patients.table.js';
import { procedures } from '../procedures/procedures.table.js';
import { bulkExportChunks, bulkExportFiles, bulkExportJobs } from './bulk.table.js';

/**
 * The bulk export's SQL: its own tables (jobs, files, chunks), and the export read model, which reads the
 * clinical tables in one REPEATABLE READ snapshot through server-side cursors (like the traceability module's
 * CSV): rows arrive a batch at a time, so memory stays flat however many there are.
 */

export type JobRow = typeof bulkExportJobs.$inferSelect;
export type FileRow = typeof bulkExportFiles.$inferSelect;
export type NewJob = Pick<JobRow, 'id' | 'ownerSub' | 'clinicId' | 'kind' | 'groupId' | 'types' | 'since' | 'requestUrl'>;

/** Locks the requester's kick-offs (an advisory lock on its identity) and counts its jobs queued or running. */
export async function lockOwnerAndCountOpen(tx: Executor, ownerSub: string, clinicId: string | null): Promise<number> {
  await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`bulk-export:${clinicId ?? ''}:${ownerSub}`}, 0))`);
  const result = await tx.execute(sql`
    select count(*)::int as n from ${bulkExportJobs}
    where ${bulkExportJobs.ownerSub} = ${ownerSub} and ${bulkExportJobs.clinicId} is not distinct from ${clinicId}::text and ${bulkExportJobs.status} in ('queued', 'running')`);
  return Number((result.rows[0] as { n: number }).n);
}

export async function insertJob(exec: Executor, job: NewJob): Promise<JobRow> {
  const [row] = await exec.insert(bulkExportJobs).values({ ...job, status: 'queued' }).returning();
  return row!;
}

/** The job if `ownerSub` (of that clinic, or of none) started it; cancelled jobs are gone for their owner too. */
export async function findOwnJob(exec: Executor, id: string, ownerSub: string, clinicId: string | null): Promise<JobRow | undefined> {
  const [row] = await exec
    .select()
    .from(bulkExportJobs)
    .where(
      and(
        eq(bulkExportJobs.id, id),
        eq(bulkExportJobs.ownerSub, ownerSub),
        clinicId === null ? sql`${bulkExportJobs.clinicId} is null` : eq(bulkExportJobs.clinicId, clinicId),
        ne(bulkExportJobs.status, 'cancelled'),
        sql`(${bulkExportJobs.expiresAt} is null or ${bulkExportJobs.expiresAt} > now())`,
      ),
    );
  return row;
}

/** The output and error files of the job's completed attempt, in manifest order. */
export function filesOf(exec: Executor, jobId: string, attempt: number): Promise<FileRow[]> {
  return exec
    .select()
    .from(bulkExportFiles)
    .where(and(eq(bulkExportFiles.jobId, jobId), eq(bulkExportFiles.attempt, attempt)))
    .orderBy(asc(bulkExportFiles.seq));
}

/** Cancels the job (whatever it is doing: the runner sees its lease gone) and deletes every file it has written. */
export async function cancelJob(tx: Tx, id: string): Promise<void> {
  await tx.update(bulkExportJobs).set({ status: 'cancelled', leaseToken: null, leaseUntil: null, progress: null, expiresAt: sql`now() + interval '24 hours'` }).where(eq(bulkExportJobs.id, id));
  await tx.delete(bulkExportFiles).where(eq(bulkExportFiles.jobId, id));
}

/** A completed job's file, if `ownerSub` (of that clinic, or of none) started the job; with the chunk count. */
export async function findOwnFile(exec: Executor, fileId: string, ownerSub: string, clinicId: string | null): Promise<FileRow | undefined> {
  const [row] = await exec
    .select({ f: bulkExportFiles })
    .from(bulkExportFiles)
    .innerJoin(bulkExportJobs, eq(bulkExportJobs.id, bulkExportFiles.jobId))
    .where(
      and(
        eq(bulkExportFiles.id, fileId),
        eq(bulkExportJobs.status, 'completed'),
        eq(bulkExportJobs.attempt, bulkExportFiles.attempt),
        eq(bulkExportJobs.ownerSub, ownerSub),
        clinicId === null ? sql`${bulkExportJobs.clinicId} is null` : eq(bulkExportJobs.clinicId, clinicId),
        sql`${bulkExportJobs.expiresAt} > now()`,
      ),
    );
  return row?.f;
}

export async function chunkOf(exec: Executor, fileId: string, seq: number): Promise<Buffer | undefined> {
  const [row] = await exec.select({ data: bulkExportChunks.data }).from(bulkExportChunks).where(and(eq(bulkExportChunks.fileId, fileId), eq(bulkExportChunks.seq, seq)));
  return row?.data;
}

/** One advisory lock serializes claims across instances, so the count of running jobs cannot be raced past the limit. */
const CLAIM_LOCK = sql`select pg_advisory_xact_lock(hashtext('bulk-export-claim'))`;

/**
 * Claims the oldest queued job, or a running one whose lease ran out (its runner died: it restarts from
 * scratch as the next attempt), when fewer than `max` jobs hold a live lease. Two statements in one
 * transaction: the advisory lock first, then the count and claim, whose snapshot (READ COMMITTED: taken
 * after the lock) sees every claim committed before. Row locks with SKIP LOCKED keep two claimers apart.
 */
export async function claimJob(tx: Tx, max: number, leaseMs: number): Promise<JobRow | undefined> {
  await tx.execute(CLAIM_LOCK);
  const result = await tx.execute(sql`
    with live as (
      select count(*)::int as n from bulk_export_jobs where status = 'running' and lease_until > now()
    ),
    pick as (
      select j.id from bulk_export_jobs j, live
      where live.n < ${max} and (j.status = 'queued' or (j.status = 'running' and j.lease_until <= now()))
      order by j.created_at, j.id
      limit 1
      for update of j skip locked
    )
    update bulk_export_jobs j
    set status = 'running', attempt = j.attempt + 1, lease_token = gen_random_uuid(), lease_until = now() + ${leaseMs} * interval '1 millisecond',
        started_at = now(), progress = null, transaction_time = null
    from pick where j.id = pick.id
    returning j.*`);
  const raw = result.rows[0];
  return raw ? fromRaw(bulkExportJobs, raw) : undefined;
}

/** Renews the lease (and records progress) while this attempt still holds it; false when it was cancelled or taken over. */
export async function heartbeat(exec: Executor, id: string, leaseToken: string, leaseMs: number, progress: string | null): Promise<boolean> {
  const rows = await exec
    .update(bulkExportJobs)
    .set({ leaseUntil: sql`now() + ${leaseMs} * interval '1 millisecond'`, progress })
    .where(and(eq(bulkExportJobs.id, id), eq(bulkExportJobs.leaseToken, leaseToken), eq(bulkExportJobs.status, 'running')))
    .returning({ id: bulkExportJobs.id });
  return rows.length > 0;
}

export async function setTransactionTime(exec: Executor, id: string, leaseToken: string, at: Date): Promise<boolean> {
  const rows = await exec
    .update(bulkExportJobs)
    .set({ transactionTime: at })
    .where(and(eq(bulkExportJobs.id, id), eq(bulkExportJobs.leaseToken, leaseToken), eq(bulkExportJobs.status, 'running')))
    .returning({ id: bulkExportJobs.id });
  return rows.length > 0;
}

/** The attempt's end: completed (files kept `ttlMs`), failed, or queued again; false when it no longer held the lease. */
export async function finishJob(exec: Executor, id: string, leaseToken: string, outcome: { status: 'completed' | 'failed' | 'queued'; error?: string; ttlMs: number }): Promise<boolean> {
  const ends = outcome.status !== 'queued';
  const rows = await exec
    .update(bulkExportJobs)
    .set({
      status: outcome.status,
      leaseToken: null,
      leaseUntil: null,
      error: outcome.error ?? null,
      progress: null,
      completedAt: ends ? sql`now()` : null,
      expiresAt: ends ? sql`now() + ${outcome.ttlMs} * interval '1 millisecond'` : null,
    })
    .where(and(eq(bulkExportJobs.id, id), eq(bulkExportJobs.leaseToken, leaseToken), eq(bulkExportJobs.status, 'running')))
    .returning({ id: bulkExportJobs.id });
  return rows.length > 0;
}

/** Deletes the files of the job's attempts other than `keep` (a dead attempt's leftovers), or all of them. */
export async function deleteFiles(exec: Executor, jobId: string, opts: { attempt?: number; except?: number }): Promise<void> {
  await exec
    .delete(bulkExportFiles)
    .where(
      and(
        eq(bulkExportFiles.jobId, jobId),
        opts.attempt !== undefined ? eq(bulkExportFiles.attempt, opts.attempt) : undefined,
        opts.except !== undefined ? ne(bulkExportFiles.attempt, opts.except) : undefined,
      ),
    );
}

/**
 * Housekeeping: jobs past `expires_at` are deleted with their files (derived copies, not records); a job
 * whose runner died `maxAttempts` times is failed rather than claimed again. Answers the jobs deleted.
 */
export async function sweep(exec: Executor, maxAttempts: number): Promise<number> {
  await exec.execute(sql`
    update bulk_export_jobs set status = 'failed', lease_token = null, lease_until = null, completed_at = now(), expires_at = now() + interval '24 hours',
      error = 'The export was interrupted ' || attempt || ' times.'
    where status = 'running' and lease_until <= now() and attempt >= ${maxAttempts}`);
  const deleted = await exec.delete(bulkExportJobs).where(sql`${bulkExportJobs.expiresAt} <= now()`).returning({ id: bulkExportJobs.id });
  return deleted.length;
}

export async function insertFile(exec: Executor, file: Pick<FileRow, 'id' | 'jobId' | 'attempt' | 'seq' | 'kind' | 'type'>): Promise<void> {
  await exec.insert(bulkExportFiles).values(file);
}

export async function insertChunk(exec: Executor, fileId: string, seq: number, data: Buffer): Promise<void> {
  await exec.insert(bulkExportChunks).values({ fileId, seq, data });
}

export async function finishFile(exec: Executor, fileId: string, totals: { count: number; bytes: number; chunks: number }): Promise<void> {
  await exec.update(bulkExportFiles).set(totals).where(eq(bulkExportFiles.id, fileId));
}

/** The patients who received the lot: a procedure with it that stands (not entered in error), of one clinic or all. */
export async function lotRecipients(exec: Executor, lotId: string, clinicId: string | null): Promise<string[]> {
  const result = await exec.execute(sql`
    select distinct patient_id from procedures
    where lot_id = ${lotId} and status = 'completed' ${clinicId ? sql`and clinic_id = ${clinicId}` : sql``}
    order by patient_id`);
  return (result.rows as { patient_id: string }[]).map((r) => r.patient_id);
}

// ---------------------------------------------------------------------------------------------------------
// The export read model

/** The resource types an export reads from a table of rows (lots are read by id, then mapped by their module). */
export type RowType = 'Patient' | 'Procedure' | 'Observation' | 'AdverseEvent';

/** What one export covers: a clinic's (or every clinic's) records, changed after `since`, of the lot's recipients (group). */
export interface ExportFilter {
  clinicId: string | null;
  since: Date | null;
  /** Group export: only the recipients of this lot (and their records). */
  lotId: string | null;
}

const SOURCES = {
  Patient: { table: 'patients', patientColumn: 'id', changedColumn: 'updated_at', row: (r: Record<string, unknown>) => fromRaw(patients, r) },
  Procedure: { table: 'procedures', patientColumn: 'patient_id', changedColumn: 'updated_at', row: (r: Record<string, unknown>) => fromRaw(procedures, r) },
  Observation: { table: 'outcomes', patientColumn: 'patient_id', changedColumn: 'recorded_at', row: (r: Record<string, unknown>) => fromRaw(outcomes, r) },
  AdverseEvent: { table: 'adverse_events', patientColumn: 'patient_id', changedColumn: 'updated_at', row: (r: Record<string, unknown>) => fromRaw(adverseEvents, r) },
} as const;

export interface ExportRows {
  Patient: typeof patients.$inferSelect;
  Procedure: typeof procedures.$inferSelect;
  Observation: typeof outcomes.$inferSelect;
  AdverseEvent: typeof adverseEvents.$inferSelect;
}

/** `from … where …` of one type's export, with its parameters ($1…). */
function fromWhere(type: RowType | 'BiologicallyDerivedProduct', f: ExportFilter): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const param = (v: unknown) => {
    values.push(v);
    return `$${values.length}`;
  };
  const recipients = (column: string) =>
    f.lotId ? ` and ${column} in (select r.patient_id from procedures r where r.lot_id = ${param(f.lotId)} and r.status = 'completed'${f.clinicId ? ` and r.clinic_id = ${param(f.clinicId)}` : ''})` : '';
  if (type === 'BiologicallyDerivedProduct') {
    // System level: every lot. Patient and group level: the lots the exported patients' procedures used.
    const used = f.lotId || f.clinicId ? ` and t.id in (select p.lot_id from procedures p where true${f.clinicId ? ` and p.clinic_id = ${param(f.clinicId)}` : ''}${recipients('p.patient_id')})` : '';
    return { text: `from lots t where true${used}${f.since ? ` and t.updated_at > ${param(f.since.toISOString())}` : ''}`, values };
  }
  const s = SOURCES[type];
  let text = `from ${s.table} t where true`;
  if (f.clinicId) text += ` and t.clinic_id = ${param(f.clinicId)}`;
  if (f.since) text += ` and t.${s.changedColumn} > ${param(f.since.toISOString())}`;
  text += recipients(`t.${s.patientColumn}`);
  return { text, values };
}

/** A read-only REPEATABLE READ snapshot on one connection: every count and cursor of an export sees the same data. */
export interface Snapshot {
  /** Bulk Data `transactionTime`: resources changed after it are not in this snapshot (see openSnapshot). */
  transactionTime: Date;
  count(type: RowType | 'BiologicallyDerivedProduct', f: ExportFilter): Promise<number>;
  /** The type's rows in id order, `batch` at a time (a server-side cursor). */
  rows<T extends RowType>(type: T, f: ExportFilter, batch: number): AsyncGenerator<ExportRows[T][]>;
  /** The lot ids of the export in id order, `batch` at a time. */
  lotIds(f: ExportFilter, batch: number): AsyncGenerator<string[]>;
  close(): Promise<void>;
}

/** How long one export cursor may run (6 h): far beyond any export, short of never. */
const CURSOR_READ_TIMEOUT_MS = 6 * 3600_000;

/**
 * Opens the export's snapshot (db/read-snapshot.ts) on a connection of its own, held for the whole export, with
 * no statement timeout (a cursor is one statement until it ends).
 *
 * `transactionTime`: the snapshot's time (clock_timestamp() in its first statement, so every transaction
 * committed before the snapshot is older), moved back to the start of the oldest transaction that was still
 * writing then: a change it commits later carries a time before that instant (rows take their transaction's
 * now()), is not in this snapshot, and a later export with `_since=transactionTime` still finds it.
 */
export async function openSnapshot(pool: pg.Pool): Promise<Snapshot> {
  // No statement timeout: a cursor is one statement until its last row. The lease, the heartbeat and
  // cancellation bound an export instead.
  const snap = await openReadSnapshot(pool, { statementTimeoutMs: 0, idleInTransactionMs: 10 * 60_000 });
  let transactionTime: Date;
  try {
    const at = await snap.client.query<{ snapshot: string; oldest: string | null }>({
      text: `select clock_timestamp()::text as snapshot,
        (select min(xact_start)::text from pg_stat_activity where backend_xid is not null and pid <> pg_backend_pid()) as oldest`,
      types: rowTypes,
    });
    const snapshot = parsePgTimestamp(at.rows[0]!.snapshot);
    const oldest = at.rows[0]!.oldest ? parsePgTimestamp(at.rows[0]!.oldest) : null;
    transactionTime = oldest && oldest < snapshot ? oldest : snapshot;
  } catch (err) {
    await snap.close({ err: err as Error });
    throw err;
  }

  async function* cursor(text: string, values: unknown[], batch: number): AsyncGenerator<Record<string, unknown>[]> {
    const stream = snap.cursor(text, values, { batchSize: batch, highWaterMark: batch, types: rowTypes, readTimeoutMs: CURSOR_READ_TIMEOUT_MS });
    let rows: Record<string, unknown>[] = [];
    try {
      for await (const row of stream as AsyncIterable<Record<string, unknown>>) {
        rows.push(row);
        if (rows.length >= batch) {
          if (snap.lost) throw snap.lost;
          yield rows;
          rows = [];
        }
      }
      if (snap.lost) throw snap.lost;
      if (rows.length) yield rows;
    } finally {
      // Stopped early (cancelled, failed): destroying the stream closes the cursor.
      if (!stream.destroyed) stream.destroy();
    }
  }

  return {
    transactionTime,
    async count(type, f) {
      const { text, values } = fromWhere(type, f);
      const result = await snap.client.query<{ n: number }>(`select count(*)::int8 as n ${text}`, values);
      return Number(result.rows[0]!.n);
    },
    async *rows<T extends RowType>(type: T, f: ExportFilter, batch: number): AsyncGenerator<ExportRows[T][]> {
      const { text, values } = fromWhere(type, f);
      const map = SOURCES[type].row as (r: Record<string, unknown>) => ExportRows[T];
      for await (const rows of cursor(`select t.* ${text} order by t.id`, values, batch)) yield rows.map(map);
    },
    async *lotIds(f, batch) {
      const { text, values } = fromWhere('BiologicallyDerivedProduct', f);
      for await (const rows of cursor(`select t.id ${text} order by t.id`, values, batch)) yield rows.map((r) => r.id as string);
    },
    close: () => snap.close({ commit: true }),
  };
}
