import type { Executor, Tx } from '../../db/client.js';
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
  /** The same insert as a statement, for a change written in one statement (UnitOfWork.once). */
  statement(exec: Executor, entry: VersionEntry): ReturnType<typeof versionInsert>;
  list<T>(exec: Executor, resourceType: string, resourceId: string, page: VersionPage): Promise<VersionSnapshot<T>[]>;
  /** One version of a record, undefined if it has no such version. */
  get<T>(exec: Executor, resourceType: string, resourceId: string, version: number): Promise<VersionSnapshot<T> | undefined>;
}

export function createHistory(): History {
  return {
    async record(tx, e) {
      await write(tx, versionInsert(tx, e));
    },
    statement: versionInsert,
    async list<T>(exec: Executor, resourceType: string, resourceId: string, page: VersionPage) {
      return (await q.listVersions(exec, resourceType, resourceId, page)).map((r) => snapshot<T>(r));
    },
    async get<T>(exec: Executor, resourceType: string, resourceId: string, version: number) {
      const r = await q.findVersion(exec, resourceType, resourceId, version);
      return r ? snapshot<T>(r) : undefined;
    },
  };
}
