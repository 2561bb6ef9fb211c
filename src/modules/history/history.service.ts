import { and, asc, desc, eq, gt, lt } from 'drizzle-orm';
import type { Executor, Tx } from '../../db/client.js';
import { write } from '../../db/unit-of-work.js';
import type { PageRequest } from '../../shared/paging.js';
import { recordVersions } from './history.table.js';

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

function versionInsert(exec: Executor, e: VersionEntry) {
  return exec.insert(recordVersions).values({
    resourceType: e.resourceType,
    resourceId: e.resourceId,
    version: e.version,
    clinicId: e.clinicId,
    body: e.body as Record<string, unknown>,
    recordedBy: e.by,
  });
}

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
      const rows = await exec
        .select()
        .from(recordVersions)
        .where(
          and(
            eq(recordVersions.resourceType, resourceType),
            eq(recordVersions.resourceId, resourceId),
            page.after !== undefined ? (page.newestFirst ? lt : gt)(recordVersions.version, page.after) : undefined,
          ),
        )
        .orderBy(page.newestFirst ? desc(recordVersions.version) : asc(recordVersions.version))
        .limit(page.limit + 1);
      return rows.map((r) => ({
        version: r.version,
        recordedAt: r.recordedAt.toISOString(),
        recordedBy: r.recordedBy,
        resource: r.body as T,
      }));
    },
    async get<T>(exec: Executor, resourceType: string, resourceId: string, version: number) {
      const [r] = await exec
        .select()
        .from(recordVersions)
        .where(and(eq(recordVersions.resourceType, resourceType), eq(recordVersions.resourceId, resourceId), eq(recordVersions.version, version)));
      return r ? { version: r.version, recordedAt: r.recordedAt.toISOString(), recordedBy: r.recordedBy, resource: r.body as T } : undefined;
    },
  };
}
