import { and, asc, desc, eq, gt, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { builder, compiled } from '../../db/compiled.js';
import type { PageRequest } from '../../shared/paging.js';
import { outcomes } from './outcomes.table.js';
import { fromRaw } from '../../db/raw.js';
import { searchable } from '../../db/search.js';

export type OutcomeRow = typeof outcomes.$inferSelect;

/** Deferred to the unit of work's single write at commit (the row is built in full by the service). */
export function insertOutcome(exec: Executor, row: OutcomeRow) {
  return exec.insert(outcomes).values(row);
}

/** One score of the clinic (undefined if not theirs). */
export async function findOutcome(exec: Executor, clinicId: string, id: string): Promise<OutcomeRow | undefined> {
  const [row] = await exec
    .select()
    .from(outcomes)
    .where(and(eq(outcomes.clinicId, clinicId), eq(outcomes.id, id)))
    .limit(1);
  return row;
}

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

const baselinesStatement = compiled<{ procedureIds: string[] }>((v) => selectBaselines(builder, v.procedureIds));

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
