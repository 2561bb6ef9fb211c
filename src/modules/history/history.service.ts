import type { Db, Executor, Tx } from '../../db/client.js';
import { statement, type Part } from '../../db/statement.js';
import type { Actor } from '../../auth/principal.js';
import type { AuditLog } from '../audit/audit.service.js';
import { write } from '../../db/unit-of-work.js';
import { toPage, type Page, type PageRequest } from '../../shared/paging.js';
import { NotFound } from '../../shared/errors.js';
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
 * record (and the version) was seen. 404 (`NotFound(noun)`) when the reader may not see the record; for one
 * version, `NotFound('<noun> version')` when the record is theirs but the version is not there.
 */
export interface HistoryReads<R> {
  /** A page of versions, oldest first (newest first with `newestFirst`); the cursor is the last version's number. */
  list<T>(actor: Actor, record: R, page: VersionPage): Promise<Page<VersionSnapshot<T>>>;
  get<T>(actor: Actor, record: R, version: number): Promise<VersionSnapshot<T>>;
}

export function historyReads<R extends object>(
  db: Db,
  audit: Pick<AuditLog, 'readStatement'>,
  spec: { resourceType: string; noun: string; record: Part<R>; details?: Record<string, string>; clinicColumn?: string | null },
): HistoryReads<R> {
  const entry = { resourceType: spec.resourceType, clinicColumn: spec.clinicColumn };
  const list = audit.readStatement({ ...entry, details: { history: 'history', ...spec.details } }, q.versionsOf(spec.record));
  const one = audit.readStatement({ ...entry, details: { history: 'history', version: 'v_version', ...spec.details } }, q.versionOf(spec.record));
  // Only on a miss: whether the record itself is there, to tell "no such record" from "no such version" (unaudited: nothing was shown).
  const recordStatement = statement(spec.record);
  return {
    async list<T>(actor: Actor, record: R, page: VersionPage) {
      const [raw] = await list(db, actor, { record, resourceType: spec.resourceType, after: page.after, newestFirst: page.newestFirst || undefined, limit: page.limit + 1 });
      if (!raw) throw new NotFound(spec.noun);
      return toPage(q.versionsFromRaw(raw).map((r) => snapshot<T>(r)), page.limit, (v) => String(v.version));
    },
    async get<T>(actor: Actor, record: R, version: number) {
      const [raw] = await one(db, actor, { record, resourceType: spec.resourceType, version });
      if (raw) return snapshot<T>(q.versionFromRaw(raw));
      if ((await recordStatement.run(db, record)).length === 0) throw new NotFound(spec.noun);
      throw new NotFound(`${spec.noun} version`);
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
