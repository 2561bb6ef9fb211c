import type { z } from 'zod';
import type { Db } from '../../db/client.js';
import type { IdempotencyRequest, UnitOfWork } from '../../db/unit-of-work.js';
import type { Actor } from '../../auth/principal.js';
import type { PageRequest } from '../../shared/paging.js';
import { toPage } from '../../shared/paging.js';
import type { Clock } from '../../shared/clock.js';
import { Conflict, NotFound, PreconditionFailed, RuleViolation } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import { effectiveTime } from '../../shared/time.js';
import type { AuditLog } from '../audit/audit.service.js';
import type { History } from '../history/history.service.js';
import * as q from './patients.queries.js';
import type { ConsentCreate, ConsentDto, ConsentWithdraw } from './patients.schemas.js';
import type { PatientsService } from './patients.service.js';

export const CONSENT = 'consent';

export function toConsentDto(r: q.ConsentRow): ConsentDto {
  return {
    id: r.id,
    patientId: r.patientId,
    kind: r.kind as ConsentDto['kind'],
    signedAt: r.signedAt.toISOString(),
    documentVersion: r.documentVersion,
    indNumber: r.indNumber,
    irbProtocol: r.irbProtocol,
    status: r.status as ConsentDto['status'],
    withdrawnAt: r.withdrawnAt?.toISOString() ?? null,
    withdrawnBy: r.withdrawnBy,
    withdrawalReason: r.withdrawalReason,
    version: r.version,
    createdAt: r.createdAt.toISOString(),
  };
}

export interface ConsentsDeps {
  db: Db;
  uow: UnitOfWork;
  audit: AuditLog;
  history: History;
  clock: Clock;
  patients: Pick<PatientsService, 'visiblePatient'>;
}

export type ConsentsService = ReturnType<typeof createConsentsService>;

export function createConsentsService({ db, uow, audit, history, clock, patients }: ConsentsDeps) {
  return {
    async create(actor: Actor, patientId: string, input: z.output<typeof ConsentCreate>, idem?: IdempotencyRequest): Promise<ConsentDto> {
      const patient = await patients.visiblePatient(actor, patientId);
      const signedAt = effectiveTime(clock, input.signedAt, 'signedAt');
      return uow.run(async (tx) => {
        const row = await q.insertConsent(tx, {
          id: newId(),
          patientId,
          clinicId: patient.clinicId,
          kind: input.kind,
          signedAt,
          documentVersion: input.documentVersion,
          indNumber: input.indNumber ?? null,
          irbProtocol: input.irbProtocol ?? null,
          createdAt: clock.now(),
          createdBy: actor.sub,
        });
        const dto = toConsentDto(row);
        await history.record(tx, { resourceType: CONSENT, resourceId: row.id, version: 1, clinicId: patient.clinicId, body: dto, by: actor.sub });
        await audit.record(tx, actor, { action: 'create', resourceType: CONSENT, resourceId: row.id, clinicId: patient.clinicId, details: { patientId } });
        return dto;
      }, idem);
    },

    async list(actor: Actor, patientId: string, page: PageRequest) {
      const patient = await patients.visiblePatient(actor, patientId);
      const rows = await q.listConsents(db, patient.clinicId, patientId, page);
      const result = toPage(rows.map(toConsentDto), page.limit);
      await audit.record(db, actor, { action: 'search', resourceType: CONSENT, clinicId: patient.clinicId, details: { patientId, resultIds: result.items.map((c) => c.id) } });
      return result;
    },

    async withdraw(actor: Actor, patientId: string, consentId: string, input: z.output<typeof ConsentWithdraw>, expectedVersion?: number): Promise<ConsentDto> {
      const patient = await patients.visiblePatient(actor, patientId);
      const withdrawnAt = effectiveTime(clock, input.withdrawnAt, 'withdrawnAt');
      return uow.run(async (tx) => {
        const consent = await q.lockConsent(tx, patient.clinicId, patientId, consentId);
        if (!consent) throw new NotFound('consent');
        if (expectedVersion !== undefined && consent.version !== expectedVersion) {
          throw new PreconditionFailed(`The consent is at version ${consent.version}, not ${expectedVersion}.`);
        }
        if (consent.status === 'withdrawn') throw new Conflict('This consent is already withdrawn.', 'consent-already-withdrawn');
        if (withdrawnAt < consent.signedAt) {
          throw new RuleViolation('withdrawn-before-signed', 'withdrawnAt cannot be before the consent was signed.', [
            { path: 'body.withdrawnAt', message: 'before signedAt' },
          ]);
        }
        const row = await q.withdrawConsent(tx, consentId, { withdrawnAt, withdrawnBy: actor.sub, withdrawalReason: input.reason });
        const dto = toConsentDto(row);
        await history.record(tx, { resourceType: CONSENT, resourceId: consentId, version: row.version, clinicId: patient.clinicId, body: dto, by: actor.sub });
        await audit.record(tx, actor, {
          action: 'state-change',
          resourceType: CONSENT,
          resourceId: consentId,
          clinicId: patient.clinicId,
          details: { patientId, status: 'withdrawn', version: row.version },
        });
        return dto;
      });
    },
  };
}
