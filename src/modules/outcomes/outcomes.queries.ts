import { and, asc, desc, eq, gt, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { builder, columnKeys, gather, part, statement, type Part } from '../../db/statement.js';
import { onceStatement } from '../../db/unit-of-work.js';
import type { PageRequest } from '../../shared/paging.js';
import { outcomes } from './outcomes.table.js';
import { fromRaw } from '../../db/raw.js';
import { searchable } from '../../db/search.js';

export type OutcomeRow = typeof outcomes.$inferSelect;

/** One score of the clinic, as a named query (AuditLog.readStatement audits it). */
export const byId = part<{ clinicId: string; id: string }>({ clinicId: true, id: true }, (p) =>
  builder
    .select()
    .from(outcomes)
    .where(and(eq(outcomes.clinicId, p.clinicId), eq(outcomes.id, p.id)))
    .limit(1),
);

/** What a read's audit entry records of the score read: the patient. */
export const readDetails = { patientId: 'patient_id' };

export async function listByProcedure(exec: Executor, clinicId: string, procedureId: string, page: PageRequest): Promise<OutcomeRow[]> {
  return exec
    .select()
    .from(outcomes)
    .where(and(eq(outcomes.clinicId, clinicId), eq(outcomes.procedureId, procedureId), page.after ? gt(outcomes.id, page.after) : undefined))
    .orderBy(asc(outcomes.id))
    .limit(page.limit + 1);
}

export async function listByPatient(exec: Executor, clinicId: string, patientId: string, page: PageRequest): Promise<OutcomeRow[]> {
  return exec
    .select()
    .from(outcomes)
    .where(and(eq(outcomes.clinicId, clinicId), eq(outcomes.patientId, patientId), page.after ? gt(outcomes.id, page.after) : undefined))
    .orderBy(asc(outcomes.id))
    .limit(page.limit + 1);
}

/** Baseline scores of these procedures: the latest baseline assessment per procedure and instrument. */
/** The latest baseline of each procedure and instrument; `procedureIds` is a uuid[] (one parameter, one statement shape). */
export function selectBaselines(exec: Executor, procedureIds: unknown) {
  return exec
    .selectDistinctOn([outcomes.procedureId, outcomes.instrument], { procedureId: outcomes.procedureId, instrument: outcomes.instrument, score: outcomes.score })
    .from(outcomes)
    .where(and(sql`${outcomes.procedureId} = any(${procedureIds}::uuid[])`, eq(outcomes.timepoint, 'baseline')))
    .orderBy(outcomes.procedureId, outcomes.instrument, desc(outcomes.assessedAt), desc(outcomes.id));
}

const baselinesPart = part<{ procedureIds: string[] }>({ procedureIds: true }, (p) => selectBaselines(builder, p.procedureIds));
const baselinesStatement = statement(baselinesPart);

/**
 * The baselines of one procedure: `array[$1]`, not an array parameter, so that the plan PostgreSQL keeps
 * for the named statement knows it looks up one procedure (a generic plan over `any($1::uuid[])` does not,
 * and cost outcomes about a fifth of their rate in npm run bench).
 */
const baselinesOfOnePart = part<{ procedureId: string }>({ procedureId: true }, (p) => selectBaselines(builder, sql`array[${p.procedureId}]`));

/**
 * What a new score is judged on, in one statement: the clinic's procedure (the procedures module's named
 * part) and its latest baselines. Values `{ procedure: { clinicId, id }, baselines: { procedureId } }`.
 */
export function gateStatement(procedure: Part<{ clinicId: string; id: string }>) {
  return statement(gather({ procedure: { one: procedure }, baselines: { many: baselinesOfOnePart } }));
}

const insertPart = part<{ row: OutcomeRow }>({ row: columnKeys(outcomes) }, (p) => builder.insert(outcomes).values(p.row));

/**
 * A new score, its audit entry and its event in one statement (UnitOfWork.once), while its procedure stands:
 * marked entered-in-error since it was read, the guard `procedure-completed` fails and the change is prepared again.
 */
export function createStatement<A, E>(parts: { audit: Part<A>; event: Part<E>; procedureCompleted: Part<{ clinicId: string; id: string }> }) {
  return onceStatement({ outcome: insertPart, audit: parts.audit, event: parts.event }, { 'procedure-completed': parts.procedureCompleted });
}

/** Rows of selectBaselines (raw or from json_agg) keyed `procedureId|instrument`. */
export const baselineMap = (rows: Record<string, unknown>[]) =>
  new Map(rows.map((r) => [`${r.procedure_id as string}|${r.instrument as string}`, Number(r.score)] as const));

/** The latest baseline score of each procedure and instrument, keyed `procedureId|instrument`. */
export async function baselinesOf(exec: Executor, procedureIds: string[]): Promise<Map<string, number>> {
  if (procedureIds.length === 0) return new Map();
  return baselineMap(await baselinesStatement.run(exec, { procedureIds }));
}

/** What an outcome score can be searched by (shared/search.ts criteria), and how each is written in SQL. */
export type OutcomeField = 'id' | 'patientId' | 'instrument' | 'assessedAt' | 'recordedAt';
export type OutcomeSort = 'assessedAt' | 'recordedAt';

/** The clinic's outcome scores as search criteria see them (db/search.ts). */
export const outcomeSearch = searchable<OutcomeField, OutcomeSort>({
  table: outcomes,
  id: outcomes.id,
  clinic: outcomes.clinicId,
  fields: {
    id: { type: 'value', column: outcomes.id },
    patientId: { type: 'value', column: outcomes.patientId },
    instrument: { type: 'value', column: outcomes.instrument },
    assessedAt: { type: 'instant', column: outcomes.assessedAt },
    recordedAt: { type: 'instant', column: outcomes.recordedAt },
  },
  sortColumns: { assessedAt: outcomes.assessedAt, recordedAt: outcomes.recordedAt },
});

/** An outcomes row as PostgreSQL returns it from raw SQL. */
export const outcomeFromRaw = (r: Record<string, unknown>): OutcomeRow => fromRaw(outcomes, r);

export async function countByPatient(exec: Executor, clinicId: string, patientId: string): Promise<number> {
  const [row] = await exec
    .select({ n: sql<number>`count(*)::int` })
    .from(outcomes)
    .where(and(eq(outcomes.clinicId, clinicId), eq(outcomes.patientId, patientId)));
  return row?.n ?? 0;
}
