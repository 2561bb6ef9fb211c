import { and, asc, eq, gt, gte, inArray, lt, sql, type SQL } from 'drizzle-orm';
import type { Executor, Tx } from '../../db/client.js';
import type { PageRequest } from '../../shared/paging.js';
import { fromRaw } from '../../db/raw.js';
import { builder, compiled, equalities } from '../../db/compiled.js';
import type { ProcedureFilters } from './procedures.schemas.js';
import { procedures } from './procedures.table.js';
import { searchable } from '../../db/search.js';

export type ProcedureRow = typeof procedures.$inferSelect;

export function insertProcedure(exec: Executor, row: ProcedureRow) {
  return exec.insert(procedures).values(row);
}

/** The select of one procedure of the clinic, unexecuted (for AuditLog.readStatement). */
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

/** A search's values as the SQL takes them (dates as the instants that bound them). */
export interface ProcedureSearchValues {
  clinicId: string;
  patientId?: string;
  lotId?: string;
  performedFrom?: Date;
  performedBefore?: Date;
  after?: string;
  limit: number;
}

export function procedureSearchValues(clinicId: string, f: ProcedureFilters, page?: PageRequest): ProcedureSearchValues {
  return {
    clinicId,
    patientId: f.patientId,
    lotId: f.lotId,
    performedFrom: f.performedFrom ? new Date(`${f.performedFrom}T00:00:00Z`) : undefined,
    performedBefore: f.performedTo ? new Date(Date.parse(`${f.performedTo}T00:00:00Z`) + 86_400_000) : undefined,
    after: page?.after,
    limit: (page?.limit ?? 0) + 1,
  };
}

/** The conditions `present` has, with values from `v` (real, or the stand-ins of compiled()). */
function procedureWhere(v: ProcedureSearchValues, present: ProcedureSearchValues): (SQL | undefined)[] {
  return [
    eq(procedures.clinicId, v.clinicId),
    ...equalities(v, present, { patientId: procedures.patientId, lotId: procedures.lotId }),
    present.performedFrom !== undefined ? gte(procedures.performedAt, v.performedFrom!) : undefined,
    present.performedBefore !== undefined ? lt(procedures.performedAt, v.performedBefore!) : undefined,
  ];
}

/** The search for AuditLog.searchStatement: `present` says which conditions it has. */
export function selectProcedures(exec: Executor, v: ProcedureSearchValues, present: ProcedureSearchValues) {
  return exec
    .select()
    .from(procedures)
    .where(and(...procedureWhere(v, present), present.after !== undefined ? gt(procedures.id, v.after!) : undefined))
    .orderBy(asc(procedures.id))
    .limit(v.limit);
}

export async function countProcedures(exec: Executor, clinicId: string, f: ProcedureFilters): Promise<number> {
  const v = procedureSearchValues(clinicId, f);
  const [row] = await exec.select({ n: sql<number>`count(*)::int` }).from(procedures).where(and(...procedureWhere(v, v)));
  return row?.n ?? 0;
}

/** What a procedure can be searched by (shared/search.ts criteria), and how each is written in SQL. */
export type ProcedureField = 'id' | 'patientId' | 'performedAt' | 'status' | 'updatedAt';
export type ProcedureSort = 'performedAt' | 'updatedAt';

/** The clinic's procedures as search criteria see them (db/search.ts). */
export const procedureSearch = searchable<ProcedureField, ProcedureSort>({
  table: procedures,
  id: procedures.id,
  clinic: procedures.clinicId,
  fields: {
    id: { type: 'value', column: procedures.id },
    patientId: { type: 'value', column: procedures.patientId },
    performedAt: { type: 'instant', column: procedures.performedAt },
    status: { type: 'value', column: procedures.status },
    updatedAt: { type: 'instant', column: procedures.updatedAt },
  },
  sortColumns: { performedAt: procedures.performedAt, updatedAt: procedures.updatedAt },
});

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
