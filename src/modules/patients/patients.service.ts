import type { Db, Executor } from '../../db/client.js';
import type { IdempotencyRequest, UnitOfWork } from '../../db/unit-of-work.js';
import type { Actor } from '../../auth/principal.js';
import type { PageRequest } from '../../shared/paging.js';
import { toPage } from '../../shared/paging.js';
import type { Clock } from '../../shared/clock.js';
import { NotFound, PreconditionFailed, RuleViolation } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import { sameJson } from '../../shared/canonical-json.js';
import { clinicOf } from '../../auth/principal.js';
import { todayIso } from '../../shared/time.js';
import type { Condition, SearchQuery, SearchResult } from '../../shared/search.js';
import type { AuditLog } from '../audit/audit.service.js';
import { historyReads, type History, type VersionPage } from '../history/history.service.js';
import * as q from './patients.queries.js';
import type { PatientDto, PatientFilters } from './patients.schemas.js';
import type { z } from 'zod';
import type { PatientCreate, PatientPatch } from './patients.schemas.js';

export const PATIENT = 'patient';

export function toPatientDto(r: q.PatientRow): PatientDto {
  return {
    id: r.id,
    clinicId: r.clinicId,
    mrn: r.mrn,
    identifiers: r.identifiers,
    givenName: r.givenName,
    familyName: r.familyName,
    birthDate: r.birthDate,
    sex: r.sex as PatientDto['sex'],
    version: r.version,
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
  };
}

export interface PatientsDeps {
  db: Db;
  uow: UnitOfWork;
  audit: AuditLog;
  history: History;
  clock: Clock;
}

export type PatientsService = ReturnType<typeof createPatientsService>;

