import type { Db, Executor } from '../../db/client.js';
import type { IdempotencyRequest, UnitOfWork } from '../../db/unit-of-work.js';
import type { Actor } from '../../auth/principal.js';
import type { PageRequest } from '../../shared/paging.js';
import { toPage } from '../../shared/paging.js';
import type { Clock } from '../../shared/clock.js';
import { Conflict, NotFound, PreconditionFailed, RuleViolation } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import { clinicOf } from '../../auth/principal.js';
import type { Condition, SearchQuery, SearchResult } from '../../shared/search.js';
import { effectiveTime } from '../../shared/time.js';
import type { AuditLog } from '../audit/audit.service.js';
import type { EventLog } from '../events/events.service.js';
import { historyReads, type History, type VersionPage } from '../history/history.service.js';
import type { LotsService } from '../lots/lots.service.js';
import type { VialsService } from '../vials/vials.service.js';
import type { PatientsService } from '../patients/patients.service.js';
import { checkDose, checkRouteSiteGuidance } from './gates.js';
import * as q from './procedures.queries.js';
import type { ProcedureDto, ProcedureFilters, ProcedureInput } from './procedures.schemas.js';

export const PROCEDURE = 'procedure';

/** A procedure as the API answers it; `vials` when read with them (every read and answer of this service is). */
export function toProcedureDto(p: q.ProcedureRow, vials?: q.UsedVial[]): ProcedureDto {
  return {
    id: p.id,
    clinicId: p.clinicId,
    patientId: p.patientId,
    lotId: p.lotId,
    performedAt: p.performedAt.toISOString(),
    performer: p.performer,
    indication: p.indication,
    route: p.route as ProcedureDto['route'],
    site: p.bodySite
      ? { bodySite: p.bodySite as NonNullable<ProcedureDto['site']>['bodySite'], ...(p.laterality ? { laterality: p.laterality as 'left' | 'right' | 'bilateral' } : {}) }
      : null,
    imagingGuidance: p.imagingGuidance as ProcedureDto['imagingGuidance'],
    dose: { particles: p.doseParticles, volumeMl: p.doseVolumeMl },
    vialsUsed: p.vialsUsed,
    ...(vials ? { vials } : {}),
    doseDeviationReason: p.doseDeviationReason,
    notes: p.notes,
    status: p.status as ProcedureDto['status'],
    enteredInError:
      p.status === 'entered-in-error'
        ? { reason: p.enteredInErrorReason!, at: p.enteredInErrorAt!.toISOString(), by: p.enteredInErrorBy!, vialsReturned: p.vialsReturned }
        : null,
    version: p.version,
    createdAt: p.createdAt.toISOString(),
  };
}

export interface ProceduresDeps {
  db: Db;
  uow: UnitOfWork;
  audit: AuditLog;
  /** A procedure recorded tells `procedure.created`, one entered in error `procedure.entered-in-error`, with the change. */
  events: EventLog;
  history: History;
  clock: Clock;
  patients: Pick<PatientsService, 'withConsentAt' | 'withConsentFromRaw' | 'consentInForceAt'>;
  lots: Pick<LotsService, 'forUseAt' | 'forUseFromRaw' | 'releasedAt'>;
  vials: Pick<VialsService, 'administered' | 'administeredValues' | 'restock' | 'claimable' | 'unavailable' | 'notAvailable' | 'ofProcedures'>;
}

export type ProceduresService = ReturnType<typeof createProceduresService>;

