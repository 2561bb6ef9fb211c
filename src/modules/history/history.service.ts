import { and, asc, eq, gt } from 'drizzle-orm';
import type { Executor, Tx } from '../../db/client.js';
import { write } from '../../db/unit-of-work.js';
import type { PageRequest } from '../../http/pagination.js';
import { recordVersions } from './history.table.js';

export interface VersionSnapshot<T> {
  version: number;
  recordedAt: string;
  recordedBy: string;
  resource: T;
}

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
  list<T>(exec: Executor, resourceType: string, resourceId: string, page: PageRequest<number>): Promise<VersionSnapshot<T>[]>;
}

export function createHistory(): History {
  return {
    async record(tx, e) {
      await write(tx, versionInsert(tx, e));
    },
    statement: versionInsert,
    async list<T>(exec: Executor, resourceType: string, resourceId: string, page: PageRequest<number>) {
      const rows = await exec
        .select()
        .from(recordVersions)
        .where(
          and(
            eq(recordVersions.resourceType, resourceType),
            eq(recordVersions.resourceId, resourceId),
            page.after !== undefined ? gt(recordVersions.version, page.after) : undefined,
          ),
        )
        .orderBy(asc(recordVersions.version))
        .limit(page.limit + 1);
      return rows.map((r) => ({
        version: r.version,
        recordedAt: r.recordedAt.toISOString(),
        recordedBy: r.recordedBy,
        resource: r.body as T,
      }));
    },
  };
}
