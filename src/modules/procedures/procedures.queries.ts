import { and, asc, eq, getTableColumns, gt, gte, inArray, lt, sql, type SQL } from 'drizzle-orm';
import type { Executor, Tx } from '../../db/client.js';
import type { PageRequest } from '../../shared/paging.js';
import { fromRaw } from '../../db/raw.js';
import { builder, columnKeys, gather, part, presentEqualities, rewritten, setKeys, shapedPart, statement, type Part } from '../../db/statement.js';
import { onceStatement } from '../../db/unit-of-work.js';
import type { ProcedureFilters } from './procedures.schemas.js';
import { procedures } from './procedures.table.js';
import { searchable } from '../../db/search.js';
import { vials } from '../vials/vials.table.js';

export type ProcedureRow = typeof procedures.$inferSelect;

/** A vial a procedure used, as its answer lists it. */
export interface UsedVial {
  id: string;
  barcode: string;
}

/** The vials the procedure uses now, as a json array `[{ id, barcode }]` in sequence order (a column of its reads). */
const usedVials = sql<UsedVial[]>`(select coalesce(json_agg(json_build_object('id', v.id, 'barcode', v.barcode) order by v.sequence), '[]'::json)
  from ${vials} v where v.procedure_id = ${sql.identifier('procedures')}.${sql.identifier('id')})`.as('vials');

/** A procedure row with the vials it uses. */
const withVials = { ...getTableColumns(procedures), vials: usedVials };

/** The vials of a raw procedure row read with them. */
export const vialsFromRaw = (r: Record<string, unknown>): UsedVial[] | undefined => r.vials as UsedVial[] | undefined;

export function insertProcedure(exec: Executor, row: ProcedureRow) {
  return exec.insert(procedures).values(row);
}

/** One procedure of the clinic, as a named query (an outcome's gate and the history reads use it). */
export const byId = part<{ clinicId: string; id: string }>({ clinicId: true, id: true }, (p) =>
  builder
    .select()
    .from(procedures)
    .where(and(eq(procedures.id, p.id), eq(procedures.clinicId, p.clinicId)))
    .limit(1),
);

/** One procedure of the clinic with the vials it uses (`vials` column), as a read answers it. */
export const withVialsById = part<{ clinicId: string; id: string }>({ clinicId: true, id: true }, (p) =>
  builder
    .select(withVials)
    .from(procedures)
    .where(and(eq(procedures.id, p.id), eq(procedures.clinicId, p.clinicId)))
    .limit(1),
);

/** What a read's audit entry records of the procedure read: the patient. */
export const readDetails = { patientId: 'patient_id' };

export const procedureFromRaw = (r: Record<string, unknown>): ProcedureRow => fromRaw(procedures, r);

/** A guard part: holds while the clinic's procedure stands (not entered in error). */
export const completed = part<{ clinicId: string; id: string }>(
  { clinicId: true, id: true },
  (p) => sql<boolean>`exists (select 1 from ${procedures} where ${procedures.id} = ${p.id} and ${procedures.clinicId} = ${p.clinicId} and ${procedures.status} = 'completed')`,
);

const findProcedureStatement = statement(byId);

/** The values of the other modules' parts a procedure's statements compose. */
export interface PatientAt {
  clinicId: string;
  patientId: string;
  at: Date;
}
export interface LotAt {
  lotId: string;
  at: Date;
}

/**
 * What a procedure is judged on, in one statement: the clinic's patient with whether consent was in force,
 * and the lot with its status, at performedAt. Values `{ patient, lot }`; each column a json row or null.
 */
export function gateStatement(parts: { patient: Part<PatientAt>; lot: Part<LotAt> }) {
  return statement(gather({ patient: { one: parts.patient }, lot: { one: parts.lot } }));
}

const insertPart = part<{ row: ProcedureRow }>({ row: columnKeys(procedures) }, (p) => builder.insert(procedures).values(p.row));

/** The prepared answer (json) with the vials the statement's `used_vials` write claimed. */
const withClaimedVials = (prepared: unknown) =>
  sql`(${prepared}::jsonb || jsonb_build_object('vials', (select coalesce(jsonb_agg(jsonb_build_object('id', c.id, 'barcode', c.barcode) order by c.sequence), '[]'::jsonb) from ${sql.identifier('used_vials')} c)))`;

/**
 * A new procedure in one statement (UnitOfWork.once): the vials it uses claimed (`used_vials`: a part returning
 * `{ id, barcode, sequence }` per vial, none when it could not take them all), the procedure, its first
 * version, its audit entry and its event; then, in this order, the guards: the lot still released at performedAt
 * (share-locking the lot row before any vial, as a recall locks them), the vials were claimed, consent still
 * in force. The version and the answer are the prepared procedure with the claimed vials.
 */
export function createStatement<S, Ve extends { body: object }, A, E>(parts: {
  administered: Part<S>;
  version: Part<Ve>;
  audit: Part<A>;
  event: Part<E>;
  lotReleased: Part<LotAt>;
  consent: Part<PatientAt>;
}) {
  return onceStatement(
    { used_vials: parts.administered, procedure: insertPart, version: rewritten(parts.version, 'body', withClaimedVials), audit: parts.audit, event: parts.event },
    { 'lot-released': parts.lotReleased, vials: { returned: 'used_vials' }, consent: parts.consent },
    { result: withClaimedVials },
  );
}

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

/** The conditions of a search: one per value `present` names. */
function procedureWhere(p: ProcedureSearchValues, present: ReadonlySet<string>): (SQL | undefined)[] {
  return [
    eq(procedures.clinicId, p.clinicId),
    ...presentEqualities(p, present, { patientId: procedures.patientId, lotId: procedures.lotId }),
    present.has('performedFrom') ? gte(procedures.performedAt, p.performedFrom!) : undefined,
    present.has('performedBefore') ? lt(procedures.performedAt, p.performedBefore!) : undefined,
  ];
}

/** The clinic's procedures by filters, in id order, as a named query (AuditLog.searchStatement audits it). */
export const search = shapedPart<ProcedureSearchValues>(
  { clinicId: true, patientId: true, lotId: true, performedFrom: true, performedBefore: true, after: true, limit: true },
  (p, present) =>
    builder
      .select(withVials)
      .from(procedures)
      .where(and(...procedureWhere(p, present), present.has('after') ? gt(procedures.id, p.after!) : undefined))
      .orderBy(asc(procedures.id))
      .limit(p.limit),
);

export async function countProcedures(exec: Executor, clinicId: string, f: ProcedureFilters): Promise<number> {
  const v = procedureSearchValues(clinicId, f);
  const [row] = await exec.select({ n: sql<number>`count(*)::int` }).from(procedures).where(and(...procedureWhere(v, setKeys(v))));
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
