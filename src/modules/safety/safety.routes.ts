import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { actorOf } from '../../http/auth.js';
import { problemResponses } from '../../http/problem.js';
import { LotSafetyParams, LotSafetyReport, SafetySignals } from './safety.schemas.js';
import type { SafetyService } from './safety.service.js';

const tags = ['reports'];

/** The product safety reports (scope reports:read; a clinic token counts its own clinic's procedures only). */
export function safetyRoutes(app: FastifyInstance, { safety }: { safety: SafetyService }) {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get('/reports/lot-safety/:id', {
    config: { scope: 'reports:read', exportsData: true },
    schema: {
      operationId: 'lotSafetyReport',
      tags,
      summary: "Lot → adverse events by grade, seriousness and relatedness, its rate against the product's other lots, the signal, responders",
      description:
        "The rate is the share of the lot's procedures (not entered in error) with at least one adverse event not judged not-related, " +
        "with its exact (Clopper-Pearson) 95 % interval; the pool is every other lot of the same product. Flagged when one-sided Fisher's " +
        'exact test gives p < 0.01 and at least 3 procedures had an event. A clinic token counts its own procedures only, on both sides.',
      params: LotSafetyParams,
      response: { 200: LotSafetyReport, ...problemResponses(404) },
    },
  }, async (req) => safety.lotSafety(actorOf(req), req.params.id));

  r.get('/reports/safety-signals', {
    config: { scope: 'reports:read', exportsData: true },
    schema: {
      operationId: 'safetySignalsReport',
      tags,
      summary: 'Every lot whose adverse-event rate stands out from its product, worst first',
      response: { 200: SafetySignals },
    },
  }, async (req) => safety.safetySignals(actorOf(req)));
}
