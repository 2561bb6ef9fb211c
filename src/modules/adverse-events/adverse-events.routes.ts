import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { actorOf } from '../../http/auth.js';
import { ifMatchVersion, setEtag } from '../../http/etag.js';
import { IdempotencyHeaders, IfMatchHeaders, OptionalIfMatchHeaders } from '../../http/headers.js';
import { idempotencyOf } from '../../http/idempotency.js';
import { decodeCursor, pageBody, pageQuery, pageRequest, versionPageRequest } from '../../http/pagination.js';
import { problemResponses } from '../../http/problem.js';
import { z } from 'zod';
import {
  AdverseEvent,
  AdverseEventCreate,
  AdverseEventHistory,
  AdverseEventPage,
  AdverseEventParams,
  AdverseEventPatch,
  AdverseEventReported,
  AdverseEventSearch,
} from './adverse-events.schemas.js';
import type { AdverseEventsService } from './adverse-events.service.js';

const tags = ['adverse-events'];

/** A due-time listing's cursor: `<due ISO 8601>~<id>` (the service's page key). */
const DUE_KEY = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)~([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
const dueKey = (s: string) => {
  const m = DUE_KEY.exec(s);
  return m ? { due: m[1]!, id: m[2]! } : undefined;
};

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
        '(`seriousness-inconsistent`), grade 5 without outcome fatal (`grade-5-requires-fatal`), the onset precedes the procedure (`onset-before-procedure`), ' +
        'awareAt precedes the onset (`aware-before-onset`), an onset or awareAt lies in the future (`time-in-future`), or the term is `Other, specify` and the ' +
        'description does not say what (`other-term-unspecified`). The answer carries expectedness (against the lot\'s product\'s expected-reaction list ' +
        'in force now) and the 21 CFR 312.32 clock: reportDueAt, reportedAt, reportOverdue.',
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
    schema: {
      operationId: 'listAdverseEvents',
      tags,
      summary: 'List the clinic\'s adverse events by procedure, lot, seriousness, or IND safety report due',
      description: 'In id order; with `reportDueBefore`, the events whose IND safety report is due before that instant and not yet recorded, earliest due first.',
      querystring: AdverseEventSearch,
      response: { 200: AdverseEventPage },
    },
  }, async (req) => {
    const { limit, cursor, ...filters } = req.query;
    const page = filters.reportDueBefore === undefined ? pageRequest({ limit, cursor }) : { limit, after: decodeCursor(cursor, dueKey) };
    const { after } = page;
    return pageBody(await adverseEvents.list(actorOf(req), filters, { limit, after: typeof after === 'string' ? { id: after } : after }));
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

  r.post('/adverse-events/:id/reported', {
    config: { scope: 'clinical:write' },
    schema: {
      operationId: 'recordAdverseEventReported',
      tags,
      summary: 'Record the submission of an adverse event\'s IND safety report (21 CFR 312.32): a new version',
      description:
        '422 `no-report-due` when the event has no reporting clock (reportDueAt null); 422 `reported-before-aware` / `time-in-future` for reportedAt. ' +
        'A second report is 409 `already-reported` unless If-Match names the current version: then it corrects the recorded submission (a new version; ' +
        'the earlier one stays in the history). Emits `adverse-event.updated`.',
      headers: OptionalIfMatchHeaders,
      params: AdverseEventParams,
      body: AdverseEventReported,
      response: { 200: AdverseEvent, ...problemResponses(404, 409, 412, 422) },
    },
  }, async (req, reply) => {
    const expected = req.headers['if-match'] === undefined ? undefined : ifMatchVersion(req);
    const dto = await adverseEvents.reported(actorOf(req), req.params.id, req.body, expected);
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
