import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { actorOf } from '../../http/auth.js';
import { ifMatchVersion, setEtag } from '../../http/etag.js';
import { IdempotencyHeaders, OptionalIfMatchHeaders } from '../../http/headers.js';
import { idempotencyOf } from '../../http/idempotency.js';
import { pageBody, pageRequest, versionPageRequest } from '../../http/pagination.js';
import { problemResponses } from '../../http/problem.js';
import { EnteredInErrorRequest, Procedure, ProcedureCreate, ProcedureHistory, ProcedureHistoryQuery, ProcedurePage, ProcedureParams, ProcedureSearch } from './procedures.schemas.js';
import type { ProceduresService } from './procedures.service.js';

const tags = ['procedures'];

export function proceduresRoutes(app: FastifyInstance, { procedures }: { procedures: ProceduresService }) {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post('/procedures', {
    config: { scope: 'clinical:write' },
    schema: {
      operationId: 'createProcedure',
      tags,
      summary: 'Record an administration of an exosome product',
      description:
        'Checked in one transaction with the vial decrement. Each refusal is a 422 with its own `code`: `unknown-patient`, ' +
        '`consent-missing`, `unknown-lot`, `lot-not-released` (judged at `performedAt` from the lot\'s dated history), `lot-expired`, ' +
        '`insufficient-vials`, `site-required`, `imaging-guidance-not-allowed`, `laterality-required`, `laterality-not-allowed`, ' +
        '`dose-out-of-tolerance` (±10 % of volumeMl × particlesPerMl without `doseDeviationReason`), `time-in-future`.',
      headers: IdempotencyHeaders,
      body: ProcedureCreate,
      response: { 201: Procedure, ...problemResponses(422) },
    },
  }, async (req, reply) => {
    const dto = await procedures.create(actorOf(req), req.body, idempotencyOf(req));
    setEtag(reply, dto.version);
    return reply.code(201).header('Location', `/v1/procedures/${dto.id}`).send(dto);
  });

  r.get('/procedures', {
    config: { scope: 'clinical:read' },
    schema: {
      operationId: 'listProcedures',
      tags,
      summary: 'List the clinic\'s procedures by patient, lot or date range',
      querystring: ProcedureSearch,
      response: { 200: ProcedurePage },
    },
  }, async (req) => {
    const { limit, cursor, ...filters } = req.query;
    return pageBody(await procedures.list(actorOf(req), filters, pageRequest({ limit, cursor })));
  });

  r.get('/procedures/:id', {
    config: { scope: 'clinical:read' },
    schema: { operationId: 'getProcedure', tags, summary: 'Read a procedure', params: ProcedureParams, response: { 200: Procedure, ...problemResponses(404) } },
  }, async (req, reply) => {
    const dto = await procedures.get(actorOf(req), req.params.id);
    setEtag(reply, dto.version);
    return dto;
  });

  r.post('/procedures/:id/entered-in-error', {
    config: { scope: 'clinical:write' },
    schema: {
      operationId: 'markProcedureEnteredInError',
      tags,
      summary: 'Mark a procedure entered in error (it stays, marked, with the reason)',
      headers: OptionalIfMatchHeaders,
      params: ProcedureParams,
      body: EnteredInErrorRequest,
      response: { 200: Procedure, ...problemResponses(404, 409, 412, 422) },
    },
  }, async (req, reply) => {
    const expected = req.headers['if-match'] === undefined ? undefined : ifMatchVersion(req);
    const dto = await procedures.enteredInError(actorOf(req), req.params.id, req.body, expected);
    setEtag(reply, dto.version);
    return dto;
  });

  r.get('/procedures/:id/history', {
    config: { scope: 'clinical:read' },
    schema: {
      operationId: 'getProcedureHistory',
      tags,
      summary: 'Every version of a procedure, oldest first (entered-in-error is a new version)',
      params: ProcedureParams,
      querystring: ProcedureHistoryQuery,
      response: { 200: ProcedureHistory, ...problemResponses(404) },
    },
  }, async (req) => pageBody(await procedures.history(actorOf(req), req.params.id, versionPageRequest(req.query))));
}
