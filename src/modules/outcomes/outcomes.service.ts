import type { Db, Executor } from '../../db/client.js';
import type { IdempotencyRequest, UnitOfWork } from '../../db/unit-of-work.js';
import type { Actor } from '../../auth/principal.js';
import type { PageRequest } from '../../shared/paging.js';
import { toPage } from '../../shared/paging.js';
import type { Clock } from '../../shared/clock.js';
import { NotFound, RuleViolation } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import { clinicOf } from '../../auth/principal.js';
import type { Condition, SearchQuery, SearchResult } from '../../shared/search.js';
import { effectiveTime } from '../../shared/time.js';
import type { AuditLog } from '../audit/audit.service.js';
import type { EventLog } from '../events/events.service.js';
import type { PatientsService } from '../patients/patients.service.js';
import type { ProceduresService } from '../procedures/procedures.service.js';
import { INSTRUMENTS, changeFromBaseline, daysAfter, inWindow, isResponder, type InstrumentCode, type Timepoint } from './instruments.js';
import * as q from './outcomes.queries.js';
import type { OutcomeDto, OutcomeScore } from './outcomes.schemas.js';

export const OUTCOME = 'outcome';

/** A score as stored (no derived fields): what FHIR maps to an Observation (the read and the bulk export). */
export function toOutcomeScore(r: q.OutcomeRow): OutcomeScore {
  return {
    id: r.id,
    procedureId: r.procedureId,
    patientId: r.patientId,
    instrument: r.instrument as InstrumentCode,
    score: r.score,
    assessedAt: r.assessedAt.toISOString(),
    timepoint: r.timepoint as Timepoint,
    recordedAt: r.recordedAt.toISOString(),
    recordedBy: r.recordedBy,
  };
}

export interface OutcomesDeps {
  db: Db;
  uow: UnitOfWork;
  audit: AuditLog;
  /** A score recorded tells `outcome.created` (codes only, never the score), in its statement. */
  events: EventLog;
  clock: Clock;
  patients: Pick<PatientsService, 'visiblePatient'>;
  procedures: Pick<ProceduresService, 'visible' | 'performedAtOf' | 'completed' | 'byId' | 'fromRaw'>;
}

export type OutcomesService = ReturnType<typeof createOutcomesService>;

