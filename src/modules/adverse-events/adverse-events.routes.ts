import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { actorOf } from '../../http/auth.js';
import { ifMatchVersion, setEtag } from '../../http/etag.js';
import { IdempotencyHeaders, IfMatchHeaders } from '../../http/headers.js';
import { idempotencyOf } from '../../http/idempotency.js';
import { pageBody, pageQuery, pageRequest, versionPageRequest } from '../../http/pagination.js';
import { problemResponses } from '../../http/problem.js';
import { z } from 'zod';
import {
  AdverseEvent,
  AdverseEventCreate,
  AdverseEventHistory,
  AdverseEventPage,
  AdverseEventParams,
  AdverseEventPatch,
  AdverseEventSearch,
} from './adverse-events.schemas.js';
import type { AdverseEventsService } from './adverse-events.service.js';

const tags = ['adverse-events'];

export function adverseEventsRoutes(app: FastifyInstance, { adverseEvents }: { adverseEvents: AdverseEventsService }) {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post('/adverse-events', {
    config: { scope: 'clinical:write' },
    schema: {
      operationId: 'reportAdverseEvent',
      tags,
      summary: 'Report an adverse event after a procedure',
      description:
        'Refused (422) when the grade is outside CTCAE 1..5 (`grade-out-of-range`), `serious` disagrees with `seriousnessCriteria` ' +
        '(`seriousness-inconsistent`), grade 5 without outcome fatal (`grade-5-requires-fatal`), or the onset precedes the procedure (`onset-before-procedure`).',
      headers: IdempotencyHeaders,
      body: AdverseEventCreate,
      response: { 201: AdverseEvent, ...problemResponses(422) },
    },
  }, async (req, reply) => {
    const dto = await adverseEvents.create(actorOf(req), req.body, idempotencyOf(req));
    setEtag(reply, dto.version);
    return reply.code(201).header('Location', `/v1/adverse-events/${dto.id}`).send(dto);
  });

  r.get('/adverse-events', {
    config: { scope: 'clinical:read' },
    schema: { operationId: 'listAdverseEvents', tags, summary: 'List the clinic\'s adverse events by procedure, lot or seriousness', querystring: AdverseEventSearch, response: { 200: AdverseEventPage } },
  }, async (req) => {
    const { limit, cursor, ...filters } = req.query;
    return pageBody(await adverseEvents.list(actorOf(req), filters, pageRequest({ limit, cursor })));
  });

  r.get('/adverse-events/:id', {
    config: { scope: 'clinical:read' },
    schema: { operationId: 'getAdverseEvent', tags, summary: 'Read an adverse event', params: AdverseEventParams, response: { 200: AdverseEvent, ...problemResponses(404) } },
  }, async (req, reply) => {
    const dto = await adverseEvents.get(actorOf(req), req.params.id);
    setEtag(reply, dto.version);
    return dto;
  });

  r.patch('/adverse-events/:id', {
    config: { scope: 'clinical:write' },
    schema: {
      operationId: 'followUpAdverseEvent',
      tags,
      summary: 'Follow up an adverse event (outcome, grade, seriousness...): a new version',
      headers: IfMatchHeaders,
      params: AdverseEventParams,
      body: AdverseEventPatch,
      response: { 200: AdverseEvent, ...problemResponses(404, 412, 422, 428) },
    },
  }, async (req, reply) => {
    const dto = await adverseEvents.update(actorOf(req), req.params.id, ifMatchVersion(req), req.body);
    setEtag(reply, dto.version);
    return dto;
  });

  r.get('/adverse-events/:id/history', {
    config: { scope: 'clinical:read' },
    schema: {
      operationId: 'getAdverseEventHistory',
      tags,
      summary: 'Every version of an adverse event, oldest first',
      params: AdverseEventParams,
      querystring: z.strictObject(pageQuery),
      response: { 200: AdverseEventHistory, ...problemResponses(404) },
    },
  }, async (req) => pageBody(await adverseEvents.history(actorOf(req), req.params.id, versionPageRequest(req.query))));
}
