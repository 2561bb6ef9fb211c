import { and, asc, desc, eq, gt, lt } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { recordVersions } from './history.table.js';

export type VersionRow = typeof recordVersions.$inferSelect;

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

/** `limit + 1` versions of one record: oldest first after `after`, or newest first before it. */
export function listVersions(exec: Executor, resourceType: string, resourceId: string, page: { limit: number; after?: number; newestFirst?: boolean }): Promise<VersionRow[]> {
  return exec
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
}

/** One version of one record. */
export async function findVersion(exec: Executor, resourceType: string, resourceId: string, version: number): Promise<VersionRow | undefined> {
  const [row] = await exec
    .select()
    .from(recordVersions)
    .where(and(eq(recordVersions.resourceType, resourceType), eq(recordVersions.resourceId, resourceId), eq(recordVersions.version, version)));
  return row;
}