export function createOutcomesService({ db, uow, audit, events, clock, patients, procedures }: OutcomesDeps) {
  const readOutcome = audit.readStatement({ resourceType: OUTCOME, details: q.readDetails }, q.byId);
  /** What a new score is judged on, in one statement: the clinic's procedure and its latest baselines. */
  const gateStatement = q.gateStatement(procedures.byId);
  /** A new score, its audit entry and its event, while its procedure stands. */
  const createStatement = q.createStatement({ audit: audit.entry, event: events.part, procedureCompleted: procedures.completed });

  /** Adds the derived fields: days after the procedure, window, change from baseline, responder. */
  async function derive(exec: Executor, clinicId: string, rows: q.OutcomeRow[]): Promise<OutcomeDto[]> {
    const procedureIds = [...new Set(rows.map((r) => r.procedureId))];
    const [performed, baselines] = await Promise.all([procedures.performedAtOf(exec, clinicId, procedureIds), q.baselinesOf(exec, procedureIds)]);
    return rows.map((r) => toDto(r, performed.get(r.procedureId)!, baselines));
  }

  const toScore = toOutcomeScore;

  function toDto(r: q.OutcomeRow, performedAt: Date, baselines: Map<string, number>): OutcomeDto {
    const instrument = r.instrument as InstrumentCode;
    const timepoint = r.timepoint as Timepoint;
    const days = daysAfter(performedAt, r.assessedAt);
    const baseline = timepoint === 'baseline' ? null : (baselines.get(`${r.procedureId}|${r.instrument}`) ?? null);
    return {
      id: r.id,
      procedureId: r.procedureId,
      patientId: r.patientId,
      instrument,
      score: r.score,
      assessedAt: r.assessedAt.toISOString(),
      timepoint,
      daysAfterProcedure: days,
      inWindow: inWindow(timepoint, days),
      changeFromBaseline: timepoint === 'baseline' ? 0 : changeFromBaseline(r.score, baseline),
      responder: isResponder(instrument, r.score, baseline),
      recordedAt: r.recordedAt.toISOString(),
      recordedBy: r.recordedBy,
    };
  }

  return {
    async create(
      actor: Actor,
      input: { procedureId: string; instrument: InstrumentCode; score: number; assessedAt: string; timepoint: Timepoint },
      idem?: IdempotencyRequest,
    ): Promise<OutcomeDto> {
      const clinicId = clinicOf(actor);
      const assessedAt = effectiveTime(clock, input.assessedAt, 'assessedAt');
      const range = INSTRUMENTS[input.instrument];
      if (input.score < range.min || input.score > range.max) {
        throw new RuleViolation('score-out-of-range', `A ${input.instrument} score lies within ${range.min}..${range.max}; ${input.score} does not.`, [
          { path: 'body.score', message: `outside ${range.min}..${range.max}` },
        ]);
      }
      return uow.once(async () => {
        const [gate] = await gateStatement.run(db, { procedure: { clinicId, id: input.procedureId }, baselines: { procedureId: input.procedureId } });
        const procedure = gate?.procedure ? procedures.fromRaw(gate.procedure as Record<string, unknown>) : undefined;
        const baselines = input.timepoint === 'baseline' ? new Map<string, number>() : q.baselineMap(gate?.baselines as Record<string, unknown>[]);
        if (!procedure) {
          throw new RuleViolation('unknown-procedure', 'No procedure with that id in your clinic.', [{ path: 'body.procedureId', message: 'not a procedure of this clinic' }]);
        }
        if (procedure.status === 'entered-in-error') {
          throw new RuleViolation('procedure-entered-in-error', 'The procedure was entered in error; outcomes cannot be recorded against it.');
        }
        const row: q.OutcomeRow = {
          id: newId(),
          clinicId,
          procedureId: procedure.id,
          patientId: procedure.patientId,
          instrument: input.instrument,
          score: input.score,
          assessedAt,
          timepoint: input.timepoint,
          recordedAt: clock.now(),
          recordedBy: actor.sub,
        };
        return {
          statement: createStatement,
          values: {
            outcome: { row },
            audit: {
              actor,
              entry: { action: 'create' as const, resourceType: OUTCOME, resourceId: row.id, clinicId, details: { procedureId: row.procedureId, patientId: row.patientId, instrument: row.instrument } },
            },
            event: events.values({
              type: 'outcome.created',
              clinicId,
              subject: { type: 'Outcome', id: row.id },
              lotIds: [procedure.lotId],
              data: { outcomeId: row.id, patientId: row.patientId, procedureId: row.procedureId, instrument: row.instrument, timepoint: row.timepoint },
            }),
            'procedure-completed': { clinicId, id: row.procedureId },
          },
          result: toDto(row, procedure.performedAt, baselines),
        };
      }, idem);
    },

    /** One score of the caller's clinic with its derived fields (404 if not theirs); audited as a read. */
    async get(actor: Actor, id: string): Promise<OutcomeDto> {
      const clinicId = clinicOf(actor);
      const [raw] = await readOutcome(db, actor, { clinicId, id });
      if (!raw) throw new NotFound('outcome');
      const [dto] = await derive(db, clinicId, [q.outcomeFromRaw(raw)]);
      return dto!;
    },

    async forProcedure(actor: Actor, procedureId: string, page: PageRequest) {
      const procedure = await procedures.visible(actor, procedureId);
      const rows = await q.listByProcedure(db, procedure.clinicId, procedureId, page);
      const result = toPage(await derive(db, procedure.clinicId, rows), page.limit);
      await audit.record(db, actor, { action: 'search', resourceType: OUTCOME, clinicId: procedure.clinicId, details: { procedureId, patientId: procedure.patientId, count: result.items.length } });
      return result;
    },

    /**
     * One page of the caller's clinic's outcome scores matching `search` (shared/search.ts criteria), as recorded
     * (no derived fields: one statement), audited as one search entry naming the criteria (names, never values)
     * and the ids returned.
     */
    async find(actor: Actor, search: SearchQuery<q.OutcomeField, q.OutcomeSort>, filters: string[]): Promise<SearchResult<OutcomeScore>> {
      const clinicId = clinicOf(actor);
      return audit.page(db, actor, { resourceType: OUTCOME, clinicId, filters }, q.outcomeSearch, search, (r) => toScore(q.outcomeFromRaw(r)));
    },

    /** How many of the caller's clinic's outcome scores match `where` (a FHIR Bundle's total). */
    countMatching(actor: Actor, where: Condition<q.OutcomeField>[]) {
      return q.outcomeSearch.count(db, where, clinicOf(actor));
    },

    async countForPatient(actor: Actor, patientId: string) {
      const patient = await patients.visiblePatient(actor, patientId);
      return q.countByPatient(db, patient.clinicId, patientId);
    },

    async forPatient(actor: Actor, patientId: string, page: PageRequest) {
      const patient = await patients.visiblePatient(actor, patientId);
      const rows = await q.listByPatient(db, patient.clinicId, patientId, page);
      const result = toPage(await derive(db, patient.clinicId, rows), page.limit);
      await audit.record(db, actor, { action: 'search', resourceType: OUTCOME, clinicId: patient.clinicId, details: { patientId, count: result.items.length } });
      return result;
    },
  };
}
