import type { z } from 'zod';
import type { Db } from '../../db/client.js';
import type { Actor } from '../../auth/principal.js';
import type { PageRequest } from '../../shared/paging.js';
import { toPage } from '../../shared/paging.js';
import type { AuditLog } from './audit.service.js';
import * as q from './audit.queries.js';
import type { AuditEventDto, AuditSearch, VerifyResult } from './audit.schemas.js';

/** Reading, sealing and verifying the audit log (writing entries is AuditLog's job). */
export function createAuditLogService({ db, audit }: { db: Db; audit: AuditLog }) {
  return {
    seal: () => q.sealAll(db),

    async list(actor: Actor, filters: Omit<z.output<typeof AuditSearch>, 'limit' | 'cursor'>, page: PageRequest<number>) {
      const rows = await q.listAuditEvents(db, actor.clinicId, filters, page);
      const items: AuditEventDto[] = rows.map(({ event: e, seq, hash }) => ({
        id: e.id,
        occurredAt: e.occurredAt.toISOString(),
        actor: { sub: e.actorSub, clinicId: e.actorClinicId },
        action: e.action,
        resourceType: e.resourceType,
        resourceId: e.resourceId,
        clinicId: e.clinicId,
        requestId: e.requestId,
        outcome: e.outcome,
        details: e.details ?? null,
        chain: seq === null || hash === null ? null : { seq, hash },
      }));
      const result = toPage(items, page.limit, (i) => String(i.id));
      await audit.record(db, actor, { action: 'search', resourceType: 'audit-event', clinicId: actor.clinicId, details: { count: result.items.length } });
      return result;
    },

    /**
     * The head of the hash chain once every entry committed before the call is sealed (it waits for the sealer
     * lock, as verify does): `{ seq, hash, auditEventId, sealedAt }`, or null for an empty log. A document that
     * prints it can later be checked against the log: GET /audit-events/verify recomputes the chain, and the link
     * `seq` must still carry `hash` (ADR 0001). Reads no patient data, so it writes no entry itself.
     */
    async sealedHead() {
      await q.sealAll(db, { wait: true });
      return q.chainHead(db);
    },

    async verify(actor: Actor, from?: string, to?: string): Promise<z.infer<typeof VerifyResult>> {
      await q.sealAll(db, { wait: true });
      const check = await q.verifyChain(db, from, to);
      await audit.record(db, actor, { action: 'read', resourceType: 'audit-chain', details: { checked: check.checked, valid: !check.firstInvalid && check.notInChain === 0 } });
      return { valid: check.firstInvalid === null && check.notInChain === 0, ...check };
    },
  };
}

export type AuditLogService = ReturnType<typeof createAuditLogService>;