export function createProceduresService({ db, uow, audit, events, history, clock, patients, lots, vials }: ProceduresDeps) {
  const readProcedure = audit.readStatement({ resourceType: PROCEDURE, details: q.readDetails }, q.withVialsById);
  const searchProcedures = audit.searchStatement(PROCEDURE, q.search);
  const versionReads = historyReads(db, audit, { resourceType: PROCEDURE, noun: 'procedure', record: q.byId, details: q.readDetails });
  /** What a procedure is judged on: the clinic's patient with consent, the lot with its status, at performedAt. */
  const gateStatement = q.gateStatement({ patient: patients.withConsentAt, lot: lots.forUseAt });
  /** A new procedure: the vials it uses claimed, the procedure, its first version, its audit entry and its event, guarded. */
  const createStatement = q.createStatement({
    administered: vials.administered,
    version: history.version,
    audit: audit.entry,
    event: events.part,
    lotReleased: lots.releasedAt,
    consent: patients.consentInForceAt,
  });

  async function visible(actor: Actor, id: string): Promise<q.ProcedureRow> {
    const row = await q.findProcedure(db, clinicOf(actor), id);
    if (!row) throw new NotFound('procedure');
    return row;
  }

  return {
    visible,

    /**
     * Every gate is judged on plain reads: the patient is the caller's, consent was in force, the lot was
     * released and unexpired at performedAt, and route, site, guidance and dose agree with the rules; the
     * first that refuses answers 422 with its own code. The procedure, its version, its audit entry and the
     * vial decrement are then written in one statement, which re-checks what a concurrent request could have
     * changed since: the clinic still holds the vials, the lot is still released at performedAt (its row
     * share-locked against a status change), consent is still in force.
     */
    async create(actor: Actor, input: ProcedureInput, idem?: IdempotencyRequest): Promise<ProcedureDto> {
      const clinicId = clinicOf(actor);
      const performedAt = effectiveTime(clock, input.performedAt, 'performedAt');
      checkRouteSiteGuidance(input);
      return uow.once(async () => {
        const [gate] = await gateStatement.run(db, { patient: { clinicId, patientId: input.patientId, at: performedAt }, lot: { lotId: input.lotId, at: performedAt } });
        const patient = gate?.patient ? patients.withConsentFromRaw(gate.patient as Record<string, unknown>) : undefined;
        const use = gate?.lot ? lots.forUseFromRaw(gate.lot as Record<string, unknown>) : undefined;
        if (!patient) {
          throw new RuleViolation('unknown-patient', 'No patient with that id in your clinic.', [{ path: 'body.patientId', message: 'not a patient of this clinic' }]);
        }
        if (!patient.consentInForce) {
          throw new RuleViolation('consent-missing', 'The patient had no investigational-treatment consent signed and in force at performedAt.', [
            { path: 'body.performedAt', message: 'no consent in force' },
          ]);
        }
        if (!use) throw new RuleViolation('unknown-lot', 'No lot with that id.', [{ path: 'body.lotId', message: 'unknown lot' }]);
        if (use.statusAt !== 'released') {
          throw new RuleViolation('lot-not-released', `The lot was ${use.statusAt ?? 'not yet made'} at performedAt; only a released lot may be given.`, [
            { path: 'body.lotId', message: `lot ${use.statusAt ?? 'not yet made'} at performedAt` },
          ]);
        }
        if (performedAt.toISOString().slice(0, 10) > use.lot.expiresOn) {
          throw new RuleViolation('lot-expired', `The lot expired on ${use.lot.expiresOn}, before performedAt.`, [{ path: 'body.lotId', message: 'expired' }]);
        }
        const particlesPerMl = use.lot.characterization?.particlesPerMl;
        if (!particlesPerMl) throw new RuleViolation('lot-not-characterized', 'The lot has no particle concentration to check the dose against.');
        checkDose(input, particlesPerMl);
        const now = clock.now();
        const named = input.vialIds ? { vialIds: input.vialIds } : input.vialBarcodes ? { barcodes: input.vialBarcodes } : undefined;
        const count = input.vialIds?.length ?? input.vialBarcodes?.length ?? input.vialsUsed!;
        const row: q.ProcedureRow = {
          id: newId(),
          clinicId,
          patientId: input.patientId,
          lotId: input.lotId,
          performedAt,
          performer: input.performer,
          indication: input.indication,
          route: input.route,
          bodySite: input.site?.bodySite ?? null,
          laterality: input.site?.laterality ?? null,
          imagingGuidance: input.imagingGuidance,
          doseParticles: input.dose.particles,
          doseVolumeMl: input.dose.volumeMl,
          vialsUsed: count,
          doseDeviationReason: input.doseDeviationReason ?? null,
          notes: input.notes ?? null,
          status: 'completed',
          enteredInErrorReason: null,
          enteredInErrorAt: null,
          enteredInErrorBy: null,
          vialsReturned: 0,
          version: 1,
          createdAt: now,
          updatedAt: now,
          createdBy: actor.sub,
        };
        // The answer and the first version get the claimed vials in the statement (q.createStatement).
        const dto = toProcedureDto(row);
        return {
          statement: createStatement,
          values: {
            used_vials: vials.administeredValues({ lotId: row.lotId, clinicId, count, procedureId: row.id, at: performedAt, by: actor.sub, ...named }),
            procedure: { row },
            version: { resourceType: PROCEDURE, resourceId: row.id, version: 1, clinicId, body: dto, by: row.createdBy },
            audit: {
              actor,
              entry: { action: 'create' as const, resourceType: PROCEDURE, resourceId: row.id, clinicId, details: { patientId: row.patientId, lotId: row.lotId, vialsUsed: count } },
            },
            event: events.values({
              type: 'procedure.created',
              clinicId,
              subject: { type: 'Procedure', id: row.id },
              lotIds: [row.lotId],
              data: { procedureId: row.id, patientId: row.patientId, lotId: row.lotId, status: row.status },
            }),
            'lot-released': { lotId: row.lotId, at: performedAt },
            consent: { clinicId, patientId: row.patientId, at: performedAt },
          },
          refused: {
            // Named vials: refused when one is not this lot's, at this clinic and unused; a number: when the clinic
            // holds fewer once concurrent claims have ended. Otherwise a claim that lost a race is tried again.
            vials: async () => {
              if (named) {
                const missing = await vials.unavailable(input.lotId, clinicId, performedAt, named);
                if (!missing.length) return undefined;
                return vials.notAvailable(missing, 'an unused vial of this lot at your clinic by performedAt', input.vialIds ? 'body.vialIds' : 'body.vialBarcodes');
              }
              const onHand = await vials.claimable(input.lotId, clinicId, performedAt, count);
              if (onHand >= count) return undefined;
              return new RuleViolation('insufficient-vials', `Your clinic holds ${onHand} unused vial(s) of this lot shipped to it by performedAt; ${count} needed.`, [
                { path: 'body.vialsUsed', message: 'more than on hand' },
              ]);
            },
          },
          result: dto,
        };
      }, idem);
    },

    async get(actor: Actor, id: string): Promise<ProcedureDto> {
      const [raw] = await readProcedure(db, actor, { clinicId: clinicOf(actor), id });
      if (!raw) throw new NotFound('procedure');
      return toProcedureDto(q.procedureFromRaw(raw), q.vialsFromRaw(raw));
    },

    async list(actor: Actor, filters: ProcedureFilters, page: PageRequest) {
      const clinicId = clinicOf(actor);
      const named = Object.keys(filters).filter((k) => filters[k as keyof ProcedureFilters] !== undefined);
      const values = q.procedureSearchValues(clinicId, filters, page);
      const rows = await searchProcedures(db, actor, { clinicId, filters: named, limit: page.limit }, values);
      return toPage(rows.map((r) => toProcedureDto(q.procedureFromRaw(r), q.vialsFromRaw(r))), page.limit);
    },

    /**
     * One page of the caller's clinic's procedures matching `search` (shared/search.ts criteria), audited as one
     * search entry naming the criteria (`filters`: names, never values) and the ids returned, in the same statement.
     */
    async find(actor: Actor, search: SearchQuery<q.ProcedureField, q.ProcedureSort>, filters: string[]): Promise<SearchResult<ProcedureDto>> {
      const clinicId = clinicOf(actor);
      return audit.page(db, actor, { resourceType: PROCEDURE, clinicId, filters }, q.procedureSearch, search, (r) => toProcedureDto(q.procedureFromRaw(r)));
    },

    /** How many of the caller's clinic's procedures match `where` (a FHIR Bundle's total). */
    countMatching(actor: Actor, where: Condition<q.ProcedureField>[]) {
      return q.procedureSearch.count(db, where, clinicOf(actor));
    },

    count(actor: Actor, filters: ProcedureFilters) {
      return q.countProcedures(db, clinicOf(actor), filters);
    },

    /** Every version of the clinic's procedure, a page at a time (404 if not theirs); audited as a history read. */
    history(actor: Actor, id: string, page: VersionPage) {
      return versionReads.list<ProcedureDto>(actor, { clinicId: clinicOf(actor), id }, page);
    },

    /** One version of the clinic's procedure (404 if not theirs or no such version); audited as a history read. */
    version(actor: Actor, id: string, version: number) {
      return versionReads.get<ProcedureDto>(actor, { clinicId: clinicOf(actor), id }, version);
    },

    /**
     * Marks the procedure entered in error (a new version; it stays). The vials it did not actually use go back
     * to the clinic: named (`returnedVialIds`, `returnedBarcodes`: each one this procedure used, else 422
     * `vial-not-available` naming it) or a number (`vialsReturned`, highest sequences first).
     */
    async enteredInError(
      actor: Actor,
      id: string,
      input: { reason: string; vialsReturned?: number; returnedVialIds?: string[]; returnedBarcodes?: string[] },
      expectedVersion?: number,
    ): Promise<ProcedureDto> {
      const clinicId = clinicOf(actor);
      return uow.run(async (tx) => {
        const current = await q.lockProcedure(tx, clinicId, id);
        if (!current) throw new NotFound('procedure');
        if (expectedVersion !== undefined && current.version !== expectedVersion) {
          throw new PreconditionFailed(`The procedure is at version ${current.version}, not ${expectedVersion}.`);
        }
        if (current.status === 'entered-in-error') throw new Conflict('The procedure is already marked entered-in-error.', 'already-entered-in-error');
        const named: { vialIds: string[] } | { barcodes: string[] } | undefined = input.returnedVialIds
          ? { vialIds: input.returnedVialIds }
          : input.returnedBarcodes
            ? { barcodes: input.returnedBarcodes }
            : undefined;
        const returned = input.returnedVialIds?.length ?? input.returnedBarcodes?.length ?? input.vialsReturned ?? 0;
        if (returned > current.vialsUsed) {
          throw new RuleViolation('too-many-vials-returned', `The procedure used ${current.vialsUsed} vial(s).`, [{ path: 'body.vialsReturned', message: 'more than used' }]);
        }
        if (returned > 0) {
          const back = await vials.restock(tx, actor, id, named ?? { count: returned }, `Procedure ${id} entered in error: ${input.reason}`);
          if (named && back.length < returned) {
            const byId = 'vialIds' in named;
            const got = new Set(back.map((v) => (byId ? v.id : v.barcode)));
            const missing = ('vialIds' in named ? named.vialIds : named.barcodes).filter((v) => !got.has(v));
            throw vials.notAvailable(missing, 'one this procedure used', byId ? 'body.returnedVialIds' : 'body.returnedBarcodes');
          }
        }
        const row = await q.markEnteredInError(tx, id, { reason: input.reason, at: clock.now(), by: actor.sub, vialsReturned: returned });
        const dto = toProcedureDto(row, (await vials.ofProcedures(tx, [id])).get(id) ?? []);
        await history.record(tx, { resourceType: PROCEDURE, resourceId: id, version: row.version, clinicId, body: dto, by: actor.sub });
        await audit.record(tx, actor, {
          action: 'state-change',
          resourceType: PROCEDURE,
          resourceId: id,
          clinicId,
          details: { status: 'entered-in-error', vialsReturned: returned, patientId: row.patientId },
        });
        await events.emit(tx, {
          type: 'procedure.entered-in-error',
          clinicId,
          subject: { type: 'Procedure', id },
          lotIds: [row.lotId],
          data: { procedureId: id, patientId: row.patientId, lotId: row.lotId, status: 'entered-in-error', version: row.version },
        });
        return dto;
      });
    },

    /**
     * Named parts for another module's statements (db/statement.ts): `byId` reads the clinic's procedure (rows
     * map with `fromRaw`); `completed` holds while it stands (not entered in error), re-checked where a change is written.
     */
    byId: q.byId,
    fromRaw: q.procedureFromRaw,
    completed: q.completed,

    /** The clinic's procedure, in the caller's transaction (undefined if not theirs). */
    findInClinic(exec: Executor, clinicId: string, id: string) {
      return q.findProcedure(exec, clinicId, id);
    },

    performedAtOf(exec: Executor, clinicId: string, ids: string[]) {
      return q.performedAtOf(exec, clinicId, ids);
    },

    recipientsOfLot(exec: Executor, lotId: string) {
      return q.recipientsOfLot(exec, lotId);
    },
  };
}
