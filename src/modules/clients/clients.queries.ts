import { and, asc, eq, gt, sql } from 'drizzle-orm';
import type { Executor, Tx } from '../../db/client.js';
import type { PageRequest } from '../../shared/paging.js';
import { clientAssertionJtis, clients } from './clients.table.js';

export type ClientRow = typeof clients.$inferSelect;

export async function insertClient(tx: Tx, row: Omit<ClientRow, 'version'>): Promise<ClientRow> {
  const [inserted] = await tx.insert(clients).values(row).returning();
  return inserted!;
}

const ownedBy = (clinicId: string | null) => (clinicId === null ? undefined : eq(clients.clinicId, clinicId));

/** The client if the caller's clinic owns it (a token without clinic sees every one). */
export async function findClient(exec: Executor, id: string, clinicId: string | null, lock = false): Promise<ClientRow | undefined> {
  const query = exec.select().from(clients).where(and(eq(clients.id, id), ownedBy(clinicId)));
  const [row] = lock ? await query.for('update') : await query;
  return row;
}

export function listClients(exec: Executor, clinicId: string | null, page: PageRequest) {
  return exec
    .select()
    .from(clients)
    .where(and(ownedBy(clinicId), page.after ? gt(clients.id, page.after) : undefined))
    .orderBy(asc(clients.id))
    .limit(page.limit + 1);
}

export async function updateClient(tx: Tx, id: string, changes: Partial<ClientRow>): Promise<ClientRow> {
  const [row] = await tx
    .update(clients)
    .set({ ...changes, version: sql`${clients.version} + 1` })
    .where(eq(clients.id, id))
    .returning();
  return row!;
}

export async function clientStatus(exec: Executor, id: string): Promise<string | undefined> {
  const [row] = await exec.select({ status: clients.status }).from(clients).where(eq(clients.id, id));
  return row?.status;
}

/**
 * Records an assertion's `jti` for its client until `expiresAt`; false when that client already used it and
 * the earlier use has not expired (a replay). One statement, so instances racing with the same assertion are
 * decided by the primary key: exactly one of them records it. The client's expired jtis are removed on the way.
 */
export async function claimJti(exec: Executor, clientId: string, jti: string, expiresAt: Date): Promise<boolean> {
  const result = await exec.execute(sql`
    with expired as (
      delete from ${clientAssertionJtis}
      where client_id = ${clientId} and expires_at < now() and jti <> ${jti}
    )
    insert into ${clientAssertionJtis} (client_id, jti, expires_at)
    values (${clientId}, ${jti}, ${expiresAt.toISOString()}::timestamptz)
    on conflict (client_id, jti) do update set expires_at = excluded.expires_at
      where ${clientAssertionJtis}.expires_at < now()
    returning 1 as claimed`);
  return result.rows.length === 1;
}
