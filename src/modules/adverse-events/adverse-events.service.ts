import type { z } from 'zod';
import type { Db } from '../../db/client.js';
import type { IdempotencyRequest, UnitOfWork } from '../../db/unit-of-work.js';
import type { Actor } from '../../auth/principal.js';
import type { PageRequest } from '../../shared/paging.js';
import { toPage } from '../../shared/paging.js';
import type { Clock } from '../../shared/clock.js';
import { NotFound, PreconditionFailed, RuleViolation } from '../../shared/errors.js';
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
import type { AdverseEventCreate, AdverseEventDto, AdverseEventPatch } from './adverse-events.schemas.js';
import { checkAdverseEvent } from './rules.js';

export const ADVERSE_EVENT = 'adverse-event';

export function toAdverseEventDto(a: q.AdverseEventRow): AdverseEventDto {
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
    data: { adverseEventId: a.id, patientId: a.patientId, procedureId: a.procedureId, grade: a.severityGrade, serious: a.serious, relatedness: a.relatedness, version: a.version },
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
}

export type AdverseEventsService = ReturnType<typeof createAdverseEventsService>;

export function createAdverseEventsService({ db, uow, audit, events, history, clock, procedures }: AdverseEventsDeps) {
  const readAdverseEvent = audit.readStatement({ resourceType: ADVERSE_EVENT, details: q.readDetails }, q.byId);
  const searchAdverseEvents = audit.searchStatement(ADVERSE_EVENT, q.search);
  const versionReads = historyReads(db, audit, { resourceType: ADVERSE_EVENT, noun: 'adverse event', record: q.byId, details: q.readDetails });

  return {
    async create(actor: Actor, input: z.output<typeof AdverseEventCreate>, idem?: IdempotencyRequest): Promise<AdverseEventDto> {
      const clinicId = clinicOf(actor);
      const onsetAt = effectiveTime(clock, input.onsetAt, 'onsetAt');
      return uow.run(async (tx) => {
        const procedure = await procedures.findInClinic(tx, clinicId, input.procedureId);
        if (!procedure) {
          throw new RuleViolation('unknown-procedure', 'No procedure with that id in your clinic.', [{ path: 'body.procedureId', message: 'not a procedure of this clinic' }]);
        }
        const { procedureId: _p, onsetAt: _o, ...rest } = input;
        checkAdverseEvent({ ...rest, onsetAt }, procedure.performedAt);
        const now = clock.now();
        const row = await q.insertAdverseEvent(tx, {
          id: newId(),
          clinicId,
          procedureId: procedure.id,
          patientId: procedure.patientId,
          lotId: procedure.lotId,
          ...rest,
          onsetAt,
          createdAt: now,
          updatedAt: now,
          createdBy: actor.sub,
          updatedBy: actor.sub,
        });
        const dto = toAdverseEventDto(row);
        await history.record(tx, { resourceType: ADVERSE_EVENT, resourceId: row.id, version: 1, clinicId, body: dto, by: actor.sub });
        await audit.record(tx, actor, {
          action: 'create',
          resourceType: ADVERSE_EVENT,
          resourceId: row.id,
          clinicId,
          details: { procedureId: row.procedureId, patientId: row.patientId, lotId: row.lotId, serious: row.serious, severityGrade: row.severityGrade },
        });
        await events.emit(tx, adverseEventEvent('adverse-event.created', row));
        return dto;
      }, idem);
    },

    async get(actor: Actor, id: string): Promise<AdverseEventDto> {
      const [raw] = await readAdverseEvent(db, actor, { clinicId: clinicOf(actor), id });
      if (!raw) throw new NotFound('adverse event');
      return toAdverseEventDto(q.adverseEventFromRaw(raw));
    },

    async list(actor: Actor, filters: { procedureId?: string; lotId?: string; patientId?: string; serious?: 'true' | 'false' }, page: PageRequest) {
      const clinicId = clinicOf(actor);
      const serious = filters.serious === undefined ? undefined : filters.serious === 'true';
      const named = Object.keys(filters).filter((k) => filters[k as keyof typeof filters] !== undefined);
      const values = q.adverseEventSearchValues(clinicId, { procedureId: filters.procedureId, lotId: filters.lotId, patientId: filters.patientId, serious }, page);
      const rows = await searchAdverseEvents(db, actor, { clinicId, filters: named, limit: page.limit }, values);
      return toPage(rows.map((r) => toAdverseEventDto(q.adverseEventFromRaw(r))), page.limit);
    },

    /**
     * One page of the caller's clinic's adverse events matching `search` (shared/search.ts criteria), audited as
     * one search entry naming the criteria (`filters`: names, never values) and the ids returned, in the same statement.
     */
    async find(actor: Actor, search: SearchQuery<q.AdverseEventField, q.AdverseEventSort>, filters: string[]): Promise<SearchResult<AdverseEventDto>> {
      const clinicId = clinicOf(actor);
      return audit.page(db, actor, { resourceType: ADVERSE_EVENT, clinicId, filters }, q.adverseEventSearch, search, (r) => toAdverseEventDto(q.adverseEventFromRaw(r)));
    },

    /** How many of the caller's clinic's adverse events match `where` (a FHIR Bundle's total). */
    countMatching(actor: Actor, where: Condition<q.AdverseEventField>[]) {
      return q.adverseEventSearch.count(db, where, clinicOf(actor));
    },

    count(actor: Actor, filters: { patientId?: string }) {
      return q.countAdverseEvents(db, clinicOf(actor), filters);
    },

    async update(actor: Actor, id: string, expectedVersion: number, patch: z.output<typeof AdverseEventPatch>): Promise<AdverseEventDto> {
      const clinicId = clinicOf(actor);
      const onsetAt = patch.onsetAt === undefined ? undefined : effectiveTime(clock, patch.onsetAt, 'onsetAt');
      return uow.run(async (tx) => {
        const current = await q.lockAdverseEvent(tx, clinicId, id);
        if (!current) throw new NotFound('adverse event');
        if (current.version !== expectedVersion) {
          throw new PreconditionFailed(`The adverse event is at version ${current.version}, not ${expectedVersion}; read it again and reapply your change.`);
        }
        const { onsetAt: _o, ...rest } = patch;
        // Only what differs from the stored record is a change (an instant compared as an instant).
        const changes = Object.fromEntries(
          Object.entries({ ...rest, ...(onsetAt ? { onsetAt } : {}) }).filter(([k, v]) => v !== undefined && !sameJson(v, current[k as keyof typeof current])),
        );
        if (Object.keys(changes).length === 0) {
          await audit.record(tx, actor, { action: 'update', resourceType: ADVERSE_EVENT, resourceId: id, clinicId, details: { changedFields: [], version: current.version, patientId: current.patientId } });
          return toAdverseEventDto(current);
        }
        const merged = { ...current, ...changes };
        const procedure = await procedures.findInClinic(tx, clinicId, current.procedureId);
        checkAdverseEvent(merged, procedure!.performedAt);
        const row = await q.updateAdverseEvent(tx, id, { ...changes, updatedAt: clock.now(), updatedBy: actor.sub });
        const dto = toAdverseEventDto(row);
        await history.record(tx, { resourceType: ADVERSE_EVENT, resourceId: id, version: row.version, clinicId, body: dto, by: actor.sub });
        await audit.record(tx, actor, { action: 'update', resourceType: ADVERSE_EVENT, resourceId: id, clinicId, details: { changedFields: Object.keys(changes), version: row.version, patientId: row.patientId } });
        await events.emit(tx, adverseEventEvent('adverse-event.updated', row));
        return dto;
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
