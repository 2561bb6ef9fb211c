import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { actorOf } from '../../http/auth.js';
import { setEtag } from '../../http/etag.js';
import { IdempotencyHeaders } from '../../http/headers.js';
import { idempotencyOf } from '../../http/idempotency.js';
import { pageBody, pageRequest } from '../../http/pagination.js';
import { problemResponses } from '../../http/problem.js';
import { Donor, DonorCreate, DonorPage, DonorParams, DonorSearch, EligibilityCreate, EligibilityResult, ScreeningTest, ScreeningTestCreate } from './donors.schemas.js';
import type { DonorsService } from './donors.service.js';

const tags = ['donors'];

export function donorsRoutes(app: FastifyInstance, { donors }: { donors: DonorsService }) {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post('/donors', {
    config: { scope: 'lots:write' },
    schema: {
      operationId: 'createDonor',
      tags,
      summary: 'Record a donor by ISBT 128 DIN',
      headers: IdempotencyHeaders,
      body: DonorCreate,
      response: { 201: Donor, ...problemResponses(409, 422) },
    },
  }, async (req, reply) => {
    const dto = await donors.create(actorOf(req), req.body, idempotencyOf(req));
    setEtag(reply, dto.version);
    return reply.code(201).header('Location', `/v1/donors/${dto.id}`).send(dto);
  });

  r.get('/donors', {
    config: { scope: 'lots:read' },
    schema: { operationId: 'listDonors', tags, summary: 'List donors, or find one by DIN', querystring: DonorSearch, response: { 200: DonorPage } },
  }, async (req) => pageBody(await donors.list(req.query.din, pageRequest(req.query))));

  r.get('/donors/:id', {
    config: { scope: 'lots:read' },
    schema: {
      operationId: 'getDonor',
      tags,
      summary: 'Read a donor with its screening tests and eligibility determinations',
      params: DonorParams,
      response: { 200: Donor, ...problemResponses(404) },
    },
  }, async (req, reply) => {
    const dto = await donors.get(req.params.id);
    setEtag(reply, dto.version);
    return dto;
  });

  r.post('/donors/:id/tests', {
    config: { scope: 'lots:write' },
    schema: {
      operationId: 'recordScreeningTest',
      tags,
      summary: 'Record an infectious-disease screening result',
      headers: IdempotencyHeaders,
      params: DonorParams,
      body: ScreeningTestCreate,
      response: { 201: ScreeningTest, ...problemResponses(404, 422) },
    },
  }, async (req, reply) => reply.code(201).send(await donors.addTest(actorOf(req), req.params.id, req.body, idempotencyOf(req))));

  r.post('/donors/:id/eligibility', {
    config: { scope: 'lots:write' },
    schema: {
      operationId: 'determineEligibility',
      tags,
      summary: 'Record an eligibility determination',
      description:
        '`eligible` is refused (422 `donor-not-eligible`, naming the markers) unless every required marker has a non-reactive ' +
        'result within the specimen window and no result is reactive or indeterminate. `ineligible` sends every lot made ' +
        'from the donor back to quarantine in the same transaction.',
      headers: IdempotencyHeaders,
      params: DonorParams,
      body: EligibilityCreate,
      response: { 201: EligibilityResult, ...problemResponses(404, 422) },
    },
  }, async (req, reply) => reply.code(201).send(await donors.determine(actorOf(req), req.params.id, req.body, idempotencyOf(req))));
}
