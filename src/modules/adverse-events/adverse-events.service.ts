import type { z } from 'zod';
import type { Db, Executor, Tx } from '../../db/client.js';
import type { IdempotencyRequest, UnitOfWork } from '../../db/unit-of-work.js';
import type { Actor } from '../../auth/principal.js';
import type { PageRequest } from '../../shared/paging.js';
import { toPage } from '../../shared/paging.js';
import type { Clock } from '../../shared/clock.js';
import { BadRequest, Conflict, NotFound, PreconditionFailed, RuleViolation } from '../../shared/errors.js';
import { sameJson } from '../../shared/canonical-json.js';
import { newId } from '../../shared/ids.js';
import { clinicOf } from '../../auth/principal.js';
import type { Condition, SearchQuery, SearchResult } from '../../shared/search.js';
import { effectiveTime } from '../../shared/time.js';
import type { AuditLog } from '../audit/audit.service.js';
import type { EventLog, NewEvent } from '../events/events.service.js';
import { historyReads, type History, type VersionPage } from '../history/history.service.js';
import type { ProceduresService } from '../procedures/procedures.service.js';
import * as q from './adverse-events.queries.js';
import type { AdverseEventCreate, AdverseEventDto, AdverseEventPatch, AdverseEventReported } from './adverse-events.schemas.js';
import { checkAdverseEvent, checkTermAndTimes, expectednessOf, isReportOverdue, reportDueAt } from './rules.js';
import type { Expectedness } from './vocabulary.js';

export const ADVERSE_EVENT = 'adverse-event';

/** The API's adverse event; `now` judges `reportOverdue` (a missing report past its due time). */
export function toAdverseEventDto(a: q.AdverseEventRow, now: Date): AdverseEventDto {
  return {
    id: a.id,
    clinicId: a.clinicId,
    procedureId: a.procedureId,
    patientId: a.patientId,
    lotId: a.lotId,
    onsetAt: a.onsetAt.toISOString(),
    description: a.description,
    severityGrade: a.severityGrade,
    serious: a.serious,
    seriousnessCriteria: a.seriousnessCriteria as AdverseEventDto['seriousnessCriteria'],
    relatedness: a.relatedness as AdverseEventDto['relatedness'],
    outcome: a.outcome as AdverseEventDto['outcome'],
    term: a.term as AdverseEventDto['term'],
    expectedness: a.expectedness as Expectedness,
    awareAt: a.awareAt.toISOString(),
    reportDueAt: a.reportDueAt?.toISOString() ?? null,
    reportedAt: a.reportedAt?.toISOString() ?? null,
    reportReference: a.reportReference,
    reportOverdue: isReportOverdue(a, now),
    version: a.version,
    createdAt: a.createdAt.toISOString(),
    updatedAt: a.updatedAt.toISOString(),
  };
}

/** An adverse event's event: codes only (grade, seriousness, relatedness), never the description text. */
function adverseEventEvent(type: 'adverse-event.created' | 'adverse-event.updated', a: q.AdverseEventRow): NewEvent {
  return {
    type,
    clinicId: a.clinicId,
    subject: { type: 'AdverseEvent', id: a.id },
    lotIds: [a.lotId],
    data: {
      adverseEventId: a.id,
      patientId: a.patientId,
      procedureId: a.procedureId,
      grade: a.severityGrade,
      serious: a.serious,
      relatedness: a.relatedness,
      term: a.term,
      expectedness: a.expectedness,
      reportDueAt: a.reportDueAt?.toISOString() ?? null,
      reportedAt: a.reportedAt?.toISOString() ?? null,
      version: a.version,
    },
  };
}

export interface AdverseEventsDeps {
  db: Db;
  uow: UnitOfWork;
  audit: AuditLog;
  /** Recording one tells `adverse-event.created`, a change to it `adverse-event.updated`, in its transaction. */
  events: EventLog;
  history: History;
  clock: Clock;
  procedures: Pick<ProceduresService, 'findInClinic'>;
  /** The lot's product's expected reactions, which expectedness is judged against (in the caller's transaction). */
  /** The lot's product's expected reactions as `exec` sees them (modules/products; [] without a list, undefined for no lot). */
  products: { expectedForLot(exec: Executor, lotId: string): Promise<string[] | undefined> };
}

export type AdverseEventsService = ReturnType<typeof createAdverseEventsService>;

