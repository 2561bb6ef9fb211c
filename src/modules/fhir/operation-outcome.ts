import type { FastifyError, FastifyInstance } from 'fastify';
import { classifyError, problemHeaders } from '../../http/errors.js';
import { FHIR_JSON, buildProblem } from '../../http/problem.js';
import type { ProblemBody } from '../../shared/schemas.js';
import type { FhirResource } from './fhir.mappers.js';

/** R4 issue-type codes (http://hl7.org/fhir/issue-type) for the statuses the facade answers. */
const ISSUE_TYPE: Record<number, string> = {
  400: 'invalid',
  401: 'login',
  403: 'forbidden',
  404: 'not-found',
  406: 'not-supported',
  409: 'conflict',
  412: 'conflict',
  413: 'too-costly',
  415: 'not-supported',
  422: 'business-rule',
  429: 'throttled',
  503: 'transient',
};

/**
 * The same problem the API would answer (RFC 9457), rendered as an R4 OperationOutcome: one issue per
 * `errors[]` entry (its path as `expression`), else one issue with the detail as `diagnostics`; the problem's
 * code goes in `details.coding` under the service's own system.
 */
export function toOperationOutcome(p: ProblemBody): FhirResource {
  const issue = (diagnostics: string, expression?: string[]) => ({
    severity: p.status >= 500 ? 'fatal' : 'error',
    code: ISSUE_TYPE[p.status] ?? 'exception',
    details: { coding: [{ system: 'urn:exosome-records:fhir:CodeSystem:problem', code: p.code }], text: p.title },
    diagnostics,
    ...(expression ? { expression } : {}),
  });
  return {
    resourceType: 'OperationOutcome',
    issue: p.errors?.length ? p.errors.map((e) => issue(`${e.path}: ${e.message}`, [e.path])) : [issue(p.detail)],
  };
}

/** Errors and unknown routes of the FHIR context leave as OperationOutcome, with the status the API would give. */
export function operationOutcomeErrors(app: FastifyInstance) {
  const content = `${FHIR_JSON}; charset=utf-8`;
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const problem = classifyError(err, req);
    problemHeaders(reply, problem);
    return reply.code(problem.status).type(content).send(toOperationOutcome(problem));
  });
  app.setNotFoundHandler((req, reply) =>
    reply
      .code(404)
      .type(content)
      .send(toOperationOutcome(buildProblem(req, 404, 'route-not-found', `This server does not support ${req.method} ${req.url.split('?')[0]}; see /fhir/R4/metadata.`))),
  );
}