export function createPatientsService({ db, uow, audit, history, clock }: PatientsDeps) {
  const searchPatients = audit.searchStatement(PATIENT, q.search);
  const readPatient = audit.readStatement({ resourceType: PATIENT }, q.byId);
  const versionReads = historyReads(db, audit, { resourceType: PATIENT, noun: 'patient', record: q.byId });

  function checkBirthDate(birthDate: string | undefined) {
    if (birthDate !== undefined && birthDate > todayIso(clock)) {
      throw new RuleViolation('birth-date-in-future', 'birthDate cannot be after today.', [{ path: 'body.birthDate', message: 'after today' }]);
    }
  }

  /** The patient if the caller's clinic holds it; otherwise 404, whether or not another clinic does. */
  async function visiblePatient(actor: Actor, id: string): Promise<q.PatientRow> {
    const row = await q.findPatient(db, clinicOf(actor), id);
    if (!row) throw new NotFound('patient');
    return row;
  }

  return {
    visiblePatient,

    /** Any clinic's patient: for reports to tokens without a clinic (a supplier's quality unit, an inspector). */
    findAnywhere(exec: Executor, id: string) {
      return q.findPatientAnyClinic(exec, id);
    },

    /**
     * Named parts for another module's statements (db/statement.ts): `withConsentAt` reads the clinic's
     * patient and whether consent was in force at `at` (rows map with `withConsentFromRaw`);
     * `consentInForceAt` re-checks consent where a change is written.
     */
    withConsentAt: q.withConsentAtPart,
    withConsentFromRaw: q.withConsentFromRaw,
    consentInForceAt: q.consentInForceAtPart,

    /** The clinic's patient, in the caller's transaction (undefined if not theirs). */
    findInClinic(exec: Executor, clinicId: string, id: string) {
      return q.findPatient(exec, clinicId, id);
    },

    async create(actor: Actor, input: z.output<typeof PatientCreate>, idem?: IdempotencyRequest): Promise<PatientDto> {
      const clinicId = clinicOf(actor);
      checkBirthDate(input.birthDate);
      return uow.run(async (tx) => {
        const now = clock.now();
        const row = await q.insertPatient(tx, {
          id: newId(),
          clinicId,
          ...input,
          createdAt: now,
          updatedAt: now,
          createdBy: actor.sub,
          updatedBy: actor.sub,
        });
        const dto = toPatientDto(row);
        await history.record(tx, { resourceType: PATIENT, resourceId: row.id, version: 1, clinicId, body: dto, by: actor.sub });
        await audit.record(tx, actor, { action: 'create', resourceType: PATIENT, resourceId: row.id, clinicId });
        return dto;
      }, idem);
    },

    async get(actor: Actor, id: string): Promise<PatientDto> {
      const [raw] = await readPatient(db, actor, { clinicId: clinicOf(actor), id });
      if (!raw) throw new NotFound('patient');
      return toPatientDto(q.patientFromRaw(raw));
    },

    async search(actor: Actor, filters: PatientFilters, page: PageRequest) {
      const clinicId = clinicOf(actor);
      const named = Object.keys(filters).filter((k) => filters[k as keyof PatientFilters] !== undefined);
      const values = q.patientSearchValues(clinicId, filters, page);
      const rows = await searchPatients(db, actor, { clinicId, filters: named, limit: page.limit }, values);
      return toPage(rows.map((r) => toPatientDto(q.patientFromRaw(r))), page.limit);
    },

    /**
     * One page of the caller's clinic's patients matching `q` (shared/search.ts criteria), and one audit entry
     * naming the criteria (`filters`, names only, never values) and the ids returned, written in the same statement.
     */
    async find(actor: Actor, search: SearchQuery<q.PatientField, q.PatientSort>, filters: string[]): Promise<SearchResult<PatientDto>> {
      const clinicId = clinicOf(actor);
      return audit.page(db, actor, { resourceType: PATIENT, clinicId, filters }, q.patientSearch, search, (r) => toPatientDto(q.patientFromRaw(r)));
    },

    /** How many of the caller's clinic's patients match `where` (a FHIR Bundle's total). */
    countMatching(actor: Actor, where: Condition<q.PatientField>[]) {
      return q.patientSearch.count(db, where, clinicOf(actor));
    },

    /**
     * Ids of the caller's clinic's patients matching `where`, at most `max`: what a search chained through the
     * patient (`patient.identifier`) filters on. Not audited itself: the search it serves is.
     */
    idsMatching(actor: Actor, where: Condition<q.PatientField>[], max: number) {
      return q.patientSearch.ids(db, where, max, clinicOf(actor));
    },

    /** How many of the caller's clinic's patients match (for FHIR Bundle.total). */
    count(actor: Actor, filters: PatientFilters) {
      return q.countPatients(db, clinicOf(actor), filters);
    },

    async update(actor: Actor, id: string, expectedVersion: number, patch: z.output<typeof PatientPatch>): Promise<PatientDto> {
      const clinicId = clinicOf(actor);
      checkBirthDate(patch.birthDate);
      return uow.run(async (tx) => {
        const current = await q.findPatient(tx, clinicId, id);
        if (!current) throw new NotFound('patient');
        if (current.version !== expectedVersion) {
          throw new PreconditionFailed(`The patient is at version ${current.version}, not ${expectedVersion}; read it again and reapply your change.`);
        }
        const changed = (Object.keys(patch) as (keyof typeof patch)[]).filter((k) => patch[k] !== undefined && !sameJson(patch[k], current[k]));
        if (changed.length === 0) {
          // Nothing to change: no new version, but the caller did read the record.
          await audit.record(tx, actor, { action: 'update', resourceType: PATIENT, resourceId: id, clinicId, details: { changedFields: [], version: current.version } });
          return toPatientDto(current);
        }
        const changes = Object.fromEntries(changed.map((k) => [k, patch[k]]));
        const row = await q.updatePatient(tx, clinicId, id, expectedVersion, { ...changes, updatedAt: clock.now(), updatedBy: actor.sub });
        // Another writer committed between our read and our update.
        if (!row) throw new PreconditionFailed('The patient was changed by someone else; read it again and reapply your change.');
        const dto = toPatientDto(row);
        await history.record(tx, { resourceType: PATIENT, resourceId: id, version: row.version, clinicId, body: dto, by: actor.sub });
        await audit.record(tx, actor, { action: 'update', resourceType: PATIENT, resourceId: id, clinicId, details: { changedFields: changed, version: row.version } });
        return dto;
      });
    },

    history(actor: Actor, id: string, page: VersionPage) {
      return versionReads.list<PatientDto>(actor, { clinicId: clinicOf(actor), id }, page);
    },

    /** One version of the clinic's patient (404 if not theirs or no such version); audited as a history read. */
    version(actor: Actor, id: string, version: number) {
      return versionReads.get<PatientDto>(actor, { clinicId: clinicOf(actor), id }, version);
    },
  };
}