export function createAdverseEventsService({ db, uow, audit, events, history, clock, procedures, products }: AdverseEventsDeps) {
  const dto = (row: q.AdverseEventRow) => toAdverseEventDto(row, clock.now());
  const fromRaw = (raw: Record<string, unknown>) => dto(q.adverseEventFromRaw(raw));
  const expectedTerms = async (tx: Tx, lotId: string) => (await products.expectedForLot(tx, lotId)) ?? [];

  /** A new version of the event: history, audit entry and `adverse-event.updated`, in the caller's transaction. */
  async function recordUpdate(tx: Tx, actor: Actor, row: q.AdverseEventRow, details: Record<string, unknown>): Promise<AdverseEventDto> {
    const out = dto(row);
    await history.record(tx, { resourceType: ADVERSE_EVENT, resourceId: row.id, version: row.version, clinicId: row.clinicId, body: out, by: actor.sub });
    await audit.record(tx, actor, { action: 'update', resourceType: ADVERSE_EVENT, resourceId: row.id, clinicId: row.clinicId, details: { ...details, version: row.version, patientId: row.patientId } });
    await events.emit(tx, adverseEventEvent('adverse-event.updated', row));
    return out;
  }

  async function lockAtVersion(tx: Tx, clinicId: string, id: string, expectedVersion: number | undefined) {
    const current = await q.lockAdverseEvent(tx, clinicId, id);
    if (!current) throw new NotFound('adverse event');
    if (expectedVersion !== undefined && current.version !== expectedVersion) {
      throw new PreconditionFailed(`The adverse event is at version ${current.version}, not ${expectedVersion}; read it again and reapply your change.`);
    }
    return current;
  }

  const readAdverseEvent = audit.readStatement({ resourceType: ADVERSE_EVENT, details: q.readDetails }, q.byId);
  const searchAdverseEvents = audit.searchStatement(ADVERSE_EVENT, q.search, '_ord');
  const versionReads = historyReads(db, audit, { resourceType: ADVERSE_EVENT, noun: 'adverse event', record: q.byId, details: q.readDetails });

  return {
    async create(actor: Actor, input: z.output<typeof AdverseEventCreate>, idem?: IdempotencyRequest): Promise<AdverseEventDto> {
      const clinicId = clinicOf(actor);
      const onsetAt = effectiveTime(clock, input.onsetAt, 'onsetAt');
      // Awareness defaults to when the event is recorded, but never before its onset (an onset within the clock skew).
      const awareAt = input.awareAt === undefined ? new Date(Math.max(clock.now().getTime(), onsetAt.getTime())) : effectiveTime(clock, input.awareAt, 'awareAt');
      return uow.run(async (tx) => {
        const procedure = await procedures.findInClinic(tx, clinicId, input.procedureId);
        if (!procedure) {
          throw new RuleViolation('unknown-procedure', 'No procedure with that id in your clinic.', [{ path: 'body.procedureId', message: 'not a procedure of this clinic' }]);
        }
        const { procedureId: _p, onsetAt: _o, awareAt: _a, term: _t, ...rest } = input;
        const term = input.term ?? null;
        checkAdverseEvent({ ...rest, onsetAt }, procedure.performedAt);
        checkTermAndTimes({ term, description: rest.description, onsetAt, awareAt, reportedAt: null });
        // Judged against the list in force now, in this transaction (a later change of the list does not re-judge it).
        const expectedness = expectednessOf(term, await expectedTerms(tx, procedure.lotId));
        const now = clock.now();
        const row = await q.insertAdverseEvent(tx, {
          id: newId(),
          clinicId,
          procedureId: procedure.id,
          patientId: procedure.patientId,
          lotId: procedure.lotId,
          ...rest,
          onsetAt,
          term,
          expectedness,
          awareAt,
          reportDueAt: reportDueAt({ ...rest, expectedness, awareAt }),
          createdAt: now,
          updatedAt: now,
          createdBy: actor.sub,
          updatedBy: actor.sub,
        });
        const created = dto(row);
        await history.record(tx, { resourceType: ADVERSE_EVENT, resourceId: row.id, version: 1, clinicId, body: created, by: actor.sub });
        await audit.record(tx, actor, {
          action: 'create',
          resourceType: ADVERSE_EVENT,
          resourceId: row.id,
          clinicId,
          details: {
            procedureId: row.procedureId,
            patientId: row.patientId,
            lotId: row.lotId,
            serious: row.serious,
            severityGrade: row.severityGrade,
            term: row.term,
            expectedness: row.expectedness,
            reportDueAt: row.reportDueAt?.toISOString() ?? null,
          },
        });
        await events.emit(tx, adverseEventEvent('adverse-event.created', row));
        return created;
      }, idem);
    },

    async get(actor: Actor, id: string): Promise<AdverseEventDto> {
      const [raw] = await readAdverseEvent(db, actor, { clinicId: clinicOf(actor), id });
      if (!raw) throw new NotFound('adverse event');
      return fromRaw(raw);
    },

    /**
     * A page of the clinic's adverse events by filters, in id order; with `reportDueBefore` (an instant), only those
     * with a reporting clock, not yet reported, due before it, in due-time order (then id). The page key is the id,
     * or `<due ISO>~<id>` in due-time order (AdverseEventsService.positionOf parses it back).
     */
    async list(
      actor: Actor,
      filters: { procedureId?: string; lotId?: string; patientId?: string; serious?: 'true' | 'false'; reportDueBefore?: string },
      page: PageRequest<q.AdverseEventPosition>,
    ) {
      const clinicId = clinicOf(actor);
      const serious = filters.serious === undefined ? undefined : filters.serious === 'true';
      const named = Object.keys(filters).filter((k) => filters[k as keyof typeof filters] !== undefined);
      const reportDueBefore = filters.reportDueBefore === undefined ? undefined : new Date(filters.reportDueBefore).toISOString();
      if (reportDueBefore !== undefined && page.after !== undefined && page.after.due === undefined) {
        throw new BadRequest('The cursor is not one this API gave out for this listing.', [{ path: 'query.cursor', message: 'invalid cursor' }]);
      }
      const values = q.adverseEventSearchValues(clinicId, { procedureId: filters.procedureId, lotId: filters.lotId, patientId: filters.patientId, serious, reportDueBefore }, page);
      const rows = await searchAdverseEvents(db, actor, { clinicId, filters: named, limit: page.limit }, values);
      const keyOf = reportDueBefore === undefined ? undefined : (a: AdverseEventDto) => `${a.reportDueAt}~${a.id}`;
      return toPage(rows.map(fromRaw), page.limit, keyOf);
    },

    /**
     * One page of the caller's clinic's adverse events matching `search` (shared/search.ts criteria), audited as
     * one search entry naming the criteria (`filters`: names, never values) and the ids returned, in the same statement.
     */
    async find(actor: Actor, search: SearchQuery<q.AdverseEventField, q.AdverseEventSort>, filters: string[]): Promise<SearchResult<AdverseEventDto>> {
      const clinicId = clinicOf(actor);
      return audit.page(db, actor, { resourceType: ADVERSE_EVENT, clinicId, filters }, q.adverseEventSearch, search, fromRaw);
    },

    /** How many of the caller's clinic's adverse events match `where` (a FHIR Bundle's total). */
    countMatching(actor: Actor, where: Condition<q.AdverseEventField>[]) {
      return q.adverseEventSearch.count(db, where, clinicOf(actor));
    },

    count(actor: Actor, filters: { patientId?: string }) {
      return q.countAdverseEvents(db, clinicOf(actor), filters);
    },

    /**
     * A follow-up (JSON merge patch): only what differs is a change, one new version. A new `term` re-judges
     * expectedness against the product's list in force now; the reporting clock is re-evaluated from the merged
     * event (a follow-up that makes an event serious starts it from `awareAt`). 412 on a stale If-Match; 422 for
     * a rule (rules.ts), `aware-before-onset` / `aware-after-report` included.
     */
    async update(actor: Actor, id: string, expectedVersion: number, patch: z.output<typeof AdverseEventPatch>): Promise<AdverseEventDto> {
      const clinicId = clinicOf(actor);
      const onsetAt = patch.onsetAt === undefined ? undefined : effectiveTime(clock, patch.onsetAt, 'onsetAt');
      const awareAt = patch.awareAt === undefined ? undefined : effectiveTime(clock, patch.awareAt, 'awareAt');
      return uow.run(async (tx) => {
        const current = await lockAtVersion(tx, clinicId, id, expectedVersion);
        const { onsetAt: _o, awareAt: _a, ...rest } = patch;
        // Only what differs from the stored record is a change (an instant compared as an instant).
        const sent = Object.fromEntries(
          Object.entries({ ...rest, ...(onsetAt ? { onsetAt } : {}), ...(awareAt ? { awareAt } : {}) }).filter(
            ([k, v]) => v !== undefined && !sameJson(v, current[k as keyof typeof current]),
          ),
        ) as Partial<q.AdverseEventRow>;
        if (Object.keys(sent).length === 0) {
          await audit.record(tx, actor, { action: 'update', resourceType: ADVERSE_EVENT, resourceId: id, clinicId, details: { changedFields: [], version: current.version, patientId: current.patientId } });
          return dto(current);
        }
        const merged = { ...current, ...sent };
        const procedure = await procedures.findInClinic(tx, clinicId, current.procedureId);
        checkAdverseEvent(merged, procedure!.performedAt);
        checkTermAndTimes(merged);
        const expectedness: Expectedness = 'term' in sent ? expectednessOf(merged.term, await expectedTerms(tx, current.lotId)) : (current.expectedness as Expectedness);
        const derived = { expectedness, reportDueAt: reportDueAt({ ...merged, expectedness }) };
        const changes = { ...sent, ...Object.fromEntries(Object.entries(derived).filter(([k, v]) => !sameJson(v, current[k as keyof typeof current]))) };
        const row = await q.updateAdverseEvent(tx, id, { ...changes, updatedAt: clock.now(), updatedBy: actor.sub });
        return recordUpdate(tx, actor, row, { changedFields: Object.keys(changes) });
      });
    },

    /**
     * Records the IND safety report's submission (21 CFR 312.32(c)): `reportedAt` (not in the future, not before
     * awareAt) and `reportReference`, as a new version with its audit entry and `adverse-event.updated`. 422
     * `no-report-due` when the event has no reporting clock; 409 `already-reported` when a report is recorded and no
     * If-Match is given; with If-Match naming the current version, a recorded report is corrected (a new version:
     * the earlier one stays in the history). 412 on a stale If-Match.
     */
    async reported(actor: Actor, id: string, input: z.output<typeof AdverseEventReported>, expectedVersion: number | undefined): Promise<AdverseEventDto> {
      const clinicId = clinicOf(actor);
      const reportedAt = effectiveTime(clock, input.reportedAt, 'reportedAt');
      return uow.run(async (tx) => {
        const current = await lockAtVersion(tx, clinicId, id, expectedVersion);
        if (current.reportDueAt === null) {
          throw new RuleViolation(
            'no-report-due',
            'This adverse event has no IND safety report due: only a serious, unexpected event whose relatedness is not unlikely or not-related has one (21 CFR 312.32(c)).',
          );
        }
        const correction = current.reportedAt !== null;
        if (correction && expectedVersion === undefined) {
          throw new Conflict(
            `The safety report was already recorded (${current.reportedAt!.toISOString()}); to correct it, send If-Match with the ETag of the version you read.`,
            'already-reported',
          );
        }
        if (reportedAt < current.awareAt) {
          throw new RuleViolation('reported-before-aware', 'reportedAt cannot be before awareAt (when the sponsor became aware).', [{ path: 'body.reportedAt', message: 'before awareAt' }]);
        }
        if (correction && sameJson(reportedAt, current.reportedAt) && input.reportReference === current.reportReference) {
          await audit.record(tx, actor, { action: 'update', resourceType: ADVERSE_EVENT, resourceId: id, clinicId, details: { changedFields: [], version: current.version, patientId: current.patientId } });
          return dto(current);
        }
        const row = await q.updateAdverseEvent(tx, id, { reportedAt, reportReference: input.reportReference, updatedAt: clock.now(), updatedBy: actor.sub });
        return recordUpdate(tx, actor, row, { changedFields: ['reportedAt', 'reportReference'], reported: true, correction });
      });
    },

    history(actor: Actor, id: string, page: VersionPage) {
      return versionReads.list<AdverseEventDto>(actor, { clinicId: clinicOf(actor), id }, page);
    },

    /** One version of the clinic's adverse event (404 if not theirs or no such version); audited as a history read. */
    version(actor: Actor, id: string, version: number) {
      return versionReads.get<AdverseEventDto>(actor, { clinicId: clinicOf(actor), id }, version);
    },
  };
}
