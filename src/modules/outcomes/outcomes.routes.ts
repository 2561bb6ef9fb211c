import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { actorOf } from '../../http/auth.js';
import { IdempotencyHeaders } from '../../http/headers.js';
import { idempotencyOf } from '../../http/idempotency.js';
import { pageBody, pageRequest } from '../../http/pagination.js';
import { problemResponses } from '../../http/problem.js';
import { IdParams, Outcome, OutcomeCreate, OutcomeListQuery, OutcomePage } from './outcomes.schemas.js';
import type { OutcomesService } from './outcomes.service.js';

const tags = ['outcomes'];

export function outcomesRoutes(app: FastifyInstance, { outcomes }: { outcomes: OutcomesService }) {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post('/outcomes', {
    config: { scope: 'clinical:write' },
    schema: {
      operationId: 'recordOutcome',
      tags,
      summary: 'Record a follow-up outcome score',
      description: 'A score outside its instrument\'s range is refused (422 `score-out-of-range`, naming the range). A score outside its timepoint window is kept and flagged (`inWindow: false`).',
      headers: IdempotencyHeaders,
      body: OutcomeCreate,
      response: { 201: Outcome, ...problemResponses(422) },
    },
  }, async (req, reply) => reply.code(201).send(await outcomes.create(actorOf(req), req.body, idempotencyOf(req))));

  r.get('/patients/:id/outcomes', {
    config: { scope: 'clinical:read' },
    schema: {
      operationId: 'listPatientOutcomes',
      tags,
      summary: 'A patient\'s outcome scores with change from baseline, window and responder status',
      params: IdParams,
      querystring: OutcomeListQuery,
      response: { 200: OutcomePage, ...problemResponses(404) },
    },
  }, async (req) => pageBody(await outcomes.forPatient(actorOf(req), req.params.id, pageRequest(req.query))));

  r.get('/procedures/:id/outcomes', {
    config: { scope: 'clinical:read' },
    schema: {
      operationId: 'listProcedureOutcomes',
      tags,
      summary: 'A procedure\'s outcome scores with change from baseline, window and responder status',
      params: IdParams,
      querystring: OutcomeListQuery,
      response: { 200: OutcomePage, ...problemResponses(404) },
    },
  }, async (req) => pageBody(await outcomes.forProcedure(actorOf(req), req.params.id, pageRequest(req.query))));
}
