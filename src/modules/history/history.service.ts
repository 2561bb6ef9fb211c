import type { Db, Executor, Tx } from '../../db/client.js';
import type { Part } from '../../db/statement.js';
import type { Actor } from '../../auth/principal.js';
import type { AuditLog } from '../audit/audit.service.js';
import { write } from '../../db/unit-of-work.js';
import type { PageRequest } from '../../shared/paging.js';
import * as q from './history.queries.js';

export interface VersionSnapshot<T> {
  version: number;
  recordedAt: string;
  recordedBy: string;
  resource: T;
}

/** A page of versions: oldest first after version `after`, or, with `newestFirst`, newest first before it. */
export type VersionPage = PageRequest<number> & { newestFirst?: boolean };

export interface VersionEntry {
  resourceType: string;
  resourceId: string;
  version: number;
  clinicId: string | null;
  body: object;
  by: string;
}

const versionInsert = (exec: Executor, e: VersionEntry) => q.versionInsert(exec, e);

const snapshot = <T>(r: q.VersionRow): VersionSnapshot<T> => ({ version: r.version, recordedAt: r.recordedAt.toISOString(), recordedBy: r.recordedBy, resource: r.body as T });

export interface History {
  /** Keeps the representation of a version; call in the transaction that made it. */
  record(tx: Tx, entry: VersionEntry): Promise<void>;
  /** The same insert as a part of a change written in one statement (UnitOfWork.once): values are a VersionEntry. */
  version: typeof q.versionPart;
}

/**
 * The history reads of one kind of record, each one audited statement (AuditLog.readStatement): the record
 * as its module's named query `record` returns it (clinic-checked), its versions, and one read entry with
 * details (`history: true`, `version` for one version, and the columns `details` names), written only when the
 * record (and the version) was seen.
 */
export interface HistoryReads<R> {
  /** A page of versions (limit + 1 rows); undefined when the reader may not see the record. */
  list<T>(actor: Actor, record: R, page: VersionPage): Promise<VersionSnapshot<T>[] | undefined>;
  /** One version; undefined when the reader may not see the record or it has no such version (no entry then). */
  get<T>(actor: Actor, record: R, version: number): Promise<VersionSnapshot<T> | undefined>;
}

export function historyReads<R extends object>(
  db: Db,
  audit: Pick<AuditLog, 'readStatement'>,
  spec: { resourceType: string; record: Part<R>; details?: Record<string, string>; clinicColumn?: string | null },
): HistoryReads<R> {
  const entry = { resourceType: spec.resourceType, clinicColumn: spec.clinicColumn };
  const list = audit.readStatement({ ...entry, details: { history: 'history', ...spec.details } }, q.versionsOf(spec.record));
  const one = audit.readStatement({ ...entry, details: { history: 'history', version: 'v_version', ...spec.details } }, q.versionOf(spec.record));
  return {
    async list<T>(actor: Actor, record: R, page: VersionPage) {
      const [raw] = await list(db, actor, { record, resourceType: spec.resourceType, after: page.after, newestFirst: page.newestFirst || undefined, limit: page.limit + 1 });
      return raw && q.versionsFromRaw(raw).map((r) => snapshot<T>(r));
    },
    async get<T>(actor: Actor, record: R, version: number) {
      const [raw] = await one(db, actor, { record, resourceType: spec.resourceType, version });
      return raw && snapshot<T>(q.versionFromRaw(raw));
    },
  };
}

export function createHistory(): History {
  return {
    async record(tx, e) {
      await write(tx, versionInsert(tx, e));
    },
    version: q.versionPart,
  };
}
