import { and, asc, eq, gt, gte, inArray, lt, sql, type SQL } from 'drizzle-orm';
import type { Executor, Tx } from '../../db/client.js';
import type { PageRequest } from '../../http/pagination.js';
import { fromRaw } from '../../db/raw.js';
import { builder, compiled } from '../../db/compiled.js';
import type { ProcedureFilters } from './procedures.schemas.js';
import { procedures } from './procedures.table.js';

export type ProcedureRow = typeof procedures.$inferSelect;

export function insertProcedure(exec: Executor, row: ProcedureRow) {
  return exec.insert(procedures).values(row);
}

/** The select of one procedure of the clinic, unexecuted (for AuditLog.readThrough). */
export function selectProcedure(exec: Executor, clinicId: string, id: string) {
  return exec
    .select()
    .from(procedures)
    .where(and(eq(procedures.id, id), eq(procedures.clinicId, clinicId)))
    .limit(1);
}

export const procedureFromRaw = (r: Record<string, unknown>): ProcedureRow => fromRaw(procedures, r);

/** Holds while the clinic's procedure stands (not entered in error). */
export const completed = (clinicId: string, id: string) =>
  sql<boolean>`exists (select 1 from ${procedures} where ${procedures.id} = ${id} and ${procedures.clinicId} = ${clinicId} and ${procedures.status} = 'completed')`;

const findProcedureStatement = compiled<{ clinicId: string; id: string }>((v) =>
  builder.select().from(procedures).where(and(eq(procedures.id, v.id), eq(procedures.clinicId, v.clinicId))).limit(1),
);

export async function findProcedure(exec: Executor, clinicId: string, id: string): Promise<ProcedureRow | undefined> {
  const [raw] = await findProcedureStatement.run(exec, { clinicId, id });
  return raw && procedureFromRaw(raw);
}

export async function lockProcedure(tx: Tx, clinicId: string, id: string): Promise<ProcedureRow | undefined> {
  const [row] = await tx
    .select()
    .from(procedures)
    .where(and(eq(procedures.id, id), eq(procedures.clinicId, clinicId)))
    .for('update')
    .limit(1);
  return row;
}

function procedureWhere(clinicId: string, f: ProcedureFilters): (SQL | undefined)[] {
  const where: (SQL | undefined)[] = [eq(procedures.clinicId, clinicId)];
  if (f.patientId) where.push(eq(procedures.patientId, f.patientId));
  if (f.lotId) where.push(eq(procedures.lotId, f.lotId));
  if (f.performedFrom) where.push(gte(procedures.performedAt, new Date(`${f.performedFrom}T00:00:00Z`)));
  if (f.performedTo) where.push(lt(procedures.performedAt, new Date(Date.parse(`${f.performedTo}T00:00:00Z`) + 86_400_000)));
  return where;
}

/** The search, unexecuted (for AuditLog.searchThrough). */
export function selectProcedures(exec: Executor, clinicId: string, f: ProcedureFilters, page: PageRequest) {
  return exec
    .select()
    .from(procedures)
    .where(and(...procedureWhere(clinicId, f), page.after ? gt(procedures.id, page.after) : undefined))
    .orderBy(asc(procedures.id))
    .limit(page.limit + 1);
}

export async function countProcedures(exec: Executor, clinicId: string, f: ProcedureFilters): Promise<number> {
  const [row] = await exec.select({ n: sql<number>`count(*)::int` }).from(procedures).where(and(...procedureWhere(clinicId, f)));
  return row?.n ?? 0;
}

export async function markEnteredInError(
  tx: Tx,
  id: string,
  m: { reason: string; at: Date; by: string; vialsReturned: number },
): Promise<ProcedureRow> {
  const [row] = await tx
    .update(procedures)
    .set({
      status: 'entered-in-error',
      enteredInErrorReason: m.reason,
      enteredInErrorAt: m.at,
      enteredInErrorBy: m.by,
      vialsReturned: m.vialsReturned,
      updatedAt: m.at,
      version: sql`${procedures.version} + 1`,
    })
    .where(eq(procedures.id, id))
    .returning();
  return row!;
}

/** Distinct patients who received the lot (entered-in-error records excluded). */
export async function recipientsOfLot(exec: Executor, lotId: string): Promise<number> {
  const [row] = await exec
    .select({ n: sql<number>`count(distinct ${procedures.patientId})::int` })
    .from(procedures)
    .where(and(eq(procedures.lotId, lotId), eq(procedures.status, 'completed')));
  return row?.n ?? 0;
}

export async function performedAtOf(exec: Executor, clinicId: string, ids: string[]): Promise<Map<string, Date>> {
  if (ids.length === 0) return new Map();
  const rows = await exec
    .select({ id: procedures.id, performedAt: procedures.performedAt })
    .from(procedures)
    .where(and(eq(procedures.clinicId, clinicId), inArray(procedures.id, ids)));
  return new Map(rows.map((r) => [r.id, r.performedAt]));
}
