import type { Executor } from '../../db/client.js';
import { recordVersions } from './history.table.js';
import { sql } from 'drizzle-orm';
import { builder, part, shapedPart, sqlOf, type Part } from '../../db/statement.js';
import { fromRaw } from '../../db/raw.js';

export type VersionRow = typeof recordVersions.$inferSelect;

/** One version's representation as a part of a change written in one statement (UnitOfWork.once). */
export const versionPart = part<{ resourceType: string; resourceId: string; version: number; clinicId: string | null; body: object; by: string }>(
  { resourceType: true, resourceId: true, version: true, clinicId: true, body: true, by: true },
  (p) => versionInsert(builder, p),
);

/** The insert of one version's representation (unexecuted: UnitOfWork.once composes it). */
export function versionInsert(exec: Executor, e: { resourceType: string; resourceId: string; version: number; clinicId: string | null; body: object; by: string }) {
  return exec.insert(recordVersions).values({
    resourceType: e.resourceType,
    resourceId: e.resourceId,
    version: e.version,
    clinicId: e.clinicId,
    body: e.body as Record<string, unknown>,
    recordedBy: e.by,
  });
}


/** A page of a record's versions, asked of the history read below: oldest first after `after`, or newest first before it. */
export interface VersionsValues<R> {
  record: R;
  resourceType: string;
  after?: number;
  newestFirst?: boolean;
  /** Rows to read: the page's size plus one. */
  limit: number;
}

/**
 * A record's versions as one row, for an audited read (AuditLog.readStatement): the record as its module's
 * named query `record` returns it (no row when the reader may not see it), `history` true, and `versions`,
 * a json array of record_versions rows in page order.
 */
export function versionsOf<R>(record: Part<R>): Part<VersionsValues<R>> {
  return shapedPart<VersionsValues<R>>({ record: record.keys, resourceType: true, after: true, newestFirst: true, limit: true } as Part<VersionsValues<R>>['keys'], (p, present) => {
    const newestFirst = present.has('newestFirst');
    const after = present.has('after') ? sql` and v.version ${sql.raw(newestFirst ? '<' : '>')} ${p.after}` : sql``;
    const order = sql.raw(newestFirst ? 'v.version desc' : 'v.version asc');
    return sql`
      select r.*, true as history,
        coalesce((select json_agg(v order by ${order}) from (
          select * from ${recordVersions} v where v.resource_type = ${p.resourceType} and v.resource_id = r.id${after} order by ${order} limit ${p.limit}
        ) v), '[]'::json) as versions
      from (${sqlOf(record, 'record.', present)}) r`;
  });
}

/** One version of a record, for an audited read: the record's row with `history` true and the version's columns as v_*; no row when either is missing. */
export function versionOf<R>(record: Part<R>): Part<{ record: R; resourceType: string; version: number }> {
  return part<{ record: R; resourceType: string; version: number }>({ record: record.keys, resourceType: true, version: true } as Part<{ record: R; resourceType: string; version: number }>['keys'], (p) => sql`
    select r.*, true as history, v.version as v_version, v.body as v_body, v.recorded_at as v_recorded_at, v.recorded_by as v_recorded_by
    from (${sqlOf(record, 'record.')}) r
    join ${recordVersions} v on v.resource_type = ${p.resourceType} and v.resource_id = r.id and v.version = ${p.version}`);
}

/** The versions of a versionsOf row. */
export const versionsFromRaw = (raw: Record<string, unknown>): VersionRow[] => (raw.versions as Record<string, unknown>[]).map((v) => fromRaw(recordVersions, v));

/** The version of a versionOf row. */
export const versionFromRaw = (raw: Record<string, unknown>): VersionRow =>
  fromRaw(recordVersions, { resource_type: null, resource_id: raw.id, version: raw.v_version, clinic_id: raw.clinic_id ?? null, body: raw.v_body, recorded_at: raw.v_recorded_at, recorded_by: raw.v_recorded_by });
