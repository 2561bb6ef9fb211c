import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { actorOf } from '../../http/auth.js';
import { ifMatchVersion, setEtag } from '../../http/etag.js';
import { IdempotencyHeaders, IfMatchHeaders } from '../../http/headers.js';
import { idempotencyOf } from '../../http/idempotency.js';
import { pageBody, pageRequest, versionPageRequest } from '../../http/pagination.js';
import { problemResponses } from '../../http/problem.js';
import {
  ListQuery,
  Lot,
  LotCreate,
  LotPage,
  LotHistory,
  LotParams,
  LotPatch,
  LotSearch,
  QuarantineRequest,
  RecallRequest,
  RecallResult,
  ReleaseRequest,
} from './lots.schemas.js';
import type { LotsService } from './lots.service.js';

const tags = ['lots'];

export function lotsRoutes(app: FastifyInstance, { lots }: { lots: LotsService }) {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post('/lots', {
    config: { scope: 'lots:write' },
    schema: {
      operationId: 'createLot',
      tags,
      summary: 'Record an exosome product lot (it starts in quarantine)',
      headers: IdempotencyHeaders,
      body: LotCreate,
      response: { 201: Lot, ...problemResponses(409, 422) },
    },
  }, async (req, reply) => {
    const dto = await lots.create(actorOf(req), req.body, idempotencyOf(req));
    setEtag(reply, dto.version);
    return reply.code(201).header('Location', `/v1/lots/${dto.id}`).send(dto);
  });

  r.get('/lots', {
    config: { scope: 'lots:read' },
    schema: { operationId: 'listLots', tags, summary: 'List lots by status, manufacturer, lot number or donor', querystring: LotSearch, response: { 200: LotPage } },
  }, async (req) => {
    const { limit, cursor, ...filters } = req.query;
    return pageBody(await lots.list(filters, pageRequest({ limit, cursor })));
  });

  r.get('/lots/:id', {
    config: { scope: 'lots:read' },
    schema: { operationId: 'getLot', tags, summary: 'Read a lot with its dated status history', params: LotParams, response: { 200: Lot, ...problemResponses(404) } },
  }, async (req, reply) => {
    const dto = await lots.get(req.params.id);
    setEtag(reply, dto.version);
    return dto;
  });

  r.get('/lots/:id/history', {
    config: { scope: 'lots:read' },
    schema: {
      operationId: 'getLotHistory',
      tags,
      summary: 'Every version of a lot record (results corrected in quarantine, status changes), oldest first',
      params: LotParams,
      querystring: ListQuery,
      response: { 200: LotHistory, ...problemResponses(404) },
    },
  }, async (req) => pageBody(await lots.history(actorOf(req), req.params.id, versionPageRequest(req.query))));

  r.patch('/lots/:id', {
    config: { scope: 'lots:write' },
    schema: {
      operationId: 'updateLotResults',
      tags,
      summary: 'Record characterization or release-test results while the lot is in quarantine',
      headers: IfMatchHeaders,
      params: LotParams,
      body: LotPatch,
      response: { 200: Lot, ...problemResponses(404, 409, 412, 428) },
    },
  }, async (req, reply) => {
    const dto = await lots.update(actorOf(req), req.params.id, ifMatchVersion(req), req.body);
    setEtag(reply, dto.version);
    return dto;
  });

  r.post('/lots/:id/release', {
    config: { scope: 'lots:write' },
    schema: {
      operationId: 'releaseLot',
      tags,
      summary: 'Release a lot from quarantine',
      description:
        'Refused with 422 `lot-release-criteria-unmet`, listing every unmet criterion, unless at `releasedAt` every donor is eligible, ' +
        'sterility and mycoplasma pass, endotoxin is within the limit, the particle concentration and one of CD9/CD63/CD81 are ' +
        'recorded, and the lot has not expired. 409 unless the lot is in quarantine.',
      params: LotParams,
      body: ReleaseRequest,
      response: { 200: Lot, ...problemResponses(404, 409, 422) },
    },
  }, async (req, reply) => {
    const dto = await lots.release(actorOf(req), req.params.id, req.body);
    setEtag(reply, dto.version);
    return dto;
  });

  r.post('/lots/:id/quarantine', {
    config: { scope: 'lots:write' },
    schema: {
      operationId: 'quarantineLot',
      tags,
      summary: 'Put a released lot back in quarantine',
      params: LotParams,
      body: QuarantineRequest,
      response: { 200: Lot, ...problemResponses(404, 409, 422) },
    },
  }, async (req, reply) => {
    const dto = await lots.quarantine(actorOf(req), req.params.id, req.body);
    setEtag(reply, dto.version);
    return dto;
  });

  r.post('/lots/:id/recall', {
    config: { scope: 'lots:write' },
    schema: {
      operationId: 'recallLot',
      tags,
      summary: 'Recall a lot (final)',
      description: 'Answers the lot with `affectedRecipients` (distinct patients who received it) and `affectedClinics`.',
      params: LotParams,
      body: RecallRequest,
      response: { 200: RecallResult, ...problemResponses(404, 409, 422) },
    },
  }, async (req, reply) => {
    const dto = await lots.recall(actorOf(req), req.params.id, req.body);
    setEtag(reply, dto.version);
    return dto;
  });
}
