import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { actorOf } from '../../http/auth.js';
import { decodeCursor, pageBody } from '../../http/pagination.js';
import { AuditEventPage, AuditSearch, VerifyQuery, VerifyResult } from './audit.schemas.js';
import type { AuditLogService } from './audit-log.service.js';

const tags = ['audit'];
const idKey = (s: string) => (/^[1-9]\d{0,15}$/.test(s) ? Number(s) : undefined);

export function auditRoutes(app: FastifyInstance, { auditLog }: { auditLog: AuditLogService }) {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get('/audit-events', {
    config: { scope: 'audit:read' },
    schema: {
      operationId: 'listAuditEvents',
      tags,
      summary: 'Audit entries: who did what to which record, when, and with what result',
      description: 'A clinic token sees the entries about its clinic\'s records or made by its clinic; a token without clinic_id sees all.',
      querystring: AuditSearch,
      response: { 200: AuditEventPage },
    },
  }, async (req) => {
    const { limit, cursor, ...filters } = req.query;
    return pageBody(await auditLog.list(actorOf(req), filters, { limit, after: decodeCursor(cursor, idKey) }));
  });

  r.get('/audit-events/verify', {
    config: { scope: 'audit:read' },
    schema: {
      operationId: 'verifyAuditChain',
      tags,
      summary: 'Recompute the audit hash chain and name the first entry that does not match',
      querystring: VerifyQuery,
      response: { 200: VerifyResult },
    },
  }, async (req) => auditLog.verify(actorOf(req), req.query.from, req.query.to));
}
