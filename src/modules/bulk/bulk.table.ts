import { sql } from 'drizzle-orm';
import { bigint, check, customType, index, integer, pgTable, primaryKey, text, uuid } from 'drizzle-orm/pg-core';
import { instant } from '../../db/columns.js';

/** Bytes as PostgreSQL `bytea` (a Buffer in code). */
export const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => 'bytea' });

/**
 * FHIR Bulk Data export jobs (contract "Bulk Data"). Work lives in PostgreSQL only: any instance runs a queued
 * job, claimed with FOR UPDATE SKIP LOCKED under a lease (`lease_token`, `lease_until`) that the runner renews;
 * a job whose lease ran out (its process died) is claimed again and restarted from scratch as a new `attempt`.
 * Readers see only the files of the attempt that completed. Jobs and their files are deleted at `expires_at`
 * (24 h after completion): they are derived copies of clinical records, not records.
 */
export const bulkExportJobs = pgTable(
  'bulk_export_jobs',
  {
    id: uuid('id').primaryKey(),
    /** The token subject that started the job: the only one that may poll it and download its files. */
    ownerSub: text('owner_sub').notNull(),
    /** The token's clinic (its patients only); null: every clinic (a supplier or an auditor). */
    clinicId: text('clinic_id'),
    /** `system` ($export), `patient` (Patient/$export), `group` (Group/{lotId}/$export). */
    kind: text('kind').notNull(),
    /** The lot whose recipients a group export covers. */
    groupId: uuid('group_id'),
    types: text('types').array().notNull(),
    since: instant('since'),
    requestUrl: text('request_url').notNull(),
    status: text('status').notNull(),
    attempt: integer('attempt').notNull().default(0),
    leaseToken: uuid('lease_token'),
    leaseUntil: instant('lease_until'),
    /** What X-Progress says while the job runs. */
    progress: text('progress'),
    /** The snapshot's time (Bulk Data: transactionTime), set when the running attempt opened its snapshot. */
    transactionTime: instant('transaction_time'),
    error: text('error'),
    createdAt: instant('created_at').notNull().default(sql`now()`),
    startedAt: instant('started_at'),
    completedAt: instant('completed_at'),
    expiresAt: instant('expires_at'),
  },
  (t) => [
    index('bulk_export_jobs_status_idx').on(t.status, t.createdAt),
    index('bulk_export_jobs_expires_idx').on(t.expiresAt),
    check('bulk_export_jobs_status_ck', sql`${t.status} in ('queued','running','completed','failed','cancelled')`),
    check('bulk_export_jobs_kind_ck', sql`${t.kind} in ('system','patient','group')`),
  ],
);

/** One NDJSON file of one attempt of a job: a resource type's output (`output`) or an OperationOutcome file (`error`). */
export const bulkExportFiles = pgTable(
  'bulk_export_files',
  {
    id: uuid('id').primaryKey(),
    jobId: uuid('job_id')
      .notNull()
      .references(() => bulkExportJobs.id, { onDelete: 'cascade' }),
    attempt: integer('attempt').notNull(),
    /** The order of the manifest's entries. */
    seq: integer('seq').notNull(),
    kind: text('kind').notNull(),
    type: text('type').notNull(),
    count: bigint('count', { mode: 'number' }).notNull().default(0),
    bytes: bigint('bytes', { mode: 'number' }).notNull().default(0),
    chunks: integer('chunks').notNull().default(0),
    createdAt: instant('created_at').notNull().default(sql`now()`),
  },
  (t) => [index('bulk_export_files_job_idx').on(t.jobId, t.attempt, t.seq), check('bulk_export_files_kind_ck', sql`${t.kind} in ('output','error')`)],
);

/** A file's bytes, about 1 MB per chunk, whole NDJSON lines each, in `seq` order. */
export const bulkExportChunks = pgTable(
  'bulk_export_chunks',
  {
    fileId: uuid('file_id')
      .notNull()
      .references(() => bulkExportFiles.id, { onDelete: 'cascade' }),
    seq: integer('seq').notNull(),
    data: bytea('data').notNull(),
  },
  (t) => [primaryKey({ name: 'bulk_export_chunks_pk', columns: [t.fileId, t.seq] })],
);
